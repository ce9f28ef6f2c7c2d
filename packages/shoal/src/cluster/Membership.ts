/**
 * Membership: one node's cluster membership as a pure state machine, shaped like Akka's cluster
 * core and downing provider. Inputs are events with their time (gossip received, SWIM's view
 * changed, heartbeat answers, ticks, commands); outputs are {@link MembershipDirective}s that a
 * shell applies (send gossip, send a heartbeat, drop a connection, tombstone a node, emit an
 * event, log). It owns the gossip state, reachability history, per-observer reachability,
 * heartbeats, the leader, the downing decisions (`DowningDecision.ts`, `Downing.ts`) and
 * forgetting removed members. It reads SWIM's view through {@link SwimView} (a `SwimInstance` in
 * the shell and in the simulator) and never touches a socket, a timer or a wall clock.
 *
 * When to use: `Cluster.ts` is its shell on a real network; `sim/ClusterSimulator.ts` runs many of
 * them on a virtual clock. Nothing else should construct one.
 *
 * Gotchas: every method returns the directives of that step, in order; apply them all, in order
 * (events before the tombstones that follow them). `now` must come from one monotonic clock, the
 * one SWIM uses, because `lastHeard` answers are compared with it.
 * @module
 */
import { type ClusterNode, endpointKey, formatNode } from '../actor/ClusterNode.ts'
import type { SwimNode, SwimStatus } from '../swim/SwimNode.ts'
import { confirmedUntil, type DowningStrategy, resolveIndirect } from './Downing.ts'
import { decideDowning, indirectDecisionConfirmed } from './DowningDecision.ts'
import {
  type ClusterMeeting,
  clusterMeeting,
  emptyGossip,
  type GossipState,
  isConverged,
  leaderActions,
  leaderOf,
  mergeGossip,
  statusChanges,
  updateMember,
} from './Gossip.ts'
import { type HeartbeatAnswer, type HeartbeatSettings, Heartbeats } from './Heartbeat.ts'
import { type ClusterMember, isPresent, type Member, type MembershipStatus, memberAddress, type Reachability, STATUS_RANK } from './Member.ts'
import { mergeObservations, type ObservationTable, observe, observersOf, pruneObservations, unreachabilityEdges } from './Reachability.ts'
import { ReachabilityHistory, waitingForOthers } from './ReachabilityHistory.ts'
import { compareVersions, pruneVersion } from './VersionVector.ts'

/** All members get every pushed change up to this size; larger clusters push to 3 at random. */
const PUSH_TO_ALL_UP_TO = 32
/** Senders whose last exchange is remembered (see `#answer`); beyond, the memory starts afresh. */
const MAX_ANSWERED = 1024
/** The lowest listed node first says it waits for listed endpoints after this long, ms, then every UNMET_WARN_EVERY. */
const UNMET_WARN_AFTER = 10_000
const UNMET_WARN_EVERY = 30_000

/** Where gossip goes: a member, or an endpoint that is not one yet (a seed). */
export interface GossipTarget {
  readonly host: string
  readonly port: number
  readonly uid?: string
}

/** What `Cluster.events()` yields, and what the core asks its shell to emit. */
export type ClusterEvent =
  | { readonly type: 'snapshot'; readonly membership: MembershipSnapshot }
  | { readonly type: 'member'; readonly member: ClusterMember; readonly previous: MembershipStatus | undefined }
  | { readonly type: 'reachability'; readonly member: ClusterMember }
  | { readonly type: 'leader'; readonly leader: ClusterMember | undefined }

/** What the cluster looks like from this node. */
export interface MembershipSnapshot {
  readonly self: ClusterMember
  readonly leader: ClusterMember | undefined
  readonly members: readonly ClusterMember[]
}

/** What the shell does for the core; see the module comment. */
export type MembershipDirective =
  /** Send the current gossip state (encode it once for all). */
  | { readonly kind: 'gossip'; readonly to: readonly GossipTarget[] }
  /** Send the current observation table ({@link Membership.observations}). */
  | { readonly kind: 'observations'; readonly to: readonly ClusterNode[] }
  | { readonly kind: 'heartbeat'; readonly to: ClusterNode; readonly seq: number }
  | { readonly kind: 'heartbeat-answer'; readonly to: ClusterNode; readonly answer: HeartbeatAnswer }
  /** Drop the connection to `node` and dial afresh (`keep`: only skip the reconnect backoff). */
  | { readonly kind: 'replace-connection'; readonly node: ClusterNode; readonly reason: string; readonly keep: boolean }
  /** Have SWIM probe an endpoint (a member membership heard of first, or a seed). */
  | { readonly kind: 'swim-join'; readonly endpoint: { readonly host: string; readonly port: number } }
  /** `node` may never come back: refuse its connections. */
  | { readonly kind: 'tombstone'; readonly node: ClusterNode }
  | { readonly kind: 'event'; readonly event: ClusterEvent }
  /** The cluster ended this node's membership (not a stop of its own). */
  | { readonly kind: 'downed' }
  | { readonly kind: 'log'; readonly level: 'debug' | 'info' | 'warn'; readonly fields: Record<string, unknown>; readonly msg: string }

/** What the core reads of SWIM (a `SwimInstance` satisfies it). */
export interface SwimView {
  /** The member's SWIM status, undefined if SWIM does not know it. Called with the same node objects again and again. */
  statusOf(node: SwimNode): SwimStatus | undefined
  lastHeard(node: SwimNode): number | undefined
  /**
   * Changes whenever `statusOf` may answer differently. The core keeps what it derived from SWIM's
   * statuses (who is reachable, who leads) while it stays the same. Gotcha: a view that changes a
   * status without changing this leaves the core on stale answers.
   */
  readonly version: number
}

/** How one node's membership is set up. */
export interface MembershipOptions {
  readonly self: ClusterNode
  readonly roles: readonly string[]
  readonly minMembers: number
  readonly downing: DowningStrategy
  readonly heartbeat: HeartbeatSettings
  /** Whether the node has somewhere to join (seeds, discovery): it then waits before making itself up alone. */
  readonly hasProviders: boolean
  readonly selfJoinAfter: number
  readonly swim: SwimView
  /** Picks gossip targets; seeded in the simulator. */
  readonly random: () => number
  readonly now: number
  /** @internal The downing confirmation rule (DowningDecision.ts); off only in mutation checks. */
  readonly confirm?: boolean
  /** @internal The fence after a freeze (`Membership.#wake`); off only in mutation checks. */
  readonly wakeFence?: boolean
}

/** Counts since start, for metrics (`shoal_cluster_*_total`). */
export interface ClusterStats {
  /** Times the leader this node sees changed. */
  readonly leaderChanges: number
  /** Downing decisions this node took and applied (strategy, or indirectly connected members). */
  readonly downingDecisions: { readonly strategy: number; readonly indirect: number }
  /** Members this node marked down by those decisions. */
  readonly membersDowned: number
}

