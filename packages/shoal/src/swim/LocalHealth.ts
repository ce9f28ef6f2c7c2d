/**
 * Lifeguard's local health multiplier (LHM; memberlist's "awareness").
 *
 * Evidence that this node itself is slow or cut off raises the score; evidence that it works
 * lowers it. The probe interval and ping timeouts are scaled by `1 + score`, so a node in trouble
 * probes less often and waits longer before blaming a peer. Rules (and why):
 * - a probe acked: −1;
 * - a probe failed: + (nacks expected − nacks received), or +1 when no helper was asked: nacks
 *   prove that the helpers could hear us, so missing nacks point at us rather than at the target
 *   (all nacks in: +0, the target is the problem);
 * - refuting a suspicion of ourselves: +1 (others could not hear us in time);
 * - a stall (event-loop delay or a timer fired late): +1, Node-specific: a blocked event loop makes
 *   every peer look silent;
 * - clamped to [0, max].
 * @module
 */
export class LocalHealth {
  readonly max: number
  #score = 0

  constructor(max: number) {
    this.max = max
  }

  get score(): number {
    return this.#score
  }

  /** Adds `delta` (may be negative), clamped. */
  apply(delta: number): void {
    this.#score = Math.min(this.max, Math.max(0, this.#score + delta))
  }

  /** `ms` scaled by the current health: `ms · (1 + score)`. */
  scale(ms: number): number {
    return ms * (1 + this.#score)
  }
}
