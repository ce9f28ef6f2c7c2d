/**
 * The cluster simulator's shell for the virtual actors on one node: the real hand-over machine
 * ({@link ShardOwnership}), table decider ({@link TableDecider}) and serving confirmation
 * ({@link ServingConfirmation}), fed from the node's `Membership` core and wired as the
 * virtual-actors plugin wires them: the leader decides each table and sends it to everyone, every
 * node releases the tables it adopts, sends its table and release again every 2 s, and serves a
 * shard only while it is open here and its side confirms it. A client on each node calls random ids
 * straight at the owner its table names; a node that does not serve the shard says so and the
 * caller routes again. Every virtual actor is event-sourced on the simulator's journal (recovered on
 * activation, one event per call served), so two activations of one id show up as a stale write.
 * With `leaseTtl`, the node also serves only under its owner lease ({@link SimOwnerLease}).
 * @module
 */
import { CONFIRM_SHARE, ServingConfirmation } from '../cluster/ServingConfirmation.ts'
import { byShard, defaultMaxMoves, defaultShardMargin, placementGroup, TableDecider } from '../virtual/Placement.ts'
import { type OwnershipDirective, ShardOwnership } from '../virtual/ShardOwnership.ts'
import { type ShardTable, shardOf } from '../virtual/ShardTable.ts'
import type { ClusterSimulator, SimNodeView } from './ClusterSimulator.ts'
import { mixSeed, seededRandom } from './Random.ts'
import { SimOwnerLease } from './SimOwnerLease.ts'
import { SIM_ROLES } from './SimRoles.ts'

/** The virtual actors' settings in a simulation. */
export interface ShardSimSettings {
  /** Shards (fewer than a real cluster's 1,024: the same rules, less work per table). Default 64. */
  readonly shards: number
  /** Distinct ids the clients call. Default 200. */
  readonly ids: number
  /** Each node's client calls a random id this often, ms. Default 250. */
  readonly callEvery: number
  /** @internal Mutation checks: `false` serves without the side's confirmation (ServingConfirmation `enabled`). */
  readonly confirm: boolean
  /**
   * The owner leases' ttl, ms (`SimOwnerLease.ts`, as `virtualActorsPlugin({ lease })`), or undefined
   * for none: the plugin's default, and the simulator's.
   */
  readonly leaseTtl?: number
}

const TYPE = 'SimActor'
const TICK = 250
const RESEND_EVERY = 2000
/** A call not served within this is given up (counted as failed; the caller would see a timeout). */
const CALL_DEADLINE = 10_000
/** A caller told "not here" routes again after this. */
const RETRY_AFTER = 25
/** A deactivation finishes its turn and flushes its journal this long after it was asked. */
const DEACTIVATE_AFTER = 5

/** A call on its way: who asked, for which id, since when. */
interface Call {
  readonly callId: string
  readonly id: string
  readonly shard: number
  readonly from: number
  /** The calling process's uid (a restarted node does not take over its predecessor's calls). */
  readonly caller: string
  readonly since: number
}

interface Activation {
  readonly shard: number
  /** Its journal's name (made once: a fresh string per call costs a hash per lookup). */
  readonly journal: string
  /** Next sequence number, once recovered. */
  seq: number | undefined
  /** Calls waiting for recovery. */
  readonly queue: Call[]
  deactivating: boolean
}

