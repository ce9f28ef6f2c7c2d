/**
 * The cluster shell: membership gossip, heartbeats and observations over the control lane, SWIM's
 * view, discovery, and the events applications watch. Every protocol decision (reachability,
 * leader actions, downing, self-join, forgetting) is made by the pure {@link Membership} core;
 * this class decodes what arrives, feeds it with the time, and applies the directives it returns
 * (sends, connection replacement, tombstones, events, logs).
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
import { EventStream } from '../util/EventStream.ts'
import { type DowningStrategy, downingFromName, keepMajority } from './Downing.ts'
import { decodeGossip, encodeGossip } from './GossipCodec.ts'
import { DEFAULT_HEARTBEAT, type HeartbeatSettings } from './Heartbeat.ts'
import { decodeHeartbeat, decodeObservations, encodeHeartbeatAnswer, encodeHeartbeatRequest, encodeObservations } from './HeartbeatCodec.ts'
import { type ClusterMember, isPresent, type Member, type MembershipStatus, memberAddress, STATUS_RANK } from './Member.ts'
import { type ClusterEvent, type ClusterStats, type GossipTarget, Membership, type MembershipDirective, type MembershipSnapshot } from './Membership.ts'

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
   * after this long, ms, forming a cluster others then join, if its address is the lowest of
   * itself and every endpoint its sources list (Akka's first-seed rule); any other node waits until
   * it reaches someone. Default 2000. A node with nowhere to join is up at once. Gotcha: the lowest
   * one, restarted while a partition cuts it off from the others, still forms a cluster apart;
   * when two clusters formed apart meet they do not merge: the smaller one's members leave it (as
   * if downed: a supervisor restarts them) and join afresh.
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

export type { ClusterEvent, ClusterStats, MembershipSnapshot } from './Membership.ts'

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
  /** Every protocol decision (pure; this shell feeds it and applies its directives). */
  readonly #core: Membership
  readonly #events: EventStream<ClusterEvent>
  readonly #timers: NodeJS.Timeout[] = []
  readonly #abort = new AbortController()
  readonly #leavingHooks: (() => Promise<void>)[] = []
  readonly #waiters = new Set<(e: Error) => void>()
  #stopped = false
  #leaving: Promise<void> | undefined
  readonly #answered = new Map<DiscoveryProvider, boolean>()
  /** What each source listed last. */
  readonly #listed = new Map<DiscoveryProvider, readonly DiscoveredEndpoint[]>()

  constructor(host: ClusterHost, swim: SwimMember, settings: ClusterSettings) {
    this.self = host.node
    this.#host = host
    this.#swim = swim
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
    this.#core = new Membership({
      self: host.node,
      roles: settings.roles ?? [],
      minMembers: this.minMembers,
      downing: this.downing,
      heartbeat: { ...DEFAULT_HEARTBEAT, ...settings.heartbeat },
      hasProviders: this.#providers.length > 0,
      selfJoinAfter: settings.selfJoinAfter ?? 2000,
      swim: swim.instance,
      random: Math.random,
      now: this.now(),
    })
  }

  /** Starts gossiping, joins the seeds and starts discovery. Called by ClusterSystem. */
  start(): void {
    this.#apply(this.#core.start(this.now()))
    this.#host.onControl(ControlKind.Gossip, (from, body) => this.#onGossip(from, body))
    this.#host.onControl(ControlKind.Heartbeat, (from, body) => this.#onHeartbeat(from, body))
    this.#host.onControl(ControlKind.Reachability, (from, body) => this.#onObservations(from, body))
    this.#swim.subscribe((c) => this.#onSwim(c))
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms)
      t.unref()
      this.#timers.push(t)
    }
    every(this.#settings.gossipInterval ?? 1000, () => this.#apply(this.#core.gossipTick(this.now())))
    every(TICK, () => this.#apply(this.#core.tick(this.now())))
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
    return this.#core.snapshot()
  }

  /** Counts since start (leader changes, downing decisions), for metrics. */
  get stats(): ClusterStats {
    return this.#core.stats
  }

  /** Whether every member reachable from here has seen this node's current membership (the leader acts only then). */
  get converged(): boolean {
    return this.#core.converged
  }

  /**
   * True once the cluster has ended this node's membership: marked down (by the downing strategy,
   * an operator, or a peer that refused it as down) or removed without having left. A supervisor
   * should restart such a node (`shoal node` exits 1); false after a graceful leave or a plain stop.
   */
  get downed(): boolean {
    return this.#core.downed
  }

  /** Status of this node. */
  get status(): MembershipStatus {
    return this.#core.status
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
      const found = this.#core
        .members()
        .filter(match)
        .sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status])
      const m = typeof node === 'string' ? (found.find((x) => isPresent(x.status)) ?? found.at(-1)) : found[0]
      // Down and removed are not "later" than up for a waiter: a member downed before it was up
      // never joined. They satisfy only a wait for down or removed.
      const ended = m !== undefined && STATUS_RANK[m.status] >= STATUS_RANK.down && STATUS_RANK[status] < STATUS_RANK.down
      return m && !ended && STATUS_RANK[m.status] >= STATUS_RANK[status] ? m : undefined
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
    for (const e of endpoints.map(parseAddress)) this.#apply(this.#core.join(e, this.now()))
  }

  /** Marks a member down (by `host:port` or node); it is then removed and its node shuts itself down. */
  down(node: string | ClusterNode): boolean {
    const { found, directives } = this.#core.down((x) => (typeof node === 'string' ? memberAddress(x) === node : x.node.uid === node.uid), this.now())
    this.#apply(directives)
    return found
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
    this.#apply(this.#core.learnedDown(reason, this.now()))
  }

  /** @internal Stops timers and discovery; marks this node down first unless it already left. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#apply(this.#core.stop(this.now()))
    this.#stopped = true
    this.#abort.abort()
    for (const t of this.#timers) clearInterval(t)
    for (const p of this.#providers) await p.close?.()
    this.#events.close()
    for (const fail of this.#waiters) fail(new SystemShutDownError('The system shut down before the member reached that status.'))
    this.#waiters.clear()
  }

  async #leave(): Promise<void> {
    const { started, directives } = this.#core.leaving(this.now())
    this.#apply(directives)
    if (!started) return
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
    this.#apply(this.#core.exiting(this.now()))
    await this.waitFor(this.self, 'removed', { timeout: limit }).catch(() => {
      this.#log.warn('not removed by the leader in time; shutting down anyway')
    })
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
    return this.#core.confirmedUntil(this.now(), window, notBefore)
  }

  /** The cluster's monotonic clock (ms): SWIM's, the one heartbeats and `confirmedUntil` use. */
  now(): number {
    return this.#swim.instance.now()
  }

  // ── inputs ─────────────────────────────────────────────────────────────────

  #onGossip(from: ClusterNode, body: Buffer): void {
    if (this.#stopped) return
    let received
    try {
      received = decodeGossip(body)
    } catch (e) {
      this.#log.warn({ from: formatNode(from), err: (e as Error).message }, 'malformed membership gossip dropped')
      return
    }
    this.#apply(this.#core.receiveGossip(from, received.gossip, this.now()))
  }

  #onSwim(c: MembershipChange): void {
    if (this.#stopped) return
    this.#apply(this.#core.swimChanged(c.member.node, c.member.status, this.now()))
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
    const now = this.now()
    this.#apply(msg.kind === 'request' ? this.#core.heartbeatRequest(from, msg.seq, now) : this.#core.heartbeatAnswer(from, msg, now))
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
    this.#apply(this.#core.receiveObservations(from, table, this.now()))
  }

  // ── directives ─────────────────────────────────────────────────────────────

  #apply(directives: readonly MembershipDirective[]): void {
    for (const d of directives) this.#do(d)
  }

  #do(d: MembershipDirective): void {
    switch (d.kind) {
      case 'gossip': {
        // One encoding for every recipient: the state is the same for all of them.
        const bytes = encodeGossip(this.self.uid, this.#core.gossip)
        for (const to of d.to) this.#send(to, ControlKind.Gossip, bytes)
        return
      }
      case 'observations': {
        const bytes = encodeObservations(this.#core.observations)
        for (const to of d.to) this.#send(to, ControlKind.Reachability, bytes)
        return
      }
      case 'heartbeat':
        return this.#send(d.to, ControlKind.Heartbeat, encodeHeartbeatRequest(d.seq))
      case 'heartbeat-answer':
        return this.#send(d.to, ControlKind.Heartbeat, encodeHeartbeatAnswer(d.answer))
      case 'replace-connection':
        return this.#host.replaceConnection(d.node, d.reason, d.keep)
      case 'swim-join':
        return this.#swim.join([d.endpoint])
      case 'tombstone':
        return this.#host.tombstoneNode(d.node)
      case 'event':
        return this.#emit(d.event)
      case 'downed':
        return this.#downed()
      case 'log':
        return this.#log[d.level](d.fields, d.msg)
    }
  }

  /** Sends on the control lane; a send that fails now is like a lost message (the protocol repeats what matters). */
  #send(to: ClusterNode | GossipTarget, kind: ControlKind, bytes: Uint8Array): void {
    const target = 'endpoint' in to ? controlTarget(to) : to
    try {
      this.#host.sendControl(target, kind, bytes)
    } catch (e) {
      this.#log.debug({ to: endpointKey(target), kind, err: (e as Error).message }, 'control message not sent')
    }
  }

  #emit(e: ClusterEvent): void {
    if (e.type === 'member' && memberChangeChannel.hasSubscribers) {
      const m = e.member
      memberChangeChannel.publish({ self: this.self, node: m.node, from: e.previous, to: m.status, upNumber: m.upNumber, roles: m.roles })
    }
    if (e.type === 'reachability' && memberReachabilityChannel.hasSubscribers) {
      const m = e.member
      memberReachabilityChannel.publish({ self: this.self, node: m.node, reachability: m.reachability, status: m.status })
    }
    this.#events.emit(e)
  }

  #downed(): void {
    if (this.#stopped) return
    const action = this.#settings.onDown ?? 'shutdown'
    this.#log.warn({ action }, 'this node was marked down')
    // A moment first, so the gossip that tells the rest of our side goes out before we close.
    if (action === 'shutdown') setTimeout(() => void this.#host.shutdown(), DOWN_SHUTDOWN_DELAY).unref()
  }

  // ── discovery ──────────────────────────────────────────────────────────────

  /** Whether this node's endpoint is the lowest of itself and every endpoint the sources listed. */
  #lowestListed(): boolean {
    for (const endpoints of this.#listed.values()) for (const e of endpoints) if (compareEndpoints(e, this.self.endpoint) < 0) return false
    return true
  }

  async #discover(p: DiscoveryProvider): Promise<void> {
    const signal = this.#abort.signal
    while (!signal.aborted) {
      try {
        const endpoints = await p.list(signal)
        this.#listed.set(p, endpoints)
        this.#apply(this.#core.mayFormAlone(this.#lowestListed(), this.now(), [...this.#listed.values()].flat()))
        for (const e of endpoints) if (!this.#core.isMemberAddress(e) && !this.#stopped) this.#apply(this.#core.join(e, this.now()))
        this.#answered.set(
          p,
          endpoints.some((e) => endpointKey(e) !== endpointKey(this.self.endpoint)),
        )
        if (this.#answered.size === this.#providers.length && ![...this.#answered.values()].some(Boolean)) this.#apply(this.#core.foundNoOne(this.now()))
      } catch (e) {
        if (signal.aborted) return
        this.#log.warn({ discovery: p.name, err: (e as Error).message }, 'discovery failed; retrying')
      }
      await abortableSleep(this.#core.present().length <= 1 ? Math.min(p.interval, 1000) : p.interval, signal)
    }
  }
}

/** Host, then port as a number: the order `compareAddress` (Member.ts) gives nodes. */
function compareEndpoints(a: { host: string; port: number }, b: { host: string; port: number }): number {
  if (a.host !== b.host) return a.host < b.host ? -1 : 1
  return a.port - b.port
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
