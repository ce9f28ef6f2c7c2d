/**
 * The cluster simulator's shell for one singleton on one node: the real {@link SingletonLifecycle}
 * (with `allocate()` and the lease term inside it), fed from the node's `Membership` core,
 * a modelled receptionist listing and the simulator's lease store; plus a client on the node that
 * calls the singleton through its proxy. The instance's state is event-sourced on the simulator's
 * journal: it recovers on start, and every call it serves appends one event, so two instances
 * serving at once show up as a write at a stale sequence number.
 * @module
 */

import { CONFIRM_SHARE } from '../cluster/ServingConfirmation.ts'
import { DownTracker, oldestMember } from '../singleton/Allocation.ts'
import { type Directive, SingletonLifecycle } from '../singleton/SingletonLifecycle.ts'
import { defaultDownMargin, FENCE_AFTER } from '../singleton/SingletonPlugin.ts'
import type { ClusterSimulator, SimNodeView } from './ClusterSimulator.ts'
import { SIM_ROLES } from './SimRoles.ts'

/** The singleton's settings in a simulation (defaults as `singletonPlugin` derives them). */
export interface SingletonSimSettings {
  /** The lease's ttl, ms, or undefined for no lease. Default 8000 (the plugin's default). */
  readonly leaseTtl: number | undefined
  /** @internal Mutation checks: `false` ignores the lease's validity (SingletonLifecycle `checkLease`). */
  readonly checkLease: boolean
  /** Each node's client calls the singleton this often, ms. Default 500. */
  readonly callEvery: number
}

const NAME = 'sim'
const TICK = 250
const LISTING_EVERY = 2000

/** One node's singleton shell (see the module comment). */
export class SimSingleton {
  readonly life: SingletonLifecycle
  readonly #cs: ClusterSimulator
  readonly #node: SimNodeView
  readonly #s: SingletonSimSettings
  readonly #downs = new DownTracker()
  /** The role that may host it (in a run with roles), else undefined: any node. */
  readonly #role: string | undefined
  /** Who lists an instance, as this node's receptionist knows it (uid → listed). */
  readonly listings = new Map<string, boolean>()
  /** The instance's state: events recovered plus appended (its next sequence number). */
  #seq: number | undefined
  #epoch: number | undefined
  #crashed = false
  #callSeq = 0
  served = 0
  refused = 0

