/**
 * Channels: Shoal's `node:diagnostics_channel` channels, held at module scope. Publishers check
 * `hasSubscribers` first, so an unobserved event costs one property read.
 * @module
 */
import { channel } from 'node:diagnostics_channel'
import type { ActorId } from '../ActorId.ts'
import { type ClusterNode, formatNode } from '../ClusterNode.ts'
import { outcomeOf } from './CallTracing.ts'

/** `shoal:actor:spawn` and `shoal:actor:stop`: a local actor was created; one stopped (after `onStop`). */
export interface ActorLifecycleMessage {
  readonly id: ActorId
  readonly actorType: string
}

/** `shoal:call:refused`: a call or one-way message refused before its method ran (no live actor, undeclared method, shutting down, bad arguments). */
export interface CallRefusedMessage {
  /** The addressed actor (id, or `path#incarnation` for an inbound call). */
  readonly target: string
  readonly method: string
  /** The refusal's error code. */
  readonly code: string
  readonly error: Error
  /** The calling node (`name@host:port#uid`), or 'local'. */
  readonly from: string
}

export const actorSpawnChannel = channel('shoal:actor:spawn')
export const actorStopChannel = channel('shoal:actor:stop')
export const callRefusedChannel = channel('shoal:call:refused')

export function publishActorSpawn(id: ActorId, actorType: string): void {
  if (actorSpawnChannel.hasSubscribers) actorSpawnChannel.publish({ id, actorType } satisfies ActorLifecycleMessage)
}

export function publishActorStop(id: ActorId, actorType: string): void {
  if (actorStopChannel.hasSubscribers) actorStopChannel.publish({ id, actorType } satisfies ActorLifecycleMessage)
}

export function publishCallRefused(target: { toString(): string }, method: string, error: Error, from: ClusterNode | undefined): void {
  if (!callRefusedChannel.hasSubscribers) return
  const message: CallRefusedMessage = { target: target.toString(), method, code: outcomeOf(error), error, from: from ? formatNode(from) : 'local' }
  callRefusedChannel.publish(message)
}
