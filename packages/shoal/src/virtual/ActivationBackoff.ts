/**
 * ActivationBackoff: the ids whose last activation failed (the constructor threw, or `onStart`
 * did, e.g. recovery from a journal that is down), and when the next attempt may be made. Without
 * it every waiting call would activate the id again at once, hammering whatever failed.
 *
 * The first failure waits `base` ms, each further one twice as long, up to `max`; a successful
 * activation forgets the id. At most `capacity` ids are remembered (the oldest go first): no
 * per-id memory grows without bound. Time is given, not read: the caller's monotonic clock.
 * @module
 */

export interface BackoffSettings {
  /** First wait after a failure, ms. Default 200. */
  readonly base?: number
  /** Longest wait, ms. Default 10,000. */
  readonly max?: number
  /** Ids remembered at most. Default 10,000. */
  readonly capacity?: number
}

/** A failed id still in its wait. */
export interface BackedOff {
  readonly failures: number
  /** What the last attempt failed with. */
  readonly error: unknown
  /** Ms until the next attempt may be made. */
  readonly waitMs: number
}

interface Failure {
  failures: number
  error: unknown
  until: number
}

export class ActivationBackoff {
  readonly #base: number
  readonly #max: number
  readonly #capacity: number
  readonly #failed = new Map<string, Failure>()

  constructor(s: BackoffSettings = {}) {
    this.#base = s.base ?? 200
    this.#max = s.max ?? 10_000
    this.#capacity = s.capacity ?? 10_000
  }

  /** Undefined if `key` may be activated at `now`; otherwise its failures and the wait left. */
  check(key: string, now: number): BackedOff | undefined {
    const f = this.#failed.get(key)
    if (!f || now >= f.until) return undefined
    return { failures: f.failures, error: f.error, waitMs: Math.ceil(f.until - now) }
  }

  /** Activating `key` failed at `now` with `error`. */
  failed(key: string, error: unknown, now: number): void {
    const f = this.#failed.get(key)
    const failures = (f?.failures ?? 0) + 1
    const wait = Math.min(this.#max, this.#base * 2 ** (failures - 1))
    this.#failed.delete(key) // re-inserted last: the map's order is the eviction order
    this.#failed.set(key, { failures, error, until: now + wait })
    if (this.#failed.size > this.#capacity) this.#failed.delete(this.#failed.keys().next().value!)
  }

  /** `key` was activated: forget its failures. */
  succeeded(key: string): void {
    this.#failed.delete(key)
  }

  get size(): number {
    return this.#failed.size
  }
}
