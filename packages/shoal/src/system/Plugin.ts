/**
 * Plugins: how cluster services (singleton, journal, virtual actors, and your own) hook into a
 * system. A plugin is started after the transport, SWIM and cluster membership are up, in the
 * order given; it is stopped in reverse order at shutdown, before the system's actors stop (so a
 * plugin can hand over or passivate what it hosts). It hears cluster events and actor lifecycle
 * events, and may publish a facade on the system (`system.singleton`, `system.journal`, …).
 *
 * ```ts
 * const counter: Plugin<{ readonly count: number }> = {
 *   name: 'actor-counter',
 *   facade: 'actorCounter',
 *   start() { return { get count() { return live } } },
 *   onActorReady() { live++ },
 *   onActorStopped() { live-- },
 * }
 * const system = await ClusterSystem.start({ plugins: [counter] })
 * system.plugin<{ count: number }>('actor-counter').count
 * ```
 *
 * Gotchas: hooks run synchronously on the system's event loop: keep them short and never throw
 * (a throw is logged and ignored). `start` may be async; if it rejects, `ClusterSystem.start`
 * shuts the system down and rejects with that error.
 * @module
 */
import type { Logger } from 'pino'
import type { ActorId } from '../actor/ActorId.ts'
import type { ActorRef } from '../actor/ActorRef.ts'
import type { ActorSystem } from '../actor/ActorSystem.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { DistributedActor } from '../actor/DistributedActor.ts'
import type { Invocation, LocalTarget } from '../actor/Invocation.ts'
import type { Route } from '../actor/Route.ts'
import type { ClusterEvent } from '../cluster/Cluster.ts'
import type { ControlChannel } from '../control/ControlChannel.ts'
import type { EnvelopeHeaders } from '../wire/Envelope.ts'

export type { ControlChannel, Invocation, LocalTarget, Route }

/**
 * What a plugin gets at start: the system, and the services a cluster service needs beyond the
 * public API. Everything here is stable and documented (docs/plugins.md); nothing else is.
 */
/**
 * The facades plugins publish on the system (`facade: 'name'` → `system.name`), for the type
 * checker. A plugin of your own declares its facade here, once, next to the plugin:
 *
 * ```ts
 * declare module 'shoal' {
 *   interface PluginFacades { readonly actorCounter: { readonly live: number } }
 * }
 * ```
 *
 * Gotcha: augment this interface rather than `ClusterSystem`: TypeScript merges an augmentation of
 * a re-exported class only partly, and a program compiled with Shoal's sources (the `source`
 * condition) then fails to type-check the class itself.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface PluginFacades {}

export interface PluginContext {
  /** The system (`ClusterSystem`). */
  readonly system: ActorSystem
  /** The system's logger with a `plugin` field. */
  readonly log: Logger
  /** The control lane: register a handler per control kind (see control/ControlKind.ts for the kinds taken), send to nodes. */
  readonly control: ControlChannel
  /** Calls made on behalf of others. */
  readonly calls: PluginCalls
  /** The actors of this node, for services that host or front them. */
  readonly actors: PluginActors
  /** Node fate as this node's transport knows it. */
  readonly nodes: PluginNodes
}

/** `ctx.calls`. */
export interface PluginCalls {
  /**
   * Sends a call on behalf of an invocation received elsewhere (a proxy forwarding it): keeps its
   * call chain (so re-entrancy still works) and takes an explicit timeout; pass the invocation's
   * `headers` so that a tracer parents this hop to the call it forwards. Rejects with
   * SystemShutDownError (notDelivered) once shutdown began.
   */
  forward(ref: ActorRef<unknown>, method: string, args: unknown[], chain: string, timeout: number, headers?: EnvelopeHeaders): Promise<unknown>
  /**
   * The route `ref`'s calls take (chosen on its first call and kept on the ref), for a plugin's
   * own {@link Route} that sends a call on through it: one pending call, not two.
   */
  route(ref: ActorRef<unknown>): Route
}