/** One node's membership, pure; see the module comment. */
export class Membership {
  readonly self: ClusterNode
  readonly downing: DowningStrategy
  readonly #o: MembershipOptions
  readonly #swim: SwimView
  readonly #beats: Heartbeats
  readonly #history: ReachabilityHistory
  readonly #startedAt: number
  #gossip: GossipState = emptyGossip()
  #observations: ObservationTable = new Map()
  /** The indirect-unreachability edges among members SWIM sees alive, as a key, and since when. */
  #edgesKey = ''
  #edgesChangedAt = 0
  /** When the connection to each stalled member was last replaced. */
  readonly #replacedAt = new Map<string, number>()
  /** Per sender: the exchange this node last answered (its own state then, and what the sender had sent). */
  readonly #answered = new Map<string, { mine: GossipState; theirs: GossipState }>()
  #leader: string | undefined
  #stopped = false
  /** `stop()` is downing this node itself (a shutdown), not the cluster. */
  #stopping = false
  #downedByCluster = false
  #foundNoOne = false
  /** This node has the lowest address its sources list: it alone may form a cluster by itself. */
  #mayFormAlone = true
  /** The other endpoints this node's sources list: a new cluster forms only once each is met, not in a cluster either. */
  #mustMeet: string[] = []
  #unmetWarnedAt = Number.NEGATIVE_INFINITY
  #now: number
  readonly #stats = { leaderChanges: 0, strategy: 0, indirect: 0, membersDowned: 0 }
  #out: MembershipDirective[] = []
  /** The members that talked to this node at the last downing round, and when one last started to. */
  #talking: ReadonlySet<string> = new Set()
  #talkingChangedAt = Number.NEGATIVE_INFINITY
  /** Since when the leader's decisions have waited for confirmation without a break. */
  #unconfirmedSince: number | undefined
  /** Per member this node has down or removed: the members seen to know it (from gossip `seen`). */
  readonly #downSeen = new Map<string, Set<string>>()
  /** The order in which this node first heard of each member (1, 2, …). */
  readonly #arrival = new Map<string, number>()
  #arrivals = 0
  /** Per member down or removed here: how many members this node had heard of when it first saw that. */
  readonly #downArrival = new Map<string, number>()
  /** Answers of {@link reachable} in the current {@link #epoch}. */
  readonly #reachableMemo = new Map<string, boolean>()
  /**
   * Bumped whenever reachability may answer differently: this core's state changed ({@link #changed})
   * or SWIM's view did ({@link SwimView.version}). What is derived from reachability is kept per epoch.
   */
  #epoch = 0
  /** The SWIM version of the current epoch. */
  #epochSwim = -1
  /** The leader `leaderOf` gave, and in which epoch. */
  #leaderIn: { epoch: number; leader: string | undefined } | undefined
  /** {@link members}, until the gossip, a reachability or the observations change. */
  #views: readonly ClusterMember[] | undefined
  /** `present()`, until the gossip changes. */
  #present: Member[] | undefined
  /** Members not removed (what downing decides about), until the gossip changes. */
  #notRemovedList: Member[] | undefined
  readonly #toTombstone: ClusterNode[] = []
  /** When the last step ran: a longer gap than {@link #freezeAfter} between two is a freeze (see {@link #wake}). */
  #lastStepAt: number | undefined
  /**
   * Set on waking from a freeze with other members present: when, and who they were. Until one of
   * them confirms this node (a heartbeat sent since), it neither leads nor serves; if all of them
   * go first, it downs itself (see {@link #wake}).
   */
  #woke: { readonly at: number; readonly peers: ReadonlySet<string> } | undefined

  constructor(o: MembershipOptions) {
    this.#o = o
    this.self = o.self
    this.downing = o.downing
    this.#swim = o.swim
    this.#now = o.now
    this.#startedAt = o.now
    this.#history = new ReachabilityHistory(o.now)
    this.#beats = new Heartbeats(o.heartbeat)
  }

  // ── reading ────────────────────────────────────────────────────────────────

  /** The gossip state (immutable; the shell encodes it for the `gossip` directive). */
  get gossip(): GossipState {
    return this.#gossip
  }

  /** The per-observer unreachability table (for the `observations` directive). */
  get observations(): ObservationTable {
    return this.#observations
  }

  /** The heartbeat period and stall bound this core runs with. */
  get heartbeatSettings(): HeartbeatSettings {
    return this.#beats.settings
  }

  /** The current membership as seen from here (removed members stay listed for a minute). */
  snapshot(): MembershipSnapshot {
    const members = this.members()
    const self = members.find((m) => m.node.uid === this.self.uid)!
    const leader = this.#leader === undefined ? undefined : members.find((m) => m.node.uid === this.#leader)
    return { self, leader, members }
  }

