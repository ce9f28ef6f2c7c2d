/**
 * The cluster simulator: whole Shoal nodes on one virtual clock, deterministic from a seed. Each
 * node runs the same pure cores as a real node (SWIM's {@link SwimInstance}, the {@link Membership}
 * core with its downing decisions, a singleton's {@link SingletonLifecycle} with `allocate()` and
 * a lease term), wired by a small shell like the real ones, over the SWIM simulator's network:
 * datagrams that can be lost, delayed and reordered, a control lane that is ordered per link, and
 * partitions of any shape. Faults come from a seeded schedule (`Faults.ts`); after every event the
 * invariants are checked ({@link ClusterInvariants}); a violation records the seed and the trace
 * of events that led to it, and re-running the seed replays it exactly.
 *
 * What is modelled rather than run: the receptionist (each node pushes its own singleton listing
 * to the members it reaches, and drops the listings of members it sees down), the lease store (a
 * map on the simulator's clock, with a round trip, outages and slow answers), the journal (one
 * event log per singleton that refuses a write at a stale sequence number), and a supervisor that
 * restarts a node that shut itself down.
 * @module
 */
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { downingFromName } from '../cluster/Downing.ts'
import { DEFAULT_HEARTBEAT } from '../cluster/Heartbeat.ts'
import { type ClusterMember, isPresent, type MembershipStatus } from '../cluster/Member.ts'
import { type ClusterEvent, Membership, type MembershipDirective } from '../cluster/Membership.ts'
import type { SwimSettings } from '../swim/SwimSettings.ts'
import { describeFault, type Fault, type FaultMix, faultSchedule } from './Faults.ts'
import { mixSeed, seededRandom } from './Random.ts'
import { rolesOf } from './SimRoles.ts'
import { type ShardSimSettings, SimShards } from './SimShards.ts'
import { SimSingleton, type SingletonSimSettings } from './SimSingleton.ts'
import { SimStore } from './SimStore.ts'
import { Simulator } from './Simulator.ts'

/** How often convergence is checked (the resolution of the convergence times), ms. */
const CONVERGENCE_EVERY = 100
/** How long two sides may each have downed the other while one is fenced (it downs itself within stableAfter). */
const SPLIT_GRACE = 15_000
/** How long both may stay confirmed: a singleton's default down margin (stableAfter 3 s + 2 s), which a successor waits. */
const CONFIRMED_GRACE = 5000
/** The confirmation window of a singleton with the default margin, for runs without one. */
const CONFIRM_WINDOW = 4000
/** Control messages per node per second beyond which the run has a storm (normal: a few dozen). */
const STORM = 1000
/** A down, or a singleton's or shards' failover, this long after a fault ended is not its doing. */
const DECIDE_WINDOW = 30_000

/** One cluster simulation. */
export interface ClusterSimOptions {
  readonly seed: number
  /** Nodes; default 5. Every node's discovery lists them all. */
  readonly nodes?: number
  /** Simulated time, ms; default 10 minutes. */
  readonly duration?: number
  /** Fault mix (Faults.ts); default dense. */
  readonly faults?: FaultMix
  /**
   * Keep only these faults of the seeded schedule (their indices, from 0); the rest are dropped.
   * What a shrunk violation replays with (`Shrink.ts`). Default: every fault.
   */
  readonly onlyFaults?: readonly number[]
  /** Mean gap between faults, ms; default 15 s. */
  readonly meanGap?: number
  /** Faults stop this long before the end, so the run can check convergence; default 2 minutes. */
  readonly quiet?: number
  /** Downing strategy name (as `cluster.downing` takes it); default keep-majority. */
  readonly downing?: string
  readonly stableAfter?: number
  /** The singleton: on by default, with a lease; `false` for membership only. */
  readonly singleton?: Partial<SingletonSimSettings> | false
  /** Virtual actors (shard placement and hand-over, clients calling ids): on by default; `false` for none. */
  readonly shards?: Partial<ShardSimSettings> | false
  /**
   * Nodes with roles: the singleton runs only on nodes 0–2 (role `backend`), virtual actors only on
   * nodes 1 and up (role `players`); every node calls both. Default off (every node may host both).
   */
  readonly roles?: boolean
  /** Clock-rate skew between nodes, as a fraction (0.01: each node's clock runs 0.99–1.01×); default 0.01. */
  readonly skew?: number
  readonly swim?: SwimSettings
  /** @internal Mutation checks: turn off the downing confirmation rule. */
  readonly confirm?: boolean
  /** @internal Mutation checks: turn off the fence after a freeze (a woken node waits to be confirmed by a member it knew). */
  readonly wakeFence?: boolean
  /**
   * End the run at the first violation (sweeps: a storm can make one seed take minutes), or at the
   * first of one invariant (shrinking); default off.
   */
  readonly stopOnViolation?: boolean | Violation['invariant']
  /** Keep a human-readable trace of every decision (for replaying a seed); default off. */
  readonly trace?: boolean
}