/** One node's virtual-actors shell (see the module comment). */
export class SimShards {
  readonly ownership: ShardOwnership
  readonly confirmation: ServingConfirmation
  readonly #decider: TableDecider
  readonly #cs: ClusterSimulator
  readonly #node: SimNodeView
  readonly #s: ShardSimSettings
  readonly #random: () => number
  readonly #activations = new Map<string, Activation>()
  readonly #held = new Map<number, Call[]>()
  readonly #draining = new Map<number, number>()
  readonly #known = new Set<string>()
  /** The table last sent to each caller whose call this node refused. */
  readonly #told = new Map<string, ShardTable>()
  /** This node's owner lease, with a lease configured. */
  readonly lease: SimOwnerLease | undefined
  /** Whether the lease was valid when last looked at (a lapse by the clock deactivates everything). */
  #leaseServing = false
  /** Calls this node made that were not served where they went: routed again on the next retry timer. */
  #waiting: Call[] = []
  /** The role that hosts the type (in a run with roles), else undefined: every node. */
  readonly #role: string | undefined
  #releaseQueued = false
  #crashed = false
  #callSeq = 0
  served = 0
  failed = 0
  activations = 0

  constructor(cs: ClusterSimulator, node: SimNodeView, settings: ShardSimSettings) {
    this.#cs = cs
    this.#node = node
    this.#s = settings
    this.#role = cs.options.roles ? SIM_ROLES.shards : undefined
    const margin = defaultShardMargin(node.core.downing.stableAfter)
    this.ownership = new ShardOwnership(node.uid, settings.shards, margin)
    this.#decider = new TableDecider(settings.shards, defaultMaxMoves(settings.shards))
    this.confirmation = new ServingConfirmation(margin * CONFIRM_SHARE, settings.confirm)
    this.#random = seededRandom(mixSeed(cs.options.seed, node.index, cs.sim.members[node.index]!.generation, 0x5a4d))
    this.lease =
      settings.leaseTtl === undefined
        ? undefined
        : new SimOwnerLease(cs, node.index, node.uid, settings.leaseTtl, {
            lost: () => this.#leaseLost(),
            granted: () => {
              if (this.#mayServe()) this.#reopenHeld()
            },
            expired: () => this.membershipChanged(),
          })
    cs.shardShells.push(this)
  }

  get index(): number {
    return this.#node.index
  }

  get uid(): string {
    return this.#node.uid
  }

  start(): void {
    const sim = this.#cs.sim
    const i = this.#node.index
    sim.every(i, TICK, TICK, () => this.#tick())
    sim.every(i, RESEND_EVERY, RESEND_EVERY, () => this.#resend())
    sim.every(i, this.#s.callEvery, this.#s.callEvery * (1 + i / 10), () => this.#call())
    const lease = this.lease
    if (lease) {
      lease.ensureHeld(this.#now())
      sim.every(i, lease.ttl / 4, lease.ttl / 4, () => lease.renew(this.#now()))
    }
    this.membershipChanged()
  }

  /** The node's process died: every activation is gone with it. */
  crash(): void {
    this.#crashed = true
    this.lease?.stop()
  }

  #now(): number {
    return this.#cs.sim.localNow(this.#node.index)
  }

  membershipChanged(): void {
    if (this.#crashed) return
    const core = this.#node.core
    // Down: stop serving at once, not when the last confirmation runs out (the plugin's #fenceIfDown).
    if ((core.downed || core.status === 'down' || core.status === 'removed') && this.confirmation.lapse(this.#now())) this.#deactivateAll()
    const fresh = this.#others().filter((uid) => !this.#known.has(uid))
    for (const uid of fresh) this.#known.add(uid)
    const t = this.ownership.table
    if (t) for (const uid of fresh) this.#send(uid, 8 * t.owners.length, (s) => s.#adopt(t))
    const lease = this.lease
    const group = placementGroup(core.members(), this.#role, this.uid, lease && ((uid) => lease.expired.has(uid)), lease?.pending)
    this.#apply(this.ownership.members(group, this.#now()))
    this.#decide()
  }

  // ── serving ─────────────────────────────────────────────────────────────────

  /** Whether this node serves now; a lapse deactivates everything, a return delivers what was held. */
  #mayServe(): boolean {
    const c = this.confirmation
    const serving = c.check(this.#now(), (window, notBefore) => this.#node.core.confirmedUntil(this.#now(), window, notBefore))
    if (c.change === 'lapsed') this.#deactivateAll()
    else if (c.change !== undefined) this.#reopenHeld()
    return serving && this.#leaseValid()
  }

  /** No lease configured, or this node's is valid now; a lapse by the clock deactivates everything (LeaseKeeper's lapse timer). */
  #leaseValid(): boolean {
    const lease = this.lease
    if (!lease) return true
    const now = this.#now()
    const valid = lease.valid(now)
    if (!valid && this.#leaseServing) this.#deactivateAll()
    this.#leaseServing = valid
    if (!valid) lease.ensureHeld(now)
    return valid
  }

  /** Every activation here stops after its current turn. */
  #deactivateAll(): void {
    for (const a of this.#activations.values()) this.#deactivate(a)
  }

  /** Refused or taken again on renewal: deactivate everything until it is held again (the plugin's `#leaseLost`). */
  #leaseLost(): void {
    if (this.#crashed) return
    this.#leaseServing = false
    this.#deactivateAll()
    this.lease!.ensureHeld(this.#now())
  }

  /** For the invariants: whether a call for `shard` arriving now would be served here (no side effects). */
  wouldServe(shard: number): boolean {
    if (this.#crashed || this.ownership.phase(shard) !== 'open') return false
    const now = this.#now()
    if (this.lease && !this.lease.valid(now)) return false
    return this.confirmation.wouldServe(now, (window, notBefore) => this.#node.core.confirmedUntil(now, window, notBefore))
  }

  /** The shards open here now (for the failover timings). */
  openShards(): number[] {
    const out: number[] = []
    if (this.#crashed) return out
    for (let shard = 0; shard < this.#s.shards; shard++) if (this.ownership.phase(shard) === 'open') out.push(shard)
    return out
  }

  /** The client calls a random id at the owner its table names. */
  #call(): void {
    if (this.#crashed) return
    const id = `a${Math.floor(this.#random() * this.#s.ids)}`
    const call: Call = {
      callId: `${this.uid}/v${++this.#callSeq}`,
      id,
      shard: shardOf(TYPE, id, this.#s.shards),
      from: this.#node.index,
      caller: this.uid,
      since: this.#cs.sim.now,
    }
    this.#cs.callIssued()
    this.#route(call)
  }

  /** Routes `call` (made on this node) to the owner this node's table names. */
  #route(call: Call): void {
    if (this.#crashed) return
    if (this.#cs.sim.now - call.since > CALL_DEADLINE) return void this.#cs.callFailed()
    const owner = this.ownership.table?.owners[call.shard]
    if (owner === undefined) return this.#retry(call)
    if (owner === this.uid) return this.receive(call)
    this.#send(owner, 64, (s) => s.receive(call))
  }

  /**
   * The call goes back to its caller's waiting list (the process that made it: a restarted node
   * does not take over its predecessor's calls), which routes everything waiting again
   * {@link RETRY_AFTER} later on one timer, as the plugin does.
   */
  #retry(call: Call): void {
    const caller = this.#cs.nodes[call.from]?.shards
    if (caller && caller.uid === call.caller) caller.#wait(call)
  }

  #wait(call: Call): void {
    if (this.#crashed) return
    this.#waiting.push(call)
    if (this.#waiting.length > 1) return
    const sim = this.#cs.sim
    sim.at(sim.now + RETRY_AFTER, () =>
      sim.inProcess(this.#node.index, () => {
        if (this.#crashed) return
        const waiting = this.#waiting
        this.#waiting = []
        for (const c of waiting) this.#route(c)
      }),
    )
  }

  /** A call reaches this node. */
  receive(call: Call): void {
    if (this.#crashed) return
    switch (this.ownership.admit(call.shard)) {
      case 'deliver':
        if (this.#mayServe()) return this.#deliver(call)
        return this.#hold(call)
      case 'hold':
        return this.#hold(call)
      case 'elsewhere':
        // Not served here: the caller routes it again (its table may be older or newer than ours),
        // and gets this node's table, once per table (the plugin's #tellTable).
        if (call.from === this.#node.index) return this.#retry(call)
        this.#tellTable(call.caller)
        return this.#cs.sim.send(this.#node.index, this.#cs.addressOf(call.from), 16, () => this.#retry(call))
    }
  }

  #hold(call: Call): void {
    const list = this.#held.get(call.shard)
    if (list) list.push(call)
    else this.#held.set(call.shard, [call])
  }

  #deliver(call: Call): void {
    let a = this.#activations.get(call.id)
    if (a?.deactivating) return this.#retry(call)
    if (!a) {
      const created: Activation = { shard: call.shard, journal: journalOf(call.id), seq: undefined, queue: [call], deactivating: false }
      a = created
      this.#activations.set(call.id, a)
      this.activations++
      // Recovery: the activation reads its events, then serves what waited.
      return this.#cs.store.recover(this.#node.index, created.journal, (seq) => {
        if (this.#crashed || created.deactivating) return
        created.seq = seq
        const waiting = created.queue.splice(0)
        for (const c of waiting) this.receive(c)
      })
    }
    if (a.seq === undefined) return void a.queue.push(call)
    this.served++
    this.#cs.checkShardServing(this, call)
    this.#cs.store.append(a.journal, a.seq, call.callId, this.#node.index)
    a.seq++
  }

  /** Seals the activation and stops it after its current turn; a draining shard counts it down. */
  #deactivate(a: Activation): void {
    if (a.deactivating) return
    a.deactivating = true
    const waiting = a.queue.splice(0)
    for (const c of waiting) this.#retry(c)
    this.#cs.sim.at(this.#cs.sim.now + DEACTIVATE_AFTER, () =>
      this.#cs.sim.inProcess(this.#node.index, () => {
        if (this.#crashed) return
        for (const [id, x] of this.#activations) if (x === a) this.#activations.delete(id)
        const left = this.#draining.get(a.shard)
        if (left === undefined) return
        if (left > 1) return void this.#draining.set(a.shard, left - 1)
        this.#draining.delete(a.shard)
        this.#apply(this.ownership.drained(a.shard, this.#now()))
      }),
    )
  }

  #reopenHeld(): void {
    this.#open([...this.#held.keys()].filter((s) => this.ownership.admit(s) === 'deliver'))
  }

  // ── placement ───────────────────────────────────────────────────────────────

  #tick(): void {
    if (this.#crashed) return
    this.lease?.probe()
    if (this.#mayServe()) this.#reopenHeld()
    this.#apply(this.ownership.tick(this.#now()))
    this.#decide()
    const sim = this.#cs.sim
    for (const [shard, list] of this.#held) {
      const keep = list.filter((c) => sim.now - c.since <= CALL_DEADLINE)
      for (let i = keep.length; i < list.length; i++) this.#cs.callFailed()
      if (keep.length === 0) this.#held.delete(shard)
      else this.#held.set(shard, keep)
    }
  }

  /** Every node passes its table and release on: a new leader must learn the latest before it decides. */
  #resend(): void {
    if (this.#crashed) return
    const t = this.ownership.table
    const r = this.ownership.release
    for (const uid of this.#others()) {
      if (t) this.#send(uid, 8 * t.owners.length, (s) => s.#adopt(t))
      if (r) this.#sendRelease(uid, r.table, [...r.draining])
    }
  }

  #decide(): void {
    const core = this.#node.core
    if (core.leader !== this.uid || core.status === 'joining' || core.status === 'down' || core.status === 'removed') return
    const members = core.members()
    const role = this.#role
    const hosts = members.filter((m) => m.status === 'up' && (role === undefined || m.roles.includes(role))).map((m) => m.node.uid)
    const downed = new Set(members.filter((m) => m.status === 'down').map((m) => m.node.uid))
    const next = this.#decider.next(this.ownership, hosts, this.uid, this.#now(), downed)
    if (!next) return
    if (this.#cs.tracing) this.#cs.note(`n${this.index} decides shard table ${next.version}`)
    this.#adopt(next)
    for (const uid of this.#others()) this.#send(uid, 8 * next.owners.length, (s) => s.#adopt(next))
  }

  #adopt(table: ShardTable): void {
    if (this.#crashed) return
    this.#apply(this.ownership.adopt(table, this.#now()))
    // Calls held for shards this table gave away route again.
    // (Delivering one may deliver others held: a list is taken from the map when its turn comes.)
    for (const shard of [...this.#held.keys()]) {
      const list = this.#held.get(shard)
      if (!list || this.ownership.admit(shard) === 'hold') continue
      this.#held.delete(shard)
      for (const c of list) this.receive(c)
    }
    this.#cs.markDirty()
  }

  #apply(directives: readonly OwnershipDirective[]): void {
    for (const d of directives) {
      if (d.kind === 'release') this.#releaseSoon()
      else if (d.kind === 'open') this.#open(d.shards)
      else this.#seal(d.shards)
    }
    if (directives.length > 0) this.#cs.markDirty()
  }

  #open(shards: readonly number[]): void {
    for (const shard of shards) {
      const list = this.#held.get(shard)
      if (!list) continue
      this.#held.delete(shard)
      for (const c of list) this.receive(c)
    }
  }

  #seal(shards: readonly number[]): void {
    const live = byShard([...this.#activations.values()].filter((a) => !a.deactivating))
    for (const shard of shards) {
      const here = live.get(shard) ?? []
      if (here.length === 0) {
        this.#apply(this.ownership.drained(shard, this.#now()))
        continue
      }
      this.#draining.set(shard, here.length)
      for (const a of here) this.#deactivate(a)
    }
  }

  /** The latest release goes to every other member after the current step (drains coalesce). */
  #releaseSoon(): void {
    if (this.#releaseQueued) return
    this.#releaseQueued = true
    // After the current step, as the plugin's microtask: drains and adoptions in one step coalesce,
    // and the decider's broadcast of the table that caused it goes out first.
    const sim = this.#cs.sim
    sim.at(sim.now, () =>
      sim.inProcess(this.#node.index, () => {
        this.#releaseQueued = false
        const r = this.ownership.release
        if (this.#crashed || !r) return
        for (const uid of this.#others()) this.#sendRelease(uid, r.table, [...r.draining])
        this.#decide()
      }),
    )
  }

  #sendRelease(uid: string, table: { version: number; by: string }, draining: number[]): void {
    this.#send(uid, 24 + 2 * draining.length, (s) => {
      if (s.#crashed) return
      s.#apply(s.ownership.released(this.uid, table, draining, s.#now()))
      s.#decide()
    })
  }

  /** Sends this node's table to `uid`, whose call it refused, unless it already sent it this one. */
  #tellTable(uid: string): void {
    const t = this.ownership.table
    if (!t || this.#told.get(uid) === t) return
    this.#told.set(uid, t)
    this.#send(uid, 8 * t.owners.length, (s) => s.#adopt(t))
  }

  /** Other members that are neither down nor removed. */
  #others(): string[] {
    const out: string[] = []
    for (const m of this.#node.core.members()) if (m.node.uid !== this.uid && m.status !== 'removed' && m.status !== 'down') out.push(m.node.uid)
    return out
  }

  /** Sends on the control lane to member `uid` (if this node knows its address). */
  #send(uid: string, size: number, deliver: (target: SimShards) => void): void {
    const m = this.#node.core.member(uid)
    if (!m) return
    const node = this.#cs.nodes[this.#node.index]!
    this.#cs.control(node, { host: m.node.endpoint.host, port: m.node.endpoint.port, uid }, size, (target) => {
      if (target.shards) deliver(target.shards)
    })
  }
}

/** The journal of virtual actor `id`. */
function journalOf(id: string): string {
  return `v/${id}`
}