  /** Every member, with reachability (what strategies and plugins read); the same array until something changes. */
  members(): readonly ClusterMember[] {
    return (this.#views ??= [...this.#gossip.members.values()].map((m) => this.#view(m)))
  }

  /** The gossip record of member `uid`, if this node knows it (removed ones for a minute). */
  member(uid: string): Member | undefined {
    return this.#gossip.members.get(uid)
  }

  /** The uid of the leader this node sees: the lowest reachable up member. */
  get leader(): string | undefined {
    return this.#leader
  }

  /** Counts since start, for metrics. */
  get stats(): ClusterStats {
    const s = this.#stats
    return { leaderChanges: s.leaderChanges, downingDecisions: { strategy: s.strategy, indirect: s.indirect }, membersDowned: s.membersDowned }
  }

  /** Whether every member reachable from here has seen this node's current state. */
  get converged(): boolean {
    return isConverged(this.#gossip, (uid) => this.reachable(uid))
  }

  /** True once the cluster has ended this node's membership (see `Cluster.downed`). */
  get downed(): boolean {
    return this.#downedByCluster
  }

  /** This node's own status (joining until gossip says otherwise). */
  get status(): MembershipStatus {
    return this.#gossip.members.get(this.self.uid)?.status ?? 'joining'
  }

  /** `stop` was called: every input is ignored from then on. */
  get stopped(): boolean {
    return this.#stopped
  }

  /** Present members (joining, up, leaving); the same array until something changes. */
  present(): readonly Member[] {
    return (this.#present ??= [...this.#gossip.members.values()].filter((m) => isPresent(m.status)))
  }

  /** Whether `e` is this node or a present member reachable from here (discovery need not join it). */
  isMemberAddress(e: { host: string; port: number }): boolean {
    const key = endpointKey(e)
    if (key === endpointKey(this.self.endpoint)) return true
    return this.present().some((m) => memberAddress(m) === key && this.reachable(m.node.uid))
  }

  /**
   * Reachable from here: SWIM knows the member and does not suspect it. A member that gossip
   * announced but SWIM has never seen (learned just before a partition, say) is not: it must
   * neither lead nor count toward this side's quorum, or a minority could believe itself the
   * majority.
   */
  reachable(uid: string): boolean {
    if (uid === this.self.uid) return true
    this.#currentEpoch()
    const known = this.#reachableMemo.get(uid)
    if (known !== undefined) return known
    const m = this.#history.notCutOff(uid) ? this.#gossip.members.get(uid) : undefined
    const answer = m !== undefined && this.#swimStatus(m) !== undefined
    this.#reachableMemo.set(uid, answer)
    return answer
  }

  isForgotten(uid: string): boolean {
    return this.#history.isForgotten(uid)
  }

  /** Until when heartbeat answers confirm this node's side (see `Cluster.confirmedUntil`). */
  confirmedUntil(now: number, window: number, notBefore = Number.NEGATIVE_INFINITY): number {
    const self = this.#gossip.members.get(this.self.uid)
    if (this.#woke || this.#downedByCluster || (self !== undefined && (self.status === 'down' || self.status === 'removed'))) return Number.NEGATIVE_INFINITY
    // Frozen until a moment ago, and asked before this core's first step since: the step will find
    // the freeze (see #wake); meanwhile nothing it confirmed before counts.
    if (this.#lastStepAt !== undefined && this.#frozeFor(now - this.#lastStepAt)) return Number.NEGATIVE_INFINITY
    // A down another side may not know of yet counts there as up (see #unseenDowns).
    const unseen = new Set(this.#unseenDowns().map((m) => m.node.uid))
    const members = this.members()
      .filter((m) => m.status !== 'removed' || unseen.has(m.node.uid))
      .map((m): ClusterMember => (unseen.has(m.node.uid) ? { ...m, status: 'up', reachability: 'unreachable' } : m))
    const until = confirmedUntil(
      this.self.uid,
      members,
      (uid) => {
        const at = this.#beats.confirmedAt(uid)
        return at !== undefined && at >= notBefore ? at : undefined
      },
      this.downing,
      window,
      unseen,
    )
    return Math.min(until, now + window)
  }

  // ── inputs ─────────────────────────────────────────────────────────────────

  /** The node starts as `joining`. */
  start(now: number): MembershipDirective[] {
    return this.#step(now, () => {
      const me: Member = { node: this.self, status: 'joining', upNumber: 0, roles: [...this.#o.roles] }
      this.#commit(updateMember(this.#gossip, this.self.uid, me))
    })
  }

  /** Gossip arrived from `from` (already decoded). */
  receiveGossip(from: ClusterNode, received: GossipState, now: number): MembershipDirective[] {
    return this.#step(now, () => {
      if (this.#history.isForgotten(from.uid)) return
      const meeting = clusterMeeting(this.#gossip, received, (uid) => this.#history.isForgotten(uid))
      if (meeting !== 'one-cluster') return this.#meetCluster(from, meeting)
      let merged = mergeGossip(this.#gossip, received, this.self.uid, (uid) => this.#history.isForgotten(uid))
      // The two versions may differ only by entries of removed members that one side has
      // forgotten (every node forgets on its own clock; a paused node later): that is the same
      // state, so who has seen it is the union. Treating it as different made two such nodes each
      // keep its own `seen`, tell the other, and reply to each other without end: storms the
      // cluster simulator found (seeds 2 and 397).
      const theirs = pruneVersion(received.version, (uid) => !this.#history.isForgotten(uid))
      const mine = pruneVersion(merged.version, (uid) => theirs.has(uid) || merged.members.get(uid)?.status !== 'removed')
      const same = compareVersions(mine, theirs) === 'same'
      if (same && lacks(merged.seen, received.seen)) merged = { ...merged, seen: new Set([...merged.seen, ...received.seen]) }
      this.#commit(merged)
      // The sender lacks something we have (a newer or merged version, or who has seen it): tell it.
      // Nothing else: replying to everything would ping-pong forever.
      if (!same || lacks(received.seen, merged.seen)) this.#answer(from, received)
    })
  }

  /**
   * Replies to `from`, unless this is the exchange answered last time: our state unchanged and the
   * sender's the same as then. The sender could not use that answer, and answering again would
   * ping-pong at network speed. (A member that had missed a removal kept the member down, while
   * this node had removed and forgotten it, so it prunes that entry and the other cannot: 78,000
   * gossips a second, the cluster simulator, seed 76 of `--gap 5 --skew 0.1 --virtual-lease`.)
   * The gossip round and the pushes on change go on talking to it.
   */
  #answer(from: ClusterNode, received: GossipState): void {
    const last = this.#answered.get(from.uid)
    if (last && last.mine === this.#gossip && sameGossip(last.theirs, received)) return
    if (this.#answered.size >= MAX_ANSWERED) this.#answered.clear()
    this.#answered.set(from.uid, { mine: this.#gossip, theirs: received })
    this.#gossipTo([from])
  }

  /**
   * Gossip from a cluster formed apart (`clusterMeeting`, Gossip.ts): nothing of it is merged. The
   * cluster that stays tells the sender its state, so it learns it must yield; a node of the
   * cluster that yields leaves it as if downed (its supervisor restarts it, and it joins afresh).
   */
  #meetCluster(from: ClusterNode, meeting: Exclude<ClusterMeeting, 'one-cluster'>): void {
    if (meeting === 'local-stays') {
      this.#log('info', { from: formatNode(from) }, 'gossip from a cluster formed apart, smaller than this one: not merged; telling it')
      return this.#gossipTo([from])
    }
    this.#learnedDown(`${formatNode(from)} belongs to a larger cluster formed apart from this one: leaving this one to join it afresh`)
  }

  /** SWIM's view of a member changed. */
  swimChanged(node: { host: string; port: number; uid: string }, status: SwimStatus, now: number): MembershipDirective[] {
    return this.#step(now, () => {
      const m = this.#gossip.members.get(node.uid)
      // Unreachable as soon as SWIM suspects (a probe failed directly, through helpers and over
      // TCP): downing waits `stableAfter` on top, and a refutation makes it reachable again.
      const down = status !== 'alive'
      if (!m) {
        // A node SWIM knows but membership does not yet: send it our state so it learns of us.
        if (!down && !this.#history.isForgotten(node.uid)) this.#gossipTo([{ host: node.host, port: node.port }])
        return
      }
      this.#setReachable(m, !down)
      this.#updateLeader()
      // SWIM saw the process at this address restart with a new uid: the old record goes down.
      if (status === 'dead' && isPresent(m.status)) {
        const newer = [...this.#gossip.members.values()].some(
          (o) => o.node.uid !== node.uid && memberAddress(o) === memberAddress(m) && isPresent(o.status) && this.#swimAlive(o),
        )
        if (newer) this.#setStatus(m, 'down')
      }
    })
  }

  /** The periodic tick (250 ms in the shell): heartbeats, forgetting, leader actions, downing. */
  tick(now: number): MembershipDirective[] {
    return this.#step(now, () => {
      this.#heartbeatTick()
      this.#forgetRemoved()
      // SWIM coming to know a member changes who is reachable without an event of its own.
      this.#updateLeader()
      this.#runLeaderActions()
      this.#runDowning()
      this.#warnUnmet()
    })
  }

  /** The periodic gossip round (1 s in the shell): one member, preferably one that has not seen this state. */
  gossipTick(now: number): MembershipDirective[] {
    return this.#step(now, () => {
      const others = this.present().filter((m) => m.node.uid !== this.self.uid && this.reachable(m.node.uid))
      const unseen = others.filter((m) => !this.#gossip.seen.has(m.node.uid))
      const [target] = this.#pick(unseen.length > 0 ? unseen : others, 1)
      if (!target) return
      this.#gossipTo([target.node])
      // Observations too (anti-entropy: a record pushed on change may have been lost with a connection).
      if (this.#observations.size > 0) this.#out.push({ kind: 'observations', to: [target.node] })
    })
  }

  /** Joins an endpoint (a seed, or one discovery found): SWIM probes it and it gets our state. */
  join(e: { host: string; port: number }, now: number): MembershipDirective[] {
    return this.#step(now, () => {
      if (endpointKey(e) === endpointKey(this.self.endpoint)) return
      this.#log('debug', { endpoint: endpointKey(e) }, 'joining')
      this.#out.push({ kind: 'swim-join', endpoint: { host: e.host, port: e.port } })
      this.#gossipTo([{ host: e.host, port: e.port }])
    })
  }

  /** Every discovery provider answered and none listed anyone else: no reason to wait alone. */
  foundNoOne(now: number): MembershipDirective[] {
    return this.#step(now, () => {
      this.#foundNoOne = true
      this.#runLeaderActions()
    })
  }

  /**
   * Whether this node has the lowest address among itself and every endpoint its sources list
   * (`listed`): only such a node ever forms a new cluster, and only once it has met every other
   * listed endpoint not in a cluster either (or, when none is listed, alone after `selfJoinAfter`;
   * see `waitingForOthers`). Default true with nothing listed (a node that knows no other endpoint).
   */
  mayFormAlone(allowed: boolean, now: number, listed: readonly { host: string; port: number }[] = []): MembershipDirective[] {
    return this.#step(now, () => {
      const self = endpointKey(this.self.endpoint)
      const mustMeet = [...new Set(listed.map(endpointKey))].filter((k) => k !== self).sort()
      if (allowed === this.#mayFormAlone && mustMeet.join() === this.#mustMeet.join()) return
      this.#mayFormAlone = allowed
      this.#mustMeet = mustMeet
      this.#runLeaderActions()
    })
  }

