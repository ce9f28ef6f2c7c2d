/**
 * MethodStats: calls served by this node per actor type and method (calls, errors, latency), for
 * the dashboard's "top methods". Metrics carry no method label (one series per method would be
 * unbounded), so this reads the `shoal.call` tracing channel instead, and only while someone
 * looks: `touch()` subscribes, and it unsubscribes after `idleMs` without a touch. The call path
 * builds trace contexts only while the channel has subscribers, so a node nobody watches pays
 * nothing.
 *
 * Details: callee side only (the calls this node ran, local or from other nodes), counted when
 * each settles; one-way messages count as calls with their turn's duration. Figures are cumulative
 * since the subscription began (`since`): a reader takes differences between two snapshots.
 * Bounded: at most `maxMethods` distinct type/method pairs; the rest are counted under `(other)`.
 * @module
 */
import { type CallTraceContext, callTracing } from './Channels.ts'

/** Latency bucket upper bounds (s), as `shoal_call_duration_seconds` has them from 0.5 ms. */
export const METHOD_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** One type/method pair's figures since `since`. */
export interface MethodStat {
  readonly actorType: string
  readonly method: string
  readonly calls: number
  /** Calls that failed (any outcome but `ok`). */
  readonly errors: number
  /** Seconds spent, summed. */
  readonly seconds: number
  /** Calls per bucket of {@link METHOD_BUCKETS} (not cumulative), the last one for longer calls. */
  readonly buckets: readonly number[]
}

export interface MethodStatsSnapshot {
  /** ms since the epoch when counting began (a new value: the figures restarted). */
  readonly since: number
  readonly methods: readonly MethodStat[]
}

interface Tally {
  calls: number
  errors: number
  seconds: number
  readonly buckets: number[]
}

export class MethodStats {
  readonly #uid: string
  readonly #idleMs: number
  readonly #maxMethods: number
  readonly #now: () => number
  readonly #tallies = new Map<string, Tally>()
  /** When each call this instance counts began (per instance: several systems share the channel). */
  readonly #started = new WeakMap<CallTraceContext, number>()
  #since = 0
  #idle: NodeJS.Timeout | undefined
  readonly #onStart = (ctx: unknown): void => this.#start(ctx as CallTraceContext)
  readonly #onSettle = (ctx: unknown): void => this.#settle(ctx as CallTraceContext)

  /**
   * @param uid the node whose served calls count (channels are process-wide: several systems in
   *   one process all publish on them).
   */
  constructor(uid: string, options: { readonly idleMs?: number; readonly maxMethods?: number; readonly now?: () => number } = {}) {
    this.#uid = uid
    this.#idleMs = options.idleMs ?? 30_000
    this.#maxMethods = options.maxMethods ?? 200
    this.#now = options.now ?? Date.now
  }

  /** Whether calls are being counted now. */
  get active(): boolean {
    return this.#idle !== undefined
  }

  /** Someone looks: count (from now, if not counting yet) for another `idleMs`. */
  touch(): void {
    if (this.#idle === undefined) {
      this.#tallies.clear()
      this.#since = this.#now()
      callTracing.start.subscribe(this.#onStart)
      callTracing.asyncEnd.subscribe(this.#onSettle)
      callTracing.error.subscribe(this.#onSettle)
    }
    clearTimeout(this.#idle)
    this.#idle = setTimeout(() => this.stop(), this.#idleMs)
    this.#idle.unref()
  }

  /** Stops counting (nobody looked for `idleMs`, or the system stops). */
  stop(): void {
    if (this.#idle === undefined) return
    clearTimeout(this.#idle)
    this.#idle = undefined
    callTracing.start.unsubscribe(this.#onStart)
    callTracing.asyncEnd.unsubscribe(this.#onSettle)
    callTracing.error.unsubscribe(this.#onSettle)
  }

  /** The figures since counting began, busiest first (empty when not counting). */
  snapshot(): MethodStatsSnapshot {
    const methods: MethodStat[] = []
    for (const [key, t] of this.#tallies) {
      const dot = key.indexOf('\u0000')
      methods.push({ actorType: key.slice(0, dot), method: key.slice(dot + 1), calls: t.calls, errors: t.errors, seconds: t.seconds, buckets: [...t.buckets] })
    }
    methods.sort((a, b) => b.calls - a.calls)
    return { since: this.#since, methods }
  }

  #start(ctx: CallTraceContext): void {
    if (ctx.side === 'callee' && ctx.targetNode.uid === this.#uid) this.#started.set(ctx, performance.now())
  }

  #settle(ctx: CallTraceContext): void {
    const started = this.#started.get(ctx)
    if (started === undefined) return
    this.#started.delete(ctx) // asyncEnd follows error for a rejected call: count it once
    const seconds = (performance.now() - started) / 1000
    const t = this.#tally(ctx.actorType ?? '(unknown)', ctx.method)
    t.calls++
    if (ctx.outcome !== undefined && ctx.outcome !== 'ok') t.errors++
    t.seconds += seconds
    let i = 0
    while (i < METHOD_BUCKETS.length && seconds > METHOD_BUCKETS[i]!) i++
    t.buckets[i]!++
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
