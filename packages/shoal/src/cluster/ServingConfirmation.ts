/**
 * Whether members of a side that stays confirm this node, so that what it hosts may serve (a
 * singleton instance, virtual actors' shards): heartbeat answers within a window, as
 * `Cluster.confirmedUntil` counts them. Pure: the time and the cluster's answer come in. Shared by
 * the singleton's lifecycle and the virtual actors' placement.
 * @module
 */

/**
 * A host serves on confirmations no older than this share of the down margin: the rest covers
 * clocks that run up to 10% apart and the time a call takes to start (docs/singleton.md, "The
 * argument").
 */
export const CONFIRM_SHARE = 0.8

/** What changed when {@link ServingConfirmation.check} ran. */
export type ConfirmationChange = 'first' | 'again' | 'lapsed' | undefined

/**
 * Whether members of a side that stays confirm this node (heartbeat answers within the window): a
 * shard owner serves only then, so one on the losing side of a partition stops before the other
 * side's margin has passed. Confirmations of heartbeats sent before a lapse do not count after it.
 */
export class ServingConfirmation {
  readonly window: number
  readonly #enabled: boolean
  #until = Number.NEGATIVE_INFINITY
  #notBefore = Number.NEGATIVE_INFINITY
  #state: 'never' | 'confirmed' | 'lapsed' = 'never'
  /** What the last `check` or `lapse` changed: `first` or `again` (serve what waited), `lapsed` (stop serving what runs). */
  change: ConfirmationChange

  /**
   * @param window How long a confirmation counts, ms: {@link CONFIRM_SHARE} of the margin.
   * @param enabled `false`: always serving (outside a cluster; or mutation checks in the simulator).
   */
  constructor(window: number, enabled = true) {
    this.window = window
    this.#enabled = enabled
  }

  /**
   * Whether this node may serve at `now`, asking `confirmedUntil(window, notBefore)` (the cluster's
   * heartbeat confirmations) only when the last answer ran out. Sets {@link change}.
   */
  check(now: number, confirmedUntil: (window: number, notBefore: number) => number): boolean {
    this.change = undefined
    if (!this.#enabled || now < this.#until) return true
    this.#until = confirmedUntil(this.window, this.#notBefore)
    if (now < this.#until) {
      this.change = this.#state === 'lapsed' ? 'again' : this.#state === 'never' ? 'first' : undefined
      this.#state = 'confirmed'
      return true
    }
    if (this.#state === 'confirmed') {
      this.#state = 'lapsed'
      this.#notBefore = now
      this.change = 'lapsed'
    }
    return false
  }

  /** Whether {@link check} would answer true at `now`, without changing anything (for status and invariant checks). */
  wouldServe(now: number, confirmedUntil: (window: number, notBefore: number) => number): boolean {
    return !this.#enabled || now < this.#until || now < confirmedUntil(this.window, this.#notBefore)
  }

  /**
   * A fence (the downing strategy would down this side): confirmations from before `now` no longer
   * count, this node must hear afresh. True (and `change` is `lapsed`) if it was confirmed.
   */
  lapse(now: number): boolean {
    this.change = undefined
    if (this.#state !== 'confirmed') return false
    this.#state = 'lapsed'
    this.#notBefore = now
    this.#until = Number.NEGATIVE_INFINITY
    this.change = 'lapsed'
    return true
  }
}
