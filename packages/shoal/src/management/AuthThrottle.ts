/**
 * Backoff for failed authentications, per source: the decision logic of the management endpoint's
 * limit on bearer guesses. Pure: the caller passes the time.
 * @module
 */

/** Options of {@link AuthThrottle}. */
export interface AuthThrottleOptions {
  /** Wait imposed after the first failure, ms; doubled by each further one. Default 1000. */
  readonly baseMs?: number
  /** Longest wait, ms. Default 60 000. */
  readonly maxMs?: number
  /** Sources tracked at once; past it the least recently failed is forgotten. Default 10 000. */
  readonly maxSources?: number
}

interface Failures {
  count: number
  /** No attempt from the source is considered before this time, ms. */
  until: number
}

/**
 * Failed authentications per source (an IP address) with exponential backoff: after the n-th
 * consecutive failure the source must wait `min(maxMs, baseMs × 2^(n-1))` before its next attempt
 * is even checked; a success forgets the source. A source that waited `maxMs` past its last wait
 * without failing again starts over. Memory is bounded by `maxSources` (least recently failed
 * forgotten first), so many sources cannot exhaust it: at worst one is forgotten early.
 */
export class AuthThrottle {
  readonly #base: number
  readonly #max: number
  readonly #maxSources: number
  /** In order of last failure, oldest first. */
  readonly #sources = new Map<string, Failures>()

  constructor(options: AuthThrottleOptions = {}) {
    this.#base = options.baseMs ?? 1_000
    this.#max = options.maxMs ?? 60_000
    this.#maxSources = options.maxSources ?? 10_000
  }

  /** Ms `source` must still wait before an attempt is checked at all; 0 if it may try now. */
  retryAfter(source: string, now: number): number {
    const f = this.#sources.get(source)
    return f === undefined ? 0 : Math.max(0, f.until - now)
  }

  /** Records a failed attempt by `source` at `now`; returns the wait it imposes, ms. */
  failed(source: string, now: number): number {
    const old = this.#sources.get(source)
    // Quiet for maxMs past the last wait: start over.
    const count = old !== undefined && now - old.until < this.#max ? old.count + 1 : 1
    const wait = Math.min(this.#max, this.#base * 2 ** Math.min(count - 1, 30))
    this.#sources.delete(source)
    if (this.#sources.size >= this.#maxSources) this.#sources.delete(this.#sources.keys().next().value!)
    this.#sources.set(source, { count, until: now + wait })
    return wait
  }

  /** A successful attempt: `source` starts over. */
  succeeded(source: string): void {
    this.#sources.delete(source)
  }

  /** Consecutive failures recorded for `source` (0 if none or forgotten). */
  failures(source: string): number {
    return this.#sources.get(source)?.count ?? 0
  }

  /** Sources tracked now. */
  get size(): number {
    return this.#sources.size
  }
}
