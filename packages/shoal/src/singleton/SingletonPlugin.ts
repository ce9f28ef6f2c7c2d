/**
 * The cluster singleton plugin: exactly one instance of an actor in the cluster (a lobby, a
 * scheduler, a matchmaker), reached through a proxy ref from any node.
 *
 * ```ts
 * const system = await ClusterSystem.start({ cluster: { seeds }, plugins: [singletonPlugin()] })
 * const lobby = system.singleton.host('lobby', (s) => s.spawn(GameLobby))   // nodes that may host it
 * const lobby = system.singleton.proxy(GameLobby, 'lobby')                  // nodes that never do
 * await lobby.join('fish-1')
 * ```
 *
 * Where it runs: on the oldest `up` member that has the role (pluggable; a leader-based strategy
 * is available), so younger nodes joining never move it. How it moves: on a graceful leave the
 * old instance's `onPassivate()` is awaited (bounded) before the successor starts, and the calls
 * made meanwhile wait in the proxies and then go to the new instance; after a crash the successor
 * starts only once the old host has been downed and a margin has passed, and a host on the losing
 * side of a partition stops its instance before that (fencing), so two instances never run at once.
 * See docs/singleton.md.
 * @module
 */

import { Gauge } from 'prom-client'
import { ActorId } from '../actor/ActorId.ts'
import type { ActorRef } from '../actor/ActorRef.ts'
import type { DistributedActor } from '../actor/DistributedActor.ts'
import type { ClusterEvent } from '../cluster/Cluster.ts'
import { CONFIRM_SHARE } from '../cluster/ServingConfirmation.ts'
import { ConfigError } from '../errors.ts'
import type { LeaseStore } from '../lease/Lease.ts'
import type { ClusterSystem } from '../system/ClusterSystem.ts'
import type { Plugin, PluginContext } from '../system/Plugin.ts'
import { type AllocationStrategy, DownTracker, leaderMember, oldestMember } from './Allocation.ts'
import { type ManagerSettings, type SingletonFactory, SingletonManager, type SingletonStatus } from './SingletonManager.ts'

/** Plugin-wide defaults; each `host`/`proxy` call may override them. */
export interface SingletonSettings {
  /** Where instances run: `'oldest'` (default) up member with the role, `'leader'`, or your own strategy. */
  readonly strategy?: AllocationStrategy | 'oldest' | 'leader'
  /** Calls a proxy holds while no instance is known; beyond, the oldest fails. Default 2048. */
  readonly bufferSize?: number
  /** How long a held call waits for an instance before failing, ms. Default 30,000. */
  readonly allocationTimeout?: number
  /** Bound on an instance's `onPassivate()` at hand-over, ms. Default 10,000. */
  readonly passivateTimeout?: number
  /**
   * After a host is downed, how long its successor waits before starting, ms: the downed side
   * needs that long to learn it lost and stop its instance. Default: the downing strategy's
   * `stableAfter` (3 s by default, at least 2 s) plus 2 s for the losing side noticing the
   * partition later than the winning side: 5 s.
   */
  readonly downMargin?: number
  /**
   * A lease each host must hold in `store` while its instance runs (lease `singleton/<name>`; any
   * {@link LeaseStore}: the SQLite or PostgreSQL event store, shared by the nodes). It closes the
   * gap the cluster alone cannot: a host frozen (GC pause, SIGSTOP, stalled VM) past failure
   * detection and the margin is downed and succeeded, and on waking would serve calls until it
   * learned that; with a lease the successor starts only once the old lease expired in the store,
   * and the old instance refuses every call from the moment its lease may have lapsed.
   * `ttl` default 8,000 ms: shorter than a crash failover (detection + stableAfter + downMargin,
   * about 10 s), so it adds no delay there. Gotcha: an instance stops when the store cannot renew
   * its lease for about 0.9 × ttl; the singleton is then as available as the store.
   */
  readonly lease?: { readonly store: LeaseStore; readonly ttl?: number }
}

/** Options of one singleton. */
export interface SingletonOptions extends SingletonSettings {
  /** Only members with this role host it (and every member with it must call `host`). */
  readonly role?: string
}

/** `system.singleton`. */
export interface SingletonFacade {
  /**
   * Declares that this node may host singleton `name` (made by `factory` when allocated here) and
   * returns a proxy ref to it, wherever it runs. Call it on every node that may host it: all
   * nodes, or all nodes with `options.role`.
   *
   * Gotchas: the proxy's calls default to a timeout of `allocationTimeout` plus the system's call
   * timeout, since they may wait for an instance; `withTimeout` shortens it. A proxy ref sent to
   * another node reaches the singleton through this node.
   */
  host<R extends ActorRef<DistributedActor>>(name: string, factory: (system: ClusterSystem) => R, options?: SingletonOptions): R
  /** A proxy ref to singleton `name` from a node that never hosts it (typed by `Class`). */
  proxy<T extends DistributedActor>(Class: abstract new (...args: never[]) => T, name: string, options?: SingletonOptions): ActorRef<T>
  /** Where singleton `name` is and what this node's proxy holds. Throws if neither host nor proxy was called here. */
  status(name: string): SingletonStatus
  /** The status of every singleton this node hosts or proxies, by name (for the dashboard and tools). */
  statuses(): SingletonStatus[]
}