/** `ctx.actors`. */
export interface PluginActors {
  /**
   * Runs `fn` with the actor instance as a turn of local actor `id`, after the calls already
   * queued and exempt from the mailbox bound (for hooks like `onPassivate`). With `seal`, calls
   * arriving from now on are refused as notDelivered (a proxy may send them elsewhere). Rejects
   * with ActorNotFoundError if the actor is not alive.
   */
  runTurn(id: ActorId, fn: (actor: DistributedActor) => unknown, options?: { readonly seal?: boolean }): Promise<unknown>
  /**
   * Sets a check run as each call to local actor `id` is about to start (not when it is queued):
   * a returned reason refuses the call (notDelivered) and seals the actor. False if there is no
   * such actor. Used to fence a singleton whose lease may have lapsed. `check` gets the call about
   * to start: a plugin that checked that very call a moment before delivering it may skip it.
   */
  guard(id: ActorId, check: (inv: Invocation) => string | undefined): boolean
  /**
   * Registers a well-known target at `path` (incarnation 0) on this node: refs to it, local or
   * sent to other nodes, deliver there. Returns the unregister function. Throws ConfigError if
   * the path is taken or lies under a registered prefix (see registerWellKnownPrefix).
   */
  registerWellKnown(path: string, target: LocalTarget): () => void
  /**
   * A ref to the well-known target at `path` on this node, with an optional call timeout. `T` types
   * it as a ref to the class the target fronts (its calls are checked by that actor).
   */
  wellKnownRef<T extends DistributedActor = DistributedActor>(path: string, timeout?: number): ActorRef<T>
  /** A ref for `id`, typed by `Class` when given (untyped: the target checks method names). */
  refOf(id: ActorId, Class?: abstract new (...args: never[]) => DistributedActor): ActorRef<DistributedActor>
  /**
   * Resolves every incarnation-0 path under `prefix` (on this node, and on the reserved node of
   * virtual actor ids), for a service fronting many ids. Returns the unregister function.
   *
   * Gotchas: a path has one owner, so this throws ConfigError if the prefix overlaps another
   * prefix (one starts with the other) or covers a registered exact path, and registerWellKnown
   * refuses paths under it later.
   *
   * With `options.route`, refs to the reserved node's ids under `prefix` (virtual actors) take
   * the route it returns (once per ref) instead of `local`, the route to `resolve`'s target: a
   * service that knows where an id lives sends calls straight there. Its route may fall back to
   * `local` whenever it does not know.
   *
   * With `options.remember`, `resolve(path)` promises a target that handles calls to `path` rightly
   * for as long as the prefix stays registered (it decides per call itself, as the virtual actors'
   * routers do): each node's remoting may then remember it per peer and path, and calls to a path
   * seen before skip `resolve` and the path's decoding. Default false: `resolve` runs per message.
   */
  registerWellKnownPrefix(
    prefix: string,
    resolve: (path: string) => LocalTarget | undefined,
    options?: { readonly route?: (id: ActorId, local: Route) => Route; readonly remember?: boolean },
  ): () => void
  /**
   * Creates a local actor at `path` from `create` (which must return a new `Class`), for services
   * that name their actors (virtual actors). `publicNode`, if given, makes the id the actor hands
   * out as `self` the well-known id at `path` on that node (made only if it does). `onStopped`, if given, runs once the actor has stopped, however it stopped (cheaper
   * than a watch: no promise, no registration with the watch service). Returns its target. Throws
   * ConfigError if the path is taken; rethrows the constructor's error.
   */
  spawnAt(
    path: string,
    Class: abstract new (...args: never[]) => DistributedActor,
    create: () => DistributedActor,
    publicNode?: ClusterNode,
    onStopped?: (id: ActorId) => void,
  ): LocalTarget & { readonly id: ActorId }
  /** The target of local actor `id` (this incarnation), if it has not finished stopping. */
  target(id: ActorId): (LocalTarget & { readonly id: ActorId }) | undefined
}

/** `ctx.nodes`. */
export interface PluginNodes {
  /** True if node incarnation `uid` is known gone (shut down, replaced, downed). */
  isGone(uid: string): boolean
  /** Marks a node incarnation down: its handshakes are refused and calls to it fail fast. */
  tombstone(node: ClusterNode): void
}

/** A plugin; `F` is the type of its facade. See the module comment for the lifecycle. */
export interface Plugin<F = unknown> {
  /** Unique per system; used by `system.plugin(name)` and in logs. */
  readonly name: string
  /**
   * Property under which the facade returned by `start` is published on the system (e.g.
   * `singleton` for `system.singleton`). Optional: `system.plugin(name)` always works. Declare
   * its type with module augmentation: `declare module 'shoal' { interface ClusterSystem { singleton: SingletonFacade } }`.
   */
  readonly facade?: string
  /** Starts the plugin; returns its facade. Called once, in install order. */
  start(ctx: PluginContext): F | Promise<F>
  /**
   * Stops it (hand over, flush, release). Called once at shutdown, in reverse install order, with
   * the facade `start` returned for this system: one plugin value may be installed on several
   * systems of a process (a test cluster), so stop the instance you are given, not the last started.
   */
  stop?(facade: F): void | Promise<void>
  /** Every cluster event after start (snapshot first), when the system runs cluster membership. */
  onClusterEvent?(event: ClusterEvent): void
  /** A local actor finished `onStart` and serves calls. `actor` is the instance (do not call its methods directly from here: go through `actor.self`). */
  onActorReady?(id: ActorId, actor: DistributedActor): void
  /** A local actor stopped (after its `onStop`). */
  onActorStopped?(id: ActorId, actor: DistributedActor): void
}
