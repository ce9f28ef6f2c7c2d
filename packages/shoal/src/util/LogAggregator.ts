/**
 * Aggregation of repeated log events: the first event of a key in a window is logged at once,
 * the others are only counted and reported as one summary when the window ends. Pure: the caller
 * passes the time and does the logging (and the timer that calls {@link LogAggregator.flush}).
 * @module
 */

/** The events of one key that were counted, not logged, during one window. */
export interface LogSummary<F> {
  /** The fields given with the first event of the window (e.g. `{ source, reason }`). */
  readonly fields: F
  /** Events counted after the first one of the window (the first was logged at once). */
  readonly count: number
  /** Start of the window, in the caller's clock (ms). */
  readonly since: number
  /** When the summary was taken (the window's end, or earlier on a final flush), ms. */
  readonly until: number
}

/** Options of {@link LogAggregator}. */
export interface LogAggregatorOptions<F> {
  /** Window length, ms: at most one line per key plus one summary per window. */
  readonly windowMs: number
  /** Keys tracked at once; past it, new keys share the overflow key (memory stays bounded). */
  readonly maxKeys: number
  /** Fields of the overflow key's lines, e.g. `{ source: 'other sources' }`. */
  readonly overflow: F
}

interface Entry<F> {
  fields: F
  since: number
  count: number
}

const OVERFLOW = '\u0000overflow'

/**
 * Counts events by key over windows of {@link LogAggregatorOptions.windowMs}. {@link record} says
 * whether to log an event now; {@link flush} hands back the counts of ended windows. Memory is
 * bounded by `maxKeys` (plus the overflow key).
 *
 * ```ts
 * const agg = new LogAggregator({ windowMs: 10_000, maxKeys: 1000, overflow: { source: 'other' } })
 * if (agg.record('10.0.0.9|bad hello', { source: '10.0.0.9' }, now)) log.warn(…)   // the first
 * for (const s of agg.flush(now)) log.warn({ ...s.fields, count: s.count }, '… more times')
 * ```
 */
export class LogAggregator<F> {
  readonly #options: LogAggregatorOptions<F>
  readonly #entries = new Map<string, Entry<F>>()
  /** Summaries of windows that ended when a new event of their key arrived before a flush. */
  readonly #ended: LogSummary<F>[] = []

  constructor(options: LogAggregatorOptions<F>) {
    this.#options = options
  }

  /**
   * Records one event of `key` at `now`. True if it is the first of its key in the current window
   * (log it now, with its own detail); false if it was only counted (see {@link flush}).
   */
  record(key: string, fields: F, now: number): boolean {
    let k = key
    if (!this.#entries.has(k) && this.#entries.size >= this.#options.maxKeys) {
      this.#retireEnded(now)
      if (this.#entries.size >= this.#options.maxKeys) k = OVERFLOW
    }
    const e = this.#entries.get(k)
    if (e && now - e.since < this.#options.windowMs) {
      e.count++
      return false
    }
    if (e) {
      // Delete, then set: the map stays in window order (oldest first), see #retireEnded.
      this.#entries.delete(k)
      if (e.count > 0) this.#ended.push({ fields: e.fields, count: e.count, since: e.since, until: now })
    }
    this.#entries.set(k, { fields: k === OVERFLOW ? this.#options.overflow : fields, since: now, count: 0 })
    return true
  }

  /**
   * The counts of every window ended by `now` (all windows if `all`, e.g. on shutdown), each key's
   * once; forgets keys whose window ended. Summaries with a count of 0 are not returned.
   */
  flush(now: number, all = false): LogSummary<F>[] {
    const out = this.#ended.splice(0)
    for (const [k, e] of this.#entries) {
      if (!all && now - e.since < this.#options.windowMs) continue
      this.#entries.delete(k)
      if (e.count > 0) out.push({ fields: e.fields, count: e.count, since: e.since, until: now })
    }
    return out
  }

  /** Whether some counted events wait for a {@link flush}. */
  get pending(): boolean {
    if (this.#ended.length > 0) return true
    for (const e of this.#entries.values()) if (e.count > 0) return true
    return false
  }

  /** Keys tracked now (the overflow key included). */
  get size(): number {
    return this.#entries.size
  }

  /** Frees the slots of keys whose window ended, oldest first, keeping their counts for {@link flush}. */
  #retireEnded(now: number): void {
    for (const [k, e] of this.#entries) {
      if (now - e.since < this.#options.windowMs) return
      this.#entries.delete(k)
      if (e.count > 0) this.#ended.push({ fields: e.fields, count: e.count, since: e.since, until: now })
    }
  }
}