declare module '../system/ClusterSystem.ts' {
  interface ClusterSystem {
    /**
     * Cluster singletons, with `singletonPlugin()` installed. Gotcha: on a system started without
     * it, reading `system.singleton` throws a ConfigError saying how to install it.
     */
    readonly singleton: SingletonFacade
  }
}

const NAME = /^[A-Za-z0-9_.$~-]{1,128}$/
const TICK = 250
/**
 * Added to the margin: how much later than the side that downs it the losing side may notice the
 * partition (SWIM probes one member per period), and so fence its host.
 */
const DETECTION_SPREAD = 2000
/** A host fences once its side has looked doomed this long: past blips, far inside stableAfter + margin. */
export const FENCE_AFTER = 1000
const DOWN_MEMORY = 3600_000

/** The default `downMargin` under a downing strategy that waits `stableAfter`, ms. */
export function defaultDownMargin(stableAfter: number): number {
  return Math.max(2000, stableAfter) + DETECTION_SPREAD
}

/**
 * The cluster singleton plugin; publishes `system.singleton`. Settings are defaults for every
 * singleton of the system.
 */
export function singletonPlugin(settings: SingletonSettings = {}): Plugin<SingletonFacade> {
  return {
    name: 'singleton',
    facade: 'singleton',
    start: (ctx) => new Singletons(ctx, settings),
    // The instance of the system being stopped: one plugin value may serve several systems (a test cluster).
    stop: (facade) => (facade as Singletons).stop(),
  }
}

class Singletons implements SingletonFacade {
  readonly #ctx: PluginContext
  readonly #defaults: SingletonSettings
  readonly #managers = new Map<string, { manager: SingletonManager; unregister: () => void; typed?: ActorRef<DistributedActor> }>()
  readonly #downs = new DownTracker()
  readonly #cleanup: (() => void)[] = []