/** An invariant that failed, with when and how to replay it. */
export interface Violation {
  readonly invariant:
    | 'split-brain'
    | 'singleton-overlap'
    | 'shard-overlap'
    | 'wrong-owner'
    | 'journal-conflict'
    | 'no-convergence'
    | 'lost-ack'
    | 'message-storm'
  readonly at: number
  readonly detail: string
}

/**
 * Per fault: how long the cluster took to decide and to agree again, ms. With faults overlapping,
 * a decision is attributed to every fault in progress (the distributions over many seeds are
 * what to read, or a sweep of one fault kind with wide gaps).
 */
export interface FaultTiming {
  readonly fault: Fault['kind']
  readonly at: number
  /** When the fault ended (a crashed node restarted, a pause or a partition ended). */
  readonly endsAt: number
  /** From the start to the first node marked down (null: none before the fault ended, plus 30 s). */
  decided: number | null
  /** From the end to every live node agreeing on one membership again (null: not within the run). */
  converged: number | null
  /** The singleton's host crashed or paused: from the start to a new instance's activation elsewhere. */
  failover?: number | null
  /** The node hosting the singleton when the fault began, if the fault is about one node. */
  readonly host?: string
  /** The node owned virtual actors' shards and crashed or paused: from the start to every one of them open on another node. */
  shardFailover?: number | null
}

/** What a run found. */
export interface ClusterSimReport {
  readonly seed: number
  readonly nodes: number
  readonly durationSeconds: number
  /** The faults injected, each with its index in the seeded schedule (`#3 42.0s crash n1 …`). */
  readonly faults: readonly string[]
  /** The same, as data: each fault's index in the seeded schedule (what `onlyFaults` names) and time, ms. */
  readonly schedule: readonly { readonly index: number; readonly at: number }[]
  readonly violations: readonly Violation[]
  /** Invariant checks made, per invariant. */
  readonly checks: Readonly<Record<string, number>>
  readonly timings: readonly FaultTiming[]
  /** Time from the last fault's end until every live node agreed, s (null: never). */
  readonly convergedAfterQuiet: number | null
  readonly downs: number
  readonly restarts: number
  readonly singleton: { readonly activations: number; readonly served: number; readonly refused: number; readonly acknowledged: number } | undefined
  /** Virtual actors: the last table version, activations, and the clients' calls (issued, served, failed after their deadline). */
  readonly shards:
    | { readonly table: number; readonly activations: number; readonly issued: number; readonly served: number; readonly failed: number }
    | undefined
  /** Events processed, and the trace (with `trace`). */
  readonly events: number
  readonly trace?: readonly string[]
}

/** What a layer's simulated shell (the singleton's, the virtual actors') needs of its node's shell. */
export interface SimNodeView {
  readonly index: number
  readonly uid: string
  readonly roles: readonly string[]
  readonly core: Membership
}

/** The shell of one simulated node: feeds its cores and applies their directives on the simulator. */
class SimNode implements SimNodeView {
  readonly core: Membership
  /** This node's roles (see `ClusterSimOptions.roles`). */
  readonly roles: readonly string[]
  readonly tombstones = new Set<string>()
  readonly singleton: SimSingleton | undefined
  readonly shards: SimShards | undefined
  /** Shut itself down (downed): the supervisor restarts it. */
  shuttingDown = false

  constructor(
    readonly cs: ClusterSimulator,
    readonly index: number,
    readonly node: ClusterNode,
  ) {
    const sim = cs.sim
    const o = cs.options
    this.roles = rolesOf(index, o.roles)
    this.core = new Membership({
      self: node,
      roles: this.roles,
      minMembers: 1,
      downing: downingFromName(o.downing, o.stableAfter),
      heartbeat: DEFAULT_HEARTBEAT,
      hasProviders: index >= 3 || sim.members.length > 1,
      selfJoinAfter: 2000,
      swim: sim.members[index]!.instance,
      random: seededRandom(mixSeed(o.seed, index, sim.members[index]!.generation, 0xc0de)),
      now: sim.localNow(index),
      confirm: o.confirm,
      wakeFence: o.wakeFence,
    })
    this.singleton = o.singleton === false ? undefined : new SimSingleton(cs, this, o.singleton)
    this.shards = o.shards === false ? undefined : new SimShards(cs, this, { shards: 64, ids: 200, callEvery: 250, confirm: true, ...o.shards })
  }