  /** A heartbeat request from `from`: answer what this node knows of it. */
  heartbeatRequest(from: ClusterNode, seq: number, now: number): MembershipDirective[] {
    return this.#step(now, () => {
      const m = this.#gossip.members.get(from.uid)
      const reachable = this.reachable(from.uid) && !this.#beats.isStalled(from.uid)
      this.#out.push({ kind: 'heartbeat-answer', to: from, answer: { seq, status: m?.status, reachable } })
    })
  }

  /** A heartbeat answer from `from`. */
  heartbeatAnswer(from: ClusterNode, answer: HeartbeatAnswer, now: number): MembershipDirective[] {
    return this.#step(now, () => {
      const fresh = this.#beats.answer(from.uid, answer)
      const woke = this.#woke
      if (woke?.peers.has(from.uid) && (this.#beats.confirmedAt(from.uid) ?? Number.NEGATIVE_INFINITY) >= woke.at) {
        this.#woke = undefined
        this.#changed()
        this.#updateLeader()
        this.#log('info', { member: formatNode(from) }, 'a member known before the freeze confirms this node: leading and serving again')
      }
      if (fresh) {
        this.#replacedAt.delete(from.uid)
        this.#log('info', { member: formatNode(from) }, 'heartbeats to member answered again')
        this.#observeStalls()
      }
      // A member of the side that decided says this node is gone: the news that travels fastest.
      if (answer.status === 'down' || answer.status === 'removed') this.#learnedDown(`${formatNode(from)} answers that this node is ${answer.status}`)
    })
  }

  /** Another member's observation table arrived. */
  receiveObservations(from: ClusterNode, table: ObservationTable, now: number): MembershipDirective[] {
    return this.#step(now, () => {
      const merged = mergeObservations(this.#observations, table, this.self.uid, (uid) => this.#isPresentMember(uid))
      if (merged === this.#observations) return
      this.#observations = merged
      this.#changed()
      this.#noteEdges()
      // Pass it on: the observer's own links to the leader may be the cut ones.
      const to = this.present().filter((m) => m.node.uid !== this.self.uid && m.node.uid !== from.uid)
      if (to.length > 0) this.#out.push({ kind: 'observations', to: to.map((m) => m.node) })
    })
  }

  /** An operator downs a member (by `host:port` or uid); false if no such present member. */
  down(match: (m: Member) => boolean, now: number): { found: boolean; directives: MembershipDirective[] } {
    const m = this.present().find(match)
    if (!m) return { found: false, directives: [] }
    const directives = this.#step(now, () => {
      this.#log('info', { member: formatNode(m.node) }, 'marking member down')
      this.#setStatus(m, 'down')
    })
    return { found: true, directives }
  }

  /** A peer refused this node as down: as if the gossip had said so. */
  learnedDown(reason: string, now: number): MembershipDirective[] {
    return this.#step(now, () => this.#learnedDown(reason))
  }

  /** A graceful leave begins: `leaving` (then the shell runs hand-overs and calls {@link exiting}). */
  leaving(now: number): { started: boolean; directives: MembershipDirective[] } {
    const me = this.#gossip.members.get(this.self.uid)
    if (!me || STATUS_RANK[me.status] >= STATUS_RANK.leaving) return { started: false, directives: [] }
    return {
      started: true,
      directives: this.#step(now, () => {
        this.#log('info', {}, 'leaving the cluster')
        this.#setStatus(me, 'leaving')
      }),
    }
  }

  /** Hand-overs are done: `exiting`; the last member, with no leader left to remove it, removes itself. */
  exiting(now: number): MembershipDirective[] {
    return this.#step(now, () => {
      this.#setStatus(this.#gossip.members.get(this.self.uid)!, 'exiting')
      const others = this.present().filter((m) => m.node.uid !== this.self.uid && this.reachable(m.node.uid))
      if (others.length === 0) this.#setStatus(this.#gossip.members.get(this.self.uid)!, 'removed')
    })
  }

  /** The node stops: marks itself down unless it already left, and ignores everything after. */
  stop(now: number): MembershipDirective[] {
    if (this.#stopped) return []
    const out = this.#step(now, () => {
      const me = this.#gossip.members.get(this.self.uid)
      if (me && STATUS_RANK[me.status] < STATUS_RANK.exiting) {
        // Shut down without leaving: say so, so peers remove this node rather than wait to detect it.
        this.#stopping = true
        this.#setStatus(me, 'down')
      }
    })
    this.#stopped = true
    return out
  }

  // ── steps ──────────────────────────────────────────────────────────────────

  #step(now: number, fn: () => void): MembershipDirective[] {
    if (this.#stopped) return []
    this.#now = Math.max(this.#now, now)
    const gap = this.#lastStepAt === undefined ? 0 : this.#now - this.#lastStepAt
    this.#lastStepAt = this.#now
    if (this.#frozeFor(gap)) this.#wake(gap)
    fn()
    if (this.#woke) this.#checkWoken()
    const out = this.#out
    this.#out = []
    return oneGossip(out)
  }

  /** The gossip, a reachability or the observations changed: what is derived from them goes. */
  #changed(): void {
    this.#views = undefined
    this.#present = undefined
    this.#notRemovedList = undefined
    this.#reachableMemo.clear()
    this.#epoch++
  }

  /** The current epoch (see {@link #epoch}): a new one if SWIM's view changed since. */
  #currentEpoch(): number {
    const swim = this.#swim.version
    if (swim !== this.#epochSwim) {
      this.#epochSwim = swim
      this.#reachableMemo.clear()
      this.#epoch++
    }
    return this.#epoch
  }

  #log(level: 'debug' | 'info' | 'warn', fields: Record<string, unknown>, msg: string): void {
    this.#out.push({ kind: 'log', level, fields, msg })
  }

  /**
   * The event loop was frozen for `gap` ms, longer than the others need to decide on a member that
   * stopped answering: they may have downed and removed this node meanwhile, and gone on with
   * members it never saw. Its view is stale, and where every member it knew has since gone
   * (restarted, downed), it is the only one left in it: alone, it counts as a majority and would
   * lead and serve, and take fresh nodes in as a second cluster (the cluster simulator, seed 49 of
   * `--gap 5 --shards 8`: a node frozen 26 s, removed meanwhile, woke to find the two members of
   * its side restarted, moved them up and served shards the real cluster served too). So until a
   * member it knew confirms it (a heartbeat sent after waking, answered "present"), it neither
   * leads nor serves; if every such member goes first, it downs itself and joins afresh.
   */
  #wake(gap: number): void {
    const peers = this.present().filter((m) => m.node.uid !== this.self.uid)
    this.#woke = { at: this.#now, peers: new Set(peers.map((m) => m.node.uid)) }
    this.#changed()
    this.#updateLeader()
    this.#log('warn', { frozenMs: Math.round(gap) }, 'woke from a freeze: not leading or serving until a member known before it confirms this node')
  }

  /**
   * Whether a gap of `gap` ms between steps is a freeze the fence applies to: longer than
   * {@link #freezeAfter}, this node present, and other members present (a cluster of one: nobody
   * could have gone on without it).
   */
  #frozeFor(gap: number): boolean {
    if (gap <= this.#freezeAfter() || this.#o.wakeFence === false) return false
    const me = this.#gossip.members.get(this.self.uid)
    return me !== undefined && isPresent(me.status) && this.present().some((m) => m.node.uid !== this.self.uid)
  }

  /**
   * A gap between two steps (the shell ticks every 250 ms) longer than this is a freeze: the
   * heartbeat stall bound, after which the others find this node's heartbeats stalled and may
   * begin to decide on it.
   */
  #freezeAfter(): number {
    return this.#beats.settings.stallAfter
  }

  /** Every member known before the freeze has gone without confirming this node: it downs itself. */
  #checkWoken(): void {
    for (const uid of this.#woke!.peers) if (this.#isPresentMember(uid)) return
    this.#woke = undefined
    this.#changed()
    this.#updateLeader()
    const me = this.#gossip.members.get(this.self.uid)
    if (!me || STATUS_RANK[me.status] >= STATUS_RANK.exiting) return
    this.#log('warn', {}, 'woke from a freeze to find every member it knew gone: it may have been removed meanwhile; downing itself to join afresh')
    this.#setStatus(me, 'down')
  }

  #learnedDown(reason: string): void {
    const me = this.#gossip.members.get(this.self.uid)
    // Leaving nodes are refused once removed: that is the end of a graceful leave, not a downing.
    if (!me || STATUS_RANK[me.status] >= STATUS_RANK.exiting) return
    this.#log('warn', { reason }, 'a peer refuses this node as down')
    this.#setStatus(me, 'down')
  }

  #setStatus(m: Member, status: MembershipStatus): void {
    this.#commit(updateMember(this.#gossip, this.self.uid, { ...m, status }))
  }

  /** Adopts a new state: events, replacement, tombstones, leader actions, push. */
  #commit(next: GossipState): void {
    const before = this.#gossip
    if (next === before) return
    this.#gossip = next
    this.#changed()
    this.#noteDownsSeen(next)
    const changes = statusChanges(before, next)
    for (const c of changes) this.#onStatus(c.member, c.previous)
    this.#replaceRestarted(changes.map((c) => c.member))
    this.#updateLeader()
    if (changes.length > 0) {
      this.#history.statusChanged(this.#now)
      this.#observations = pruneObservations(this.#observations, (uid) => this.#isPresentMember(uid))
      this.#changed()
    }
    this.#runLeaderActions()
    // Members just marked down or removed are no longer gossip targets: tell them once, so a downed
    // node learns its fate (and shuts down) and a leaving one learns it is done.
    this.#push(changes.filter((c) => c.member.status === 'removed' || c.member.status === 'down').map((c) => c.member))
    // Only now, after that last word: tombstoning closes the connection.
    for (const node of this.#toTombstone.splice(0)) this.#out.push({ kind: 'tombstone', node })
  }

  /** Who has seen each down: every member in `seen` has seen this version, and so every down in it. */
  #noteDownsSeen(g: GossipState): void {
    for (const m of g.members.values()) {
      if (m.status !== 'down' && m.status !== 'removed') continue
      let seen = this.#downSeen.get(m.node.uid)
      if (!seen) this.#downSeen.set(m.node.uid, (seen = new Set()))
      for (const uid of g.seen) seen.add(uid)
    }
  }

  /**
   * Members down or removed here whose down a present member other than this one has not been seen
   * to know: another side may still count them up (see `unseenDowns` in DowningDecision.ts).
   */
  #unseenDowns(): ClusterMember[] {
    const present = this.present().filter((p) => p.node.uid !== this.self.uid)
    const out: ClusterMember[] = []
    for (const m of this.#gossip.members.values()) {
      if (m.status !== 'down' && m.status !== 'removed') continue
      const seen = this.#downSeen.get(m.node.uid)
      if (present.some((p) => !seen?.has(p.node.uid)) && !this.#restartedSinceDown(m)) out.push(this.#view(m))
    }
    return out
  }

  /**
   * Whether a member present here, first heard of after `m` was down here, has `m`'s address: a
   * new process bound it, so `m`'s is gone and up nowhere, whoever has not heard of its down. (An
   * unreachable restarted node, still joining, never can be seen to know of downs: counting every
   * down it had not seen left a side of five up members unconfirmed until it downed itself; the
   * cluster simulator, seed 54 of `--nodes 9 --gap 5`.)
   */
  #restartedSinceDown(m: Member): boolean {
    const downAt = this.#downArrival.get(m.node.uid)
    if (downAt === undefined) return false
    const address = memberAddress(m)
    return this.present().some((p) => p.node.uid !== m.node.uid && (this.#arrival.get(p.node.uid) ?? 0) > downAt && memberAddress(p) === address)
  }

  #onStatus(m: Member, previous: MembershipStatus | undefined): void {
    if (previous === undefined) this.#arrival.set(m.node.uid, ++this.#arrivals)
    if ((m.status === 'down' || m.status === 'removed') && !this.#downArrival.has(m.node.uid)) this.#downArrival.set(m.node.uid, this.#arrivals)
    this.#log('info', { member: formatNode(m.node), status: m.status, previous, upNumber: m.upNumber || undefined }, 'member status changed')
    if (m.status === 'removed') this.#history.removed(m.node.uid, this.#now)
    // A downed node may not come back; one that left gracefully is removed and says goodbye itself
    // (tombstoning it now would cut the connection that tells it it was removed).
    if ((m.status === 'down' || (m.status === 'removed' && previous !== 'exiting')) && m.node.uid !== this.self.uid) this.#toTombstone.push(m.node)
    if (previous === undefined) {
      if (m.node.uid !== this.self.uid && this.#swimStatus(m) !== undefined && this.#swimStatus(m) !== 'alive') this.#setReachable(m, false)
      // Membership heard of it first: have SWIM probe it too (a push-pull with it).
      if (m.node.uid !== this.self.uid && isPresent(m.status) && this.#swimStatus(m) === undefined)
        this.#out.push({ kind: 'swim-join', endpoint: { host: m.node.endpoint.host, port: m.node.endpoint.port } })
    }
    this.#out.push({ kind: 'event', event: { type: 'member', member: this.#view(m), previous } })
    // Removed without having been seen down (a node frozen through its down, say) was downed too.
    const downed = m.status === 'down' || (m.status === 'removed' && previous !== 'exiting' && previous !== 'down')
    if (m.node.uid === this.self.uid && downed) this.#downed()
  }

  #downed(): void {
    if (this.#stopping) return this.#log('info', {}, 'stopping without a graceful leave: marked this node down so peers remove it at once')
    if (this.#downedByCluster) return
    this.#downedByCluster = true
    this.#out.push({ kind: 'downed' })
  }

  /** A new incarnation joined at an endpoint where another is still present: that one is gone. */
  #replaceRestarted(changed: readonly Member[]): void {
    for (const m of changed) {
      if (m.status !== 'joining') continue
      for (const other of this.#gossip.members.values()) {
        // Stale gossip about an old incarnation must not down the live one: only a record SWIM
        // no longer sees alive is downed (SWIM replaces a uid when the new one answers its ping).
        if (other.node.uid !== m.node.uid && memberAddress(other) === memberAddress(m) && isPresent(other.status) && !this.#swimAlive(other)) {
          this.#log('info', { old: formatNode(other.node), now: formatNode(m.node) }, 'member restarted with a new uid; downing the old one')
          this.#setStatus(other, 'down')
        }
      }
    }
  }

  #waitingForOthers(): boolean {
    const unformed = this.#unformed()
    return waitingForOthers({
      hasProviders: this.#o.hasProviders,
      foundNoOne: this.#foundNoOne,
      alone: [...this.#gossip.members.keys()].every((uid) => uid === this.self.uid),
      unformed,
      // Only a node not in a cluster yet needs it (this runs on every leader-action pass).
      unmet: unformed ? this.#unmet().length : 0,
      startedAt: this.#startedAt,
      now: this.#now,
      selfJoinAfter: this.#o.selfJoinAfter,
      mayFormAlone: this.#mayFormAlone,
    })
  }

  /** No cluster yet: nobody up, leaving or exiting (a joiner that crashed may have been downed). */
  #unformed(): boolean {
    for (const m of this.#gossip.members.values()) if (m.status !== 'joining' && m.status !== 'down' && m.status !== 'removed') return false
    return true
  }

  /** The listed endpoints this node has not met (no member at that address in its view). */
  #unmet(): string[] {
    if (this.#mustMeet.length === 0) return []
    const met = new Set([...this.#gossip.members.values()].map(memberAddress))
    return this.#mustMeet.filter((k) => !met.has(k))
  }

  /**
   * The lowest listed node waits to meet every listed endpoint before forming a cluster: say so
   * (10 s after the start, then every 30 s), naming them, since one that never runs blocks it.
   */
  #warnUnmet(): void {
    if (!this.#mayFormAlone || this.#now - this.#startedAt < UNMET_WARN_AFTER || this.#now - this.#unmetWarnedAt < UNMET_WARN_EVERY) return
    if (!this.#unformed()) return
    const unmet = this.#unmet()
    if (unmet.length === 0) return
    this.#unmetWarnedAt = this.#now
    this.#log(
      'warn',
      { unmet },
      'not forming a new cluster yet: the lowest listed address forms one only once every endpoint its sources list has answered and is not in a cluster; if one of them will not run, take it off the list',
    )
  }

  #runLeaderActions(): void {
    // Only the leader acts (leaderActions would find the same leader and do nothing).
    if (this.#woke || this.#leaderNow() !== this.self.uid || this.#waitingForOthers()) return
    const { gossip } = leaderActions(this.#gossip, {
      self: this.self.uid,
      minMembers: this.#o.minMembers,
      reachable: (uid) => this.reachable(uid),
      // Answered a heartbeat sent within stallAfter: dated by the request, so messages that waited in
      // the socket while this process was frozen do not count as fresh (SWIM's lastHeard would).
      heardLately: (uid) => (this.#beats.answeredAt(uid) ?? Number.NEGATIVE_INFINITY) >= this.#now - this.#beats.settings.stallAfter,
    })
    if (gossip !== this.#gossip) this.#commit(gossip)
  }

  /** The leader by the current gossip and reachability (`leaderOf`), kept for the epoch. */
  #leaderNow(): string | undefined {
    const epoch = this.#currentEpoch()
    if (this.#leaderIn?.epoch === epoch) return this.#leaderIn.leader
    const leader = leaderOf(this.#gossip, (uid) => this.reachable(uid))?.node.uid
    this.#leaderIn = { epoch, leader }
    return leader
  }

  #updateLeader(): void {
    // Fenced after a freeze, this node knows no leader: it does not lead (leader actions, downing,
    // the shard tables a leader decides), and its view is too stale to name another.
    const leader = this.#woke ? undefined : this.#leaderNow()
    if (leader === this.#leader) return
    this.#leader = leader
    this.#stats.leaderChanges++
    const m = leader === undefined ? undefined : this.#gossip.members.get(leader)
    this.#log('info', { leader: m && formatNode(m.node) }, 'leader changed')
    this.#out.push({ kind: 'event', event: { type: 'leader', leader: m && this.#view(m) } })
  }

  /** Pushes our state to every present member (all of them in small clusters, a few otherwise), and to `also`. */
  #push(also: readonly Member[] = []): void {
    const targets = this.present().filter((m) => m.node.uid !== this.self.uid && this.reachable(m.node.uid))
    const chosen = targets.length <= PUSH_TO_ALL_UP_TO ? targets : this.#pick(targets, 3)
    const recipients = [...chosen, ...also.filter((m) => m.node.uid !== this.self.uid)]
    if (recipients.length > 0) this.#gossipTo(recipients.map((m) => m.node))
  }

  #gossipTo(to: readonly (ClusterNode | GossipTarget)[]): void {
    this.#out.push({
      kind: 'gossip',
      to: to.map((t) => ('endpoint' in t ? { host: t.endpoint.host, port: t.endpoint.port, uid: t.uid } : t)),
    })
  }

  #pick<T>(xs: readonly T[], n: number): T[] {
    const copy = [...xs]
    const out: T[] = []
    while (out.length < n && copy.length > 0) out.push(copy.splice(Math.floor(this.#o.random() * copy.length), 1)[0]!)
    return out
  }

  // ── reachability ───────────────────────────────────────────────────────────

  #swimStatus(m: Member): SwimStatus | undefined {
    return this.#swim.statusOf(swimNodeOf(m.node))
  }

  #swimAlive(m: Member): boolean {
    return this.#swimStatus(m) === 'alive'
  }

  #setReachable(m: Member, reachable: boolean): void {
    // Leaving members say goodbye to SWIM at the end: absent, not unreachable.
    const change = this.#history.report(m.node.uid, reachable, STATUS_RANK[m.status] >= STATUS_RANK.leaving, this.#now)
    if (change === 'none') return
    this.#changed()
    if (change === 'reachability') {
      this.#log('info', { member: formatNode(m.node), reachability: reachable ? 'reachable' : 'unreachable' }, 'member reachability changed')
      this.#out.push({ kind: 'event', event: { type: 'reachability', member: this.#view(m) } })
    }
    this.#updateLeader()
    this.#runLeaderActions()
  }

  #forgetRemoved(): void {
    for (const uid of this.#history.forgetDue(this.#now)) {
      this.#downSeen.delete(uid)
      this.#arrival.delete(uid)
      this.#downArrival.delete(uid)
      const members = new Map(this.#gossip.members)
      members.delete(uid)
      // Local bookkeeping, not a change to spread: every node forgets on its own clock.
      this.#gossip = { ...this.#gossip, members, version: pruneVersion(this.#gossip.version, (k) => k !== uid) }
      this.#changed()
    }
  }

  #view(m: Member): ClusterMember {
    const reachability: Reachability = this.#history.isUnreachable(m.node.uid) ? 'unreachable' : 'reachable'
    const observers = observersOf(this.#observations, m.node.uid)
    // Spelled out: on Node 20 a spread followed by a key the source lacks takes V8's slow path (~0.5 µs a key).
    const view: ClusterMember = { node: m.node, status: m.status, upNumber: m.upNumber, roles: m.roles, reachability }
    return observers.length === 0
      ? view
      : { node: m.node, status: m.status, upNumber: m.upNumber, roles: m.roles, reachability, observedBy: observers.map((uid) => this.#name(uid)) }
  }

  #notRemoved(): readonly Member[] {
    return (this.#notRemovedList ??= [...this.#gossip.members.values()].filter((m) => m.status !== 'removed'))
  }

  #isPresentMember(uid: string): boolean {
    const m = this.#gossip.members.get(uid)
    return m !== undefined && isPresent(m.status)
  }

  #name(uid: string): string {
    const m = this.#gossip.members.get(uid)
    return m ? formatNode(m.node) : uid
  }

  // ── downing ────────────────────────────────────────────────────────────────

  #runDowning(): void {
    const members = this.#notRemoved()
    const talking = this.#noteTalking(members)
    const allReachable = members.every((m) => !isPresent(m.status) || this.reachable(m.node.uid))
    if (this.#leader !== this.self.uid || allReachable) this.#unconfirmedSince = undefined
    if (this.#leader !== this.self.uid) return
    if (allReachable) return this.#runIndirectDowning()
    const lastHeard = this.#lastHeard(members)
    const outcome = decideDowning(
      {
        self: this.self.uid,
        now: this.#now,
        viewChangedAt: Math.max(this.#history.viewChangedAt, this.#talkingChangedAt),
        members: members.map((m) => this.#view(m)),
        unreachableSince: this.#history.unreachableSince,
        talking,
        lastHeard,
        unseenDowns: this.#unseenDowns(),
        unconfirmedFor: this.#unconfirmedSince === undefined ? 0 : this.#now - this.#unconfirmedSince,
        confirm: this.#o.confirm,
      },
      this.downing,
    )
    if (outcome.kind === 'wait' && outcome.reason === 'unconfirmed') this.#unconfirmedSince ??= this.#now
    else this.#unconfirmedSince = undefined
    if (outcome.kind !== 'down') return
    this.#downAll(outcome.members, 'strategy', {}, 'downing decision')
  }

  /**
   * Members that talk to this node: reachable, heartbeats answered recently, or heard directly
   * within stableAfter. Noted every tick, leader or not, so that a member that starts talking
   * dates the view (see `viewChangedAt` below): heartbeat answers resuming across a partition that
   * changed shape make members talk again without any SWIM change, and a decision must wait for
   * that to hold still too (a split brain the cluster simulator found: a side decided 0.3 s after
   * two members crossed over to it, while the side they had left decided on them as well). One that
   * stops talking (a crash) is the trouble itself, already dated by SWIM's unreachability.
   */
  #noteTalking(members: readonly Member[]): ReadonlySet<string> {
    const talks = (uid: string): boolean => this.reachable(uid) || this.#answeredRecently(uid) || this.#heardWithin(uid, this.downing.stableAfter)
    // Usually the same members as last tick: then keep the set (no new one per tick).
    let same = 0
    for (const m of members) {
      const uid = m.node.uid
      if (!talks(uid)) continue
      if (!this.#talking.has(uid)) {
        same = -1
        break
      }
      same++
    }
    if (same === this.#talking.size) return this.#talking
    const talking = new Set(members.map((m) => m.node.uid).filter(talks))
    for (const uid of talking) {
      if (this.#talking.has(uid)) continue
      this.#talkingChangedAt = this.#now
      break
    }
    this.#talking = talking
    return talking
  }

  /**
   * A partition that is not clean: SWIM sees everyone alive (indirect probes through a member that
   * reaches both sides), yet some members observe others directly unreachable. Once those
   * observations and SWIM's view have both been stable for `stableAfter`, the leader downs the
   * indirectly connected members (`resolveIndirect`, Downing.ts) and the strategy decides for the rest.
   */
  #runIndirectDowning(): void {
    const edges = this.#noteEdges() // SWIM's view changes which edges count without an observation arriving
    if (edges.length === 0) return
    // Both the observations and SWIM's view must have held still: a flapping link changes SWIM's
    // view every cycle, while a stall that outlives one cycle can keep the observations unchanged.
    const stableFor = Math.min(this.#now - this.#edgesChangedAt, this.#now - this.#history.viewChangedAt)
    if (stableFor < this.downing.stableAfter) return
    const members = [...this.#gossip.members.values()].filter((m) => m.status !== 'removed').map((m) => this.#view(m))
    const decision = resolveIndirect({ self: this.self.uid, members, stableFor, unreachableFor: new Map() }, edges, this.downing)
    if (decision.length === 0) return
    // Keeping this side needs the confirmation rule, as a strategy decision does (DowningDecision.ts).
    if (!decision.includes(this.self.uid)) {
      const cut = new Set(decision)
      const view = members.map((m): ClusterMember => (cut.has(m.node.uid) ? { ...m, reachability: 'unreachable' } : m))
      const since = Math.max(this.#edgesChangedAt, this.#history.viewChangedAt, this.#talkingChangedAt)
      const input = { self: this.self.uid, lastHeard: this.#lastHeard(members), unseenDowns: this.#unseenDowns(), confirm: this.#o.confirm }
      if (!indirectDecisionConfirmed(input, view, since, stableFor, this.downing)) return
    }
    const observed = edges.map(([o, sub]) => `${this.#name(o)} -> ${this.#name(sub)}`)
    this.#downAll(decision, 'indirect', { observed }, 'downing indirectly connected members')
  }

  /**
   * When each member was last heard from directly: a SWIM message from it, or an answer to a
   * heartbeat (its send time: the member was connected after that), whichever is newer.
   */
  #lastHeard(members: readonly Member[]): Map<string, number> {
    const lastHeard = new Map<string, number>()
    for (const m of members) {
      const heard = this.#heardAt(m)
      if (heard > Number.NEGATIVE_INFINITY) lastHeard.set(m.node.uid, heard)
    }
    return lastHeard
  }

  /** When member `m` was last heard from directly (see {@link #lastHeard}); -Infinity if never. */
  #heardAt(m: Member): number {
    return Math.max(this.#swim.lastHeard(swimNodeOf(m.node)) ?? Number.NEGATIVE_INFINITY, this.#beats.answeredAt(m.node.uid) ?? Number.NEGATIVE_INFINITY)
  }

  #downAll(uids: readonly string[], kind: 'strategy' | 'indirect', fields: Record<string, unknown>, msg: string): void {
    const toDown = uids.map((uid) => this.#gossip.members.get(uid)).filter((m): m is Member => m !== undefined && isPresent(m.status))
    if (toDown.length === 0) return
    this.#log('warn', { strategy: this.downing.name, down: toDown.map((m) => formatNode(m.node)), ...fields }, msg)
    this.#stats[kind]++
    this.#stats.membersDowned += toDown.length
    let g = this.#gossip
    for (const m of toDown) g = updateMember(g, this.self.uid, { ...m, status: 'down' })
    this.#commit(g)
  }

  // ── heartbeats and per-observer reachability ────────────────────────────────

  /** Sends due heartbeats; a member whose answers stalled is observed unreachable and its connection replaced. */
  #heartbeatTick(): void {
    const now = this.#now
    const targets = this.present().filter((m) => m.node.uid !== this.self.uid)
    const { send, stalled } = this.#beats.tick(
      now,
      targets.map((m) => m.node.uid),
    )
    const stallAfter = this.#beats.settings.stallAfter
    for (const { uid, seq } of send) {
      const m = this.#gossip.members.get(uid)!
      // A stalled peer: dial again without backoff, so a healed link is used at once; and replace a
      // connection made since the stall that has not answered either (it may sit in retransmission).
      if (this.#beats.isStalled(uid)) {
        const again = now - (this.#replacedAt.get(uid) ?? 0) >= stallAfter
        if (again) this.#replacedAt.set(uid, now)
        this.#out.push({ kind: 'replace-connection', node: m.node, reason: 'heartbeats stalled', keep: !again })
      }
      this.#out.push({ kind: 'heartbeat', to: m.node, seq })
    }
    if (stalled.length === 0) return
    for (const uid of stalled) {
      const m = this.#gossip.members.get(uid)
      if (!m) continue
      this.#log('info', { member: formatNode(m.node), stallAfter }, 'heartbeats to member stalled: replacing its connection')
      this.#replacedAt.set(uid, now)
      this.#out.push({ kind: 'replace-connection', node: m.node, reason: 'heartbeats stalled', keep: false })
    }
    this.#observeStalls()
  }

  /** Whether a message came straight from member `uid` (SWIM, or a heartbeat answer) within the last `ms`. */
  #heardWithin(uid: string, ms: number): boolean {
    const m = this.#gossip.members.get(uid)
    return m !== undefined && this.#now - this.#heardAt(m) < ms
  }

  /** Whether `uid` answered a heartbeat sent within the last two intervals. */
  #answeredRecently(uid: string): boolean {
    const at = this.#beats.answeredAt(uid)
    return at !== undefined && this.#now - at <= 2 * this.#beats.settings.interval
  }

  /** Publishes this node's own observations when they changed. */
  #observeStalls(): void {
    const next = observe(this.#observations, this.self.uid, this.#beats.stalled())
    if (next === this.#observations) return
    this.#observations = next
    this.#changed()
    this.#noteEdges()
    const to = this.present().filter((m) => m.node.uid !== this.self.uid)
    if (to.length > 0) this.#out.push({ kind: 'observations', to: to.map((m) => m.node) })
  }

  /** The current edges; when they differ from the last ones, notes since when (for stability) and logs it. */
  #noteEdges(): Array<readonly [string, string]> {
    const edges = unreachabilityEdges(this.#observations, (uid) => this.#isPresentMember(uid) && this.reachable(uid))
    const key = edges.map(([o, sub]) => `${o}>${sub}`).join(',')
    if (key === this.#edgesKey) return edges
    const first = this.#edgesKey === ''
    this.#edgesKey = key
    this.#edgesChangedAt = this.#now
    if (key === '') this.#log('info', {}, 'no member observes another directly unreachable any more')
    // Info when it starts; each change after that at debug (a flapping link changes it often).
    else
      this.#log(
        first ? 'info' : 'debug',
        { observed: edges.map(([o, sub]) => `${this.#name(o)} -> ${this.#name(sub)}`) },
        'members observe others directly unreachable',
      )
    return edges
  }
}

/** The SWIM address of each cluster node object (one object per node, so SWIM's key cache hits). */
const swimNodes = new WeakMap<ClusterNode, SwimNode>()

function swimNodeOf(node: ClusterNode): SwimNode {
  let n = swimNodes.get(node)
  if (n === undefined) swimNodes.set(node, (n = { host: node.endpoint.host, port: node.endpoint.port, uid: node.uid }))
  return n
}

/** Same version and the same `seen`: the same state, as far as an answer to it goes. */
function sameGossip(a: GossipState, b: GossipState): boolean {
  return a === b || (a.seen.size === b.seen.size && !lacks(a.seen, b.seen) && compareVersions(a.version, b.version) === 'same')
}

/** Whether `set` lacks something `other` has. */
function lacks(set: ReadonlySet<string>, other: ReadonlySet<string>): boolean {
  for (const x of other) if (!set.has(x)) return true
  return false
}

/**
 * One gossip directive per step, at the place of the first, to every recipient of them all: the
 * shells send the state as it is after the step, so several would send the same bytes again (a
 * merge, the leader actions it allows and the reply to the sender each pushed). Without this, a
 * burst of joins and removals in a 7-node cluster made one node send a thousand messages in a
 * second (simulator seed 200 with --nodes 7).
 */
function oneGossip(out: MembershipDirective[]): MembershipDirective[] {
  let first = -1
  let count = 0
  for (let i = 0; i < out.length; i++)
    if (out[i]!.kind === 'gossip') {
      if (first < 0) first = i
      count++
    }
  if (count < 2) return out
  const to = new Map<string, GossipTarget>()
  for (const d of out) if (d.kind === 'gossip') for (const t of d.to) to.set(`${t.host}:${t.port}#${t.uid ?? ''}`, t)
  const merged: MembershipDirective = { kind: 'gossip', to: [...to.values()] }
  return out.flatMap((d, i): MembershipDirective[] => (i === first ? [merged] : d.kind === 'gossip' ? [] : [d]))
}
