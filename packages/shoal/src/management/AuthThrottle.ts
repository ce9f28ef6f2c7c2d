/**
 * Backoff for failed authentications, per source address: the management endpoint's limit on
 * bearer guesses, a {@link KeyedBackoff} with its own defaults.
 * @module
 */
import { KeyedBackoff } from '../util/KeyedBackoff.ts'

/** Options of {@link AuthThrottle}. */
export interface AuthThrottleOptions {
  /** Wait imposed after the first failure, ms; doubled by each further one. Default 1000. */
  readonly baseMs?: number
  /** Longest wait, ms. Default 60 000. */
  readonly maxMs?: number
  /** Sources tracked at once; past it the least recently failed is forgotten. Default 10 000. */
  readonly maxSources?: number
}

/** Failed authentications per source (an IP address); see {@link KeyedBackoff} for the rules. */
export class AuthThrottle extends KeyedBackoff {
  constructor(options: AuthThrottleOptions = {}) {
    super({ baseMs: options.baseMs ?? 1_000, maxMs: options.maxMs ?? 60_000, maxKeys: options.maxSources ?? 10_000 })
  }
}
