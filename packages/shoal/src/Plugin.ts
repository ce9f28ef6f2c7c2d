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
import type { ActorId } from './ActorId.ts'
import type { ClusterEvent } from './cluster/Cluster.ts'
import type { ClusterSystem } from './ClusterSystem.ts'
import type { DistributedActor } from './DistributedActor.ts'

/** What a plugin gets at start. */
export interface PluginContext {
  readonly system: ClusterSystem
  /** The system's logger with a `plugin` field. */
  readonly log: Logger
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
  /** Stops it (hand over, flush, release). Called once at shutdown, in reverse install order. */
  stop?(): void | Promise<void>
  /** Every cluster event after start (snapshot first), when the system runs cluster membership. */
  onClusterEvent?(event: ClusterEvent): void
  /** A local actor finished `onStart` and serves calls. `actor` is the instance (do not call its methods directly from here: go through `actor.self`). */
  onActorReady?(id: ActorId, actor: DistributedActor): void
  /** A local actor stopped (after its `onStop`). */
  onActorStopped?(id: ActorId, actor: DistributedActor): void
}
