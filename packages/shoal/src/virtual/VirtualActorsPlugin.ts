/**
 * Virtual actors (Orleans' grains, Akka's sharded entities): get any actor by type and id from
 * any node; the first call activates it on the node that owns its shard, and there is one
 * activation per id through joins, leaves, crashes and partitions.
 *
 * ```ts
 * const system = await ClusterSystem.start({ cluster: { seeds, roles: ['players'] }, plugins: [virtualActorsPlugin()] })
 * system.virtualActors.host(Player, (id) => new Player(id), { role: 'players' }) // nodes that may host Player
 * const ann = system.virtualActors.get(Player, 'ann')                             // anywhere
 * await ann.rename('Ann')                                                        // activated where it belongs
 * ```
 *
 * How: ids hash to shards (`ShardTable.ts`); the cluster leader computes which node owns each
 * shard and sends the versioned table to every node, so a call goes from the caller's node
 * straight to the owner. A shard opens on its new owner only once every other host has released
 * that table version (`ShardOwnership.ts`): the old owner first stops taking calls for it and
 * deactivates its activations after their current turn. A crashed owner's shards open elsewhere
 * only after it was removed from the cluster and the margin passed, as for singletons. See
 * docs/virtual-actors.md.
 * @module
 */

import { ActorId } from '../actor/ActorId.ts'
import type { ActorRef } from '../actor/ActorRef.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { DistributedActor, MethodInfo } from '../actor/DistributedActor.ts'
import type { Invocation, LocalTarget } from '../actor/Invocation.ts'
import type { Route } from '../actor/Route.ts'
import type { ClusterMember } from '../cluster/Member.ts'
import { CONFIRM_SHARE, ServingConfirmation } from '../cluster/ServingConfirmation.ts'
import { controlTarget } from '../control/ControlChannel.ts'
import { ControlKind } from '../control/ControlKind.ts'
import {
  ActorNotFoundError,
  ActorStartFailedError,
  ConfigError,
  isNotDelivered,
  markNotDelivered,
  NodeDownError,
  NodeUnreachableError,
  VirtualActorUnavailableError,
} from '../errors.ts'
import type { LeaseStore } from '../lease/Lease.ts'
import { shardTableChannel } from '../observability/Channels.ts'
import type { Plugin, PluginContext } from '../system/Plugin.ts'
import { KeyedBackoff } from '../util/KeyedBackoff.ts'
import { OwnerLeases } from './OwnerLeases.ts'
import { byShard, defaultMaxMoves, defaultShardMargin, placementGroup, readyToHost, TableDecider } from './Placement.ts'
import { type GroupMember, type OwnershipDirective, ShardOwnership } from './ShardOwnership.ts'
import { DEFAULT_SHARDS, emptyTable, type ShardTable, shardOf } from './ShardTable.ts'
import { decodeVirtual, encodeHosts, encodeReleased, encodeTable, type VirtualMessage } from './VirtualCodec.ts'
import { ANYWHERE, checkVirtualId, checkVirtualType, parseVirtualPath, VIRTUAL_PREFIX, virtualActorId } from './VirtualId.ts'
import { registerVirtualMetrics } from './VirtualMetrics.ts'
import { VirtualRoute, type VirtualRouting } from './VirtualRoute.ts'

/** Plugin-wide settings. */
export interface VirtualActorsSettings {
  /** Shards per placement group (every node must use the same number). Default 1024. */
  readonly shards?: number
  /** An activation idle this long is deactivated, ms (0: never). Default 120,000 (Akka's default). */
  readonly idleTimeout?: number
  /**
   * How long after a crashed owner's removal its shards may open elsewhere, ms: its side needs that
   * long to stop serving. Default as the singleton's: max(2 s, the downing strategy's stableAfter) + 2 s.
   */
  readonly downMargin?: number
  /**
   * Most shards one table takes from a live owner for balance (when a node joins): such moves go in
   * rounds, each once every node has finished the last, so fewer ids wait at once and a join does
   * not deactivate a tenth of the cluster in one burst. A departed owner's shards are placed at once
   * whatever the cap. Default: a tenth of the shards (Akka's rebalance limit), 103 of 1024.
   */
  readonly maxShardMoves?: number
  /** Calls held per node while their shard has no open owner; beyond, the oldest fails. Default 10,000. */
  readonly bufferSize?: number
  /**
   * Most activations live on this node at once; activating one more deactivates the least recently
   * used first. Default: unlimited (idle passivation alone bounds memory). Set it when ids are many
   * and bursts of first calls could outgrow the heap before they go idle.
   */
  readonly maxActive?: number
  /**
   * A lease store (the SQLite or PostgreSQL event store shared by the nodes, or your own
   * LeaseStore): each node then serves shards only while it holds its lease `virtual/owner/<uid>`
   * (renewed every ttl/4), and a crashed or removed member's shards open elsewhere only once its
   * lease has expired in the store. Protects against an owner frozen (GC, SIGSTOP, a stalled VM)
   * longer than detection and the margin, whatever the clocks do. Default: none (the confirmation
   * fence of docs/singleton.md alone). `ttl` default 8,000 ms.
   */
  readonly lease?: { readonly store: LeaseStore; readonly ttl?: number }
}

/** Options of one hosted type. */
export interface VirtualHostOptions {
  /** Only members with this role host the type (every member with it must call `host` for it). */
  readonly role?: string
  /** The type name (default: the class name). Set it so that renaming the class does not move every actor. */
  readonly type?: string
  /** This type's idle timeout, ms (default: the plugin's). */
  readonly idleTimeout?: number
}

/** A snapshot of this node's virtual actors, for tests, tools and metrics. */
export interface VirtualActorsStatus {
  readonly groups: ReadonlyArray<{
    readonly role: string | undefined
    readonly tableVersion: number
    readonly owned: number
    readonly open: number
    readonly active: number
    readonly held: number
    /** What opening this node's shards waits for (members yet to release its table; gone members in their margin). */
    readonly waitingFor: readonly string[]
  }>
  readonly activations: number
  readonly deactivations: number
  /**
   * Calls this node's routers sent on to an owner elsewhere: the first calls through new refs,
   * calls after a table change and traced calls. Warm calls through a ref go straight to the owner.
   */
  readonly forwarded: number
  /** With a lease store: the epoch of this node's lease while it holds it (the fencing token of what it serves). */
  readonly leaseEpoch: number | undefined
  /**
   * Whether this node may be given shards: it hosts a type and has heard from every other member
   * of its group, or came up at least 1 s ago (`LINK_WAIT`; see docs/virtual-actors.md).
   */
  readonly ready: boolean
}

/** `system.virtualActors`. */
export interface VirtualActorsFacade {
  /**
   * Declares that this node hosts virtual actors of `Class`, made by `factory(id)` when one is
   * activated here. Call it on every node that may host them: all nodes, or all nodes with `role`.
   */
  host<T extends DistributedActor>(Class: new (...args: never[]) => T, factory: (id: string) => T, options?: VirtualHostOptions): void
  /**
   * A ref to virtual actor `id` of `Class` (type name: the class name, or `options.type`). Never
   * blocks, never fails for a missing actor: the first call activates it where its shard lives.
   * Throws ConfigError for an id that is not a non-empty string of at most 512 characters.
   */
  get<T extends DistributedActor>(Class: abstract new (...args: never[]) => T, id: string, options?: { readonly type?: string }): ActorRef<T>
  status(): VirtualActorsStatus
}

