/**
 * Diagnostics channels: Shoal's telemetry hooks, the Node.js way (`node:diagnostics_channel`, as
 * undici and `node:http` do it). Anything in the process (an APM agent, a metrics bridge, a test)
 * subscribes by name, without a reference to a system; nothing is published, and no message is
 * built, while a channel has no subscriber.
 *
 * Channels are created once, here, at module scope: a channel object with subscribers must stay
 * referenced (Node holds channels weakly), and looking one up per publish would cost a map lookup.
 * Publishers test `hasSubscribers` before building a message:
 *
 * ```ts
 * if (memberChangeChannel.hasSubscribers) memberChangeChannel.publish({ ... })
 * ```
 *
 * Names are global to the process, so two copies of the library (or several systems in one
 * process) publish on the same channels; every message names the publishing node as `self`.
 * Messages are plain objects built for the subscriber; subscribers run synchronously inside the
 * publisher and must not throw (Node reports a throwing subscriber as an uncaught exception on the
 * next tick) or block. See docs/observability.md for the shapes and examples.
 * @module
 */
import diagnostics_channel from 'node:diagnostics_channel'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { MembershipStatus, Reachability } from '../cluster/Member.ts'
import type { SwimNode, SwimStatus } from '../swim/SwimNode.ts'
import type { EnvelopeHeaders } from '../wire/Envelope.ts'

/** A diagnostics channel whose messages are `M` (the node:diagnostics_channel Channel, typed). */
export interface TypedChannel<M> {
  readonly name: string | symbol
  readonly hasSubscribers: boolean
  publish(message: M): void
  subscribe(listener: (message: M, name: string | symbol) => void): void
  unsubscribe(listener: (message: M, name: string | symbol) => void): void
}

const channel = <M>(name: string): TypedChannel<M> => diagnostics_channel.channel(name) as unknown as TypedChannel<M>

/** The channel names, for `diagnostics_channel.subscribe(name, listener)`. */
export const ChannelNames = {
  memberChange: 'shoal:member:change',
  memberReachability: 'shoal:member:reachability',
  swimChange: 'shoal:swim:change',
  actorSpawn: 'shoal:actor:spawn',
  actorStop: 'shoal:actor:stop',
  transportConnect: 'shoal:transport:connect',
  transportClose: 'shoal:transport:close',
  handshakeFailed: 'shoal:handshake:failed',
  callRefused: 'shoal:call:refused',
  singletonChange: 'shoal:singleton:change',
  shardTable: 'shoal:virtual:table',
  /** A TracingChannel: its channels are `tracing:shoal.call:start`, `…:end`, `…:asyncStart`, `…:asyncEnd`, `…:error`. */
  call: 'shoal.call',
  /** A TracingChannel: an event-sourced actor's `emit` (journal write and apply), `tracing:shoal.emit:start`… */
  emit: 'shoal.emit',
} as const

// ── cluster ──────────────────────────────────────────────────────────────────

/** `shoal:member:change`: a cluster member's status changed, as this node's membership saw it. */
export interface MemberChangeMessage {
  /** The node that publishes (whose view changed). */
  readonly self: ClusterNode
  /** The member whose status changed. */
  readonly node: ClusterNode
  /** Undefined when the member is new to this node. */
  readonly from: MembershipStatus | undefined
  readonly to: MembershipStatus
  /** Age assigned by the leader when the member became up (1 = oldest); 0 before. */
  readonly upNumber: number
  readonly roles: readonly string[]
}

/** `shoal:member:reachability`: this node's failure detector now finds a member reachable or not. */
export interface MemberReachabilityMessage {
  readonly self: ClusterNode
  readonly node: ClusterNode
  readonly reachability: Reachability
  /** The member's membership status at that moment. */
  readonly status: MembershipStatus
}

/** `shoal:swim:change`: a SWIM member's status changed (also for a `SwimMember` used on its own). */
export interface SwimChangeMessage {
  readonly self: SwimNode
  readonly member: SwimNode
  /** Undefined for a member new to this node. */
  readonly from: SwimStatus | undefined
  readonly to: SwimStatus
  readonly incarnation: number
}

export const memberChangeChannel = channel<MemberChangeMessage>(ChannelNames.memberChange)
export const memberReachabilityChannel = channel<MemberReachabilityMessage>(ChannelNames.memberReachability)
export const swimChangeChannel = channel<SwimChangeMessage>(ChannelNames.swimChange)

/** `shoal:singleton:change`: this node activated or passivated a singleton's instance (the singleton moved here, or away). */
export interface SingletonChangeMessage {
  readonly self: ClusterNode
  readonly singleton: string
  readonly event: 'activated' | 'passivated'
  /** The instance's actor id. */
  readonly instance: string
}

/** `shoal:virtual:table`: this node adopted a newer shard table for a placement group of virtual actors (shards moved). */
export interface ShardTableMessage {
  readonly self: ClusterNode
  /** The placement group's role ('' for any node). */
  readonly role: string
  readonly version: number
  /** Shards whose owner differs from the table this node held before. */
  readonly moved: number
  /** Of those, the shards this node gains and loses. */
  readonly gained: number
  readonly lost: number
}