  get uid(): string {
    return this.node.uid
  }

  /** This node's own clock (skewed from the simulator's by its rate). */
  now(): number {
    return this.cs.sim.localNow(this.index)
  }

  start(seeds: readonly ClusterNode[]): void {
    const sim = this.cs.sim
    this.apply(this.core.start(this.now()))
    // As the shell does with what its sources list: only the lowest address may form a cluster alone.
    this.apply(
      this.core.mayFormAlone(
        seeds.every((s) => s.endpoint.host >= this.node.endpoint.host),
        this.now(),
        seeds.map((s) => s.endpoint),
      ),
    )
    for (const s of seeds) if (s.uid !== this.uid) this.apply(this.core.join(s.endpoint, this.now()))
    sim.every(this.index, 250, 250, () => this.apply(this.core.tick(this.now())))
    sim.every(this.index, 1000, 1000, () => this.apply(this.core.gossipTick(this.now())))
    this.singleton?.start()
    this.shards?.start()
  }

  apply(directives: readonly MembershipDirective[]): void {
    for (const d of directives) this.#do(d)
  }

  #do(d: MembershipDirective): void {
    const cs = this.cs
    const sim = cs.sim
    switch (d.kind) {
      case 'gossip': {
        const state = this.core.gossip
        for (const to of d.to)
          cs.control(this, to, 40 * state.members.size, (target) => target.apply(target.core.receiveGossip(this.node, state, target.now())))
        return
      }
      case 'observations': {
        const table = this.core.observations
        for (const to of d.to)
          cs.control(this, controlOf(to), 16 * (table.size + 1), (target) => target.apply(target.core.receiveObservations(this.node, table, target.now())))
        return
      }
      case 'heartbeat':
        return cs.control(this, controlOf(d.to), 12, (target) => target.apply(target.core.heartbeatRequest(this.node, d.seq, target.now())))
      case 'heartbeat-answer':
        return cs.control(this, controlOf(d.to), 14, (target) => target.apply(target.core.heartbeatAnswer(this.node, d.answer, target.now())))
      case 'swim-join':
        return sim.swimJoin(this.index, [d.endpoint])
      case 'tombstone':
        this.tombstones.add(d.node.uid)
        return
      case 'event':
        return this.#event(d.event)
      case 'downed':
        return cs.shutDown(this)
      case 'replace-connection':
      case 'log':
        if (cs.tracing && d.kind === 'log' && d.level !== 'debug') cs.note(`n${this.index} ${d.msg} ${JSON.stringify(d.fields)}`)
        return
    }
  }

  #event(e: ClusterEvent): void {
    if (e.type === 'member') this.cs.memberChanged(this, e.member.node.uid, e.member.status)
    this.singleton?.membershipChanged()
    this.shards?.membershipChanged()
  }
}

function controlOf(node: ClusterNode): { host: string; port: number; uid: string } {
  return { host: node.endpoint.host, port: node.endpoint.port, uid: node.uid }
}

/** Resolved options. */
type Optional = 'singleton' | 'shards' | 'swim' | 'confirm' | 'wakeFence' | 'stableAfter' | 'stopOnViolation' | 'onlyFaults' | 'roles'
type Resolved = Required<Omit<ClusterSimOptions, Optional>> & Pick<ClusterSimOptions, Optional>

/** A whole simulated cluster; see the module comment. `runClusterSim` runs one. */
export class ClusterSimulator {
  readonly options: Resolved
  readonly sim: Simulator
  readonly nodes: SimNode[] = []
  readonly violations: Violation[] = []
  /** Every singleton shell made in this run, incarnations included (for the report's totals). */
  readonly singletons: SimSingleton[] = []
  /** Every virtual-actors shell made in this run, incarnations included. */
  readonly shardShells: SimShards[] = []
  readonly checks: Record<string, number> = { 'split-brain': 0, 'singleton-overlap': 0, 'shard-overlap': 0, journal: 0, convergence: 0 }
  readonly tracing: boolean
  readonly #trace: string[] = []
  readonly #faults: Fault[]
  /** Each fault's index in the seeded schedule (what `onlyFaults` names). */
  readonly #faultIndex = new Map<Fault, number>()
  readonly #timings: FaultTiming[] = []
  readonly #random: () => number
  #events = 0
  #callsIssued = 0
  #callsFailed = 0
  #dirty = true
  #downs = 0
  #restarts = 0
  #quietAt: number
  #convergedAt: number | undefined
  #partitionId = 0
  /** Faults whose node owned shards: which, until they are open elsewhere. */
  readonly #shardWatch = new Map<FaultTiming, { readonly uid: string; readonly shards: readonly number[] }>()
  /** Pairs of live nodes that each marked the other down, since when. */
  readonly #mutual = new Map<string, number>()
  /** Control-lane messages each node sent in the current second. */
  #sent: number[] = []

