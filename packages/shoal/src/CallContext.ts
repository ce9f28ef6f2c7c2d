/**
 * CallContext: which actor turn and which logical call chain the running code belongs to.
 *
 * Carried by AsyncLocalStorage across awaits. An outgoing call takes the chain of the turn it is
 * made from, so the callee (on any node) can tell when a call comes back to an actor whose turn is
 * waiting on that same chain (A → B → A) and let it re-enter instead of deadlocking.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'

export interface CallContext {
  /** The actor whose turn is running, if any (opaque to this module). */
  readonly actor: unknown
  /** Globally unique id of the logical call chain: `<node uid>.<counter>`. */
  readonly chain: string
}

export const callContext = new AsyncLocalStorage<CallContext>()

/** The context of the running code, or undefined outside any actor turn. */
export function currentCallContext(): CallContext | undefined {
  return callContext.getStore()
}