declare module '../system/Plugin.ts' {
  interface PluginFacades {
    /** Virtual actors, with `virtualActorsPlugin()` installed. */
    readonly virtualActors: VirtualActorsFacade
  }
}

/** The virtual actors plugin; publishes `system.virtualActors`. */
export function virtualActorsPlugin(settings: VirtualActorsSettings = {}): Plugin<VirtualActorsFacade> {
  const maxActive = settings.maxActive ?? 0
  if (settings.lease !== undefined && typeof (settings.lease.store as Partial<LeaseStore> | undefined)?.acquireLease !== 'function')
    throw new ConfigError(
      'virtualActorsPlugin({ lease: { store } }): store must be a LeaseStore (a SqliteEventStore, a PostgresEventStore, a MemoryLeaseStore or your own).',
    )
  const ttl = settings.lease?.ttl ?? 8000
  if (!(Number.isFinite(ttl) && ttl >= 400))
    throw new ConfigError(
      `virtualActorsPlugin({ lease: { ttl: ${String(ttl)} } }): give at least 400 ms (default 8000); ttl should be several store round trips.`,
    )
  if (!Number.isInteger(maxActive) || maxActive < 0)
    throw new ConfigError(
      `virtualActorsPlugin({ maxActive: ${String(settings.maxActive)} }): give a whole number of activations (0 or leave it out: unlimited).`,
    )
  const moves = settings.maxShardMoves
  if (moves !== undefined && !(Number.isInteger(moves) && moves >= 1))
    throw new ConfigError(
      `virtualActorsPlugin({ maxShardMoves: ${String(moves)} }): give a whole number of shards, at least 1 (default: a tenth of the shards).`,
    )
  return {
    name: 'virtual-actors',
    facade: 'virtualActors',
    start: (ctx) => new VirtualActors(ctx, settings),
    stop: (facade) => (facade as VirtualActors).stop(),
  }
}

const TICK = 250
/**
 * Idle activations deactivated per tick at most (2,000/s). Each is a sealed turn and a stop, run
 * as promise jobs that no I/O interleaves: a burst of first calls (280,000 in bench:virtual) going
 * idle together once stalled the node for seconds, calls and heartbeats included.
 */
const PASSIVATIONS_PER_TICK = 500
/** Tables and hosted types are sent again this often (a message lost with a connection is repaired). */
const RESEND_EVERY = 2000
const RETRY_SOON = 25
/** Routers kept per node before the cache starts over. */
const MAX_ROUTERS = 100_000
/** Callers remembered per group as told a table (see `#tellTable`); beyond, the memory starts afresh. */
const MAX_TOLD = 1024
/** A waiting call fails this long before its deadline, with the reason, rather than timing out. */
const GIVE_UP_EARLY = 3 * RETRY_SOON

interface TypeEntry {
  readonly type: string
  readonly Class: abstract new (...args: never[]) => DistributedActor
  role: string | undefined
  factory: ((id: string) => DistributedActor) | undefined
  idleTimeout: number
}

/**
 * The router of one virtual actor path on this node: what refs to it deliver to (their route keeps
 * it), with the ref to the owner's router it last forwarded to, so warm calls build nothing.
 */
class Router implements LocalTarget {
  readonly alive = true
  ownerUid: string | undefined = undefined
  ownerRef: ActorRef<unknown> | undefined = undefined
  /** Its placement group, as found when the plugin's hosts generation was `groupGen`. */
  group: Group | undefined = undefined
  groupGen = -1
  /**
   * The path's activation here, as last found in its group (a Map lookup per warm call saved);
   * trusted while its target is alive, and dropped by the activation as it ends (`Activation.router`).
   */
  activation: Activation | undefined = undefined
  constructor(
    readonly type: string,
    readonly id: string,
    readonly path: string,
    /** The shard, computed once. */
    readonly shard: number,
    /** The plugin's call handling, shared by every router (a router carries no closure of its own). */
    readonly route: (router: Router, inv: Invocation, method: MethodInfo | undefined) => void,
  ) {}

  deliver(inv: Invocation, method: MethodInfo | undefined): void {
    this.route(this, inv, method)
  }
}

/** Makes `router` remember activation `a` (one router per activation: a router it had before forgets it). */
function remember(router: Router, a: Activation | undefined): Activation | undefined {
  if (router.activation !== undefined) forget(router)
  if (a === undefined) return undefined
  if (a.router !== undefined) forget(a.router)
  a.router = router
  router.activation = a
  return a
}

/** `router` forgets its activation, and the activation it. */
function forget(router: Router): void {
  const a = router.activation
  if (a !== undefined && a.router === router) a.router = undefined
  router.activation = undefined
}

interface Held {
  readonly router: Router
  readonly type: string
  readonly id: string
  readonly path: string
  readonly inv: Invocation
  readonly method: MethodInfo | undefined
  readonly since: number
}

interface Activation {
  readonly target: LocalTarget & { readonly id: ActorId }
  readonly shard: number
  /** Its type's idle timeout, ms (0: never). */
  readonly idle: number
  lastUsed: number
  /** Asked to deactivate (sealed, stopping): no longer counted live, never asked twice. */
  deactivating: boolean
  /** The router that remembers it (`Router.activation`), told to forget it when it ends. */
  router: Router | undefined
}

/** One placement group: the hosts of the types with one role. */
interface Group {
  readonly role: string | undefined
  readonly ownership: ShardOwnership
  /** The decider's side (used on the leader). */
  readonly decider: TableDecider
  /** Calls waiting for their shard to open here, by shard. */
  readonly held: Map<number, Held[]>
  /** Live activations by path. */
  readonly activations: Map<string, Activation>
  /** Shards draining: activations still stopping. */
  readonly draining: Map<number, number>
  /** The table last sent to each caller whose call this node refused (see `#tellTable`). */
  readonly told: Map<string, ShardTable>
}

const roleKey = (role: string | undefined): string => role ?? ''

class VirtualActors implements VirtualActorsFacade {
  readonly #ctx: PluginContext
  readonly #shards: number
  readonly #idleTimeout: number
  readonly #margin: number
  readonly #bufferSize: number
  readonly #types = new Map<string, TypeEntry>()
  readonly #typesByClass = new Map<Function, string>()
  /** Types each node hosts (from their announcements, this node's own included), by node uid. */
  readonly #hostsOf = new Map<string, ReadonlyArray<{ type: string; role: string | undefined }>>()
  /** Members whose latest hosts message said they may not be given shards yet (`Placement.readyToHost`). */
  readonly #notReady = new Set<string>()
  /** Whether this node may be given shards (sticky): it heard from every other member of its groups, or waited `LINK_WAIT`. */
  #ready = false
  /** When this node first saw itself up (this node's clock), for `Placement.LINK_WAIT`. */
  #upSince: number | undefined
  readonly #groups = new Map<string, Group>()
  /** Calls held for want of a table or of a known type (not yet for a shard). */
  #waiting: Held[] = []
  readonly #cleanup: (() => void)[] = []
  #heldCount = 0
  /** Members this node has sent its hosted types and tables to (it does at once for new ones). */
  readonly #known = new Set<string>()
  #lastResend = 0
  #retryTimer: NodeJS.Timeout | undefined
  #serveTimer: NodeJS.Timeout | undefined
  #stopped = false
  activations = 0
  deactivations = 0
  #forwarded = 0
  /** {@link now} at the next tick, updated each tick: what a call stamps as its activation's last use. */
  #usedClock = Number.NEGATIVE_INFINITY
  /** Paths whose last activation failed, with what it failed with: the next try waits 200 ms, doubling to 10 s. */
  readonly #backoff = new KeyedBackoff<unknown>({ baseMs: 200, maxMs: 10_000, maxKeys: 10_000 })
  readonly #maxActive: number
  readonly #maxMoves: number
  /** Activations not asked to deactivate, over all groups. */
  #live = 0
  /** With a lease store: this node's lease and the removed members' (OwnerLeases.ts). */
  readonly #leases: OwnerLeases | undefined
  /** Removed members whose lease is not yet known expired: still waited for, even once the cluster forgot them. */
  readonly #leasePending = new Set<string>()
  #leaseLapsed = false

