/**
 * Metrics: one prom-client Registry per system (never the global one, so several systems in one
 * process stay apart). Expose with `await system.metrics.registry.metrics()`.
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export class Metrics {
  readonly registry = new Registry()
  readonly associations: Gauge
  readonly #bytesIn: Counter.Internal
  readonly #bytesOut: Counter.Internal
  readonly #framesIn: Counter.Internal
  readonly #framesOut: Counter.Internal
  readonly calls: Counter
  readonly #callsOk: Counter.Internal
  readonly callDuration: Histogram
  readonly #durationLocal: Histogram.Internal<string>
  readonly #durationRemote: Histogram.Internal<string>
  readonly refused: Counter
  readonly decodeErrors: Counter
  readonly mailboxDepth: Gauge
  readonly actors: Gauge

  constructor(labels: { system: string }, mailboxDepth: () => number, actorCount: () => number) {
    const r = this.registry
    r.setDefaultLabels(labels)
    this.associations = new Gauge({ name: 'shoal_associations', help: 'Established associations to peer nodes', registers: [r] })
    const bytes = new Counter({ name: 'shoal_transport_bytes_total', help: 'Bytes through the transport', labelNames: ['direction'], registers: [r] })
    const frames = new Counter({ name: 'shoal_transport_frames_total', help: 'Frames through the transport', labelNames: ['direction'], registers: [r] })
    this.#bytesIn = bytes.labels('in')
    this.#bytesOut = bytes.labels('out')
    this.#framesIn = frames.labels('in')
    this.#framesOut = frames.labels('out')
    this.calls = new Counter({ name: 'shoal_calls_total', help: 'Calls made from this node, by outcome (ok or error code)', labelNames: ['outcome'], registers: [r] })
    this.#callsOk = this.calls.labels('ok')
    this.callDuration = new Histogram({
      name: 'shoal_call_duration_seconds',
      help: 'Latency of calls made from this node, until reply or failure',
      labelNames: ['target'],
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    })
    this.#durationLocal = this.callDuration.labels('local')
    this.#durationRemote = this.callDuration.labels('remote')
    this.refused = new Counter({ name: 'shoal_refused_total', help: 'Connections and frames refused, by reason', labelNames: ['reason'], registers: [r] })
    this.decodeErrors = new Counter({ name: 'shoal_decode_errors_total', help: 'Payloads refused by the decoder (limits, malformed, unregistered class)', registers: [r] })
    this.mailboxDepth = new Gauge({ name: 'shoal_mailbox_depth', help: 'Calls waiting in mailboxes of all local actors', registers: [r], collect() { this.set(mailboxDepth()) } })
    this.actors = new Gauge({ name: 'shoal_actors', help: 'Live local actors', registers: [r], collect() { this.set(actorCount()) } })
  }

  bytes(direction: 'in' | 'out', n: number): void {
    if (direction === 'in') this.#bytesIn.inc(n)
    else this.#bytesOut.inc(n)
  }

  frames(direction: 'in' | 'out', n: number): void {
    if (direction === 'in') this.#framesIn.inc(n)
    else this.#framesOut.inc(n)
  }

  callDone(outcome: string, seconds: number, remote: boolean): void {
    if (outcome === 'ok') this.#callsOk.inc()
    else this.calls.labels(outcome).inc()
    const histogram = remote ? this.#durationRemote : this.#durationLocal
    histogram.observe(seconds)
  }
}