export const singletonChangeChannel = channel<SingletonChangeMessage>(ChannelNames.singletonChange)
export const shardTableChannel = channel<ShardTableMessage>(ChannelNames.shardTable)

// ── transport ────────────────────────────────────────────────────────────────

export type ConnectionDirection = 'inbound' | 'outbound'

/** `shoal:transport:connect`: an association to a peer was established (its handshake completed). */
export interface TransportConnectMessage {
  readonly self: ClusterNode
  readonly peer: ClusterNode
  /** `outbound`: this node dialed; `inbound`: the peer did. */
  readonly direction: ConnectionDirection
  /** The socket's remote `host:port` (for inbound connections, the peer's ephemeral port). */
  readonly remoteAddress: string
  /** The negotiated protocol minor: the lower of both sides' (≥ 2: the peer takes envelope headers). */
  readonly protocolMinor: number
}

/** `shoal:transport:close`: an established association's connection was lost or closed. */
export interface TransportCloseMessage {
  readonly self: ClusterNode
  readonly peer: ClusterNode
  readonly direction: ConnectionDirection
  /** Why, as logged: `peer shut down`, `protocol violation: …`, a socket error, `superseded by a newer connection`… */
  readonly reason: string
  /** The peer incarnation is gone for good (it said goodbye, was downed, or restarted). */
  readonly gone: boolean
}

/** `shoal:handshake:failed`: a connection did not become an association (refused either way, timed out, closed). */
export interface HandshakeFailedMessage {
  readonly self: ClusterNode
  readonly direction: ConnectionDirection
  readonly remoteAddress: string
  readonly reason: string
  /** True when the peer refused us (`reason` is its explanation); false when this node refused or gave up. */
  readonly byPeer: boolean
}

export const transportConnectChannel = channel<TransportConnectMessage>(ChannelNames.transportConnect)
export const transportCloseChannel = channel<TransportCloseMessage>(ChannelNames.transportClose)
export const handshakeFailedChannel = channel<HandshakeFailedMessage>(ChannelNames.handshakeFailed)

// ── actors and calls (published by the actor layer and the call path) ───────

/** `shoal:actor:spawn`: a local actor was created (published by the actor layer). */
export interface ActorSpawnMessage {
  readonly self: ClusterNode
  /** The actor's id, `ActorId#toString()` form. */
  readonly id: string
  /** The actor's class name. */
  readonly actorType: string
}

/** `shoal:actor:stop`: a local actor stopped (published by the actor layer once `onStop` has run). */
export interface ActorStopMessage {
  readonly self: ClusterNode
  readonly id: string
  readonly actorType: string
  /** `stopped` (asked to stop, or its system shut down), `failed` (onStart failed), `passivated` (handed over). */
  readonly reason: 'stopped' | 'failed' | 'passivated'
}

/** `shoal:call:refused`: this node refused a call before its method started (published by the call path). */
export interface CallRefusedMessage {
  readonly self: ClusterNode
  /** The addressed actor: its id string, or its path when the id is not known. */
  readonly target: string
  /** The method name as sent (may be untrusted: at most 255 bytes). */
  readonly method: string
  /** The error code the caller receives, e.g. `SHOAL_ACTOR_NOT_FOUND`, `SHOAL_METHOD_NOT_DISTRIBUTED`, `SHOAL_SERIALIZATION`. */
  readonly code: string
  /** The calling node; undefined for a call from this node. */
  readonly peer: ClusterNode | undefined
}

export const actorSpawnChannel = channel<ActorSpawnMessage>(ChannelNames.actorSpawn)
export const actorStopChannel = channel<ActorStopMessage>(ChannelNames.actorStop)
export const callRefusedChannel = channel<CallRefusedMessage>(ChannelNames.callRefused)

/**
 * The context object of one traced call on `shoal.call` (published by the call path). The same
 * object goes to `start`, `end`, `asyncStart`, `asyncEnd` and `error` of one call, so a subscriber
 * may keep its own state on it (a span, say) under a symbol key of its own.
 */
