/**
 * The cluster shell: membership gossip over the control lane, reachability from SWIM, the
 * leader's actions, downing, discovery, and the events applications watch. Protocol decisions
 * are the pure functions of `Gossip.ts` and `Downing.ts`; this class only moves state between
 * them, the network and the clock.
 *
 * Reach it as `system.cluster` on a system started with `cluster` settings.
 * @module
 */
import type { Logger } from 'pino'
import { type ClusterNode, endpointKey, formatNode } from '../actor/ClusterNode.ts'
import type { ControlChannel } from '../control/ControlChannel.ts'
import { controlTarget } from '../control/ControlChannel.ts'
import { ControlKind } from '../control/ControlKind.ts'
import { ClusterdDiscovery, clusterdAddress } from '../discovery/Clusterd.ts'
import { type DiscoveredEndpoint, type DiscoveryProvider, StaticDiscovery } from '../discovery/Discovery.ts'
import { ConfigError, SystemShutDownError, TimeoutError } from '../errors.ts'
import { memberChangeChannel, memberReachabilityChannel } from '../observability/Channels.ts'
import { type MembershipChange, parseAddress, type SwimMember } from '../swim/SwimMember.ts'
import type { SwimStatus } from '../swim/SwimNode.ts'
import { EventStream } from '../util/EventStream.ts'
import { confirmedUntil, type DowningStrategy, downingFromName, keepMajority, resolveIndirect } from './Downing.ts'
import { decideDowning } from './DowningDecision.ts'
import { emptyGossip, type GossipState, isConverged, leaderActions, leaderOf, mergeGossip, statusChanges, updateMember } from './Gossip.ts'
import { decodeGossip, encodeGossip } from './GossipCodec.ts'
import { DEFAULT_HEARTBEAT, type HeartbeatSettings, Heartbeats } from './Heartbeat.ts'
import { decodeHeartbeat, decodeObservations, encodeHeartbeatAnswer, encodeHeartbeatRequest, encodeObservations } from './HeartbeatCodec.ts'
import { type ClusterMember, isPresent, type Member, type MembershipStatus, memberAddress, type Reachability, STATUS_RANK } from './Member.ts'
import { mergeObservations, type ObservationTable, observe, observersOf, pruneObservations, unreachabilityEdges } from './Reachability.ts'
import { ReachabilityHistory, waitingForOthers } from './ReachabilityHistory.ts'
import { compareVersions, pruneVersion } from './VersionVector.ts'

/** Cluster membership settings (`ClusterSystem.start({ cluster })`); all optional. */
export interface ClusterSettings {
  /** Endpoints (`host:port`) to join; retried while they are not members. */
  readonly seeds?: readonly (string | DiscoveredEndpoint)[]
  /** More sources of endpoints (DNS, Kubernetes), polled continuously. */
  readonly discovery?: readonly DiscoveryProvider[]
  /** Register with a clusterd daemon and join what it lists: `true` for 127.0.0.1:3137, or `host:port`. */
  readonly clusterd?: true | string
  /** Roles of this node (e.g. `['lobby']`), used by plugins to place things. */
  readonly roles?: readonly string[]
  /**
   * Members (joining or up) needed before the leader moves anyone up. Default 1: a lone node
   * becomes up by itself (the reference's default of 2 leaves a one-node cluster forever joining).
   */
  readonly minMembers?: number
  /** Downing strategy, or its name (`keep-majority`, `static-quorum:N`, `keep-oldest`, `down-all`, `timeout[:ms]`, `none`). Default keep-majority. */
  readonly downing?: DowningStrategy | string
  /** How long the view must be stable before a split-brain strategy acts, ms. Default 3000. */
  readonly stableAfter?: number
  /** What a node does when it learns it is down: shut its system down (default) or nothing. */
  readonly onDown?: 'shutdown' | 'none'
  /** Periodic gossip to a random member, ms (changes are pushed at once anyway). Default 1000. */
  readonly gossipInterval?: number
  /** How long `leave()` waits to be removed before shutting down anyway, ms. Default 10000. */
  readonly leaveTimeout?: number
  /**
   * A node that has somewhere to join (seeds, discovery) but finds no one makes itself up alone
   * after this long, ms, forming a cluster others then join (clusters formed apart merge when
   * they find each other). Default 2000. A node with nowhere to join is up at once.
   */
  readonly selfJoinAfter?: number
  /**
   * Heartbeats over each member's TCP connection (`{ interval: 500, stallAfter: 3000 }`, ms): a
   * member whose answers stop while SWIM still sees it alive is directly unreachable from here
   * (recorded per observer, see docs/cluster.md) and its connection is replaced. Answers also
   * confirm this node's membership to the hosts of singletons and shards.
   */
  readonly heartbeat?: Partial<HeartbeatSettings>
}

/** What the cluster looks like from this node. */
export interface MembershipSnapshot {
  readonly self: ClusterMember
  readonly leader: ClusterMember | undefined
  readonly members: readonly ClusterMember[]
}

/** What `cluster.events()` yields: a snapshot first, then member, reachability and leader changes. */
export type ClusterEvent =
  | { readonly type: 'snapshot'; readonly membership: MembershipSnapshot }
  | { readonly type: 'member'; readonly member: ClusterMember; readonly previous: MembershipStatus | undefined }
  | { readonly type: 'reachability'; readonly member: ClusterMember }
  | { readonly type: 'leader'; readonly leader: ClusterMember | undefined }

/** Counts since start, for metrics (`shoal_cluster_*_total`). */
export interface ClusterStats {
  /** Times the leader this node sees changed. */
  readonly leaderChanges: number
  /** Downing decisions this node took and applied (strategy, or indirectly connected members). */
  readonly downingDecisions: { readonly strategy: number; readonly indirect: number }
  /** Members this node marked down by those decisions. */
  readonly membersDowned: number
}

