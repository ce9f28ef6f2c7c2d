/**
 * MethodStats: calls served by this node per actor type and method (calls, errors, latency), for
 * the dashboard's "top methods". Metrics carry no method label (one series per method would be
 * unbounded), so the local actor table samples its calls instead, and only while someone looks:
 * `touch()` turns sampling on, and it turns off after `idleMs` without a touch.
 *
 * Details: while on, one call in `sampleEvery` (a power of two) is timed, as the metrics time local
 * calls: a counter per call, two clock reads and a map update per sampled call. Figures are
 * estimates (sampled counts × `sampleEvery`), cumulative since sampling began (`since`): a reader
 * takes differences between two snapshots. Off, the call path reads one boolean.
 * Bounded: at most `maxMethods` distinct type/method pairs; the rest are counted under `(other)`.
 *
 * Gotchas: a method called fewer than `sampleEvery` times in an interval may not show in it.
 * @module
 */

/** Latency bucket upper bounds (s), as `shoal_call_duration_seconds` has them from 0.5 ms. */
export const METHOD_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** One type/method pair's figures since `since` (estimates: sampled calls × the sampling interval). */
export interface MethodStat {
  readonly actorType: string
  readonly method: string
  readonly calls: number
  /** Calls that failed (rejected, or refused once their turn came). */
  readonly errors: number
  /** Seconds spent, summed. */
  readonly seconds: number
  /** Calls per bucket of {@link METHOD_BUCKETS} (not cumulative), the last one for longer calls. */
  readonly buckets: readonly number[]
}

export interface MethodStatsSnapshot {
  /** ms since the epoch when sampling began (a new value: the figures restarted). */
  readonly since: number
  /** One call in this many is sampled. */
  readonly sampleEvery: number
  readonly methods: readonly MethodStat[]
}

interface Tally {
  calls: number
  errors: number
  seconds: number
  readonly buckets: number[]
}

export class MethodStats {
  readonly #idleMs: number
  readonly #maxMethods: number
  readonly #every: number
  readonly #tallies = new Map<string, Tally>()
  #since = 0
  #count = 0
  #idle: NodeJS.Timeout | undefined
  /** Whether calls are being sampled now (read by the call path on every call). */
  active = false

  constructor(options: { readonly idleMs?: number; readonly maxMethods?: number; readonly sampleEvery?: number } = {}) {
    this.#idleMs = options.idleMs ?? 30_000
    this.#maxMethods = options.maxMethods ?? 200
    const every = options.sampleEvery ?? 16
    if (!Number.isInteger(Math.log2(every))) throw new RangeError(`sampleEvery must be a power of two, got ${every}`)
    this.#every = every
  }

  /** Someone looks: sample (from now, if not sampling yet) for another `idleMs`. */
  touch(): void {
    if (!this.active) {
      this.#tallies.clear()
      this.#since = Date.now()
      this.active = true
    }
    clearTimeout(this.#idle)
    this.#idle = setTimeout(() => this.stop(), this.#idleMs)
    this.#idle.unref()
  }

  /** Stops sampling (nobody looked for `idleMs`, or the system stops). */
  stop(): void {
    clearTimeout(this.#idle)
    this.#idle = undefined
    this.active = false
  }

  /** Called for each call while active: whether to time this one (its start time), or -1. */
  sample(): number {
    return (++this.#count & (this.#every - 1)) === 0 ? performance.now() : -1
  }

  /** A sampled call that started at `started` (from {@link sample}) settled. */
  record(actorType: string, method: string, ok: boolean, started: number): void {
    const seconds = (performance.now() - started) / 1000
    const t = this.#tally(actorType, method)
    t.calls++
    if (!ok) t.errors++
    t.seconds += seconds
    let i = 0
    while (i < METHOD_BUCKETS.length && seconds > METHOD_BUCKETS[i]!) i++
    t.buckets[i]!++
  }

  /** The estimates since sampling began, busiest first (empty when never sampled). */
  snapshot(): MethodStatsSnapshot {
    const k = this.#every
    const methods: MethodStat[] = []
    for (const [key, t] of this.#tallies) {
      const dot = key.indexOf('\u0000')
      methods.push({
        actorType: key.slice(0, dot),
        method: key.slice(dot + 1),
        calls: t.calls * k,
        errors: t.errors * k,
        seconds: t.seconds * k,
        buckets: t.buckets.map((b) => b * k),
      })
    }
    methods.sort((a, b) => b.calls - a.calls)
    return { since: this.#since, sampleEvery: k, methods }
  }

  #tally(actorType: string, method: string): Tally {
    let key = `${actorType}\u0000${method}`
    let t = this.#tallies.get(key)
    if (t) return t
    if (this.#tallies.size >= this.#maxMethods) {
      key = '(other)\u0000(other)'
      t = this.#tallies.get(key)
      if (t) return t
    }
    t = { calls: 0, errors: 0, seconds: 0, buckets: new Array<number>(METHOD_BUCKETS.length + 1).fill(0) }
    this.#tallies.set(key, t)
    return t
  }
}