  constructor(options: ClusterSimOptions) {
    const o: Resolved = {
      nodes: 5,
      duration: 600_000,
      faults: 'dense',
      meanGap: 15_000,
      quiet: 120_000,
      downing: 'keep-majority',
      skew: 0.01,
      trace: false,
      ...options,
    }
    this.options = o
    this.tracing = o.trace
    this.#random = seededRandom(mixSeed(o.seed, 0x51a))
    this.sim = new Simulator({ members: o.nodes, seed: o.seed, settings: o.swim, bootstrap: 'join', codec: false })
    this.sim.record = false
    this.sim.listeners.push((c) => {
      const n = this.nodes[c.observer]
      if (n && n.uid === this.sim.members[c.observer]!.node.uid) n.apply(n.core.swimChanged(c.node, c.status, n.now()))
    })
    for (let i = 0; i < o.nodes; i++) this.sim.setClockRate(i, 1 + (this.#random() * 2 - 1) * o.skew)
    this.#quietAt = o.duration - o.quiet
    const schedule = faultSchedule({ nodes: o.nodes, seed: o.seed, mix: o.faults, start: 10_000, quietAt: this.#quietAt, meanGap: o.meanGap })
    const only = o.onlyFaults === undefined ? undefined : new Set(o.onlyFaults)
    this.#faults = []
    schedule.forEach((f, i) => {
      if (only && !only.has(i)) return
      this.#faults.push(f)
      this.#faultIndex.set(f, i)
    })
    for (let i = 0; i < o.nodes; i++) this.sim.at(i * 10, () => this.#boot(i))
    for (const f of this.#faults) this.sim.at(f.at, () => this.#inject(f))
    const converge = (): void => {
      this.#checkConvergence()
      if (this.#shardWatch.size > 0) this.#checkShardFailover()
      this.sim.at(this.sim.now + CONVERGENCE_EVERY, converge)
    }
    this.sim.at(CONVERGENCE_EVERY, converge)
    const storms = (): void => {
      this.#checkStorm()
      if (this.#mutual.size > 0) this.#checkSplitBrain()
      this.sim.at(this.sim.now + 1000, storms)
    }
    this.sim.at(1000, storms)
  }

  /** Runs to the end and reports. */
  run(): ClusterSimReport {
    const o = this.options
    this.sim.run(o.duration, () => this.#afterEvent())
    if (this.#convergedAt === undefined && this.violations.length === 0)
      this.#violate('no-convergence', `live nodes do not agree ${(o.quiet / 1000).toFixed(0)} s after the last fault: ${this.#views()}`)
    this.#singletonEnd()
    const single = this.nodes.length > 0 && this.nodes[0]!.singleton !== undefined
    return {
      seed: o.seed,
      nodes: o.nodes,
      durationSeconds: o.duration / 1000,
      faults: this.#faults.map((f) => `#${this.#faultIndex.get(f)} ${(f.at / 1000).toFixed(1)}s ${describeFault(f)}`),
      schedule: this.#faults.map((f) => ({ index: this.#faultIndex.get(f)!, at: f.at })),
      violations: this.violations,
      checks: this.checks,
      timings: this.#timings,
      convergedAfterQuiet: this.#convergedAt === undefined ? null : (this.#convergedAt - this.#quietAt) / 1000,
      downs: this.#downs,
      restarts: this.#restarts,
      singleton: single ? this.singletonReport() : undefined,
      shards: this.nodes[0]?.shards === undefined ? undefined : this.#shardsReport(),
      events: this.#events,
      ...(this.tracing ? { trace: this.#trace } : {}),
    }
  }

  // ── for the node shells ─────────────────────────────────────────────────────

  /** Sends a control-lane message; a node that tombstoned the sender refuses it, and the sender learns it is down. */
  control(from: SimNode, to: { host: string; port: number; uid?: string }, size: number, deliver: (target: SimNode) => void): void {
    this.#sent[from.index] = (this.#sent[from.index] ?? 0) + 1
    this.sim.send(from.index, to, size, (t) => {
      const target = this.nodes[t]
      if (!target || target.core.stopped) return // not booted yet, or stopped
      if (target.tombstones.has(from.uid)) {
        // The handshake is refused with "down": the sender's side decided against it.
        this.sim.send(t, controlOf(from.node), 8, (back) => {
          const n = this.nodes[back]!
          if (n === from) n.apply(n.core.learnedDown(`${target.uid} refuses it as down`, n.now()))
        })
        return
      }
      deliver(target)
    })
  }

  memberChanged(by: SimNode, uid: string, status: MembershipStatus): void {
    this.#dirty = true
    if (status === 'down') {
      const now = this.sim.now
      for (const t of this.#timings) if (t.decided === null && now >= t.at && now <= t.endsAt + DECIDE_WINDOW) t.decided = now - t.at
    }
    if (this.tracing) this.note(`n${by.index} sees ${this.#name(uid)} ${status}`)
  }

  /** A downed node shuts itself down a second later; its supervisor starts it again 3 s after that. */
  shutDown(node: SimNode): void {
    if (node.shuttingDown) return
    node.shuttingDown = true
    this.#downs++
    if (this.tracing) this.note(`n${node.index} learns it is down: shuts down, restarts in 4 s`)
    const generation = this.sim.members[node.index]!.generation
    this.sim.at(this.sim.now + 1000, () => {
      if (this.sim.members[node.index]!.generation !== generation) return
      node.singleton?.crash()
      node.shards?.crash()
      this.sim.crash(node.index)
      this.sim.at(this.sim.now + 3000, () => this.#restart(node.index, generation + 1))
    })
  }

  /**
   * Node `by`'s instance serves a call: no other instance may admit calls at this instant (a
   * frozen process serves nothing until it wakes, and then asks its guard again).
   */
  checkServing(by: SimSingleton, id: string): void {
    this.checks['singleton-overlap']!++
    for (const n of this.nodes) {
      const other = n?.singleton
      if (!other || other === by || this.sim.stalled(n.index) || !this.sim.members[n.index]!.up) continue
      if (other.admits()) this.#violate('singleton-overlap', `n${by.index} serves call ${id} while n${n.index}'s instance also admits calls: ${this.#views()}`)
    }
  }

  /**
   * Node `by` serves `call` for its shard: its table gives it the shard (no call served by a node
   * that is not the owner at its table version), and no other node would serve the shard now (open
   * there and confirmed by its side; a frozen process serves nothing until it wakes and asks again).
   */
  checkShardServing(by: SimShards, call: { readonly callId: string; readonly shard: number }): void {
    this.checks['shard-overlap']!++
    const owner = by.ownership.table?.owners[call.shard]
    if (owner !== by.uid)
      this.#violate(
        'wrong-owner',
        `n${by.index} serves call ${call.callId} for shard ${call.shard}, which its table ${by.ownership.table?.version} gives to ${owner === undefined ? 'nobody' : this.#name(owner)}`,
      )
    for (const n of this.nodes) {
      const other = n?.shards
      if (!other || other === by || this.sim.stalled(n.index) || !this.sim.members[n.index]!.up) continue
      if (other.wouldServe(call.shard))
        this.#violate('shard-overlap', `n${by.index} serves call ${call.callId} for shard ${call.shard} while n${n.index} also serves it: ${this.#views()}`)
    }
  }

  callIssued(): void {
    this.#callsIssued++
  }

  callFailed(): void {
    this.#callsFailed++
  }

  /** The address of node `i`'s current process. */
  addressOf(i: number): { host: string; port: number; uid: string } {
    const m = this.sim.members[i]!.node
    return { host: m.host, port: m.port, uid: m.uid }
  }

  /** A singleton instance was activated on `by`: the failover of a host that crashed or paused ends. */
  activated(by: { readonly uid: string }): void {
    const now = this.sim.now
    for (const t of this.#timings) if (t.failover === null && t.host !== by.uid && now >= t.at && now <= t.endsAt + DECIDE_WINDOW) t.failover = now - t.at
  }

  note(line: string): void {
    this.#trace.push(`${(this.sim.now / 1000).toFixed(3)} ${line}`)
  }

  markDirty(): void {
    this.#dirty = true
  }

  violate(invariant: Violation['invariant'], detail: string): void {
    this.#violate(invariant, detail)
  }

  /** Uid → `n<i>` or `n<i>'` for an earlier incarnation, for traces. */
  name(uid: string): string {
    return this.#name(uid)
  }

  // ── lifecycle of processes ──────────────────────────────────────────────────

  #boot(i: number): void {
    const m = this.sim.members[i]!
    const node: ClusterNode = { endpoint: { name: 'shoal', host: m.node.host, port: m.node.port }, uid: m.node.uid }
    const n = new SimNode(this, i, node)
    this.nodes[i] = n
    this.#incarnations.set(node.uid, `n${i}${"'".repeat(m.generation)}`)
    n.start(this.#seeds())
  }

  readonly #incarnations = new Map<string, string>()

  /** What every node's discovery lists: every node's address (as Kubernetes or DNS discovery would). */
  #seeds(): ClusterNode[] {
    return this.sim.members.map((m) => ({ endpoint: { name: 'shoal', host: m.node.host, port: m.node.port }, uid: m.node.uid }))
  }

  #restart(i: number, generation: number): void {
    if (this.sim.members[i]!.up || this.sim.members[i]!.generation !== generation) return
    this.#restarts++
    this.sim.restart(i)
    if (this.tracing) this.note(`n${i} restarts (new uid)`)
    this.#boot(i)
  }

  // ── faults ──────────────────────────────────────────────────────────────────

  #inject(f: Fault): void {
    const sim = this.sim
    if (this.tracing) this.note(`FAULT #${this.#faultIndex.get(f)} ${describeFault(f)}`)
    if (f.kind !== 'loss' && f.kind !== 'delay' && f.kind !== 'store-slow' && f.kind !== 'store-outage') {
      const node = f.kind === 'crash' || f.kind === 'pause' ? this.nodes[f.node] : undefined
      const hosts = node?.singleton !== undefined && node.singleton.life.phase === 'running'
      const endsAt = f.at + (f.kind === 'crash' ? f.restartAfter : f.duration)
      const timing: FaultTiming = { fault: f.kind, at: f.at, endsAt, decided: null, converged: null, ...(hosts ? { failover: null, host: node.uid } : {}) }
      this.#timings.push(timing)
      const owned = node?.shards?.openShards() ?? []
      if (node && owned.length > 0) {
        timing.shardFailover = null
        this.#shardWatch.set(timing, { uid: node.uid, shards: owned })
      }
    }
    this.#convergedAt = undefined
    switch (f.kind) {
      case 'crash': {
        const n = this.nodes[f.node]!
        if (!sim.members[f.node]!.up) return
        n.singleton?.crash()
        n.shards?.crash()
        sim.crash(f.node)
        const generation = sim.members[f.node]!.generation
        sim.at(f.at + f.restartAfter, () => this.#restart(f.node, generation))
        return
      }
      case 'pause':
        return sim.stall(f.node, f.duration)
      case 'partition': {
        const id = ++this.#partitionId
        sim.partition(f.sides)
        sim.at(f.at + f.duration, () => {
          // A later partition replaced this one: it ends on its own schedule.
          if (this.#partitionId !== id) return
          sim.partition([])
          if (this.tracing) this.note('partition healed')
        })
        return
      }
      case 'one-way':
        sim.block(f.from, f.to)
        sim.at(f.at + f.duration, () => sim.unblock(f.from, f.to))
        return
      case 'loss':
        sim.setNetwork({ loss: f.loss })
        sim.at(f.at + f.duration, () => sim.setNetwork({ loss: 0 }))
        return
      case 'delay':
        sim.setNetwork({ delay: f.delay, jitter: f.jitter })
        sim.at(f.at + f.duration, () => sim.setNetwork({ delay: 0.5, jitter: 0.2 }))
        return
      case 'store-outage':
      case 'store-slow':
        return this.store.fault(f)
    }
  }

  /** The lease store and journal every node reaches (modelled; see the module comment). */
  get store(): SimStore {
    return (this.#store ??= new SimStore(this))
  }

  #store: SimStore | undefined

  // ── invariants ──────────────────────────────────────────────────────────────

  #afterEvent(): void {
    this.#events++
    if (!this.#dirty) return
    this.#dirty = false
    this.#checkSplitBrain()
    this.#checkOverlap()
  }

  /**
   * At most one side keeps running. Two running nodes that each see themselves present and have
   * each marked the other down (or removed it) both go on as the cluster. A leader decides on what
   * it heard moments ago and a partition can begin in between, so both sides may briefly have
   * decided; what must hold is that one of them stops serving before the other acts on its
   * decision: a split brain is both sides still confirmed (their hosts may serve: `confirmedUntil`)
   * {@link CONFIRMED_GRACE} after the mutual down (a singleton's successor waits that margin), or
   * the mutual down lasting {@link SPLIT_GRACE} at all (a fenced side must down itself by then).
   * Frozen nodes do not count: they serve nothing and cannot down themselves, and their grace
   * starts again when they wake (seed 143 of `--gap 5` froze both nodes of such a pair for 20 s).
   */
  #checkSplitBrain(): void {
    this.checks['split-brain']!++
    const live = this.#live().filter((n) => !this.sim.stalled(n.index))
    const now = this.sim.now
    const seen = new Set<string>()
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) {
        const x = live[a]!
        const y = live[b]!
        if (!ended(x, y.uid) || !ended(y, x.uid)) continue
        const key = `${x.uid}|${y.uid}`
        seen.add(key)
        const since = this.#mutual.get(key) ?? now
        this.#mutual.set(key, since)
        const both = now - since >= CONFIRMED_GRACE && confirmed(x) && confirmed(y)
        if (both || now - since >= SPLIT_GRACE)
          this.#violate(
            'split-brain',
            `${this.#name(x.uid)} and ${this.#name(y.uid)} each marked the other down and both stay${both ? `, both confirmed ${((now - since) / 1000).toFixed(1)} s later` : ` for ${((now - since) / 1000).toFixed(1)} s`}: ${this.#views()}`,
          )
      }
    }
    for (const key of this.#mutual.keys()) if (!seen.has(key)) this.#mutual.delete(key)
  }

  /** Once faults stop: every live node sees the same members, all up and reachable. */
  #checkConvergence(): void {
    // Nothing to measure: every fault so far has converged and the quiet period's is known.
    const pending = this.#timings.some((t) => t.converged === null)
    if (this.#convergedAt !== undefined || (!pending && this.sim.now < this.#quietAt)) return
    this.checks.convergence!++
    const live = this.#live()
    if (live.length === 0) return
    const first = viewKey(live[0]!)
    const agree = live.every((n) => viewKey(n) === first && n.core.members().every((m) => m.status === 'up' || m.status === 'removed'))
    const all = live.length === this.sim.upMembers().length && live.every((n) => n.core.members().filter((m) => m.status === 'up').length === live.length)
    if (!agree || !all || !this.#singletonSettled(live) || !shardsSettled(live)) return
    const now = this.sim.now
    for (const t of this.#timings) if (t.converged === null && now >= t.endsAt) t.converged = now - t.endsAt
    if (now >= this.#quietAt) this.#convergedAt = now
  }

  /** The shards of a crashed or paused owner are all open on other running nodes: that failover ends. */
  #checkShardFailover(): void {
    const now = this.sim.now
    for (const [t, w] of this.#shardWatch) {
      // Long after the fault ended, another fault moved them (a pause that downed no one needs no failover).
      if (now > t.endsAt + DECIDE_WINDOW) {
        this.#shardWatch.delete(t)
        continue
      }
      const others = this.nodes.filter((n) => n?.shards && n.uid !== w.uid && this.sim.members[n.index]!.up && !this.sim.stalled(n.index))
      if (!w.shards.every((shard) => others.some((n) => n.shards!.ownership.phase(shard) === 'open'))) continue
      t.shardFailover = now - t.at
      this.#shardWatch.delete(t)
    }
  }

  /**
   * No node sends more than {@link STORM} control messages in a second: a protocol that answers
   * every message with one (a reply storm) is a bug even when nothing else breaks.
   */
  #checkStorm(): void {
    this.checks['message-storm'] = (this.checks['message-storm'] ?? 0) + 1
    const worst = Math.max(0, ...this.#sent)
    if (worst > STORM) this.#violate('message-storm', `n${this.#sent.indexOf(worst)} sent ${worst} control messages in one second`)
    this.#sent = []
  }

  /** Never two instances that admit calls at once (checked whenever something changed; calls check it too). */
  #checkOverlap(): void {
    if (this.nodes[0]?.singleton === undefined) return
    this.checks['singleton-overlap']!++
    const admitting = this.nodes.filter(
      (n) => n?.singleton !== undefined && this.sim.members[n.index]!.up && !this.sim.stalled(n.index) && n.singleton.admits(),
    )
    if (admitting.length > 1)
      this.#violate('singleton-overlap', `${admitting.map((n) => `n${n.index}`).join(' and ')} both run an instance that admits calls: ${this.#views()}`)
  }

  /** Exactly one live node runs the instance, and every live node sends its calls there. */
  #singletonSettled(live: readonly SimNode[]): boolean {
    if (live[0]?.singleton === undefined) return true
    const running = live.filter((n) => n.singleton!.life.phase === 'running')
    if (running.length !== 1) return false
    const host = running[0]!.uid
    return live.every((n) => {
      const a = n.singleton!.life.allocation
      return n.uid === host ? a.kind === 'host' : a.kind === 'remote' && a.host.node.uid === host
    })
  }

  /** Running, not shutting down, and present in its own view. */
  #live(): SimNode[] {
    return this.nodes.filter((n) => n !== undefined && this.sim.members[n.index]!.up && !n.shuttingDown && isPresent(n.core.status))
  }

  #views(): string {
    return this.#live()
      .map(
        (n) =>
          `n${n.index}{${n.core
            .members()
            .map((m) => `${this.#name(m.node.uid)}:${m.status}${m.reachability === 'unreachable' ? '?' : ''}`)
            .join(' ')}}`,
      )
      .join(' ')
  }

  #violate(invariant: Violation['invariant'], detail: string): void {
    if (this.violations.some((v) => v.invariant === invariant)) return // the first of each kind is the one to replay
    this.violations.push({ invariant, at: this.sim.now, detail })
    const stop = this.options.stopOnViolation
    if (stop === true || stop === invariant) this.sim.halt()
    if (this.tracing) this.note(`VIOLATION ${invariant}: ${detail}`)
  }

  #name(uid: string): string {
    return this.#incarnations.get(uid) ?? uid.slice(0, 6)
  }

  singletonReport(): NonNullable<ClusterSimReport['singleton']> {
    let activations = 0
    let served = 0
    let refused = 0
    for (const n of this.singletons) {
      activations += n.activations
      served += n.served
      refused += n.refused
    }
    return { activations, served, refused, acknowledged: this.store.acknowledged }
  }

  #singletonEnd(): void {
    if (this.nodes[0]?.singleton === undefined && this.nodes[0]?.shards === undefined) return
    this.store.checkAcknowledged()
  }

  #shardsReport(): NonNullable<ClusterSimReport['shards']> {
    let table = 0
    let activations = 0
    let served = 0
    for (const s of this.shardShells) {
      table = Math.max(table, s.ownership.table?.version ?? 0)
      activations += s.activations
      served += s.served
    }
    return { table, activations, issued: this.#callsIssued, served, failed: this.#callsFailed }
  }
}

/**
 * Every live node holds the same shard table, and each shard is open on its owner (a live node)
 * and closed everywhere else.
 */
/** Each members() array's key (the core hands out the same array until something changes). */
const viewKeys = new WeakMap<readonly ClusterMember[], string>()

/** A node's view of the membership as one string: equal strings, equal views. */
function viewKey(n: SimNode): string {
  const members = n.core.members()
  let key = viewKeys.get(members)
  if (key === undefined) {
    key = members
      .filter((m) => m.status !== 'removed')
      .map((m) => `${m.node.uid}:${m.status}:${m.reachability}`)
      .sort()
      .join(',')
    viewKeys.set(members, key)
  }
  return key
}

function shardsSettled(live: readonly SimNode[]): boolean {
  if (live[0]?.shards === undefined) return true
  const table = live[0].shards.ownership.table
  if (!table) return false
  for (const n of live) {
    const t = n.shards!.ownership.table
    if (!t || t.version !== table.version || t.by !== table.by) return false
  }
  for (let shard = 0; shard < table.owners.length; shard++) {
    const owner = table.owners[shard]
    for (const n of live) if ((n.shards!.ownership.phase(shard) === 'open') !== (n.uid === owner)) return false
  }
  return true
}

/** Whether node `x`'s side is confirmed now (its hosts may serve), by the singleton's window. */
function confirmed(x: SimNode): boolean {
  const window = x.singleton?.confirmWindow ?? CONFIRM_WINDOW
  return x.core.confirmedUntil(x.now(), window) > x.now()
}

/** Whether node `x` has marked `uid` down or removed (or forgotten it after removing). */
function ended(x: SimNode, uid: string): boolean {
  const m = x.core.member(uid)
  if (m) return m.status === 'down' || m.status === 'removed'
  return x.core.isForgotten(uid)
}

/** Runs one simulation; see {@link ClusterSimulator}. */
export function runClusterSim(options: ClusterSimOptions): ClusterSimReport {
  return new ClusterSimulator(options).run()
}
