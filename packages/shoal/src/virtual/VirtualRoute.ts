/**
 * VirtualRoute: the route of refs to one virtual actor id. While this node's shard table names
 * another node as the id's owner, a call goes straight there, on the owner's own remote route:
 * one pending call, no hop through a router here. Otherwise (no table yet, this node owns it, a
 * traced call) it takes the local route to this node's router, which holds, delivers or forwards.
 *
 * A call the owner refused before it ran (its table differs from ours, it is not confirmed, the
 * connection failed before sending) goes to the router then, with what is left of its timeout,
 * as a forwarded call would: never served by the wrong node, never lost for a table change.
 * @module
 */
import type { TimeoutSource } from '../actor/PendingCall.ts'
import type { CallRetry, Route } from '../actor/Route.ts'
import type { CallTrace } from '../observability/CallTracing.ts'
import type { ShardTable } from './ShardTable.ts'

/** What a VirtualRoute asks of the plugin: one object shared by every route (a route carries no closure). */
export interface VirtualRouting<G> {
  /** The route to `route`'s owner when that is another node known here; undefined: use the router. */
  ownerRoute(route: VirtualRoute<G>): Route | undefined
  /** Whether a failed call never ran and may be routed again. */
  retryable(error: unknown): boolean
}

/** `G`: the routing's placement group, which a route caches but never looks into. */
export class VirtualRoute<G> implements Route, CallRetry {
  readonly local = false
  /**
   * The routing's cache for this id, owned by it (VirtualRouting.ownerRoute): the placement group
   * as found under hosts generation `gen`, and the owner's route under shard table `table`.
   */
  gen = -1
  group: G | undefined = undefined
  table: ShardTable | undefined = undefined
  owner: Route | undefined = undefined

  constructor(
    readonly routing: VirtualRouting<G>,
    /** The id's virtual type and shard. */
    readonly type: string,
    readonly shard: number,
    /** The id's path (the same on every node). */
    readonly path: string,
    /** The route to this node's router for the id. */
    readonly router: Route,
  ) {}

  call(method: string, args: unknown[], chain: string, timeout: number, timeoutFrom: TimeoutSource, trace: CallTrace | undefined): Promise<unknown> {
    // A traced call goes through the router, so that its one trace settles once, whatever the retries.
    const owner = trace === undefined ? this.routing.ownerRoute(this) : undefined
    if (!owner) return this.router.call(method, args, chain, timeout, timeoutFrom, trace)
    return owner.call(method, args, chain, timeout, timeoutFrom, undefined, this)
  }

  /** A call the owner refused before it ran goes to the router, with what is left of its timeout. */
  retry(error: unknown, method: string, args: unknown[], chain: string, left: number, timeoutFrom: TimeoutSource): Promise<unknown> | undefined {
    if (!this.routing.retryable(error) || left <= 0) return undefined
    return this.router.call(method, args, chain, left, timeoutFrom, undefined)
  }

  /** One-way messages take the router, which holds them through a table change rather than dropping them. */
  tell(method: string, args: unknown[], chain: string, trace: CallTrace | undefined): void {
    this.router.tell(method, args, chain, trace)
  }
}