  constructor(cs: ClusterSimulator, node: SimNodeView, settings: Partial<SingletonSimSettings> | undefined) {
    this.#cs = cs
    this.#node = node
    this.#s = { leaseTtl: 8000, checkLease: true, callEvery: 500, ...settings }
    this.#role = cs.options.roles ? SIM_ROLES.singleton : undefined
    const stableAfter = node.core.downing.stableAfter
    const margin = defaultDownMargin(stableAfter)
    this.confirmWindow = margin * CONFIRM_SHARE
    const ttl = this.#s.leaseTtl
    this.life = new SingletonLifecycle(
      NAME,
      {
        role: this.#role,
        strategy: oldestMember,
        downing: node.core.downing,
        margin,
        fenceAfter: FENCE_AFTER,
        confirmWindow: margin * CONFIRM_SHARE,
        passivateTimeout: 1000,
        lease: ttl === undefined ? undefined : { ttl, store: 'sim' },
        checkLease: this.#s.checkLease,
      },
      (notBefore) => node.core.confirmedUntil(this.#now(), margin * CONFIRM_SHARE, notBefore),
    )
    cs.singletons.push(this)
  }

  /** How long a heartbeat confirmation counts for this singleton, ms. */
  readonly confirmWindow: number

  get activations(): number {
    return this.life.activations
  }

  start(): void {
    const sim = this.#cs.sim
    const i = this.#node.index
    sim.every(i, TICK, TICK, () => {
      this.#apply(this.life.tick(this.#now()))
      this.#evaluate()
    })
    // The receptionist's anti-entropy: changes are pushed at once, the whole listing now and then.
    sim.every(i, LISTING_EVERY, LISTING_EVERY, () => this.#publishListing())
    sim.every(i, this.#s.callEvery, this.#s.callEvery * (1 + i / 10), () => this.#call())
    if (this.#s.leaseTtl !== undefined) sim.every(i, this.#s.leaseTtl / 4, this.#s.leaseTtl / 4, () => this.#renew())
  }

  /** The node's process died: the instance is gone with it, without a word. */
  crash(): void {
    this.#crashed = true
  }

  membershipChanged(): void {
    if (this.#crashed) return
    this.#evaluate()
  }

  /** The node's own clock. */
  #now(): number {
    return this.#cs.sim.localNow(this.#node.index)
  }

  #evaluate(): void {
    if (this.#crashed) return
    const core = this.#node.core
    const members = core.members()
    this.#downs.observe(members, this.#now())
    for (const m of members) if (m.status === 'down' || m.status === 'removed') this.listings.delete(m.node.uid)
    const listedElsewhere: string[] = []
    for (const [uid, listed] of this.listings) if (listed && uid !== this.#node.uid) listedElsewhere.push(uid)
    this.#apply(
      this.life.evaluate(this.#now(), {
        canHost: this.#role === undefined || this.#node.roles.includes(this.#role),
        view: { self: this.#node.uid, members, leader: core.leader, downSince: this.#downs.since, listedElsewhere },
      }),
    )
  }

  #apply(directives: readonly Directive[]): void {
    for (const d of directives) this.#do(d)
  }

  #do(d: Directive): void {
    const cs = this.#cs
    const store = cs.store
    switch (d.kind) {
      case 'acquire-lease': {
        const sentAt = this.#now()
        return store.acquire(this.#node.index, NAME, this.#node.uid, this.#s.leaseTtl!, (r) => {
          if (this.#crashed) return
          if (r === 'failed') this.#apply(this.life.leaseFailed(this.#now(), new Error('store unavailable')))
          else if (r === 'refused') this.#apply(this.life.leaseRefused(this.#now()))
          else {
            this.#epoch = r
            this.#apply(this.life.leaseGranted(this.#now(), sentAt, r))
          }
        })
      }
      case 'release-lease':
        return store.release(this.#node.index, NAME, this.#node.uid)
      case 'start-instance':
        // Recovery: the instance reads its events, then runs.
        return store.recover(this.#node.index, NAME, (seq) => {
          if (this.#crashed) return
          this.#seq = seq
          this.#apply(this.life.started(this.#now()))
        })
      case 'activated':
        if (cs.tracing) cs.note(`n${this.#node.index} singleton activated (epoch ${this.#epoch ?? '-'}, seq ${this.#seq})`)
        this.#publishListing()
        cs.activated(this.#node)
        return cs.markDirty()
      case 'passivate':
        cs.sim.at(cs.sim.now + Math.min(d.boundMs, 50), () => {
          if (!this.#crashed) this.#apply(this.life.passivated(this.#now()))
        })
        return cs.markDirty()
      case 'passivated':
        if (cs.tracing) cs.note(`n${this.#node.index} singleton passivated`)
        return
      case 'idle':
        this.#seq = undefined
        this.#publishListing()
        return cs.markDirty()
      case 'evaluate':
        return this.#evaluate()
      case 'report-holder':
      case 'log':
        return
    }
  }

  /** Renewal every quarter ttl while an instance exists or starts (LeaseKeeper's job in a real node). */
  #renew(): void {
    if (this.#crashed || !(this.life.hosting || this.life.phase === 'starting')) return
    const sentAt = this.#now()
    this.#cs.store.acquire(this.#node.index, NAME, this.#node.uid, this.#s.leaseTtl!, (r) => {
      if (this.#crashed || !this.life.hosting) return
      if (typeof r === 'number' && r === this.#epoch) this.#apply(this.life.leaseGranted(this.#now(), sentAt, r))
      else if (r !== 'failed') this.#apply(this.life.leaseLost(this.#now(), r === 'refused' ? 'renewal refused' : 'another epoch'))
    })
  }

  /** This node's receptionist tells the members it reaches whether it lists an instance. */
  #publishListing(): void {
    const listed = this.life.hosting
    this.listings.set(this.#node.uid, listed)
    const cs = this.#cs
    const self = this.#node
    for (const m of self.core.present()) {
      if (m.node.uid === self.uid) continue
      cs.sim.send(self.index, { host: m.node.endpoint.host, port: m.node.endpoint.port, uid: m.node.uid }, 24, (t) => {
        const target = cs.nodes[t]?.singleton
        if (target && !target.#crashed) target.listings.set(self.uid, listed)
      })
    }
  }

  /** The client on this node calls the singleton through its proxy. */
  #call(): void {
    if (this.#crashed) return
    const a = this.life.allocation
    const id = `${this.#node.uid}:${++this.#callSeq}`
    if (a.kind === 'host') return this.#serve(id)
    if (a.kind !== 'remote' || a.host.reachability !== 'reachable') return
    const cs = this.#cs
    const host = a.host.node
    cs.sim.send(this.#node.index, { host: host.endpoint.host, port: host.endpoint.port, uid: host.uid }, 64, (t) => cs.nodes[t]?.singleton?.receive(id))
  }

  /** A call from another node's proxy arrives. */
  receive(id: string): void {
    this.#serve(id)
  }

  /** A call reaches this node's instance: the guard admits it or refuses it, then it runs and journals. */
  #serve(id: string): void {
    if (this.#crashed) return
    const now = this.#now()
    const { refuse, directives } = this.life.guard(now)
    if (refuse !== undefined || this.#seq === undefined) {
      this.refused++
      return this.#apply(directives)
    }
    this.served++
    this.#cs.checkServing(this, id)
    const seq = this.#seq
    this.#seq++
    this.#cs.store.append(NAME, seq, id, this.#node.index)
    this.#apply(directives)
  }

  /** Whether this node's instance would take a call now (for the overlap check). */
  admits(): boolean {
    return !this.#crashed && this.#seq !== undefined && this.life.admits(this.#now())
  }

  get index(): number {
    return this.#node.index
  }
}
