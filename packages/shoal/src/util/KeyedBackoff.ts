/**
 * KeyedBackoff: exponential backoff per key, pure (the caller passes the time). After the n-th
 * consecutive failure of a key, it must wait `min(maxMs, baseMs × 2^(n-1))` before its next
 * attempt; a success forgets the key, and a key quiet for `maxMs` past its last wait starts over.
 * Memory is bounded by `maxKeys` (the least recently failed forgotten first), so many keys cannot
 * exhaust it: at worst one is forgotten early. Each failure may carry a detail (what it failed
 * with), kept until the next failure or success of the key.
 *
 * Used for wrong management tokens per source address (`AuthThrottle`) and for virtual actors
 * whose activation failed (per path).
 * @module
 */

/** Options of {@link KeyedBackoff}. */
export interface KeyedBackoffOptions {
  /** Wait imposed after the first failure, ms; doubled by each further one. */
  readonly baseMs: number
  /** Longest wait, ms. */
  readonly maxMs: number
  /** Keys tracked at once; past it the least recently failed is forgotten. */
  readonly maxKeys: number
}

interface Failures<D> {
  count: number
  /** No attempt for the key is considered before this time, ms. */
  until: number
  detail: D | undefined
}

export class KeyedBackoff<D = undefined> {
  readonly #base: number
  readonly #max: number
  readonly #maxKeys: number
  /** In order of last failure, oldest first. */
  readonly #keys = new Map<string, Failures<D>>()

  constructor(options: KeyedBackoffOptions) {
    this.#base = options.baseMs
    this.#max = options.maxMs
    this.#maxKeys = options.maxKeys
  }

  /** Ms `key` must still wait before an attempt; 0 if it may try now. */
  retryAfter(key: string, now: number): number {
    const f = this.#keys.get(key)
    return f === undefined ? 0 : Math.max(0, f.until - now)
  }

  /** Records a failed attempt for `key` at `now` (with what it failed with); returns the wait it imposes, ms. */
  failed(key: string, now: number, detail?: D): number {
    const old = this.#keys.get(key)
    // Quiet for maxMs past the last wait: start over.
    const count = old !== undefined && now - old.until < this.#max ? old.count + 1 : 1
    const wait = Math.min(this.#max, this.#base * 2 ** Math.min(count - 1, 30))
    this.#keys.delete(key)
    if (this.#keys.size >= this.#maxKeys) this.#keys.delete(this.#keys.keys().next().value!)
    this.#keys.set(key, { count, until: now + wait, detail })
    return wait
  }

  /** A successful attempt: `key` starts over. */
  succeeded(key: string): void {
    this.#keys.delete(key)
  }

  /** Consecutive failures recorded for `key` (0 if none or forgotten). */
  failures(key: string): number {
    return this.#keys.get(key)?.count ?? 0
  }

  /** What the last failure of `key` carried, if it is still tracked. */
  detail(key: string): D | undefined {
    return this.#keys.get(key)?.detail
  }

  /** Keys tracked now. */
  get size(): number {
    return this.#keys.size
  }
}
