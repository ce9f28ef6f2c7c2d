/**
 * Invocation and LocalTarget: what a call looks like once it has reached this node, and what it
 * can be delivered to. The actor layer owns these shapes; the call engine (remoting) and the local
 * actor table implement them.
 * @module
 */

import type { EnvelopeHeaders } from '../wire/Envelope.ts'
import type { ClusterNode } from './ClusterNode.ts'
import type { ActorClassInfo, MethodInfo } from './DistributedActor.ts'

/** One call waiting for, or holding, a turn. */
export interface Invocation {
  readonly method: string
  readonly args: unknown[]
  readonly chain: string
  /**
   * When the caller gives up, if known: a proxy holding the call drops it then. On the system's
   * monotonic clock (`ClusterSystem.now()`, as every deadline of a node), never `Date.now()`.
   */
  readonly deadline?: number
  /**
   * When a call from another node was taken off the wire, on the system's monotonic clock, if the
   * call engine read it. A target that delivers the call in the same synchronous step (a virtual
   * actor's router checking that its node may serve) may use it instead of reading the clock
   * again: it is that same moment. Gotcha: never for a call held and delivered later.
   */
  readonly receivedAt?: number
  /** Trace context that travelled with the call (envelope headers), if any. */
  readonly headers?: EnvelopeHeaders | undefined
  /** The calling node, for a call that arrived from another one (undefined: this node). */
  readonly from?: ClusterNode | undefined
  /** Runs instead of a declared method: system turns such as `onTerminated` (never from the wire; exempt from maxMailbox, since losing one would break exactly-once). */
  readonly fn?: Function
  succeed(value: unknown): void
  fail(error: unknown): void
}

/**
 * What a call on this node can be delivered to: an actor's cell, or a well-known target a service
 * registers at an incarnation-0 path (a singleton proxy).
 *
 * Details: the call engine checks the method once, against `info`, before it delivers (and counts a
 * refusal there); `deliver` gets the declared method it resolved. A target without `info` accepts
 * any name (a proxy): the final target checks it when the call reaches it.
 */
export interface LocalTarget {
  readonly alive: boolean
  readonly info?: ActorClassInfo
  deliver(inv: Invocation, method: MethodInfo | undefined): void
}

/** A one-way message: nobody waits; a failure is logged at debug level. */
export class OneWayInvocation implements Invocation {
  constructor(
    readonly log: { debug(obj: object, msg: string): void },
    readonly method: string,
    readonly args: unknown[],
    readonly chain: string,
    readonly headers: EnvelopeHeaders | undefined,
    readonly from: ClusterNode | undefined,
  ) {}
  succeed(): void {}
  fail(error: unknown): void {
    this.log.debug({ err: error, method: this.method }, 'one-way message failed')
  }
}
