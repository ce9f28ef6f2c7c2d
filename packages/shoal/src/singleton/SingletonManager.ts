/**
 * One cluster singleton as seen from one node: the proxy that holds and forwards calls, and, on
 * nodes that may host it, the instance's lifecycle. Decisions come from the pure lifecycle core
 * (SingletonLifecycle.ts, which applies `allocate` from Allocation.ts); this shell carries out its
 * directives with the actor system, the receptionist and the lease keeper:
 * - **host**: start the instance with the factory, check it in with the receptionist (that is how
 *   other nodes find it), forward the held calls to it;
 * - **remote**: forward to the instance the receptionist lists on the host node, while that node
 *   is reachable; hold calls otherwise;
 * - **wait**: hold calls; a hosting node that must not host any more passivates its instance
 *   (`onPassivate`, bounded) and stops it.
 * With a lease ({@link LeaseStore}), the host first takes lease `singleton/<name>`, renews it every
 * quarter of its ttl, and the instance refuses every call from the moment the lease may have lapsed
 * (a guard checked as each call starts) and is stopped; the lease is released after passivation.
 * Held calls are delivered in arrival order. A forwarded call that comes back `notDelivered` (the
 * instance stopped before running it, its node became unreachable before it was sent) is held
 * again for the next instance, so a hand-over or failover costs no call that had not started.
 * @module
 */

import type { Logger } from 'pino'
import type { Invocation } from '../actor/ActorCell.ts'
import type { ActorId } from '../actor/ActorId.ts'
import type { ActorRef } from '../actor/ActorRef.ts'
import type { DistributedActor } from '../actor/DistributedActor.ts'
import {
  ActorNotFoundError,
  ConfigError,
  isNotDelivered,
  markNotDelivered,
  NodeDownError,
  NodeUnreachableError,
  SingletonUnavailableError,
  SystemShutDownError,
} from '../errors.ts'
import type { LeaseStore } from '../lease/Lease.ts'
import { LeaseKeeper } from '../lease/LeaseKeeper.ts'
import { singletonChangeChannel } from '../observability/Channels.ts'
import { ReceptionKey } from '../receptionist/ReceptionKey.ts'
import type { ClusterSystem } from '../system/ClusterSystem.ts'
import type { PluginContext } from '../system/Plugin.ts'
import type { Allocation, AllocationSettings, DownTracker } from './Allocation.ts'
import { type Directive, type EvaluateView, SingletonLifecycle } from './SingletonLifecycle.ts'

/** How soon a proxy re-decides after a forwarded call was refused (the instance moving), ms. */
const RETRY_SOON = 25

/** Makes the instance on the node chosen to host: usually `(system) => system.spawn(MyClass)`. */
export type SingletonFactory<T extends DistributedActor> = (system: ClusterSystem) => ActorRef<T>

/** Bounds of one singleton's proxy and instance. */
export interface ManagerSettings extends AllocationSettings {
  readonly bufferSize: number
  readonly allocationTimeout: number
  readonly passivateTimeout: number
  /** How long a heartbeat confirmation counts, ms (below `margin`: see Allocation.ts rule 3). */
  readonly confirmWindow: number
  /** Optional: the instance runs only while its host holds lease `singleton/<name>` in `store`. */
  readonly lease?: { readonly store: LeaseStore; readonly ttl: number }
}

interface Held {
  readonly seq: number
  readonly inv: Invocation
  readonly since: number
}

/** A snapshot of one singleton on this node, for tests, tools and metrics. */
export interface SingletonStatus {
  readonly name: string
  readonly allocation: Allocation['kind']
  readonly reason: string | undefined
  /** The node hosting the instance as this node sees it (`host:port`), if known. */
  readonly host: string | undefined
  /** The local instance, if this node hosts it. */
  readonly instance: ActorId | undefined
  readonly held: number
  /**
   * With a lease, while this node's instance runs: the lease's epoch, a fencing token that grows
   * with every new holder. Send it with writes to external systems, which refuse lower tokens.
   */
  readonly leaseEpoch: number | undefined
  readonly activations: number
  readonly passivations: number
}