export interface CallTraceContext {
  /** `caller`: the node making the call; `callee`: the node running the method. */
  readonly side: 'caller' | 'callee'
  /** The target actor's class name when known (the caller of a resolved ref may not know it). */
  readonly actorType: string | undefined
  readonly method: string
  /** The target actor's id, `ActorId#toString()` form. */
  readonly target: string
  readonly targetNode: ClusterNode
  /** Caller and callee are the same node (no envelope; headers are handed over as a frozen copy). */
  readonly local: boolean
  /** A one-way message (`tell`): the caller's side settles once it is sent, the callee's when its turn ends. */
  readonly oneWay: boolean
  /**
   * Caller side, for a call a proxy sends on behalf of an invocation it received (a singleton
   * proxy, a virtual-actor router): the headers that invocation arrived with, so a tracer can
   * parent the hop to it rather than to whatever context is active. Undefined otherwise.
   */
  readonly forwarded?: EnvelopeHeaders | undefined
  /**
   * Caller side: a map a `start` subscriber may fill (e.g. `traceparent`); it travels with a
   * remote call when the peer supports headers (protocol ≥ 1.2) and the map passes
   * `HeaderLimits`. Callee side: the headers that arrived (frozen, null prototype), or undefined.
   */
  headers: Record<string, string> | EnvelopeHeaders | undefined
  /**
   * Callee side: a `start` subscriber may set it to run the method inside its own context (an
   * OpenTelemetry bridge: `(fn) => context.with(ctx, fn)`), so that what the method does (calls,
   * emits, log lines) sees it. One subscriber may set it; the last one wins.
   */
  enter?: <R>(fn: () => R) => R
  /** Set when the call ends, before `asyncStart`/`error`: `ok`, or the error code (`SHOAL_TIMEOUT`, `SHOAL_REMOTE`…). */
  outcome?: string
  /** Set by the TracingChannel: the result, on success. */
  result?: unknown
  /** Set by the TracingChannel: the error, on failure. */
  error?: unknown
}

/** The `shoal.call` TracingChannel; wrap with `tracePromise` only when {@link tracingActive}. */
export const callTracing: diagnostics_channel.TracingChannel<unknown, CallTraceContext> = diagnostics_channel.tracingChannel<unknown, CallTraceContext>(
  ChannelNames.call,
)

const { start, end, asyncStart, asyncEnd, error } = callTracing

/** The context of one `emit` of an event-sourced actor on `shoal.emit` (published inside the turn that emits). */
export interface EmitTraceContext {
  readonly self: ClusterNode
  /** The actor's class name. */
  readonly actorType: string
  readonly persistenceId: string
  /** Events in this emit. */
  readonly events: number
  /** Their `type` fields (or `event`), in order. */
  readonly types: readonly string[]
  /** Set by the TracingChannel: the error, when the write or an apply failed. */
  error?: unknown
  /** Set by the TracingChannel on success. */
  result?: unknown
}

/** The `shoal.emit` TracingChannel (see {@link EmitTraceContext}); published only while it has subscribers. */
export const emitTracing: diagnostics_channel.TracingChannel<unknown, EmitTraceContext> = diagnostics_channel.tracingChannel<unknown, EmitTraceContext>(
  ChannelNames.emit,
)

/** True when any of `shoal.emit`'s channels has a subscriber. */
export function emitTracingActive(): boolean {
  const c = emitTracing
  return c.start.hasSubscribers || c.end.hasSubscribers || c.asyncStart.hasSubscribers || c.asyncEnd.hasSubscribers || c.error.hasSubscribers
}

/**
 * True when any of `shoal.call`'s five channels has a subscriber: the call path builds a context
 * and calls `callTracing.tracePromise` only then. Correct and cheap on every supported Node: it
 * reads the five channels' `hasSubscribers` directly (TracingChannel#hasSubscribers exists only
 * from Node 20.13/22.0 and is a getter doing the same), with no allocation.
 */
export function tracingActive(): boolean {
  return start.hasSubscribers || end.hasSubscribers || asyncStart.hasSubscribers || asyncEnd.hasSubscribers || error.hasSubscribers
}

/**
 * False only when `shoal.call`'s start channel is known to have no bound store, so a caller may
 * `start.publish(ctx)` and call its function directly instead of `start.runStores(...)`, which
 * allocates a closure and an argument array per call even with no store. Reads Node's internal
 * `_stores` map of an active channel; where that is absent (an inactive channel, or a Node whose
 * internals differ) it answers true and callers use `runStores`, which is always correct.
 * @internal
 */
export function startHasStores(): boolean {
  const stores = (start as unknown as { _stores?: { readonly size: number } })._stores
  return stores === undefined || typeof stores.size !== 'number' || stores.size > 0
}

// ── publishers used by the actor layer and the call path ─────────────────────

/** @internal */
export function publishActorSpawn(self: ClusterNode, id: { toString(): string }, actorType: string): void {
  if (actorSpawnChannel.hasSubscribers) actorSpawnChannel.publish({ self, id: id.toString(), actorType })
}

/** @internal */
export function publishActorStop(self: ClusterNode, id: { toString(): string }, actorType: string, reason: ActorStopMessage['reason']): void {
  if (actorStopChannel.hasSubscribers) actorStopChannel.publish({ self, id: id.toString(), actorType, reason })
}

/** @internal */
export function publishCallRefused(self: ClusterNode, target: { toString(): string }, method: string, error: unknown, peer: ClusterNode | undefined): void {
  if (!callRefusedChannel.hasSubscribers) return
  const code = (error as { code?: unknown } | null)?.code
  callRefusedChannel.publish({ self, target: target.toString(), method, code: typeof code === 'string' ? code : 'error', peer })
}
