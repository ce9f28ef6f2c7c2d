/**
 * Metrics: one prom-client Registry per system (never the global one, so several systems in one
 * process stay apart). Expose with `await system.metrics.registry.metrics()`.
 * @module
 */
import { Counter, Gauge, type MetricObjectWithValues, type MetricValueWithName, Registry } from 'prom-client'

/**
 * A histogram recorded into plain arrays and exported on scrape. prom-client's Histogram hashes
 * labels on every observe, which cost a third of a local call; this costs a bucket search.
 */
export class CallHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: readonly number[]
  readonly #series = new Map<string, { counts: Float64Array; sum: number; count: number }>()

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name
    this.help = help
    this.#bounds = bounds
  }

  /** A recorder for one label value, to keep on the hot path. */
  series(target: string): (seconds: number) => void {
    const s = { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }
    this.#series.set(target, s)
    const bounds = this.#bounds
    return (v) => {
      let i = 0
      while (i < bounds.length && v > bounds[i]!) i++
      s.counts[i]!++
      s.sum += v
      s.count++
    }
  }

  async get(): Promise<Omit<MetricObjectWithValues<MetricValueWithName<string>>, 'collect'>> {
    const values: MetricValueWithName<string>[] = []
    for (const [target, s] of this.#series) {
      let cumulative = 0
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!
        values.push({ metricName: `${this.name}_bucket`, labels: { le, target }, value: cumulative })
      })
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', target }, value: s.count })
      values.push({ metricName: `${this.name}_sum`, labels: { target }, value: s.sum })
      values.push({ metricName: `${this.name}_count`, labels: { target }, value: s.count })
    }
    return { name: this.name, help: this.help, type: 'histogram' as never, values, aggregator: 'sum' }
  }
}

/** Local calls are timed one in this many (a power of two). */
export const LOCAL_SAMPLE = 16

export class Metrics {
  readonly registry = new Registry()
  readonly associations: Gauge
  /** Transport counts accumulate in plain numbers (prom-client hashes labels on every inc) and are added on scrape. */
  readonly #transport = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, writes: 0 }
  readonly calls: Counter
  /** Outcome counts accumulated on the hot path and added to `calls` on scrape ('ok' apart: it is most of them). */
  #ok = 0
  readonly #outcomes = new Map<string, number>()
  /** Local calls so far, to time one in LOCAL_SAMPLE. */
  #localCalls = 0
  readonly callDuration: CallHistogram
  readonly #durationLocal: (s: number) => void
  readonly #durationRemote: (s: number) => void
  readonly refused: Counter
  readonly decodeErrors: Counter
  readonly mailboxDepth: Gauge
  readonly actors: Gauge
  readonly inboundPaused: Counter
  /** Outstanding inbound bytes per peer (set by the system once its transport exists). */
  inboundBytes: (() => Iterable<readonly [string, number]>) | undefined

