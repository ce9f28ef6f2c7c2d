/**
 * CallContext: which actor invocation, and which logical call chain, the running code belongs to.
 *
 * Carried by AsyncLocalStorage across awaits. An outgoing call takes the chain of the invocation it
 * is made from, so the callee (on any node) can tell when a call comes back to an actor whose turn
 * is waiting on that same chain (A → B → A) and let it re-enter instead of deadlocking.
 *
 * Chains are minted lazily: a call from outside any actor carries the empty chain ("no chain"),
 * and an invocation gets a real chain id only when it makes an outgoing call of its own. Most calls
 * never do, so they cost no id and no bytes on the wire.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { CallTrace } from '../observability/CallTracing.ts'

export interface CallContext {
  /** The invocation's actor cell (opaque to this module); it mints the chain on demand. */
  readonly actor: { mintChain(ctx: CallContext): string }
  /** Globally unique id of the logical call chain (`<node uid>.<counter>`), or '' until minted. */
  chain: string
  /** True for the invocation holding the actor's turn; false for re-entrant and interleaved ones. */
  readonly turn: boolean
  /** Until the invocation settles. Code it left running afterwards still gets chains, unregistered. */
  active: boolean
  /** The callee side of a traced call, when `shoal.call` has subscribers (owned by the cell). */
  trace: CallTrace | undefined
  /** When a call sampled for per-method figures started (`MethodStats`), or -1 (owned by the cell). */
  sampledAt: number
}

export const callContext = new AsyncLocalStorage<CallContext>()

/** The context of the running code, or undefined outside any actor invocation. */
export function currentCallContext(): CallContext | undefined {
  return callContext.getStore()
}

/** The chain an outgoing call made now should carry ('' outside any actor). */
export function outgoingChain(): string {
  const ctx = callContext.getStore()
  if (ctx === undefined) return ''
  return ctx.chain !== '' ? ctx.chain : ctx.actor.mintChain(ctx)
}
