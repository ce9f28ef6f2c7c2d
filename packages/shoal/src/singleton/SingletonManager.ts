/**
 * One cluster singleton as seen from one node: the proxy that holds and forwards calls, and, on
 * nodes that may host it, the instance's lifecycle. Decisions come from the pure `allocate`
 * (Allocation.ts); this shell carries them out:
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
import { type Allocation, type AllocationSettings, allocate, type DownTracker, wouldBeDowned } from './Allocation.ts'

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
  #factory: SingletonFactory<DistributedActor> | undefined
  #held: Held[] = []
  #seq = 0
  #target: ActorRef<unknown> | undefined
  #instance: ActorRef<unknown> | undefined
  #phase: 'idle' | 'acquiring' | 'starting' | 'running' | 'passivating' = 'idle'
  #allocation: Allocation = { kind: 'wait', reason: 'no-candidate' }
  #stopped = false
  #warnedNoFactory = false
  readonly #releaseWaiters = new Set<() => void>()
  activations = 0
  passivations = 0

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
    this.#lease =
      lease &&
      new LeaseKeeper({
        store: lease.store,
        name: `singleton/${name}`,
        owner: system.node.uid,
        ttl: lease.ttl,
        log: this.#log,
        onLost: (why) => this.#leaseLost(why),
      })
  }

  /** The one clock of this manager's decisions (backoff, lease retries, downs, fencing); call deadlines are the call path's wall clock. */
  #now(): number {
    return this.#system.now()
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
    if (this.#stopped) return inv.fail(markNotDelivered(new SystemShutDownError(`The singleton ${this.name} proxy on this node has stopped (shutdown).`)))
    const held: Held = { seq: ++this.#seq, inv, since: Date.now() }
    if (this.#target && this.#held.length === 0) this.#send(held, this.#target)
    else this.#hold(held)
  }

  status(): SingletonStatus {
    const a = this.#allocation
    const host = a.kind === 'remote' ? a.host.node.endpoint : a.kind === 'host' ? this.#system.node.endpoint : undefined
    return {
      name: this.name,
      allocation: a.kind,
      reason: a.kind === 'wait' ? a.reason : undefined,
      host: host && `${host.host}:${host.port}`,
      instance: this.#instance?.id,
      held: this.#held.length,
      leaseEpoch: this.#instance ? this.#lease?.epoch : undefined,
      activations: this.activations,
      passivations: this.passivations,
    }
  }

  /** Resolves once this node runs no instance (the leave hook waits for it). */
  released(): Promise<void> {
    if (this.#phase === 'idle') return Promise.resolve()
    return new Promise((resolve) => this.#releaseWaiters.add(resolve))
  }

  /** Re-decides and acts; called on every membership or listing change and on a tick. */
  evaluate(): void {
    if (this.#stopped) return
    this.#expire()
    const a = this.#decide()
    this.#allocation = a
    if (a.kind === 'host') {
      if (!this.#factory) return this.#noFactory()
      if (this.#phase === 'idle' && this.#lease) this.#acquireThenStart(this.#lease)
      else if (this.#phase === 'idle') this.#start()
      this.#target = this.#phase === 'running' ? this.#instance : undefined
    } else {
      if (this.#instance && this.#phase === 'running') void this.#passivateSafely(a.kind === 'wait' && (a.reason === 'fenced' || a.reason === 'unconfirmed'))
      this.#target = a.kind === 'remote' && a.host.reachability === 'reachable' ? this.#instanceOn(a.host.node.uid) : undefined
    }
    this.#flush()
  }

  /** Shutdown of the plugin: passivates a local instance, fails held calls. */
  async stop(): Promise<void> {
    // First: nothing new starts (no acquire after the passivation below, no instance from an acquire in flight).
    this.#stopped = true
    if (this.#instance && this.#phase === 'running') await this.#passivateSafely(false)
    else await this.released()
    await this.#lease?.settled(2000) // the release is in the store before the caller closes it
    clearTimeout(this.#retryTimer)
    for (const h of this.#held.splice(0))
      h.inv.fail(
        markNotDelivered(new SystemShutDownError(`The singleton ${this.name} proxy on this node stopped (shutdown) before an instance took this call.`)),
      )
  }

  // ── deciding ────────────────────────────────────────────────────────────────

  #decide(): Allocation {
    const system = this.#system
    if (!system.clustered) return this.#factory ? { kind: 'host' } : { kind: 'wait', reason: 'no-candidate' }
    const { members, leader } = system.cluster.membership
    const listedElsewhere = system.receptionist
      .lookup(this.#key)
      .map((r) => r.id.node.uid)
      .filter((uid) => uid !== system.node.uid)
    const now = system.cluster.now()
    // Noted here, not only on the cluster event: a decision may run first (the receptionist drops the
    // downed host's listing on the same event, which triggers one), and must already see the down.
    this.#downs.observe(members, now)
    const doomed = this.#settings.downing !== undefined && wouldBeDowned({ self: system.node.uid, members }, this.#settings.downing)
    if (!doomed) this.#doomedSince = undefined
    else this.#doomedSince ??= now
    const fencedFor = this.#doomedSince === undefined ? 0 : now - this.#doomedSince
    const a = allocate(
      {
        self: system.node.uid,
        members,
        leader: leader?.node.uid,
        downSince: this.#downs.since,
        now,
        hosting: this.#phase !== 'idle' && this.#phase !== 'acquiring',
        listedElsewhere,
        fencedFor,
        confirmed: this.#confirmed(),
      },
      this.#settings,
    )
    // A fence: confirmations from before it no longer count, the node must hear afresh.
    if (a.kind === 'wait' && a.reason === 'fenced') this.#unconfirmedSince(system.cluster.now())
    return a
  }

  // ── confirmation ────────────────────────────────────────────────────────────

  /** Until when (cluster clock) heartbeat answers confirm this node's side; recomputed once it passes. */
  #confirmedUntil = Number.NEGATIVE_INFINITY
  /** Confirmations of heartbeats sent before this (cluster clock) do not count: set at a lapse or fence. */
  #notBefore = Number.NEGATIVE_INFINITY
  /** `never` until first confirmed (a starting node has nothing to fence), then confirmed or lapsed. */
  #confirmation: 'never' | 'confirmed' | 'lapsed' = 'never'

  /**
   * Whether members confirm this node's side within the confirmation window (see
   * `confirmedUntil` in cluster/Downing.ts). Checked as each call to the instance starts and before
   * starting one. Once it lapses, only confirmations of heartbeats sent after the lapse count.
   */
  #confirmed(): boolean {
    const system = this.#system
    if (!system.clustered) return true
    const cluster = system.cluster
    const now = cluster.now()
    if (now < this.#confirmedUntil) return true
    this.#confirmedUntil = cluster.confirmedUntil(this.#settings.confirmWindow, this.#notBefore)
    if (now < this.#confirmedUntil) {
      if (this.#confirmation === 'lapsed') this.#log.info({ event: 'confirmed' }, 'confirmed again by a side that stays: may host the singleton again')
      this.#confirmation = 'confirmed'
      return true
    }
    this.#unconfirmedSince(now)
    return false
  }

  #unconfirmedSince(now: number): void {
    if (this.#confirmation !== 'confirmed') return
    this.#confirmation = 'lapsed'
    this.#notBefore = now
    this.#confirmedUntil = Number.NEGATIVE_INFINITY
    if (this.#instance)
      this.#log.warn(
        { event: 'unconfirmed', windowMs: this.#settings.confirmWindow },
        'singleton host not confirmed by a side that stays: refusing calls until members confirm it again',
      )
  }

  /**
   * Checked as each call to the instance starts: a reason refuses it (as not delivered, and the
   * cell takes no more calls), and the instance is stopped and replaced once confirmed again.
   */
  #callGuard(): string | undefined {
    if (!this.#confirmed()) {
      queueMicrotask(() => this.evaluate())
      return `the host of singleton ${this.name} is not confirmed by a side of the cluster that stays`
    }
    return this.#lease ? this.#leaseGuard(this.#lease) : undefined
  }

  #instanceOn(uid: string): ActorRef<unknown> | undefined {
    return this.#system.receptionist.lookup(this.#key).findLast((r) => r.id.node.uid === uid)
  }

  #noFactory(): void {
    this.#target = undefined
    if (this.#warnedNoFactory) return
    this.#warnedNoFactory = true
    this.#log.error(
      { role: this.#settings.role ?? null },
      'this node was chosen to host the singleton but never called singleton.host() for it: every node that may host (every node with its role) must call host(); give proxy-only nodes no such role',
    )
  }

  // ── instance lifecycle ──────────────────────────────────────────────────────

  #start(): void {
    if (this.#now() < this.#retryAt) return
    this.#phase = 'starting'
    let ref: ActorRef<unknown>
    try {
      ref = this.#factory!(this.#system) as ActorRef<unknown>
      if (ref?.id?.node.uid !== this.#system.node.uid)
        throw new ConfigError(`the factory of singleton ${this.name} must spawn the instance on this node (system.spawn), not return ${String(ref)}`)
    } catch (err) {
      this.#phase = 'idle'
      this.#failed()
      this.#log.error({ err, retryInMs: this.#retryAt - this.#now() }, 'the singleton factory failed')
      return
    }
    this.#instance = ref
    this.#phase = 'running'
    this.#ctx.actors.guard(ref.id, () => this.#callGuard())
    this.activations++
    this.#log.info({ event: 'activated', instance: ref.id.toString() }, 'singleton activated')
    this.#publish('activated', ref)
    this.#system.receptionist.checkIn(ref as ActorRef<DistributedActor>, this.#key)
    // An instance that stops by itself (a failed onStart, stop()) is replaced, after a backoff.
    void this.#system.watch(ref).then(
      () => this.#instanceEnded(ref),
      () => undefined,
    )
  }

  // ── lease ───────────────────────────────────────────────────────────────────

  /** With a lease: this node's hold on lease `singleton/<name>` (one for the manager's lifetime, so its operations stay in order). */
  readonly #lease: LeaseKeeper | undefined
  #leaseRetryAt = 0
  #leaseHolderLogged: string | undefined

  /** Takes the lease, then starts the instance if this node is still to host it and the term is still good. */
  #acquireThenStart(lease: LeaseKeeper): void {
    const now = this.#now()
    if (now < this.#leaseRetryAt || now < this.#retryAt) return
    this.#phase = 'acquiring'
    lease.acquire().then(
      (epoch) => {
        this.#settleIdle()
        if (epoch === undefined) return this.#waitForLease()
        this.#leaseHolderLogged = undefined
        if (this.#stopped || this.#allocation.kind !== 'host' || !lease.valid()) return void lease.release()
        this.#start()
        if (!this.#instance) return void lease.release()
        this.evaluate()
      },
      (err: unknown) => {
        this.#settleIdle()
        this.#leaseRetryAt = this.#now() + this.#settings.lease!.ttl / 4
        this.#log.warn({ err, store: this.#settings.lease!.store.name }, 'singleton lease store failed: not starting the instance')
      },
    )
  }

  /**
   * Checked as each call to the instance starts: a reason refuses it. A refusal also has the
   * instance replaced, after the current turn (not from inside the cell that asked).
   */
  #leaseGuard(lease: LeaseKeeper): string | undefined {
    if (lease.valid()) return undefined
    queueMicrotask(() => this.#leaseLost('a call found it lapsed'))
    return `the lease of singleton ${this.name} may have lapsed`
  }

  /** Someone else holds the lease: try again in a quarter ttl; say who holds it when that changes. */
  #waitForLease(): void {
    const lease = this.#settings.lease!
    this.#leaseRetryAt = this.#now() + lease.ttl / 4
    void lease.store.leaseHolder(`singleton/${this.name}`).then(
      (holder) => {
        if (holder !== this.#leaseHolderLogged) this.#log.info({ holder: holder ?? null }, 'singleton waits for its lease, held by another node')
        this.#leaseHolderLogged = holder
      },
      () => undefined,
    )
  }

  /** The lease is gone (refused, another epoch, or its term ran out): stop the instance at once. */
  #leaseLost(why: string): void {
    if (!this.#instance || this.#phase !== 'running') return
    this.#log.warn({ event: 'lease-lost', why, instance: this.#instance.id.toString() }, 'singleton lease lost: stopping the instance')
    void this.#passivateSafely(true)
  }

  /** Back to idle after acquiring; a stop waiting for this node to run nothing may go on. */
  #settleIdle(): void {
    if (this.#phase === 'acquiring') this.#phase = 'idle'
    if (this.#phase !== 'idle' || this.#instance) return
    for (const w of this.#releaseWaiters) w()
    this.#releaseWaiters.clear()
  }

  #instanceEnded(ref: ActorRef<unknown>): void {
    if (this.#instance !== ref || this.#phase !== 'running') return
    this.#failed()
    this.#log.warn(
      { instance: ref.id.toString(), retryInMs: this.#retryAt - this.#now() },
      'the singleton instance stopped by itself; starting another after a pause',
    )
    this.#released(ref)
  }

  /** Exponential backoff between failed starts (100 ms … 10 s), reset once an instance passivates normally. */
  #failed(): void {
    this.#failures++
    this.#retryAt = this.#now() + Math.min(10_000, 100 * 2 ** Math.min(this.#failures - 1, 7))
  }

  #failures = 0
  #retryAt = 0
  /** Since when the downing strategy would down this node's side (undefined: it would not). */
  #doomedSince: number | undefined

  /** Passivates without letting a failure escape (it runs detached from the decision that began it). */
  #passivateSafely(fenced: boolean): Promise<void> {
    return this.#passivate(fenced).catch((err: unknown) => this.#log.error({ err }, 'singleton passivation failed'))
  }

  async #passivate(fenced: boolean): Promise<void> {
    const ref = this.#instance!
    this.#phase = 'passivating'
    this.#failures = 0
    if (this.#target === ref) this.#target = undefined
    const s = this.#settings
    // Fenced: the other side may start its instance `margin` after downing this one; be done well before.
    let bound = fenced ? Math.min(s.passivateTimeout, s.margin / 2) : s.passivateTimeout
    // With a lease, onPassivate gets no longer than the term: after it, another node may hold the lease.
    if (this.#lease) bound = Math.min(bound, this.#lease.remaining())
    this.#log.info({ event: 'passivating', instance: ref.id.toString(), fenced }, 'singleton passivating')
    let timer: NodeJS.Timeout | undefined
    // Sealed: calls arriving from now on are refused as notDelivered and go to the next instance.
    const turn = this.#ctx.actors.runTurn(ref.id, (actor) => (fenced ? undefined : actor.onPassivate?.()), { seal: true })
    await Promise.race([turn.catch((err: unknown) => this.#log.error({ err }, 'onPassivate failed')), new Promise((r) => (timer = setTimeout(r, bound)))])
    clearTimeout(timer)
    await this.#system.stop(ref)
    this.#released(ref)
    this.#log.info({ event: 'passivated', instance: ref.id.toString() }, 'singleton passivated')
    this.#publish('passivated', ref)
    this.evaluate()
  }

  #publish(event: 'activated' | 'passivated', ref: ActorRef<unknown>): void {
    if (singletonChangeChannel.hasSubscribers)
      singletonChangeChannel.publish({ self: this.#system.node, singleton: this.name, event, instance: ref.id.toString() })
  }

  #released(ref: ActorRef<unknown>): void {
    if (this.#instance !== ref) return
    this.#instance = undefined
    this.#phase = 'idle'
    void this.#lease?.release()
    this.passivations++
    for (const w of this.#releaseWaiters) w()
    this.#releaseWaiters.clear()
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
    const now = Date.now()
    const deadline = h.inv.deadline
    if (deadline !== undefined && deadline <= now) return // the caller has given up already
    const timeout = deadline === undefined ? this.#system.callTimeout : deadline - now
    this.#ctx.calls.forward(target, h.inv.method, h.inv.args, h.inv.chain, timeout, h.inv.headers).then(
      (v) => h.inv.succeed(v),
      (e: unknown) => {
        if (!this.#stopped && retryable(e)) {
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
    const now = Date.now()
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
    const a = this.#allocation
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