  constructor(labels: { system: string }, mailboxDepth: () => number, actorCount: () => number) {
    const r = this.registry
    r.setDefaultLabels(labels)
    this.associations = new Gauge({ name: 'shoal_associations', help: 'Established associations to peer nodes', registers: [r] })
    const t = this.#transport
    const flush = (counter: Counter, inKey: 'bytesIn' | 'framesIn', outKey: 'bytesOut' | 'framesOut'): void => {
      counter.inc({ direction: 'in' }, t[inKey])
      counter.inc({ direction: 'out' }, t[outKey])
      t[inKey] = 0
      t[outKey] = 0
    }
    new Counter({
      name: 'shoal_transport_bytes_total',
      help: 'Bytes through the transport',
      labelNames: ['direction'],
      registers: [r],
      collect() {
        flush(this, 'bytesIn', 'bytesOut')
      },
    })
    new Counter({
      name: 'shoal_transport_frames_total',
      help: 'Frames through the transport',
      labelNames: ['direction'],
      registers: [r],
      collect() {
        flush(this, 'framesIn', 'framesOut')
      },
    })
    new Counter({
      name: 'shoal_transport_writes_total',
      help: 'Socket writes of batched outbound frames (frames out ÷ writes = frames per batch)',
      registers: [r],
      collect() {
        this.inc(t.writes)
        t.writes = 0
      },
    })
    const outcomes = this.#outcomes
    this.calls = new Counter({
      name: 'shoal_calls_total',
      help: 'Calls made from this node, by outcome (ok or error code)',
      labelNames: ['outcome'],
      registers: [r],
      collect: () => {
        if (this.#ok > 0) this.calls.inc({ outcome: 'ok' }, this.#ok)
        this.#ok = 0
        for (const [outcome, n] of outcomes) if (n > 0) this.calls.inc({ outcome }, n)
        outcomes.clear()
      },
    })
    this.callDuration = new CallHistogram(
      'shoal_call_duration_seconds',
      'Latency of calls made from this node, until reply or failure',
      [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    )
    r.registerMetric(this.callDuration as never)
    this.#durationLocal = this.callDuration.series('local')
    this.#durationRemote = this.callDuration.series('remote')
    this.refused = new Counter({ name: 'shoal_refused_total', help: 'Connections and frames refused, by reason', labelNames: ['reason'], registers: [r] })
    // Every reason from the start, at 0: a dashboard shows 0 refusals rather than no data.
    for (const reason of ['handshake', 'protocol', 'method', 'management-auth', 'management-throttled']) this.refused.inc({ reason }, 0)
    this.decodeErrors = new Counter({
      name: 'shoal_decode_errors_total',
      help: 'Payloads refused by the decoder (limits, malformed, unregistered class)',
      registers: [r],
    })
    this.mailboxDepth = new Gauge({
      name: 'shoal_mailbox_depth',
      help: 'Calls waiting in mailboxes of all local actors',
      registers: [r],
      collect() {
        this.set(mailboxDepth())
      },
    })
    this.actors = new Gauge({
      name: 'shoal_actors',
      help: 'Live local actors',
      registers: [r],
      collect() {
        this.set(actorCount())
      },
    })
    const inboundBytes = (): Iterable<readonly [string, number]> => this.inboundBytes?.() ?? []
    new Gauge({
      name: 'shoal_inbound_bytes',
      help: 'Frame bytes of inbound calls and one-way messages from each peer not finished yet (reading pauses above maxInboundBytes)',
      labelNames: ['peer'],
      registers: [r],
      collect() {
        this.reset()
        for (const [peer, bytes] of inboundBytes()) this.set({ peer }, bytes)
      },
    })
    this.inboundPaused = new Counter({
      name: 'shoal_inbound_paused_total',
      help: 'Times a connection stopped reading because its peer had more than maxInboundBytes of inbound work outstanding',
      registers: [r],
    })
  }

  /** Counts transport bytes (exported as `shoal_transport_bytes_total`). */
  bytes(direction: 'in' | 'out', n: number): void {
    if (direction === 'in') this.#transport.bytesIn += n
    else this.#transport.bytesOut += n
  }

  /** Counts transport frames (exported as `shoal_transport_frames_total`). */
  frames(direction: 'in' | 'out', n: number): void {
    if (direction === 'in') this.#transport.framesIn += n
    else this.#transport.framesOut += n
  }

  /** Counts one socket write of a batch (exported as `shoal_transport_writes_total`). */
  write(): void {
    this.#transport.writes++
  }

  /**
   * Start time for a call's latency, or -1 when this call is not timed: every remote call is timed,
   * one local call in {@link LOCAL_SAMPLE} (a clock read costs as much as a quarter of a local call).
   */
  callStarted(remote: boolean): number {
    if (remote || (++this.#localCalls & (LOCAL_SAMPLE - 1)) === 0) return performance.now()
    return -1
  }

  /** Records a call's outcome (`ok` or an error code) and, if it was timed, its latency. */
  callDone(outcome: string, started: number, remote: boolean): void {
    if (outcome === 'ok') this.#ok++
    else this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1)
    if (started < 0) return
    const seconds = (performance.now() - started) / 1000
    if (remote) this.#durationRemote(seconds)
    else this.#durationLocal(seconds)
  }
}

/**
 * A counter whose value is read from its owner on scrape (the owner keeps plain numbers that only
 * grow): each scrape adds what grew since the last. `read` gives the totals per label set.
 */
export function counterReading(
  options: { name: string; help: string; labelNames?: readonly string[]; registers: Registry[] },
  read: () => Iterable<readonly [Record<string, string>, number]>,
): Counter {
  const last = new Map<string, number>()
  return new Counter({
    ...options,
    labelNames: options.labelNames ?? [],
    collect() {
      for (const [labels, total] of read()) {
        const key = JSON.stringify(labels)
        const grew = total - (last.get(key) ?? 0)
        last.set(key, total)
        this.inc(labels, Math.max(0, grew)) // 0 too: the series exists from the first scrape
      }
    },
  })
}
