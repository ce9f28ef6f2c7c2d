/**
 * Lifeguard's local-health-aware suspicion (LHA-Suspicion): a suspicion starts with a long timeout
 * that shrinks as independent members confirm it.
 *
 * ```
 * timeout(C) = max(min, max − (max − min) · ln(C + 1) / ln(K + 1))
 * ```
 * C counts confirmations from distinct members other than the first accuser heard of (so a lone
 * accuser waits the full `max`), K is the number of confirmations at which the timeout reaches
 * `min`. With the defaults (min 3 s, max 9 s, K 3): C = 0 → 9 s, 1 → 6 s, 2 → 4.25 s, ≥ 3 → 3 s.
 * The timeout is measured from when this node first heard of the suspicion; a confirmation that
 * arrives after the shrunk timeout has passed declares the member dead at once.
 *
 * Shoal adds one step: if the timeout expires with fewer than K confirmations, this node first
 * probes the suspect itself (with the suspicion attached, so it can refute) and declares it dead
 * only if that probe fails too. A member that missed a refutation then learns of it instead of
 * declaring a healthy member dead; a crash costs at most two more periods, and only where few
 * members could confirm it.
 * @module
 */

/** Suspicion timeout in ms for `confirmations` independent confirmations. */
export function suspicionTimeout(confirmations: number, min: number, max: number, k: number): number {
  if (k < 1 || max <= min) return min
  const fraction = Math.log(confirmations + 1) / Math.log(k + 1)
  return Math.max(min, Math.floor(max - (max - min) * fraction))
}

/** One ongoing suspicion of a member at one incarnation, as held by one observer. */
export class Suspicion {
  readonly incarnation: number
  readonly start: number
  /** Uid of the first accuser heard of; does not count as a confirmation. */
  readonly accuser: string
  /** Set once this node has probed the suspect itself after the timeout, short of confirmations. */
  checked = false
  /** Set when that check was answered: the suspect lives, whatever the count says. */
  answered = false
  readonly #confirmations = new Set<string>()

  constructor(incarnation: number, start: number, accuser: string) {
    this.incarnation = incarnation
    this.start = start
    this.accuser = accuser
  }

  get confirmations(): number {
    return this.#confirmations.size
  }

  /** Counts an accusation by `by`; false if it adds nothing (the first accuser, or a repeat). */
  confirm(by: string): boolean {
    if (by === this.accuser || this.#confirmations.has(by)) return false
    this.#confirmations.add(by)
    return true
  }
}