/** The part of ClusterSystem the cluster uses. */
export interface ClusterHost extends ControlChannel {
  readonly node: ClusterNode
  readonly log: Logger
  tombstoneNode(node: ClusterNode): void
  /**
   * Drops the connection to a node whose heartbeats stalled and dials afresh on the next send,
   * skipping reconnect backoff; with `keepConnection`, only skips the backoff.
   */
  replaceConnection(node: ClusterNode, reason: string, keepConnection?: boolean): void
  shutdown(): Promise<void>
}

const TICK = 250
const PUSH_TO_ALL_UP_TO = 32
const DOWN_SHUTDOWN_DELAY = 1000

/** Cluster membership of one node (`system.cluster`); see the module comment and docs/cluster.md. */
export class Cluster {
  readonly self: ClusterNode
  readonly downing: DowningStrategy
  readonly minMembers: number
  readonly #host: ClusterHost
  readonly #swim: SwimMember
  readonly #log: Logger
  readonly #settings: ClusterSettings
  readonly #providers: DiscoveryProvider[]
  #gossip: GossipState = emptyGossip()
  /** Reachability over time, removed and forgotten members (pure; this shell feeds it). */
  readonly #history: ReachabilityHistory
  readonly #events: EventStream<ClusterEvent>
  readonly #timers: NodeJS.Timeout[] = []
  readonly #abort = new AbortController()
  readonly #leavingHooks: (() => Promise<void>)[] = []
  readonly #toTombstone: ClusterNode[] = []
  readonly #waiters = new Set<(e: Error) => void>()
  #leader: string | undefined
  #stopped = false
  readonly #stats = { leaderChanges: 0, strategy: 0, indirect: 0, membersDowned: 0 }
  /** The cluster, not this node, ended its membership (see `downed`). */
  #downedByCluster = false
  /** `stop()` is downing this node itself (a shutdown), not the cluster. */
  #stopping = false
  #leaving: Promise<void> | undefined
  /** When this cluster started, on {@link now}'s clock. */
  readonly #startedAt: number
  /** Every provider answered and none listed anyone but this node: no reason to wait. */
  #foundNoOne = false
  readonly #answered = new Map<DiscoveryProvider, boolean>()
  readonly #beats: Heartbeats
  /** Direct unreachability observed by every member, this one included (Reachability.ts). */
  #observations: ObservationTable = new Map()
  /** The indirect-unreachability edges among members SWIM sees alive, as a key, and since when (SWIM clock). */
  #edgesKey = ''
  #edgesChangedAt = 0
  /** When the connection to each stalled member was last replaced (SWIM clock). */
  readonly #replacedAt = new Map<string, number>()

  constructor(host: ClusterHost, swim: SwimMember, settings: ClusterSettings) {
    this.self = host.node
    this.#host = host
    this.#swim = swim
    this.#startedAt = this.now()
    this.#history = new ReachabilityHistory(this.#startedAt)
    this.#log = host.log.child({ cluster: true })
    this.#events = new EventStream((err) => this.#log.error({ err }, 'a cluster event listener threw'))
    this.#settings = settings
    this.minMembers = settings.minMembers ?? 1
    if (!Number.isInteger(this.minMembers) || this.minMembers < 1)
      throw new ConfigError(`cluster.minMembers must be a whole number ≥ 1, got ${settings.minMembers}.`)
    const strategy = settings.downing ?? keepMajority(settings.stableAfter)
    this.downing = typeof strategy === 'string' ? downingFromName(strategy, settings.stableAfter) : strategy
    const seeds = (settings.seeds ?? []).map(parseAddress)
    const clusterd = settings.clusterd === undefined ? [] : [new ClusterdDiscovery(host, host.node, clusterdAddress(settings.clusterd))]
    this.#providers = [...(seeds.length > 0 ? [new StaticDiscovery(seeds)] : []), ...clusterd, ...(settings.discovery ?? [])]
    this.#beats = new Heartbeats({ ...DEFAULT_HEARTBEAT, ...settings.heartbeat })
  }