/** The instance-key under which hosts check their instance in. */
export function instanceKey(name: string): ReceptionKey {
  return new ReceptionKey(`$singleton/${name}`)
}

/** One singleton on one node; see the module comment. It is the well-known target of its proxy refs. */
export class SingletonManager {
  readonly name: string
  readonly alive = true
  readonly #system: ClusterSystem
  readonly #ctx: PluginContext
  readonly #settings: ManagerSettings
  readonly #log: Logger
  readonly #key: ReceptionKey
  /** When this node learned of each down (shared by the singletons of the node). */
  readonly #downs: DownTracker
  /** Every decision about the local instance (see SingletonLifecycle.ts). */
  readonly #core: SingletonLifecycle
  /** With a lease: this node's hold on lease `singleton/<name>` (one for the manager's lifetime, so its operations stay in order). */
  readonly #lease: LeaseKeeper | undefined
  #factory: SingletonFactory<DistributedActor> | undefined
  #held: Held[] = []
  #seq = 0
  #target: ActorRef<unknown> | undefined
  #instance: ActorRef<unknown> | undefined
  /** The passivation under way, if any (a stop waits for it). */
  #passivation: Promise<void> | undefined
  #leaseHolderLogged: string | undefined
  readonly #releaseWaiters = new Set<() => void>()