  constructor(ctx: PluginContext, defaults: SingletonSettings) {
    this.#ctx = ctx
    this.#defaults = defaults
    const system = ctx.system
    if (system.clustered) {
      this.#cleanup.push(system.cluster.subscribe((e) => this.#onClusterEvent(e)))
      // A leaving host hands over before the node goes on to exiting.
      system.cluster.onLeaving(() => Promise.all([...this.#managers.values()].map((m) => m.manager.released())).then(() => undefined))
    }
    const timer = setInterval(() => this.#tick(), TICK)
    timer.unref()
    this.#cleanup.push(() => clearInterval(timer))
    this.#registerMetrics()
  }

  #registerMetrics(): void {
    const registers = [this.#ctx.system.metrics.registry]
    const each = (read: (s: SingletonStatus) => number) =>
      function (this: Gauge): void {
        for (const [name, e] of managers) this.set({ name }, read(e.manager.status()))
      }
    const managers = this.#managers
    const labelNames = ['name']
    new Gauge({
      name: 'shoal_singleton_hosting',
      help: 'Whether this node runs the singleton instance (1) or not (0)',
      labelNames,
      registers,
      collect: each((s) => (s.instance ? 1 : 0)),
    })
    new Gauge({
      name: 'shoal_singleton_held_calls',
      help: 'Calls this node’s proxy holds while no instance is known',
      labelNames,
      registers,
      collect: each((s) => s.held),
    })
    new Gauge({
      name: 'shoal_singleton_activations',
      help: 'Instances started on this node since start',
      labelNames,
      registers,
      collect: each((s) => s.activations),
    })
    new Gauge({
      name: 'shoal_singleton_lease_epoch',
      help: 'With a lease: its epoch (fencing token) while this node runs the instance, else 0; a change means the lease moved',
      labelNames,
      registers,
      collect: each((s) => s.leaseEpoch ?? 0),
    })
  }

  host<R extends ActorRef<DistributedActor>>(name: string, factory: (system: ClusterSystem) => R, options: SingletonOptions = {}): R {
    if (typeof factory !== 'function')
      throw new ConfigError(`singleton.host("${name}", factory): the factory must be a function making the instance, e.g. (system) => system.spawn(MyActor).`)
    const entry = this.#entry(name, options)
    if (entry.manager.hostsHere) throw new ConfigError(`singleton.host("${name}") was already called on this node.`)
    entry.manager.setFactory(factory as SingletonFactory<DistributedActor>)
    queueMicrotask(() => entry.manager.evaluate())
    return this.#proxyRef(name) as R
  }

  proxy<T extends DistributedActor>(Class: abstract new (...args: never[]) => T, name: string, options: SingletonOptions = {}): ActorRef<T> {
    const entry = this.#entry(name, options)
    queueMicrotask(() => entry.manager.evaluate())
    return this.#ctx.system.resolve(Class, new ActorId(this.#ctx.system.node, path(name), 0)).withTimeout(this.#proxyTimeout(options))
  }

  status(name: string): SingletonStatus {
    const entry = this.#managers.get(name)
    if (!entry) throw new ConfigError(`No singleton "${name}" on this node: call singleton.host or singleton.proxy first.`)
    return entry.manager.status()
  }

  statuses(): SingletonStatus[] {
    return [...this.#managers.values()].map((e) => e.manager.status())
  }

  async stop(): Promise<void> {
    for (const c of this.#cleanup.splice(0)) c()
    await Promise.all([...this.#managers.values()].map((e) => e.manager.stop()))
    for (const e of this.#managers.values()) e.unregister()
  }

  #entry(name: string, options: SingletonOptions): { manager: SingletonManager; unregister: () => void } {
    if (typeof name !== 'string' || !NAME.test(name))
      throw new ConfigError(`Singleton name ${JSON.stringify(name)} is invalid: use 1-128 letters, digits and _ . $ ~ -.`)
    const existing = this.#managers.get(name)
    if (existing) return existing
    const system = this.#ctx.system
    const manager = new SingletonManager(this.#ctx, name, this.#settings(options), this.#downs, this.#ctx.log)
    const unregister = this.#ctx.actors.registerWellKnown(path(name), manager)
    const off = system.receptionist.subscribe(manager.key, () => manager.evaluate())
    const entry = { manager, unregister: () => (unregister(), off()) }
    this.#managers.set(name, entry)
    return entry
  }

  #settings(o: SingletonOptions): ManagerSettings {
    const s = { ...this.#defaults, ...o }
    const system = this.#ctx.system
    const downing = system.clustered ? system.cluster.downing : undefined
    const strategy = s.strategy === undefined || s.strategy === 'oldest' ? oldestMember : s.strategy === 'leader' ? leaderMember : s.strategy
    if (typeof strategy?.target !== 'function') throw new ConfigError(`singleton strategy must be 'oldest', 'leader' or an AllocationStrategy.`)
    const margin = positive(s.downMargin, defaultDownMargin(downing?.stableAfter ?? 0), 'downMargin')
    return {
      role: s.role,
      strategy,
      downing,
      margin,
      fenceAfter: FENCE_AFTER,
      confirmWindow: margin * CONFIRM_SHARE,
      bufferSize: positive(s.bufferSize, 2048, 'bufferSize'),
      allocationTimeout: positive(s.allocationTimeout, 30_000, 'allocationTimeout'),
      passivateTimeout: positive(s.passivateTimeout, 10_000, 'passivateTimeout'),
      lease: s.lease && { store: leaseStore(s.lease.store), ttl: leaseTtl(s.lease.ttl) },
    }
  }

  #proxyTimeout(o: SingletonOptions): number {
    return Math.min(2 ** 31 - 1, positive(o.allocationTimeout ?? this.#defaults.allocationTimeout, 30_000, 'allocationTimeout') + this.#ctx.system.callTimeout)
  }

  #proxyRef(name: string): ActorRef<DistributedActor> {
    return this.#ctx.actors.wellKnownRef(path(name), this.#proxyTimeout({}))
  }

  #onClusterEvent(e: ClusterEvent): void {
    if (e.type === 'member') this.#downs.observe([e.member], this.#ctx.system.cluster.now())
    for (const { manager } of this.#managers.values()) manager.evaluate()
  }

  #tick(): void {
    if (this.#ctx.system.clustered) this.#downs.prune(this.#ctx.system.cluster.now(), DOWN_MEMORY)
    for (const { manager } of this.#managers.values()) manager.evaluate()
  }
}

function path(name: string): string {
  return `/singleton/${name}`
}

function leaseTtl(ttl: number | undefined): number {
  const ms = positive(ttl, 8000, 'lease.ttl')
  // Renewal runs every ttl / 4: below this it would hammer the store, and a store round trip would eat the term.
  if (ms < 400) throw new ConfigError(`singleton lease.ttl must be at least 400 ms (got ${ms}); the default is 8000.`)
  return ms
}

function leaseStore(store: LeaseStore): LeaseStore {
  if (typeof store?.acquireLease !== 'function')
    throw new ConfigError('singleton lease.store must be a LeaseStore (a SqliteEventStore, a PostgresEventStore, a MemoryLeaseStore or your own).')
  return store
}

function positive(v: number | undefined, d: number, what: string): number {
  const n = v ?? d
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`singleton ${what} must be a positive number of ms or items (got ${v}).`)
  return n
}