  /** Starts gossiping, joins the seeds and starts discovery. Called by ClusterSystem. */
  start(): void {
    const me: Member = { node: this.self, status: 'joining', upNumber: 0, roles: [...(this.#settings.roles ?? [])] }
    this.#commit(updateMember(this.#gossip, this.self.uid, me))
    this.#host.onControl(ControlKind.Gossip, (from, body) => this.#onGossip(from, body))
    this.#host.onControl(ControlKind.Heartbeat, (from, body) => this.#onHeartbeat(from, body))
    this.#host.onControl(ControlKind.Reachability, (from, body) => this.#onObservations(from, body))
    this.#swim.subscribe((c) => this.#onSwim(c))
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms)
      t.unref()
      this.#timers.push(t)
    }
    every(this.#settings.gossipInterval ?? 1000, () => this.#gossipTick())
    every(TICK, () => this.#tick())
    for (const p of this.#providers) void this.#discover(p)
    if (this.#providers.length === 0) {
      this.#log.info(
        { endpoint: `${this.self.endpoint.host}:${this.self.endpoint.port}` },
        "no seeds, clusterd or discovery: this node forms a one-node cluster on its own. To join others, start it with cluster: { seeds: ['host:port'] }, " +
          "{ clusterd: true } or { discovery: [...] }, or call system.cluster.join(['host:port']); others join this one by listing its endpoint in their seeds",
      )
    }
  }

  // ── reading ────────────────────────────────────────────────────────────────

  /** The current membership as seen from here (removed members stay listed for a minute). */
  get membership(): MembershipSnapshot {
    const members = [...this.#gossip.members.values()].map((m) => this.#view(m))
    const self = members.find((m) => m.node.uid === this.self.uid)!
    const leader = this.#leader === undefined ? undefined : members.find((m) => m.node.uid === this.#leader)
    return { self, leader, members }
  }

  /** Counts since start (leader changes, downing decisions), for metrics. */
  get stats(): ClusterStats {
    const s = this.#stats
    return { leaderChanges: s.leaderChanges, downingDecisions: { strategy: s.strategy, indirect: s.indirect }, membersDowned: s.membersDowned }
  }

  /** Whether every member reachable from here has seen this node's current membership (the leader acts only then). */
  get converged(): boolean {
    return isConverged(this.#gossip, (uid) => this.#reachable(uid))
  }

  /**
   * True once the cluster has ended this node's membership: marked down (by the downing strategy,
   * an operator, or a peer that refused it as down) or removed without having left. A supervisor
   * should restart such a node (`shoal node` exits 1); false after a graceful leave or a plain stop.
   */
  get downed(): boolean {
    return this.#downedByCluster
  }

  /** Status of this node. */
  get status(): MembershipStatus {
    return this.#gossip.members.get(this.self.uid)?.status ?? 'joining'
  }

  /**
   * Membership events: a snapshot first, then every member status change, reachability change
   * and leader change, in order. Ends when the system shuts down or the loop is broken.
   */
  events(): AsyncIterableIterator<ClusterEvent> {
    return this.#events.iterate(() => [{ type: 'snapshot', membership: this.membership }])
  }

  /**
   * Calls `listener` synchronously with every membership event from now on (no snapshot first);
   * returns the unsubscribe function. For services that must react in the same tick as the change
   * (the receptionist and lifecycle watch drop a downed node's state before anything else runs).
   */
  subscribe(listener: (event: ClusterEvent) => void): () => void {
    return this.#events.subscribe(listener)
  }

  /**
   * Resolves when the member at `node` (`host:port` or a ClusterNode) has reached `status` or a
   * later one (down and removed count only for a wait for down or removed); rejects with
   * TimeoutError after `timeout` ms (default 30 s), or SystemShutDownError at shutdown.
   */
  async waitFor(node: string | ClusterNode, status: MembershipStatus, { timeout = 30_000 }: { timeout?: number } = {}): Promise<ClusterMember> {
    const match = (m: Member): boolean => (typeof node === 'string' ? memberAddress(m) === node : m.node.uid === node.uid)
    const reached = (): ClusterMember | undefined => {
      const found = [...this.#gossip.members.values()].filter(match).sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status])
      const m = typeof node === 'string' ? (found.find((x) => isPresent(x.status)) ?? found.at(-1)) : found[0]
      // Down and removed are not "later" than up for a waiter: a member downed before it was up
      // never joined. They satisfy only a wait for down or removed.
      const ended = m !== undefined && STATUS_RANK[m.status] >= STATUS_RANK.down && STATUS_RANK[status] < STATUS_RANK.down
      return m && !ended && STATUS_RANK[m.status] >= STATUS_RANK[status] ? this.#view(m) : undefined
    }
    const now = reached()
    if (now) return now
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off()
        this.#waiters.delete(fail)
        reject(new TimeoutError(`${typeof node === 'string' ? node : formatNode(node)} did not reach ${status} within ${timeout} ms.`))
      }, timeout)
      const check = (): void => {
        const m = reached()
        if (!m) return
        clearTimeout(timer)
        off()
        this.#waiters.delete(fail)
        resolve(m)
      }
      const fail = (e: Error): void => {
        clearTimeout(timer)
        off()
        reject(e)
      }
      this.#waiters.add(fail)
      const off = this.#events.subscribe(check)
    })
  }

  /** Resolves when this node is up. */
  joined(options?: { timeout?: number }): Promise<ClusterMember> {
    return this.waitFor(this.self, 'up', options)
  }

  // ── commands ───────────────────────────────────────────────────────────────

  /** Joins more endpoints (`host:port`). */
  join(endpoints: readonly (string | DiscoveredEndpoint)[]): void {
    for (const e of endpoints.map(parseAddress)) this.#join(e)
  }

  /** Marks a member down (by `host:port` or node); it is then removed and its node shuts itself down. */
  down(node: string | ClusterNode): boolean {
    const m = [...this.#gossip.members.values()].find(
      (x) => isPresent(x.status) && (typeof node === 'string' ? memberAddress(x) === node : x.node.uid === node.uid),
    )
    if (!m) return false
    this.#log.info({ member: formatNode(m.node) }, 'marking member down')
    this.#setStatus(m, 'down')
    return true
  }

  /**
   * Leaves gracefully: leaving → (plugins hand over) → exiting → removed by the leader. Resolves
   * once removed (or after `leaveTimeout`); the system then shuts down. Peers never see this node
   * unreachable, and calls to it keep working until it is removed.
   */
  leave(): Promise<void> {
    return (this.#leaving ??= this.#leave())
  }

  /**
   * Registers a hand-over to run during a graceful leave, between `leaving` and `exiting` (for
   * plugins that host things: singletons, virtual actors). Hooks run in registration order, each
   * bounded by `leaveTimeout`; one that fails or times out is logged and the leave goes on.
   */
  onLeaving(hook: () => Promise<void>): void {
    this.#leavingHooks.push(hook)
  }

  /** @internal A peer refused us as down: act as if the gossip had said so. */
  learnedDown(reason: string): void {
    const me = this.#gossip.members.get(this.self.uid)
    // Leaving nodes are refused once removed: that is the end of a graceful leave, not a downing.
    if (!me || STATUS_RANK[me.status] >= STATUS_RANK.exiting || this.#stopped) return
    this.#log.warn({ reason }, 'a peer refuses this node as down')
    this.#setStatus(me, 'down')
  }

  /** @internal Stops timers and discovery; marks this node down first unless it already left. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    const me = this.#gossip.members.get(this.self.uid)
    if (me && STATUS_RANK[me.status] < STATUS_RANK.exiting) {
      // Shut down without leaving: say so, so peers remove this node rather than wait to detect it.
      // This node downs itself on purpose: a normal stop, not the warning of being downed.
      this.#stopping = true
      this.#setStatus(me, 'down')
    }
    this.#stopped = true
    this.#abort.abort()
    for (const t of this.#timers) clearInterval(t)
    for (const p of this.#providers) await p.close?.()
    this.#events.close()
    for (const fail of this.#waiters) fail(new SystemShutDownError('The system shut down before the member reached that status.'))
    this.#waiters.clear()
  }

  async #leave(): Promise<void> {
    const me = this.#gossip.members.get(this.self.uid)
    if (!me || STATUS_RANK[me.status] >= STATUS_RANK.leaving) return
    this.#log.info('leaving the cluster')
    this.#setStatus(me, 'leaving')
    const limit = this.#settings.leaveTimeout ?? 10_000
    for (const hook of this.#leavingHooks) {
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([hook(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`hand-over took longer than ${limit} ms`)), limit)))])
      } catch (e) {
        this.#log.error({ err: e }, 'a hand-over hook failed; leaving anyway')
      } finally {
        clearTimeout(timer)
      }
    }
    this.#setStatus(this.#gossip.members.get(this.self.uid)!, 'exiting')
    // The last member has no leader left to remove it: it removes itself.
    const others = [...this.#gossip.members.values()].filter((m) => m.node.uid !== this.self.uid && isPresent(m.status) && this.#reachable(m.node.uid))
    if (others.length === 0) this.#setStatus(this.#gossip.members.get(this.self.uid)!, 'removed')
    await this.waitFor(this.self, 'removed', { timeout: this.#settings.leaveTimeout ?? 10_000 }).catch(() => {
      this.#log.warn('not removed by the leader in time; shutting down anyway')
    })
  }

  // ── gossip ─────────────────────────────────────────────────────────────────

  #setStatus(m: Member, status: MembershipStatus): void {
    this.#commit(updateMember(this.#gossip, this.self.uid, { ...m, status }))
  }

  #onGossip(from: ClusterNode, body: Buffer): void {
    if (this.#stopped) return
    let received
    try {
      received = decodeGossip(body)
    } catch (e) {
      this.#log.warn({ from: formatNode(from), err: (e as Error).message }, 'malformed membership gossip dropped')
      return
    }
    if (this.#isForgotten(from.uid)) return
    const merged = mergeGossip(this.#gossip, received.gossip, this.self.uid, (uid) => this.#isForgotten(uid))
    this.#commit(merged)
    // The sender lacks something we have (a newer or merged version, or who has seen it): tell it.
    // Nothing else: replying to everything would ping-pong forever.
    const theirs = pruneVersion(received.gossip.version, (uid) => !this.#isForgotten(uid))
    if (compareVersions(merged.version, theirs) !== 'same' || [...merged.seen].some((uid) => !received.gossip.seen.has(uid))) this.#sendTo(from)
  }

  /** Adopts a new state: events, replacement, tombstones, leader actions, push. True if it changed. */
  #commit(next: GossipState): boolean {
    const before = this.#gossip
    if (next === before) return false
    this.#gossip = next
    const changes = statusChanges(before, next)
    for (const c of changes) this.#onStatus(c.member, c.previous)
    this.#replaceRestarted(changes.map((c) => c.member))
    this.#updateLeader()
    if (changes.length > 0) {
      this.#history.statusChanged(this.now())
      this.#observations = pruneObservations(this.#observations, (uid) => this.#isPresentMember(uid))
    }
    this.#runLeaderActions()
    // Members just marked down or removed are no longer gossip targets: tell them once, so a downed
    // node learns its fate (and shuts down) and a leaving one learns it is done.
    this.#push(changes.filter((c) => c.member.status === 'removed' || c.member.status === 'down').map((c) => c.member))
    // Only now, after that last word: tombstoning closes the connection.
    for (const node of this.#toTombstone.splice(0)) this.#host.tombstoneNode(node)
    return true
  }

  #onStatus(m: Member, previous: MembershipStatus | undefined): void {
    this.#log.info({ member: formatNode(m.node), status: m.status, previous, upNumber: m.upNumber || undefined }, 'member status changed')
    if (memberChangeChannel.hasSubscribers)
      memberChangeChannel.publish({ self: this.self, node: m.node, from: previous, to: m.status, upNumber: m.upNumber, roles: m.roles })
    if (m.status === 'removed') this.#history.removed(m.node.uid, this.now())
    // A downed node may not come back; one that left gracefully is removed and says goodbye itself
    // (tombstoning it now would cut the connection that tells it it was removed).
    if ((m.status === 'down' || (m.status === 'removed' && previous !== 'exiting')) && m.node.uid !== this.self.uid) this.#toTombstone.push(m.node)
    if (previous === undefined) {
      this.#checkSwim(m)
      // Membership heard of it first: have SWIM probe it too (a push-pull with it).
      if (m.node.uid !== this.self.uid && isPresent(m.status) && !this.#swimKnows(m))
        this.#swim.join([{ host: m.node.endpoint.host, port: m.node.endpoint.port }])
    }
    this.#emit({ type: 'member', member: this.#view(m), previous })
    // Removed without having been seen down (a node frozen through its down, say) was downed too.
    const downed = m.status === 'down' || (m.status === 'removed' && previous !== 'exiting' && previous !== 'down')
    if (m.node.uid === this.self.uid && downed) this.#downed()
  }

  #downed(): void {
    if (this.#stopped) return
    if (this.#stopping) return this.#log.info('stopping without a graceful leave: marked this node down so peers remove it at once')
    this.#downedByCluster = true
    const action = this.#settings.onDown ?? 'shutdown'
    this.#log.warn({ action }, 'this node was marked down')
    // A moment first, so the gossip that tells the rest of our side goes out before we close.
    if (action === 'shutdown') setTimeout(() => void this.#host.shutdown(), DOWN_SHUTDOWN_DELAY).unref()
  }

  /** A new incarnation joined at an endpoint where another is still present: that one is gone. */
  #replaceRestarted(changed: readonly Member[]): void {
    for (const m of changed) {
      if (m.status !== 'joining') continue
      for (const other of this.#gossip.members.values()) {
        // Stale gossip about an old incarnation must not down the live one: only a record SWIM
        // no longer sees alive is downed (SWIM replaces a uid when the new one answers its ping).
        if (other.node.uid !== m.node.uid && memberAddress(other) === memberAddress(m) && isPresent(other.status) && !this.#swimAlive(other)) {
          this.#log.info({ old: formatNode(other.node), now: formatNode(m.node) }, 'member restarted with a new uid; downing the old one')
          this.#setStatus(other, 'down')
        }
      }
    }
  }

  /** Alone, with somewhere to join and no one found yet: wait before making itself up. */
  #waitingForOthers(): boolean {
    return waitingForOthers({
      hasProviders: this.#providers.length > 0,
      foundNoOne: this.#foundNoOne,
      alone: [...this.#gossip.members.keys()].every((uid) => uid === this.self.uid),
      startedAt: this.#startedAt,
      now: this.now(),
      selfJoinAfter: this.#settings.selfJoinAfter ?? 2000,
    })
  }

  #runLeaderActions(): void {
    if (this.#stopped || this.#waitingForOthers()) return
    const { gossip } = leaderActions(this.#gossip, { self: this.self.uid, minMembers: this.minMembers, reachable: (uid) => this.#reachable(uid) })
    if (gossip !== this.#gossip) this.#commit(gossip)
  }

  #updateLeader(): void {
    const leader = leaderOf(this.#gossip, (uid) => this.#reachable(uid))?.node.uid
    if (leader === this.#leader) return
    this.#leader = leader
    this.#stats.leaderChanges++
    const m = leader === undefined ? undefined : this.#gossip.members.get(leader)
    this.#log.info({ leader: m && formatNode(m.node) }, 'leader changed')
    this.#emit({ type: 'leader', leader: m && this.#view(m) })
  }

  /** Pushes our state to every present member (all of them in small clusters, a few otherwise), and to `also`. */
  #push(also: readonly Member[] = []): void {
    const targets = [...this.#gossip.members.values()].filter((m) => m.node.uid !== this.self.uid && isPresent(m.status) && this.#reachable(m.node.uid))
    const chosen = targets.length <= PUSH_TO_ALL_UP_TO ? targets : pick(targets, 3)
    const recipients = [...chosen, ...also.filter((m) => m.node.uid !== this.self.uid)]
    if (recipients.length === 0) return
    // One encoding for every recipient: the state is the same for all of them.
    const bytes = encodeGossip(this.self.uid, this.#gossip)
    for (const m of recipients) this.#sendTo(m.node, bytes)
  }

  #sendTo(to: ClusterNode | DiscoveredEndpoint, bytes = encodeGossip(this.self.uid, this.#gossip)): void {
    const target = 'endpoint' in to ? { host: to.endpoint.host, port: to.endpoint.port, uid: to.uid } : to
    try {
      this.#host.sendControl(target, ControlKind.Gossip, bytes)
    } catch (e) {
      this.#log.debug({ to: endpointKey(target), err: (e as Error).message }, 'gossip not sent')
    }
  }

  #gossipTick(): void {
    if (this.#stopped) return
    const others = [...this.#gossip.members.values()].filter((m) => m.node.uid !== this.self.uid && isPresent(m.status) && this.#reachable(m.node.uid))
    // Those that have not seen this version first: convergence sooner.
    const unseen = others.filter((m) => !this.#gossip.seen.has(m.node.uid))
    const [target] = pick(unseen.length > 0 ? unseen : others, 1)
    if (target) this.#sendTo(target.node)
    // Observations too (anti-entropy: a record pushed on change may have been lost with a connection).
    if (target && this.#observations.size > 0) this.#sendObservations([target])
  }

  #tick(): void {
    if (this.#stopped) return
    this.#heartbeatTick()
    this.#forgetRemoved()
    // SWIM coming to know a member changes who is reachable without an event of its own.
    this.#updateLeader()
    this.#runLeaderActions()
    this.#runDowning()
  }

  // ── reachability (from SWIM) ───────────────────────────────────────────────

  #onSwim(c: MembershipChange): void {
    const uid = c.member.node.uid
    const m = this.#gossip.members.get(uid)
    // Unreachable as soon as SWIM suspects (a probe failed directly, through 3 helpers and over
    // TCP): downing waits `stableAfter` on top, and a refutation makes it reachable again.
    const down = c.member.status !== 'alive'
    if (!m) {
      // A node SWIM knows but membership does not yet: send it our state so it learns of us.
      if (!down && !this.#isForgotten(uid)) this.#sendTo({ host: c.member.node.host, port: c.member.node.port })
      return
    }
    this.#setReachable(m, !down)
    this.#updateLeader()
    // SWIM saw the process at this address restart with a new uid: the old record goes down.
    if (c.member.status === 'dead' && isPresent(m.status)) {
      const newer = [...this.#gossip.members.values()].some(
        (o) => o.node.uid !== uid && memberAddress(o) === memberAddress(m) && isPresent(o.status) && this.#swimAlive(o),
      )
      if (newer) this.#setStatus(m, 'down')
    }
  }

  /** What SWIM believes of a member (undefined: SWIM has never seen it). */
  #swimStatus(m: Member): SwimStatus | undefined {
    return this.#swim.instance.member({ host: m.node.endpoint.host, port: m.node.endpoint.port, uid: m.node.uid })?.status
  }

  #swimKnows(m: Member): boolean {
    return this.#swimStatus(m) !== undefined
  }

  #swimAlive(m: Member): boolean {
    return this.#swimStatus(m) === 'alive'
  }

  #checkSwim(m: Member): void {
    if (m.node.uid === this.self.uid) return
    const status = this.#swimStatus(m)
    if (status !== undefined && status !== 'alive') this.#setReachable(m, false)
  }

  #setReachable(m: Member, reachable: boolean): void {
    // Leaving members say goodbye to SWIM at the end: absent, not unreachable.
    const change = this.#history.report(m.node.uid, reachable, STATUS_RANK[m.status] >= STATUS_RANK.leaving, this.now())
    if (change === 'none') return
    if (change === 'presence') {
      this.#updateLeader()
      this.#runLeaderActions()
      return
    }
    this.#log.info({ member: formatNode(m.node), reachability: reachable ? 'reachable' : 'unreachable' }, 'member reachability changed')
    if (memberReachabilityChannel.hasSubscribers)
      memberReachabilityChannel.publish({ self: this.self, node: m.node, reachability: reachable ? 'reachable' : 'unreachable', status: m.status })
    this.#emit({ type: 'reachability', member: this.#view(m) })
    this.#updateLeader()
    this.#runLeaderActions()
  }

  /**
   * Reachable from here: SWIM knows the member and does not suspect it. A member that membership
   * gossip announced but SWIM has never seen (learned just before a partition, say) is not: it
   * must neither lead nor count toward this side's quorum, or a minority could believe itself the
   * majority.
   */
  #reachable(uid: string): boolean {
    if (uid === this.self.uid) return true
    if (!this.#history.notCutOff(uid)) return false
    const m = this.#gossip.members.get(uid)
    return m !== undefined && this.#swimStatus(m) !== undefined
  }

  // ── downing ────────────────────────────────────────────────────────────────

  #runDowning(): void {
    if (this.#leader !== this.self.uid) return
    const present = [...this.#gossip.members.values()].filter((m) => isPresent(m.status))
    if (present.every((m) => this.#reachable(m.node.uid))) return this.#runIndirectDowning()
    const members = [...this.#gossip.members.values()].filter((m) => m.status !== 'removed')
    const talking = new Set(
      members.map((m) => m.node.uid).filter((uid) => this.#reachable(uid) || this.#answeredRecently(uid) || this.#heardWithin(uid, this.downing.stableAfter)),
    )
    const lastHeard = new Map<string, number>()
    for (const m of members) {
      const heard = this.#swim.instance.lastHeard({ host: m.node.endpoint.host, port: m.node.endpoint.port, uid: m.node.uid })
      if (heard !== undefined) lastHeard.set(m.node.uid, heard)
    }
    const outcome = decideDowning(
      {
        self: this.self.uid,
        now: this.now(),
        viewChangedAt: this.#history.viewChangedAt,
        members: members.map((m) => this.#view(m)),
        unreachableSince: this.#history.unreachableSince,
        talking,
        lastHeard,
      },
      this.downing,
    )
    if (outcome.kind !== 'down') return
    const toDown = outcome.members.map((uid) => this.#gossip.members.get(uid)!)
    this.#log.warn({ strategy: this.downing.name, down: toDown.map((m) => formatNode(m.node)) }, 'downing decision')
    this.#stats.strategy++
    this.#stats.membersDowned += toDown.length
    let g = this.#gossip
    for (const m of toDown) g = updateMember(g, this.self.uid, { ...m, status: 'down' })
    this.#commit(g)
  }

  /**
   * A partition that is not clean: SWIM sees everyone alive (indirect probes through a member that
   * reaches both sides), yet some members observe others directly unreachable. Once those
   * observations and SWIM's view have both been stable for `stableAfter`, the leader downs the indirectly connected
   * members (`resolveIndirect`, Downing.ts) and the strategy decides for the rest.
   */
  #runIndirectDowning(): void {
    const edges = this.#noteEdges() // SWIM's view changes which edges count without an observation arriving
    if (edges.length === 0) return
    // Both the observations and SWIM's view must have held still: a flapping link changes SWIM's
    // view every cycle, while a stall that outlives one cycle can keep the observations unchanged.
    const stableFor = Math.min(this.#swim.instance.now() - this.#edgesChangedAt, this.now() - this.#history.viewChangedAt)
    if (stableFor < this.downing.stableAfter) return
    const members = [...this.#gossip.members.values()].filter((m) => m.status !== 'removed').map((m) => this.#view(m))
    const decision = resolveIndirect({ self: this.self.uid, members, stableFor, unreachableFor: new Map() }, edges, this.downing)
    const toDown = decision.map((uid) => this.#gossip.members.get(uid)).filter((m): m is Member => m !== undefined && isPresent(m.status))
    if (toDown.length === 0) return
    this.#log.warn(
      { strategy: this.downing.name, down: toDown.map((m) => formatNode(m.node)), observed: edges.map(([o, sub]) => `${this.#name(o)} -> ${this.#name(sub)}`) },
      'downing indirectly connected members',
    )
    this.#stats.indirect++
    this.#stats.membersDowned += toDown.length
    let g = this.#gossip
    for (const m of toDown) g = updateMember(g, this.self.uid, { ...m, status: 'down' })
    this.#commit(g)
  }

  // ── heartbeats and per-observer reachability ────────────────────────────────

  /** Sends due heartbeats; a member whose answers stalled is observed unreachable and its connection replaced. */
  #heartbeatTick(): void {
    const targets = this.#present().filter((m) => m.node.uid !== this.self.uid)
    const now = this.#swim.instance.now()
    const { send, stalled } = this.#beats.tick(
      now,
      targets.map((m) => m.node.uid),
    )
    for (const { uid, seq } of send) {
      const m = this.#gossip.members.get(uid)!
      // A stalled peer: dial again without backoff, so a healed link is used at once; and replace a
      // connection made since the stall that has not answered either (it may sit in retransmission).
      if (this.#beats.isStalled(uid)) {
        const replaced = this.#replacedAt.get(uid) ?? 0
        const again = now - replaced >= this.#beats.settings.stallAfter
        if (again) this.#replacedAt.set(uid, now)
        this.#host.replaceConnection(m.node, 'heartbeats stalled', !again)
      }
      try {
        this.#host.sendControl(controlTarget(m.node), ControlKind.Heartbeat, encodeHeartbeatRequest(seq))
      } catch {
        // unreachable right now (a dial failed and backs off): the missing answer says so
      }
    }
    if (stalled.length === 0) return
    for (const uid of stalled) {
      const m = this.#gossip.members.get(uid)
      if (!m) continue
      this.#log.info({ member: formatNode(m.node), stallAfter: this.#beats.settings.stallAfter }, 'heartbeats to member stalled: replacing its connection')
      this.#replacedAt.set(uid, now)
      this.#host.replaceConnection(m.node, 'heartbeats stalled')
    }
    this.#observeStalls()
  }

  #onHeartbeat(from: ClusterNode, body: Buffer): void {
    if (this.#stopped) return
    let msg
    try {
      msg = decodeHeartbeat(body)
    } catch (e) {
      this.#log.warn({ from: formatNode(from), err: (e as Error).message }, 'malformed heartbeat dropped')
      return
    }
    if (msg.kind === 'request') {
      const m = this.#gossip.members.get(from.uid)
      const reachable = this.#reachable(from.uid) && !this.#beats.isStalled(from.uid)
      try {
        this.#host.sendControl(controlTarget(from), ControlKind.Heartbeat, encodeHeartbeatAnswer({ seq: msg.seq, status: m?.status, reachable }))
      } catch {
        // the requester misses this answer, as it would a lost one
      }
      return
    }
    if (this.#beats.answer(from.uid, msg)) {
      this.#replacedAt.delete(from.uid)
      this.#log.info({ member: formatNode(from) }, 'heartbeats to member answered again')
      this.#observeStalls()
    }
    // A member of the side that decided says this node is gone: the news that travels fastest.
    if (msg.status === 'down' || msg.status === 'removed') this.learnedDown(`${formatNode(from)} answers that this node is ${msg.status}`)
  }

  /** Whether a message came straight from member `uid` (SWIM, or a heartbeat answer) within the last `ms`. */
  #heardWithin(uid: string, ms: number): boolean {
    const m = this.#gossip.members.get(uid)
    if (!m) return false
    const swim = this.#swim.instance
    const heard = Math.max(
      swim.lastHeard({ host: m.node.endpoint.host, port: m.node.endpoint.port, uid }) ?? -Infinity,
      this.#beats.answeredAt(uid) ?? -Infinity,
    )
    return swim.now() - heard < ms
  }

  /** Whether `uid` answered a heartbeat sent within the last two intervals. */
  #answeredRecently(uid: string): boolean {
    const at = this.#beats.answeredAt(uid)
    return at !== undefined && this.#swim.instance.now() - at <= 2 * this.#beats.settings.interval
  }

  /** Publishes this node's own observations when they changed. */
  #observeStalls(): void {
    const next = observe(this.#observations, this.self.uid, this.#beats.stalled())
    if (next === this.#observations) return
    this.#observations = next
    this.#noteEdges()
    this.#sendObservations(this.#present().filter((m) => m.node.uid !== this.self.uid))
  }

  #onObservations(from: ClusterNode, body: Buffer): void {
    if (this.#stopped) return
    let table
    try {
      table = decodeObservations(body)
    } catch (e) {
      this.#log.warn({ from: formatNode(from), err: (e as Error).message }, 'malformed reachability observations dropped')
      return
    }
    const merged = mergeObservations(this.#observations, table, this.self.uid, (uid) => this.#isPresentMember(uid))
    if (merged === this.#observations) return
    this.#observations = merged
    this.#noteEdges()
    // Pass it on: the observer's own links to the leader may be the cut ones.
    this.#sendObservations(this.#present().filter((m) => m.node.uid !== this.self.uid && m.node.uid !== from.uid))
  }

  #sendObservations(to: readonly Member[]): void {
    if (to.length === 0) return
    const bytes = encodeObservations(this.#observations)
    for (const m of to) {
      try {
        this.#host.sendControl(controlTarget(m.node), ControlKind.Reachability, bytes)
      } catch {
        // the periodic gossip tick sends the table again
      }
    }
  }

  /** Observer → subject edges among present members SWIM sees alive (the clean path handles the rest). */
  #edges(): Array<readonly [string, string]> {
    return unreachabilityEdges(this.#observations, (uid) => this.#isPresentMember(uid) && this.#reachable(uid))
  }

  /** The current edges; when they differ from the last ones, notes since when (for stability) and logs it. */
  #noteEdges(): Array<readonly [string, string]> {
    const edges = this.#edges()
    const key = edges.map(([o, sub]) => `${o}>${sub}`).join(',')
    if (key === this.#edgesKey) return edges
    const first = this.#edgesKey === ''
    this.#edgesKey = key
    this.#edgesChangedAt = this.#swim.instance.now()
    if (key === '') this.#log.info('no member observes another directly unreachable any more')
    // Info when it starts; each change after that at debug (a flapping link changes it often).
    else
      this.#log[first ? 'info' : 'debug'](
        { observed: edges.map(([o, sub]) => `${this.#name(o)} -> ${this.#name(sub)}`) },
        'members observe others directly unreachable',
      )
    return edges
  }

  #isPresentMember(uid: string): boolean {
    const m = this.#gossip.members.get(uid)
    return m !== undefined && isPresent(m.status)
  }

  #name(uid: string): string {
    const m = this.#gossip.members.get(uid)
    return m ? formatNode(m.node) : uid
  }

  /**
   * Until when (on {@link now}'s clock) this node's side is confirmed by heartbeat answers no older
   * than `window` ms: see `confirmedUntil` in Downing.ts. `notBefore`: ignore confirmations
   * of heartbeats sent before it (a host that fenced must hear afresh). For hosts of singletons and
   * shards. At most `window` ms from now: where no confirmation is needed (a strategy that never
   * downs a side, a node alone) the answer holds for the current membership only, and callers cache
   * it until it passes. -Infinity once this node is down or removed, whatever members still answer:
   * it is on no side that stays.
   */
  confirmedUntil(window: number, notBefore = Number.NEGATIVE_INFINITY): number {
    const self = this.#gossip.members.get(this.self.uid)
    if (this.#downedByCluster || (self !== undefined && (self.status === 'down' || self.status === 'removed'))) return Number.NEGATIVE_INFINITY
    const members = [...this.#gossip.members.values()].filter((m) => m.status !== 'removed').map((m) => this.#view(m))
    const until = confirmedUntil(
      this.self.uid,
      members,
      (uid) => {
        const at = this.#beats.confirmedAt(uid)
        return at !== undefined && at >= notBefore ? at : undefined
      },
      this.downing,
      window,
    )
    // Never more than one window ahead: an answer that needs no confirmation (+Infinity: a node
    // alone, a strategy that downs nobody) holds for this membership only, and callers cache it.
    return Math.min(until, this.now() + window)
  }

  /** The cluster's monotonic clock (ms): SWIM's, the one heartbeats and `confirmedUntil` use. */
  now(): number {
    return this.#swim.instance.now()
  }

  // ── discovery ──────────────────────────────────────────────────────────────

  async #discover(p: DiscoveryProvider): Promise<void> {
    const signal = this.#abort.signal
    while (!signal.aborted) {
      try {
        const endpoints = await p.list(signal)
        for (const e of endpoints) if (!this.#isMemberAddress(e)) this.#join(e)
        this.#answered.set(
          p,
          endpoints.some((e) => endpointKey(e) !== endpointKey(this.self.endpoint)),
        )
        if (this.#answered.size === this.#providers.length && ![...this.#answered.values()].some(Boolean)) this.#foundNoOne = true
      } catch (e) {
        if (signal.aborted) return
        this.#log.warn({ discovery: p.name, err: (e as Error).message }, 'discovery failed; retrying')
      }
      await abortableSleep(this.#present().length <= 1 ? Math.min(p.interval, 1000) : p.interval, signal)
    }
  }

  #present(): Member[] {
    return [...this.#gossip.members.values()].filter((m) => isPresent(m.status))
  }

  #isMemberAddress(e: DiscoveredEndpoint): boolean {
    const key = endpointKey(e)
    if (key === endpointKey(this.self.endpoint)) return true
    return this.#present().some((m) => memberAddress(m) === key && this.#reachable(m.node.uid))
  }

  #join(e: DiscoveredEndpoint): void {
    if (endpointKey(e) === endpointKey(this.self.endpoint) || this.#stopped) return
    this.#log.debug({ endpoint: endpointKey(e) }, 'joining')
    this.#swim.join([e])
    this.#sendTo(e)
  }

  // ── helpers ────────────────────────────────────────────────────────────────

  #forgetRemoved(): void {
    for (const uid of this.#history.forgetDue(this.now())) {
      const members = new Map(this.#gossip.members)
      members.delete(uid)
      // Local bookkeeping, not a change to spread: every node forgets on its own clock.
      this.#gossip = { ...this.#gossip, members, version: pruneVersion(this.#gossip.version, (k) => k !== uid) }
    }
  }

  #isForgotten(uid: string): boolean {
    return this.#history.isForgotten(uid)
  }

  #view(m: Member): ClusterMember {
    const reachability: Reachability = this.#history.isUnreachable(m.node.uid) ? 'unreachable' : 'reachable'
    const observers = observersOf(this.#observations, m.node.uid)
    return observers.length === 0 ? { ...m, reachability } : { ...m, reachability, observedBy: observers.map((uid) => this.#name(uid)) }
  }

  #emit(e: ClusterEvent): void {
    this.#events.emit(e)
  }
}

function pick<T>(xs: readonly T[], n: number): T[] {
  const copy = [...xs]
  const out: T[] = []
  while (out.length < n && copy.length > 0) out.push(copy.splice(Math.floor(Math.random() * copy.length), 1)[0]!)
  return out
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}
