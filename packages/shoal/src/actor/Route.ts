/**
 * Route and Invoker: how a ref reaches its actor. The actor layer declares them; the system's
 * dispatcher implements Invoker, and the local actor table and remoting implement Route.
 *
 * A ref asks its invoker for a route once, on its first call, and keeps it: the local/remote
 * decision is made once per ref, and the route caches what it resolved (a cell, a peer and the
 * encoded envelope target).
 * @module
 */

import type { CallTrace } from '../observability/CallTracing.ts'
import type { ActorRefImpl } from './ActorRef.ts'
import type { TimeoutSource } from './PendingCall.ts'

/** The path of calls from this node to one actor id. */
export interface Route {
  /** True for a route to an actor of this node. */
  readonly local: boolean
  /**
   * Sends a call; the promise settles with its outcome (never throws synchronously). `timeoutFrom`
   * names the setting `timeout` came from, for the TimeoutError's message.
   */
  call(
    method: string,
    args: unknown[],
    chain: string,
    timeout: number,
    timeoutFrom: TimeoutSource,
    trace: CallTrace | undefined,
    retry?: CallRetry,
  ): Promise<unknown>
  /** Sends a one-way message (with the trace's headers, when traced); throws only for what fails at the sender (encoding). */
  tell(method: string, args: unknown[], chain: string, trace: CallTrace | undefined): void
}

/**
 * Takes back a remote call that failed, instead of failing it: a route that can try elsewhere
 * (virtual actors' route goes to this node's router when the owner refused a call before it ran).
 * Given to a remote route's `call`; one object per route, not a closure per call.
 */
export interface CallRetry {
  /** The promise to settle the call with instead of failing with `error`, or undefined to fail. `left`: ms of its timeout left. */
  retry(error: unknown, method: string, args: unknown[], chain: string, left: number, timeoutFrom: TimeoutSource): Promise<unknown> | undefined
}

/** What a ref needs from its system. */
export interface Invoker {
  invoke(ref: ActorRefImpl, method: string, args: unknown[]): Promise<unknown>
  tell(ref: ActorRefImpl, method: string, args: unknown[]): void
}
