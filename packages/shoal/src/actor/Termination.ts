/**
 * Termination: what a watcher is told when a watched actor ends (see `DistributedActor.watch`).
 * @module
 */
import type { ActorId } from './ActorId.ts'

/** Why a watched actor is reported terminated. */
export type TerminationReason = 'stopped' | 'not-found' | 'node-down'

/** A watched actor terminated. */
export interface Termination {
  readonly id: ActorId
  readonly reason: TerminationReason
}