  constructor(ctx: PluginContext, name: string, settings: ManagerSettings, downs: DownTracker, log: Logger) {
    const system = ctx.system
    this.#system = system
    this.#ctx = ctx
    this.name = name
    this.#settings = settings
    this.#downs = downs
    this.#log = log.child({ singleton: name })
    this.#key = instanceKey(name)
    const lease = settings.lease
    this.#core = new SingletonLifecycle(name, { ...settings, lease: lease && { ttl: lease.ttl, store: lease.store.name } }, (notBefore) =>
      system.clustered ? system.cluster.confirmedUntil(settings.confirmWindow, notBefore) : Number.POSITIVE_INFINITY,
    )
    this.#lease =
      lease &&
      new LeaseKeeper({
        store: lease.store,
        name: `singleton/${name}`,
        owner: system.node.uid,
        ttl: lease.ttl,
        log: this.#log,
        now: () => system.now(),
        onGranted: (sentAt, epoch) => {
          this.#leaseHolderLogged = undefined
          this.#apply(this.#core.leaseGranted(this.#now(), sentAt, epoch))
        },
        onLost: (why) => this.#apply(this.#core.leaseLost(this.#now(), why)),
      })
  }

  /** The one clock of this manager: decisions (backoff, lease retries, downs, fencing) and held calls' deadlines. */
  #now(): number {
    return this.#system.now()
  }

  get activations(): number {
    return this.#core.activations
  }

  get passivations(): number {
    return this.#core.passivations
  }

  /** Makes this node able to host (`singleton.host`). */
  setFactory(factory: SingletonFactory<DistributedActor>): void {
    this.#factory = factory
  }

  get hostsHere(): boolean {
    return this.#factory !== undefined
  }

  /** The receptionist key this singleton's instances are listed under. */
  get key(): ReceptionKey {
    return this.#key
  }

  /** Proxy entry: a call through a proxy ref, local or from another node. */
  deliver(inv: Invocation): void {
    if (this.#core.stopped) return inv.fail(markNotDelivered(new SystemShutDownError(`The singleton ${this.name} proxy on this node has stopped (shutdown).`)))
    const held: Held = { seq: ++this.#seq, inv, since: this.#now() }
    if (this.#target && this.#held.length === 0) this.#send(held, this.#target)
    else this.#hold(held)
  }

  status(): SingletonStatus {
    const a = this.#core.allocation
    const host = a.kind === 'remote' ? a.host.node.endpoint : a.kind === 'host' ? this.#system.node.endpoint : undefined
    return {
      name: this.name,
      allocation: a.kind,
      reason: a.kind === 'wait' ? a.reason : undefined,
      host: host && `${host.host}:${host.port}`,
      instance: this.#instance?.id,
      held: this.#held.length,
      leaseEpoch: this.#instance ? this.#core.leaseEpoch(this.#now()) : undefined,
      activations: this.activations,
      passivations: this.passivations,
    }
  }

  /** Resolves once this node runs no instance (the leave hook waits for it). */
  released(): Promise<void> {
    if (this.#core.phase === 'idle') return Promise.resolve()
    return new Promise((resolve) => this.#releaseWaiters.add(resolve))
  }

  /** Re-decides and acts; called on every membership or listing change and on a tick. */
  evaluate(): void {
    if (this.#core.stopped) return
    this.#expire()
    const now = this.#now()
    this.#apply(this.#core.evaluate(now, { canHost: this.#factory !== undefined, view: this.#view(now) }))
    const a = this.#core.allocation
    if (a.kind === 'host') {
      if (!this.#factory) return void (this.#target = undefined)
      this.#target = this.#core.phase === 'running' ? this.#instance : undefined
    } else {
      this.#target = a.kind === 'remote' && a.host.reachability === 'reachable' ? this.#instanceOn(a.host.node.uid) : undefined
    }
    this.#flush()
  }

  /** Shutdown of the plugin: passivates a local instance, fails held calls. */
  async stop(): Promise<void> {
    // First: nothing new starts (no acquire after the passivation below, no instance from an acquire in flight).
    const directives = this.#core.stop(this.#now())
    this.#apply(directives)
    if (directives.some((d) => d.kind === 'passivate')) await this.#passivation
    else await this.released()
    await this.#lease?.settled(2000) // the release is in the store before the caller closes it
    clearTimeout(this.#retryTimer)
    for (const h of this.#held.splice(0))
      h.inv.fail(
        markNotDelivered(new SystemShutDownError(`The singleton ${this.name} proxy on this node stopped (shutdown) before an instance took this call.`)),
      )
  }

  // ── deciding ────────────────────────────────────────────────────────────────

  /** This node's view of the cluster for the core, or undefined outside a cluster. */
  #view(now: number): EvaluateView | undefined {
    const system = this.#system
    if (!system.clustered) return undefined
    const { members, leader } = system.cluster.membership
    const listedElsewhere = system.receptionist
      .lookup(this.#key)
      .map((r) => r.id.node.uid)
      .filter((uid) => uid !== system.node.uid)
    // Noted here, not only on the cluster event: a decision may run first (the receptionist drops the
    // downed host's listing on the same event, which triggers one), and must already see the down.
    this.#downs.observe(members, now)
    return { self: system.node.uid, members, leader: leader?.node.uid, downSince: this.#downs.since, listedElsewhere }
  }

  /**
   * Checked as each call to the instance starts: a reason refuses it (as not delivered, and the
   * cell takes no more calls). What follows (a re-decision, stopping the instance) runs after the
   * current turn, not from inside the cell that asked.
   */
  #callGuard(): string | undefined {
    const { refuse, directives } = this.#core.guard(this.#now())
    if (directives.length > 0) queueMicrotask(() => this.#apply(directives))
    return refuse
  }

  #instanceOn(uid: string): ActorRef<unknown> | undefined {
    return this.#system.receptionist.lookup(this.#key).findLast((r) => r.id.node.uid === uid)
  }

  // ── carrying out the core's directives ──────────────────────────────────────

  /** Applies directives in order; `ref`: the instance they are about (it may be forgotten already). */
  #apply(directives: readonly Directive[], ref = this.#instance): void {
    for (const d of directives) {
      switch (d.kind) {
        case 'log': {
          const fields = d.withInstance && ref ? { ...d.fields, instance: ref.id.toString() } : d.fields
          this.#log[d.level](fields, d.msg)
          break
        }
        case 'acquire-lease':
          this.#acquire(this.#lease!)
          break
        case 'release-lease':
          void this.#lease?.release()
          break
        case 'report-holder':
          this.#reportHolder()
          break
        case 'start-instance':
          ref = this.#start() ?? ref
          break
        case 'activated':
          if (ref) this.#activated(ref)
          break
        case 'passivate':
          this.#passivation = this.#passivateSafely(d.fenced, d.boundMs)
          break
        case 'passivated':
          if (ref) this.#publish('passivated', ref)
          break
        case 'idle':
          this.#instance = undefined
          for (const w of this.#releaseWaiters) w()
          this.#releaseWaiters.clear()
          break
        case 'evaluate':
          this.evaluate()
          break
      }
    }
  }

  /** Makes the instance and tells the core how it went; returns it if it runs. */
  #start(): ActorRef<unknown> | undefined {
    let ref: ActorRef<unknown>
    try {
      ref = this.#factory!(this.#system) as ActorRef<unknown>
      if (ref?.id?.node.uid !== this.#system.node.uid)
        throw new ConfigError(`the factory of singleton ${this.name} must spawn the instance on this node (system.spawn), not return ${String(ref)}`)
    } catch (err) {
      this.#apply(this.#core.startFailed(this.#now(), err))
      return undefined
    }
    this.#instance = ref
    this.#ctx.actors.guard(ref.id, () => this.#callGuard())
    this.#apply(this.#core.started(this.#now()), ref)
    return ref
  }

  #activated(ref: ActorRef<unknown>): void {
    this.#publish('activated', ref)
    this.#system.receptionist.checkIn(ref as ActorRef<DistributedActor>, this.#key)
    // An instance that stops by itself (a failed onStart, stop()) is replaced, after a backoff.
    void this.#system.watch(ref).then(
      () => {
        if (this.#instance === ref) this.#apply(this.#core.instanceEnded(this.#now()), ref)
      },
      () => undefined,
    )
  }

  /** Takes the lease; the grant comes back through the keeper's `onGranted`. */
  #acquire(lease: LeaseKeeper): void {
    lease.acquire().then(
      (epoch) => {
        if (epoch === undefined) this.#apply(this.#core.leaseRefused(this.#now()))
      },
      (err: unknown) => this.#apply(this.#core.leaseFailed(this.#now(), err)),
    )
  }

  /** Someone else holds the lease: say who when that changes. */
  #reportHolder(): void {
    void this.#settings.lease!.store.leaseHolder(`singleton/${this.name}`).then(
      (holder) => {
        if (holder !== this.#leaseHolderLogged) this.#log.info({ holder: holder ?? null }, 'singleton waits for its lease, held by another node')
        this.#leaseHolderLogged = holder
      },
      () => undefined,
    )
  }

  /** Passivates without letting a failure escape (it runs detached from the decision that began it). */
  #passivateSafely(fenced: boolean, bound: number): Promise<void> {
    return this.#passivate(fenced, bound).catch((err: unknown) => this.#log.error({ err }, 'singleton passivation failed'))
  }

  async #passivate(fenced: boolean, bound: number): Promise<void> {
    const ref = this.#instance!
    if (this.#target === ref) this.#target = undefined
    let timer: NodeJS.Timeout | undefined
    // Sealed: calls arriving from now on are refused as notDelivered and go to the next instance.
    const turn = this.#ctx.actors.runTurn(ref.id, (actor) => (fenced ? undefined : actor.onPassivate?.()), { seal: true })
    await Promise.race([turn.catch((err: unknown) => this.#log.error({ err }, 'onPassivate failed')), new Promise((r) => (timer = setTimeout(r, bound)))])
    clearTimeout(timer)
    await this.#system.stop(ref)
    this.#apply(this.#core.passivated(this.#now()), ref)
  }

  #publish(event: 'activated' | 'passivated', ref: ActorRef<unknown>): void {
    if (singletonChangeChannel.hasSubscribers)
      singletonChangeChannel.publish({ self: this.#system.node, singleton: this.name, event, instance: ref.id.toString() })
  }

  // ── holding and forwarding ──────────────────────────────────────────────────

  #hold(h: Held): void {
    if (this.#held.length >= this.#settings.bufferSize) {
      const oldest = this.#held.shift()!
      oldest.inv.fail(
        markNotDelivered(
          new SingletonUnavailableError(
            `The singleton ${this.name} proxy holds ${this.#settings.bufferSize} calls waiting for an instance (bufferSize); this, the oldest, was dropped. Retry later, or raise bufferSize.`,
          ),
        ),
      )
    }
    // Calls coming back from a failed forward go back in their original order.
    let i = this.#held.length
    while (i > 0 && this.#held[i - 1]!.seq > h.seq) i--
    this.#held.splice(i, 0, h)
  }

  #flush(): void {
    const target = this.#target
    if (!target) return
    for (const h of this.#held.splice(0)) this.#send(h, target)
  }

  #send(h: Held, target: ActorRef<unknown>): void {
    const now = this.#now()
    const deadline = h.inv.deadline
    if (deadline !== undefined && deadline <= now) return // the caller has given up already
    const timeout = deadline === undefined ? this.#system.callTimeout : deadline - now
    this.#ctx.calls.forward(target, h.inv.method, h.inv.args, h.inv.chain, timeout, h.inv.headers).then(
      (v) => h.inv.succeed(v),
      (e: unknown) => {
        if (!this.#core.stopped && retryable(e)) {
          // The instance moved or its node went away before the call started: hold it for the next.
          if (this.#target === target) this.#target = undefined
          this.#hold(h)
          this.#flush() // if a new instance is already known, at once
          this.#retrySoon()
        } else h.inv.fail(e)
      },
    )
  }

  /** Re-decides shortly rather than on the next tick, once per burst of refused calls. */
  #retrySoon(): void {
    if (this.#retryTimer || this.#held.length === 0) return
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.evaluate()
    }, RETRY_SOON)
    this.#retryTimer.unref()
  }

  #retryTimer: NodeJS.Timeout | undefined

  /** Fails held calls past the allocation timeout; forgets those whose caller gave up. */
  #expire(): void {
    const now = this.#now()
    const limit = this.#settings.allocationTimeout
    const keep: Held[] = []
    for (const h of this.#held) {
      if (h.inv.deadline !== undefined && h.inv.deadline <= now) continue
      if (now - h.since >= limit) {
        h.inv.fail(
          markNotDelivered(new SingletonUnavailableError(`No instance of singleton ${this.name} within ${limit} ms (allocationTimeout): ${this.#why()}.`)),
        )
      } else keep.push(h)
    }
    this.#held = keep
  }

  #why(): string {
    const a = this.#core.allocation
    if (a.kind === 'remote')
      return `its host ${a.host.node.endpoint.host}:${a.host.node.endpoint.port} is ${a.host.reachability} and ${this.#instanceOn(a.host.node.uid) ? 'lists' : 'does not list'} an instance`
    if (a.kind === 'host') return 'this node is starting it'
    return {
      fenced: 'this node is on the side of a partition the downing strategy would down',
      unconfirmed: 'members do not confirm this node recently enough to form a side that stays (partitioned, or just back from one)',
      'no-candidate': `no up member${this.#settings.role ? ` with role "${this.#settings.role}"` : ''} to host it`,
      'hand-over': 'waiting for the previous host to finish leaving',
      'instance-elsewhere': 'another node still lists an instance (waiting for it to stop, or for its node to be downed)',
      margin: 'waiting out the margin after the previous host was downed',
    }[a.reason]
  }
}

/** Never started, and the next instance may take it: hold it again. */
function retryable(e: unknown): boolean {
  return (
    isNotDelivered(e) &&
    (e instanceof ActorNotFoundError || e instanceof NodeUnreachableError || e instanceof NodeDownError || e instanceof SystemShutDownError)
  )
}