  constructor(ctx: PluginContext, s: VirtualActorsSettings) {
    this.#ctx = ctx
    const system = ctx.system
    this.#shards = s.shards ?? DEFAULT_SHARDS
    emptyTable(this.#shards) // validates
    this.#idleTimeout = s.idleTimeout ?? 120_000
    const downing = system.clustered ? system.cluster.downing : undefined
    this.#margin = s.downMargin ?? defaultShardMargin(downing?.stableAfter ?? 0)
    this.#bufferSize = s.bufferSize ?? 10_000
    this.#maxActive = s.maxActive ?? 0
    this.#maxMoves = s.maxShardMoves ?? defaultMaxMoves(this.#shards)
    this.#confirmation = new ServingConfirmation(this.#margin * CONFIRM_SHARE)
    this.#leases =
      s.lease && system.clustered
        ? new OwnerLeases({
            store: s.lease.store,
            ttl: s.lease.ttl ?? 8000,
            self: system.node.uid,
            log: ctx.log,
            onLost: (why) => this.#leaseLost(why),
            onExpired: (uid) => {
              this.#leasePending.delete(uid)
              this.#membershipChanged()
            },
          })
        : undefined
    this.#leases?.ensureHeld()
    this.#cleanup.push(
      ctx.actors.registerWellKnownPrefix(VIRTUAL_PREFIX, (path) => this.#routerAt(path), {
        route: (id, local) => this.#refRoute(id, local),
        // A router decides per call (owner, admission, activation): any router of a path is right for it.
        remember: true,
      }),
    )
    ctx.control.onControl(ControlKind.VirtualActors, (from, body) => this.#onMessage(from, body))
    if (system.clustered) {
      this.#cleanup.push(system.cluster.subscribe(() => this.#membershipChanged()))
      system.cluster.onLeaving(() => this.#handOverAll())
    }
    const timer = setInterval(() => this.#tick(), TICK)
    timer.unref()
    this.#cleanup.push(() => clearInterval(timer))
    this.#hostsOf.set(this.#self, [])
    registerVirtualMetrics(() => this.status(), system.metrics.registry)
  }

  get #self(): string {
    return (this.#selfUid ??= this.#ctx.system.node.uid)
  }
  #selfUid: string | undefined

  // ── facade ──────────────────────────────────────────────────────────────────

  host<T extends DistributedActor>(Class: new (...args: never[]) => T, factory: (id: string) => T, options: VirtualHostOptions = {}): void {
    if (typeof factory !== 'function')
      throw new ConfigError(`virtualActors.host(${Class?.name}, factory): the factory must be a function (id) => new ${Class?.name}(id).`)
    const entry = this.#entry(Class, options.type)
    if (entry.factory) throw new ConfigError(`virtualActors.host(${entry.type}) was already called on this node.`)
    entry.factory = factory as (id: string) => DistributedActor
    entry.role = options.role
    entry.idleTimeout = options.idleTimeout ?? this.#idleTimeout
    this.#hostsOf.set(
      this.#self,
      [...this.#types.values()].filter((t) => t.factory).map((t) => ({ type: t.type, role: t.role })),
    )
    this.#hostsChanged()
    this.#groupOf(options.role)
    this.#announce(this.#otherMembers())
    this.#checkReady()
    this.#decide()
  }

  get<T extends DistributedActor>(Class: abstract new (...args: never[]) => T, id: string, options: { readonly type?: string } = {}): ActorRef<T> {
    const entry = this.#entry(Class, options.type)
    checkVirtualId(entry.type, id)
    return this.#ctx.actors.refOf(virtualActorId(entry.type, id), Class) as unknown as ActorRef<T>
  }

  status(): VirtualActorsStatus {
    return {
      groups: [...this.#groups.values()].map((g) => {
        const t = g.ownership.table
        let owned = 0
        let open = 0
        for (let s = 0; s < this.#shards; s++) {
          if (t?.owners[s] === this.#self) owned++
          if (g.ownership.phase(s) === 'open') open++
        }
        return {
          role: g.role,
          tableVersion: t?.version ?? 0,
          owned,
          open,
          active: g.activations.size,
          held: [...g.held.values()].reduce((n, h) => n + h.length, 0),
          waitingFor: owned > open ? g.ownership.waitingFor() : [],
        }
      }),
      activations: this.activations,
      deactivations: this.deactivations,
      forwarded: this.#forwarded,
      leaseEpoch: this.#leases?.epoch,
      ready: this.#ready,
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    for (const c of this.#cleanup.splice(0)) c()
    clearTimeout(this.#retryTimer)
    clearTimeout(this.#serveTimer)
    const all = [...this.#groups.values()].flatMap((g) => [...g.held.values()].flat())
    for (const h of [...all, ...this.#waiting])
      h.inv.fail(
        markNotDelivered(new VirtualActorUnavailableError(`This node's virtual actors stopped (shutdown) before ${h.type} ${h.id} could take this call.`)),
      )
    this.#waiting = []
    for (const g of this.#groups.values()) g.held.clear()
    await this.#leases?.stop()
  }

  /**
   * Every activation's `onStopped` (one function, so an activation keeps no closure of its own).
   * An onStart that throws at once stops the actor before spawnAt returns, before it is listed:
   * remembered, and handled once it is.
   */
  readonly #activationStopped = (id: ActorId): void => {
    if (!this.#ended(id)) this.#stoppedUnlisted = id
  }
  #stoppedUnlisted: ActorId | undefined

  /** An activation ended (deactivated, or stopped by itself): forget it; a draining shard may be done. False if it is not listed. */
  #ended(id: ActorId): boolean {
    const parsed = parseVirtualPath(id.path)
    if (!parsed) return false
    const entry = this.#types.get(parsed.type)
    const g = entry && this.#groups.get(roleKey(entry.role))
    const a = g?.activations.get(id.path)
    if (!g || !a || a.target.id.incarnation !== id.incarnation) return false
    g.activations.delete(id.path)
    if (a.router !== undefined) forget(a.router)
    this.#routers.delete(id.path) // nothing kept per passivated id (a ref may still hold its router: stateless)
    if (!a.deactivating) this.#live--
    this.deactivations++
    const left = g.draining.get(a.shard)
    if (left === undefined) return true
    if (left <= 1) {
      g.draining.delete(a.shard)
      this.#apply(g, g.ownership.drained(a.shard, this.#now()))
    } else g.draining.set(a.shard, left - 1)
    return true
  }

  // ── routing ─────────────────────────────────────────────────────────────────

  #entry(Class: abstract new (...args: never[]) => DistributedActor, type: string | undefined): TypeEntry {
    if (typeof Class !== 'function') throw new ConfigError('virtualActors: pass the actor class.')
    const name = type ?? this.#typesByClass.get(Class) ?? Class.name
    checkVirtualType(name)
    let entry = this.#types.get(name)
    if (!entry) {
      entry = { type: name, Class, role: undefined, factory: undefined, idleTimeout: this.#idleTimeout }
      this.#types.set(name, entry)
      this.#typesByClass.set(Class, name)
    } else if (entry.Class !== Class)
      throw new ConfigError(`Virtual actor type ${name} is already ${entry.Class.name} on this node; give one of them another { type }.`)
    return entry
  }

  /** The router target of one virtual actor path on this node (what a ref's route delivers to). */
  /** Routers by path, so calls arriving from other nodes do not parse and hash their path each time (bounded). */
  readonly #routers = new Map<string, Router>()

  #routerAt(path: string): LocalTarget | undefined {
    const cached = this.#routers.get(path)
    if (cached) return cached
    const router = this.#makeRouter(path)
    if (!router) return undefined
    if (this.#routers.size >= MAX_ROUTERS) this.#routers.clear()
    this.#routers.set(path, router)
    return router
  }

  /** The route of a ref to a virtual actor id made on this node: straight to the owner when known (VirtualRoute.ts). */
  #refRoute(id: ActorId, local: Route): Route {
    const parsed = parseVirtualPath(id.path)
    if (!parsed) return local
    return new VirtualRoute(this.#routing, parsed.type, shardOf(parsed.type, parsed.id, this.#shards), id.path, local)
  }

  /** What every VirtualRoute of this node asks (one object: a route keeps its cache in its own fields). */
  readonly #routing: VirtualRouting<Group> = {
    ownerRoute: (r) => this.#ownerRoute(r),
    retryable: (e) => retryable(e) && !this.#stopped,
  }

  /** The route to `r`'s owner under this node's table, cached on `r` until hosted types or the table change. */
  #ownerRoute(r: VirtualRoute<Group>): Route | undefined {
    if (this.#stopped) return undefined
    if (r.gen !== this.#hostsGen) {
      r.group = this.#groupOfType(r.type)
      r.gen = this.#hostsGen
      r.table = undefined
    }
    const t = r.group?.ownership.table
    if (t === r.table) return r.owner
    const owner = t?.owners[r.shard]
    const node = owner === undefined || owner === this.#self ? undefined : this.#nodeOf(owner)
    if (owner !== undefined && owner !== this.#self && !node) return undefined // not known here yet: ask again next time
    r.owner = node && this.#ctx.calls.route(this.#ctx.actors.refOf(new ActorId(node, r.path, 0)))
    r.table = t
    return r.owner
  }

  #makeRouter(path: string): Router | undefined {
    const parsed = parseVirtualPath(path)
    if (!parsed) return undefined
    return new Router(parsed.type, parsed.id, path, shardOf(parsed.type, parsed.id, this.#shards), this.#routeCallFn)
  }

  readonly #routeCallFn = (router: Router, inv: Invocation, method: MethodInfo | undefined): void => this.#routeCall(router, inv, method)

  /**
   * A call through a router. The common case, a call from another node to an activation of an open
   * shard of this node's, is delivered at once, after the same checks as `#route`; anything else
   * takes `#route`.
   */
  #routeCall(router: Router, inv: Invocation, method: MethodInfo | undefined): void {
    if (inv.from !== undefined && !this.#stopped) {
      if (router.groupGen !== this.#hostsGen) {
        router.group = this.#groupOfType(router.type)
        router.groupGen = this.#hostsGen
        forget(router)
      }
      const g = router.group
      // Open here means this node's table gives it the shard (a table that takes it seals it first).
      // Delivered in the step that took it off the wire: the engine's clock reading is now.
      if (g && g.ownership.admit(router.shard) === 'deliver' && this.#mayServe(inv.receivedAt)) {
        const a = router.activation?.target.alive ? router.activation : remember(router, g.activations.get(router.path))
        if (a?.target.alive) return this.#deliverTo(g, a, router.path, inv, method)
      }
    }
    this.#route({ router, type: router.type, id: router.id, path: router.path, inv, method, since: this.#now() })
  }

  #route(h: Held): void {
    if (this.#stopped) return h.inv.fail(markNotDelivered(new VirtualActorUnavailableError('This node is shutting down.')))
    const role = this.#roleOf(h.type)
    const g = role === undefined ? undefined : this.#groups.get(roleKey(role.role))
    const table = g?.ownership.table
    const shard = h.router.shard
    const owner = table?.owners[shard]
    if (!g || !owner) return this.#wait(h)
    if (owner !== this.#self) {
      // A call that came from another node for a shard not ours here: the caller's table is older or
      // newer than ours. Refuse it (not delivered): the caller routes it again once tables agree.
      if (h.inv.from !== undefined) {
        this.#tellTable(g, h.inv.from)
        return h.inv.fail(markNotDelivered(new ActorNotFoundError(`Shard ${shard} of ${h.type} is not served by this node (table ${table!.version}).`)))
      }
      return this.#forward(h, owner)
    }
    switch (g.ownership.admit(shard)) {
      case 'deliver':
        // Serving needs this node's side to confirm it (as a singleton host does); meanwhile hold.
        if (this.#mayServe()) return this.#deliver(g, h, shard)
        this.#hold(g, shard, h)
        return this.#recheckServing()
      case 'hold':
        return this.#hold(g, shard, h)
      case 'elsewhere':
        return this.#wait(h)
    }
  }

  /** The type's role, from this node's host call or a host's announcement; undefined if no node hosts it (yet). Cached until hosts change. */
  #roleOf(type: string): { role: string | undefined } | undefined {
    if (this.#roles.has(type)) return this.#roles.get(type)
    const role = this.#findRole(type)
    if (this.#roles.size >= MAX_ROUTERS) this.#roles.clear()
    this.#roles.set(type, role)
    return role
  }

  #findRole(type: string): { role: string | undefined } | undefined {
    const own = this.#types.get(type)
    if (own?.factory) return { role: own.role }
    for (const list of this.#hostsOf.values()) for (const t of list) if (t.type === type) return { role: t.role }
    return undefined
  }

  /** Roles by type, as `#findRole` found them; cleared whenever a node's hosted types change. */
  readonly #roles = new Map<string, { role: string | undefined } | undefined>()

  /** The placement group of a type, if any node hosts it (one map lookup on the call path). */
  #groupOfType(type: string): Group | undefined {
    let g = this.#typeGroups.get(type)
    if (g === undefined && !this.#typeGroups.has(type)) {
      const role = this.#roleOf(type)
      g = role && this.#groups.get(roleKey(role.role))
      if (this.#typeGroups.size >= MAX_ROUTERS) this.#typeGroups.clear()
      this.#typeGroups.set(type, g)
    }
    return g
  }

  /** Groups by type; cleared with `#roles` and whenever a group is made. */
  readonly #typeGroups = new Map<string, Group | undefined>()

  #hostsChanged(): void {
    this.#roles.clear()
    this.#typeGroups.clear()
    this.#hostsGen++
  }

  /** Bumped whenever what `#groupOfType` answers may change (hosted types, a new group): what refs and routers cached is stale. */
  #hostsGen = 0

  #forward(h: Held, owner: string): void {
    const r = h.router
    let ref = r.ownerUid === owner ? r.ownerRef : undefined
    if (!ref) {
      const node = this.#nodeOf(owner)
      if (!node) return this.#wait(h)
      ref = this.#ctx.actors.refOf(new ActorId(node, h.path, 0))
      r.ownerUid = owner
      r.ownerRef = ref
    }
    const remaining = h.inv.deadline === undefined ? this.#ctx.system.callTimeout : h.inv.deadline - this.#now()
    if (remaining <= 0) return
    this.#forwarded++
    this.#ctx.calls.forward(ref, h.inv.method, h.inv.args, h.inv.chain, remaining, h.inv.headers).then(
      (v) => h.inv.succeed(v),
      (e: unknown) => (retryable(e) && !this.#stopped ? this.#wait(h) : h.inv.fail(e)),
    )
  }

  #deliver(g: Group, h: Held, shard: number): void {
    let a = g.activations.get(h.path)
    if (!a || !a.target.alive) {
      const made = this.#activate(g, h, shard)
      if (!made) return
      a = made
      return a.target.deliver(this.#firstCall(h), h.method)
    }
    // A call from this node comes back here if the activation refuses it before it ran (sealed for
    // a move, or its guard): routed again, not failed. One from elsewhere goes back to its router.
    this.#deliverTo(g, a, h.path, h.inv.from === undefined ? this.#retrying(h) : h.inv, h.method)
  }

  /** Hands a call to its activation; every caller has just found that this node may serve (`#mayServe`). */
  #deliverTo(g: Group, a: Activation, path: string, inv: Invocation, method: MethodInfo | undefined): void {
    // The next tick's time: never earlier than now, so idle passivation is at most a tick late.
    a.lastUsed = Math.max(a.lastUsed, this.#usedClock)
    if (this.#maxActive > 0) {
      // Most recently used last: the map's order is the eviction order.
      g.activations.delete(path)
      g.activations.set(path, a)
    }
    // If it starts at once, its guard need not ask again what was asked just now; if it queues,
    // the guard asks when it starts.
    this.#servingChecked = inv
    try {
      a.target.deliver(inv, method)
    } finally {
      this.#servingChecked = undefined
    }
  }

  /** The call `#deliverTo` is handing over right after `#mayServe` said yes (see `#guardCheck`). */
  #servingChecked: Invocation | undefined

  /**
   * The call that activated an id: how it ends says whether the activation started. A failed
   * start (`onStart` threw: recovery, say) is remembered, so the next calls wait out a backoff
   * instead of activating again at once; it fails the call with the reason.
   */
  #firstCall(h: Held): Invocation {
    const inv = h.inv
    return settledBy(
      inv,
      (v) => {
        this.#backoff.succeeded(h.path)
        inv.succeed(v)
      },
      (e) => {
        if (!(e instanceof ActorStartFailedError)) {
          this.#backoff.succeeded(h.path)
          return inv.from === undefined && retryable(e) && !this.#stopped ? this.#wait(h) : inv.fail(e)
        }
        const cause = e.cause ?? e
        this.#backoff.failed(h.path, this.#now(), cause)
        inv.fail(
          markNotDelivered(
            new VirtualActorUnavailableError(`Activating ${h.type} ${h.id} failed: ${reasonOf(cause)}. The next call after the backoff tries again.`, {
              cause,
            }),
          ),
        )
      },
    )
  }

  /** `h`'s invocation, re-routed instead of failed when refused before it ran. */
  #retrying(h: Held): Invocation {
    const inv = h.inv
    return settledBy(
      inv,
      (v) => inv.succeed(v),
      (e) => (retryable(e) && !this.#stopped ? this.#wait(h) : inv.fail(e)),
    )
  }

  // ── confirmation (the fence of docs/singleton.md, per node) and the lease ────

  /**
   * Whether this node may serve its open shards now: confirmed by a side that stays, and holding
   * its lease (if any). `now`: a clock reading of this very moment, if the caller has one.
   */
  #mayServe(now?: number): boolean {
    return this.#confirmed(now) && (this.#leases?.valid() ?? true)
  }

  /**
   * The guard every activation shares (one closure, not one per activation): asks whether this node
   * may serve, except for the call `#deliverTo` is handing over (asked a moment ago, with nothing
   * run in between).
   */
  readonly #guardCheck = (inv: Invocation): string | undefined => (inv === this.#servingChecked ? undefined : this.#whyNotServing())

  /** Why a call may not start on an activation here now, or undefined if it may. */
  #whyNotServing(): string | undefined {
    if (!this.#confirmed()) return 'its node is not confirmed by a side of the cluster that stays'
    if (this.#leases && !this.#leases.valid()) return 'its node does not hold its virtual-actor lease'
    return undefined
  }

  #leaseLost(why: string): void {
    if (this.#stopped) return
    this.#leaseLapsed = true
    this.#ctx.log.warn({ why }, 'virtual-actor lease lost: deactivating every virtual actor here until it is held again')
    this.#deactivateAll()
    this.#leases!.ensureHeld()
  }

  /** Delivers the calls held for open shards (serving resumed). */
  #reopenHeld(): void {
    for (const g of this.#groups.values())
      this.#open(
        g,
        [...g.held.keys()].filter((s) => g.ownership.admit(s) === 'deliver'),
      )
  }

  /** Whether a side that stays confirms this node (cluster/ServingConfirmation.ts); an owner serves only then. */
  readonly #confirmation: ServingConfirmation

  /**
   * This node learned it is down: stop serving at once, not when the last confirmation runs out (up
   * to its window later; the cluster simulator found a downed owner still serving beside the shard's
   * new owner in that time).
   */
  #fenceIfDown(): void {
    const system = this.#ctx.system
    if (!system.clustered) return
    const cluster = system.cluster
    if (!cluster.downed && cluster.status !== 'down' && cluster.status !== 'removed') return
    if (!this.#confirmation.lapse(cluster.now())) return
    this.#ctx.log.warn('this node is down: deactivating every virtual actor here')
    this.#deactivateAll()
  }

  /** Every activation here stops after its current turn (this node may no longer serve). */
  #deactivateAll(): void {
    for (const g of this.#groups.values()) for (const a of g.activations.values()) this.#deactivate(a)
  }

  /**
   * Whether members confirm this node's side within 0.8 × downMargin: an owner serves only then,
   * so one on the losing side of a partition stops before the other side's margin has passed.
   * On a lapse every activation is deactivated; calls wait until confirmations resume.
   */
  /** The cluster's heartbeat confirmations, as ServingConfirmation asks them (one function, not one per call). */
  readonly #confirmedUntil = (window: number, notBefore: number): number => this.#ctx.system.cluster.confirmedUntil(window, notBefore)

  #confirmed(now?: number): boolean {
    const system = this.#ctx.system
    if (!system.clustered) return true
    const c = this.#confirmation
    const serving = c.check(now ?? system.now(), this.#confirmedUntil)
    if (c.change === 'again') this.#ctx.log.info('confirmed again by a side that stays: serving virtual actors again')
    // First confirmed (a node that just joined) or again: the calls held meanwhile go now. Their
    // methods may run a while: ask again, so that a caller (#routeCall) acts on an answer of now.
    if (c.change === 'first' || c.change === 'again') {
      this.#reopenHeld()
      return this.#confirmed()
    } else if (c.change === 'lapsed') {
      this.#ctx.log.warn('not confirmed by a side that stays: deactivating every virtual actor here until members confirm this node again')
      this.#deactivateAll()
    }
    return serving
  }

  #activate(g: Group, h: Held, shard: number): Activation | undefined {
    const entry = this.#types.get(h.type)
    if (!entry?.factory) {
      h.inv.fail(
        markNotDelivered(
          new VirtualActorUnavailableError(
            `This node owns shard ${shard} of ${h.type} but never called virtualActors.host(${h.type}): every node with role ${g.role ?? '(any)'} must host it.`,
          ),
        ),
      )
      return undefined
    }
    const waitMs = this.#backoff.retryAfter(h.path, this.#now())
    if (waitMs > 0) {
      const error = this.#backoff.detail(h.path)
      h.inv.fail(
        markNotDelivered(
          new VirtualActorUnavailableError(
            `Activating ${h.type} ${h.id} failed ${this.#backoff.failures(h.path)} time(s), last: ${reasonOf(error)}. Next attempt in ${Math.ceil(waitMs)} ms.`,
            { cause: error },
          ),
        ),
      )
      return undefined
    }
    let target: LocalTarget & { readonly id: ActorId }
    this.#stoppedUnlisted = undefined
    try {
      target = this.#ctx.actors.spawnAt(h.path, entry.Class, makeWith(entry.factory, h.id), ANYWHERE, this.#activationStopped)
    } catch (err) {
      this.#backoff.failed(h.path, this.#now(), err)
      h.inv.fail(
        markNotDelivered(
          new VirtualActorUnavailableError(`Activating ${h.type} ${h.id} failed: ${reasonOf(err)}. The next call after the backoff tries again.`, {
            cause: err,
          }),
        ),
      )
      return undefined
    }
    this.activations++
    const a: Activation = { target, shard, idle: entry.idleTimeout, lastUsed: this.#now(), deactivating: false, router: undefined }
    g.activations.set(h.path, a)
    this.#live++
    if (this.#maxActive > 0 && this.#live > this.#maxActive) this.#evict(a)
    // Checked as each call starts (not when it queues): none runs once confirmations lapsed.
    this.#ctx.actors.guard(target.id, this.#guardCheck)
    if (this.#stoppedUnlisted === target.id) this.#ended(target.id)
    return a
  }

  /**
   * A caller whose call this node refused gets this node's table, once per table: if the caller's
   * was the older one it adopts it at once, instead of retrying every 25 ms until the next resend
   * (a caller with a stale table sent a thousand refused calls a second: the cluster simulator,
   * seed 22 of `--gap 5 --downing keep-oldest`). A caller with the newer table ignores it.
   */
  #tellTable(g: Group, caller: ClusterNode): void {
    const table = g.ownership.table
    if (!table || g.told.get(caller.uid) === table) return
    if (g.told.size >= MAX_TOLD) g.told.clear()
    g.told.set(caller.uid, table)
    this.#send([caller], encodeTable(g.role, table))
  }

  #hold(g: Group, shard: number, h: Held): void {
    if (!this.#room()) return
    let list = g.held.get(shard)
    if (!list) g.held.set(shard, (list = []))
    list.push(h)
    this.#heldCount++
  }

  #wait(h: Held): void {
    if (!this.#room()) return
    this.#waiting.push(h)
    this.#heldCount++
    this.#retrySoon()
  }

  /** Whether one more call may be held; past bufferSize the oldest waiting call fails. */
  #room(): boolean {
    if (this.#heldCount < this.#bufferSize) return true
    const oldest = this.#waiting.shift()
    if (!oldest) return true
    this.#heldCount--
    oldest.inv.fail(
      markNotDelivered(
        new VirtualActorUnavailableError(`${this.#bufferSize} calls are waiting for virtual actors on this node (bufferSize); this, the oldest, was dropped.`),
      ),
    )
    return true
  }

  /**
   * Calls are held because this node may not serve yet (not confirmed, or no lease): look again
   * shortly rather than at the next tick, so a node that just joined serves as soon as it may.
   */
  #recheckServing(): void {
    if (this.#serveTimer || this.#stopped) return
    this.#serveTimer = setTimeout(() => {
      this.#serveTimer = undefined
      if (this.#mayServe()) this.#reopenHeld()
    }, RETRY_SOON)
    this.#serveTimer.unref()
  }

  /** Routes the waiting calls again shortly (a table, an announcement or a retry may have changed things). */
  #retrySoon(): void {
    if (this.#retryTimer || this.#stopped) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#rerouteWaiting()
    }, RETRY_SOON)
    this.#retryTimer.unref()
  }

  #rerouteWaiting(): void {
    const waiting = this.#waiting
    this.#waiting = []
    this.#heldCount -= waiting.length
    const now = this.#now()
    for (const h of waiting) {
      // Fail just before the caller's own timeout would, saying why (a TimeoutError would not).
      if (h.inv.deadline !== undefined && h.inv.deadline - GIVE_UP_EARLY <= now) {
        h.inv.fail(markNotDelivered(new VirtualActorUnavailableError(this.#why(h))))
        continue
      }
      this.#route(h)
    }
  }

  #why(h: Held): string {
    const role = this.#roleOf(h.type)
    if (!role) return `No node hosts virtual actor type ${h.type}: call virtualActors.host(${h.type}, …) on the nodes that should run it.`
    return `No node served ${h.type} ${h.id} in time (shard ${shardOf(h.type, h.id, this.#shards)}, role ${role.role ?? '(any)'}): its owner may be moving, or waiting out a crashed owner's margin.`
  }

  // ── placement ───────────────────────────────────────────────────────────────

  #groupOf(role: string | undefined): Group {
    const key = roleKey(role)
    let g = this.#groups.get(key)
    if (!g) {
      g = {
        role,
        ownership: new ShardOwnership(this.#self, this.#shards, this.#margin),
        decider: new TableDecider(this.#shards, this.#maxMoves),
        held: new Map(),
        activations: new Map(),
        draining: new Map(),
        told: new Map(),
      }
      this.#groups.set(key, g)
      this.#typeGroups.clear()
      this.#hostsGen++
      this.#apply(g, g.ownership.members(this.#groupMembers(role), this.#now()))
    }
    return g
  }

  /**
   * The members that must release a table before anyone opens a shard of `role`: every member with
   * the role (every member, for types without one), whatever it announced, until it is removed. A
   * member downed but not yet removed still counts: its side may be serving until it learns.
   */
  #groupMembers(role: string | undefined): GroupMember[] {
    const leases = this.#leases
    return placementGroup(this.#members(), role, this.#self, leases && ((uid) => leases.expired(uid)), leases && this.#leasePending)
  }

  #members(): readonly ClusterMember[] {
    const system = this.#ctx.system
    if (!system.clustered) return [{ node: system.node, status: 'up', upNumber: 1, roles: [], reachability: 'reachable' }]
    return system.cluster.membership.members
  }

  #otherMembers(): ClusterNode[] {
    return this.#members()
      .filter((m) => m.node.uid !== this.#self && m.status !== 'removed' && m.status !== 'down')
      .map((m) => m.node)
  }

  /** The node of member `uid` (cached: a node incarnation's address never changes; a miss looks again). */
  #nodeOf(uid: string): ClusterNode | undefined {
    const known = this.#nodesByUid.get(uid)
    if (known) return known
    const node = this.#members().find((m) => m.node.uid === uid)?.node
    if (node) {
      if (this.#nodesByUid.size >= 10_000) this.#nodesByUid.clear()
      this.#nodesByUid.set(uid, node)
    }
    return node
  }
  readonly #nodesByUid = new Map<string, ClusterNode>()

  /**
   * Sends the group's latest release after the current step: a round's drains each shrink it, and
   * one message with the newest state says all the earlier ones would have.
   */
  #releaseSoon(g: Group): void {
    if (this.#releasing.has(g)) return
    this.#releasing.add(g)
    queueMicrotask(() => {
      this.#releasing.delete(g)
      const r = g.ownership.release
      if (this.#stopped || !r) return
      this.#send(this.#otherMembers(), encodeReleased(g.role, r.table, r.draining))
      this.#decideSoon() // on the leader, the next round of moves may start
    })
  }
  readonly #releasing = new Set<Group>()

  /** `#decide` after the current step (a release may have ended a round of moves), once however many ask. */
  #decideSoon(): void {
    if (this.#decideQueued) return
    this.#decideQueued = true
    queueMicrotask(() => {
      this.#decideQueued = false
      if (!this.#stopped) this.#decide()
    })
  }
  #decideQueued = false

  /** The leader computes each group's next table from its up hosts and sends it to everyone. */
  #decide(): void {
    const system = this.#ctx.system
    const leader = system.clustered ? system.cluster.membership.leader?.node.uid : this.#self
    if (leader !== this.#self) return
    const members = this.#members()
    // A joining node may see itself as the leader for a moment: only a member decides (up, or
    // leaving: when every node leaves at once, the last tables hand everything over).
    const me = members.find((m) => m.node.uid === this.#self)?.status
    if (me !== 'up' && me !== 'leaving' && me !== 'exiting') return
    const up = members.filter((m) => m.status === 'up')
    const downed = new Set(members.filter((m) => m.status === 'down').map((m) => m.node.uid))
    const roles = new Set([...this.#hostsOf.values()].flat().map((t) => roleKey(t.role)))
    for (const key of roles) {
      const role = key === '' ? undefined : key
      const g = this.#groupOf(role)
      const hosts = up.filter((m) => this.#mayHost(m.node.uid, role) && (role === undefined || m.roles.includes(role))).map((m) => m.node.uid)
      const next = g.decider.next(g.ownership, hosts, this.#self, this.#now(), downed)
      if (!next) continue
      this.#adopt(g, next)
      this.#send(this.#otherMembers(), encodeTable(role, next))
    }
  }

  /** Whether member `uid` hosts a type of `role` and is ready to be given shards. */
  #mayHost(uid: string, role: string | undefined): boolean {
    if (!(this.#hostsOf.get(uid) ?? []).some((t) => t.role === role)) return false
    return uid === this.#self ? this.#ready : !this.#notReady.has(uid)
  }

  #adopt(g: Group, table: ShardTable): void {
    const before = g.ownership.table
    this.#apply(g, g.ownership.adopt(table, this.#now()))
    if (shardTableChannel.hasSubscribers && g.ownership.table === table) this.#publishTable(g, before, table)
    // Calls waiting for a table, or held for shards this table gave away, route again.
    for (const [shard, list] of g.held) {
      if (g.ownership.admit(shard) === 'hold') continue
      g.held.delete(shard)
      this.#heldCount -= list.length
      for (const h of list) this.#wait(h)
    }
    this.#retrySoon()
  }

  #publishTable(g: Group, before: ShardTable | undefined, table: ShardTable): void {
    const self = this.#ctx.system.node
    let moved = 0
    let gained = 0
    let lost = 0
    table.owners.forEach((owner, shard) => {
      const was = before?.owners[shard]
      if (owner === was) return
      moved++
      if (owner === self.uid) gained++
      else if (was === self.uid) lost++
    })
    shardTableChannel.publish({ self, role: g.role ?? '', version: table.version, moved, gained, lost })
  }

  #apply(g: Group, directives: readonly OwnershipDirective[]): void {
    for (const d of directives) {
      if (d.kind === 'release') this.#releaseSoon(g)
      else if (d.kind === 'open') this.#open(g, d.shards)
      else this.#seal(g, d.shards)
    }
  }

  #open(g: Group, shards: readonly number[]): void {
    for (const shard of shards) {
      const list = g.held.get(shard)
      if (!list) continue
      g.held.delete(shard)
      this.#heldCount -= list.length
      for (const h of list) this.#route(h)
    }
  }

  /** Past maxActive: deactivates the least recently used live activation other than `keep`. */
  #evict(keep: Activation): void {
    let lru: Activation | undefined
    for (const g of this.#groups.values())
      for (const a of g.activations.values()) {
        if (a === keep || a.deactivating) continue
        if (!lru || a.lastUsed < lru.lastUsed) lru = a
        break // each map is in use order: its first live entry is its least recently used
      }
    if (lru) this.#deactivate(lru)
  }

  /** Stops taking calls for `shards` and deactivates their activations after their current turn. */
  #seal(g: Group, shards: readonly number[]): void {
    const now = this.#now()
    const here = byShard(g.activations.values())
    for (const shard of shards) {
      const list = here.get(shard) ?? []
      if (list.length === 0) {
        this.#apply(g, g.ownership.drained(shard, now))
        continue
      }
      g.draining.set(shard, list.length)
      for (const a of list) this.#deactivate(a)
    }
  }

  /** Seals the activation (calls queued behind its turn are refused as not delivered, and re-routed) and stops it. */
  #deactivate(a: Activation): void {
    if (a.deactivating) return
    a.deactivating = true
    this.#live--
    const id = a.target.id
    this.#ctx.actors
      .runTurn(id, () => undefined, { seal: true })
      .catch(() => undefined)
      .then(() => this.#ctx.system.stop(this.#ctx.actors.refOf(id)))
      .catch((err: unknown) => this.#ctx.log.error({ err, actor: id.toString() }, 'deactivating a virtual actor failed'))
  }

  /** A graceful leave: the leader's next table gives this node's shards away; wait until they drained. */
  async #handOverAll(): Promise<void> {
    const deadline = this.#now() + 10_000
    while (this.#now() < deadline && [...this.#groups.values()].some((g) => g.activations.size > 0 || g.ownership.table?.owners.includes(this.#self))) {
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  // ── messages and time ───────────────────────────────────────────────────────

  #onMessage(from: ClusterNode, body: Buffer): void {
    if (this.#stopped) return
    let msg: VirtualMessage
    try {
      msg = decodeVirtual(body)
    } catch (e) {
      this.#ctx.log.warn({ from: from.uid, err: (e as Error).message }, 'malformed virtual-actor message dropped')
      return
    }
    if (msg.kind === 'hosts') {
      this.#hostsOf.set(from.uid, msg.types)
      if (msg.ready) this.#notReady.delete(from.uid)
      else this.#notReady.add(from.uid)
      this.#hostsChanged()
      for (const t of msg.types) this.#groupOf(t.role)
      this.#membershipChanged()
      this.#retrySoon()
    } else if (msg.kind === 'table') {
      if (msg.table.owners.length !== this.#shards) {
        this.#ctx.log.error(
          { from: from.uid, theirs: msg.table.owners.length, ours: this.#shards },
          'a node uses another number of virtual-actor shards: every node must use the same',
        )
        return
      }
      this.#adopt(this.#groupOf(msg.role), msg.table)
    } else {
      const g = this.#groups.get(roleKey(msg.role))
      if (g) this.#apply(g, g.ownership.released(from.uid, msg.table, msg.draining, this.#now()))
      this.#decideSoon()
    }
  }

  #membershipChanged(): void {
    if (this.#stopped) return
    const now = this.#now()
    this.#fenceIfDown()
    // A member seen for the first time gets our hosted types and tables at once (it must release them).
    const fresh = this.#otherMembers().filter((n) => !this.#known.has(n.uid))
    for (const n of fresh) this.#known.add(n.uid)
    if (fresh.length > 0) {
      this.#announce(fresh)
      for (const g of this.#groups.values()) if (g.ownership.table) this.#send(fresh, encodeTable(g.role, g.ownership.table))
    }
    for (const g of this.#groups.values()) this.#apply(g, g.ownership.members(this.#groupMembers(g.role), now))
    if (this.#notReady.size > 0) {
      const present = new Set(this.#otherMembers().map((n) => n.uid))
      for (const uid of this.#notReady) if (!present.has(uid)) this.#notReady.delete(uid)
    }
    this.#checkReady()
    this.#decide()
  }

  /**
   * Once this node may be given shards (`Placement.readyToHost`), it tells every member (each
   * caller decides next: on the leader, that may give it shards).
   */
  #checkReady(): void {
    if (this.#ready || this.#stopped) return
    const system = this.#ctx.system
    if (!system.clustered) {
      this.#ready = true
      return
    }
    const now = this.#now()
    if (this.#upSince === undefined && system.cluster.status === 'up') this.#upSince = now
    // Until it hosts a type it has no group to hear from (and is given nothing).
    if (!this.#hostsOf.get(this.#self)?.length) return
    if (!readyToHost(this.#groupPeers(), (uid) => this.#hostsOf.has(uid), this.#upSince, now)) return
    this.#ready = true
    this.#announce(this.#otherMembers())
  }

  /** The other present members of the placement groups of the types this node hosts: the owners its shards come from. */
  #groupPeers(): string[] {
    const roles = (this.#hostsOf.get(this.#self) ?? []).map((t) => t.role)
    const out: string[] = []
    for (const m of this.#members()) {
      if (m.node.uid === this.#self || m.status === 'removed' || m.status === 'down') continue
      if (roles.some((role) => role === undefined || m.roles.includes(role))) out.push(m.node.uid)
    }
    return out
  }

  #tick(): void {
    if (this.#stopped) return
    this.#usedClock = this.#now() + TICK
    this.#confirmed() // a lapse deactivates at once, not at the next call
    if (this.#leases) {
      this.#leases.ensureHeld()
      if (this.#leaseLapsed && this.#leases.valid()) this.#leaseLapsed = false
      this.#leases.probe(this.#leasePending)
    }
    // Calls held while this node might not serve (a lease first acquired, say) go once it may.
    if (this.#mayServe()) this.#reopenHeld()
    const now = this.#now()
    for (const g of this.#groups.values()) this.#apply(g, g.ownership.tick(now))
    this.#checkReady()
    this.#decide()
    if (this.#now() - this.#lastResend >= RESEND_EVERY) {
      this.#lastResend = this.#now()
      const others = this.#otherMembers()
      this.#announce(others)
      for (const g of this.#groups.values()) {
        // Every node passes its table on: a new leader must learn the latest before it decides, and
        // a node that missed one must get it whoever made it.
        const t = g.ownership.table
        if (t) this.#send(others, encodeTable(g.role, t))
        const released = g.ownership.release
        if (released) this.#send(others, encodeReleased(g.role, released.table, released.draining))
      }
    }
    this.#passivateIdle()
    if (this.#waiting.length > 0) this.#rerouteWaiting()
  }

  #nextIdleScan = 0

  #passivateIdle(): void {
    const now = this.#now()
    // A scan visits every activation: run it a tenth of the shortest idle timeout apart (default
    // 12 s), at least every tick, so passivation is at most ~10% late and costs little with many.
    if (now < this.#nextIdleScan) return
    let shortest = Number.POSITIVE_INFINITY
    for (const t of this.#types.values()) if (t.factory && t.idleTimeout > 0) shortest = Math.min(shortest, t.idleTimeout)
    this.#nextIdleScan = now + Math.min(10_000, Math.max(TICK, shortest / 10))
    let budget = PASSIVATIONS_PER_TICK
    for (const g of this.#groups.values()) {
      for (const a of g.activations.values()) {
        if (a.idle > 0 && now - a.lastUsed >= a.idle && !a.deactivating && !g.draining.has(a.shard)) {
          this.#deactivate(a)
          if (--budget === 0) {
            // More are due: the next tick goes on (oldest first: the map keeps activation order).
            this.#nextIdleScan = now
            return
          }
        }
      }
    }
  }

  #announce(to: readonly ClusterNode[]): void {
    this.#send(to, encodeHosts(this.#hostsOf.get(this.#self) ?? [], this.#ready))
  }

  #send(to: readonly ClusterNode[], bytes: Buffer): void {
    for (const node of to) {
      try {
        this.#ctx.control.sendControl(controlTarget(node), ControlKind.VirtualActors, bytes)
      } catch {
        // unreachable now: the periodic resend repairs it
      }
    }
  }

  #now(): number {
    return this.#ctx.system.now()
  }
}

/** Never started, and the owner may have changed: route it again (not a failed start: that waits out its backoff). */
function retryable(e: unknown): boolean {
  return (
    isNotDelivered(e) &&
    !(e instanceof ActorStartFailedError) &&
    (e instanceof ActorNotFoundError || e instanceof NodeUnreachableError || e instanceof NodeDownError)
  )
}

/** The actor factory call for one id (in its own scope: the closure keeps only these two alive). */
function makeWith(factory: (id: string) => DistributedActor, id: string): () => DistributedActor {
  return () => factory(id)
}

/** `inv` as the target sees it, but settled through `succeed` and `fail`. */
function settledBy(inv: Invocation, succeed: (value: unknown) => void, fail: (error: unknown) => void): Invocation {
  const { method, args, chain, deadline, headers, from } = inv
  return { method, args, chain, deadline, headers, from, succeed, fail }
}

function reasonOf(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const code = (e as { code?: unknown }).code
  return typeof code === 'string' ? `${e.message} (${code})` : e.message
}
