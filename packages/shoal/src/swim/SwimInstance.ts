/**
 * The SWIM + Lifeguard protocol as a pure state machine.
 *
 * Inputs are method calls (`start`, `onMessage`, `onTimer`, `onPushPull…`, `leave`, `onStall`);
 * outputs are {@link Directive}s the shell carries out in order: send a datagram, start or cancel
 * a timer, ping over a stream, exchange full state, report a member's status change. No sockets,
 * timers or `Date.now` inside: the clock and randomness are injected, and the same inputs give
 * the same outputs. The UDP shell (`SwimMember`) and the simulator (`Simulator`) drive it.
 *
 * Architecture from apple/swift-cluster-membership (a runtime-agnostic instance returning
 * directives); protocol from SWIM, Lifeguard and hashicorp/memberlist, fixing the Swift
 * reference's gaps: suspect only after the indirect and TCP probes fail too, reshuffle the probe
 * order every pass, gossip dead and left with their incarnation, queue only changes and fill
 * datagrams to a byte budget, push-pull anti-entropy, re-probe the dead for partition healing,
 * count missed nacks in local health.
 * @module
 */
import { ConfigError } from '../errors.ts'
import { baseSize, MAX_META_BYTES, MAX_UPDATES, type Message, type PushPull, type Update, updateSize } from './Codec.ts'
import { Dissemination } from './Dissemination.ts'
import { LocalHealth } from './LocalHealth.ts'
import { Suspicion, suspicionTimeout } from './Suspicion.ts'
import {
  ANY_UID,
  addressKey,
  cachedNodeKey,
  isLive,
  nodeKey,
  type SwimAddress,
  type SwimMemberState,
  type SwimNode,
  type SwimStatus,
  supersedes,
} from './SwimNode.ts'
import { pushPullPeriod, type ResolvedSwimSettings, resolveSwimSettings, retransmitLimit, type SwimSettings } from './SwimSettings.ts'

/** What the shell must do. Starting a timer replaces a running timer with the same id. */
export type Directive =
  | { readonly type: 'send'; readonly to: SwimAddress; readonly message: Message }
  | { readonly type: 'streamPing'; readonly to: SwimNode; readonly message: Message & { readonly type: 'ping' }; readonly timeout: number }
  | { readonly type: 'pushPull'; readonly to: SwimAddress; readonly message: PushPull }
  | { readonly type: 'startTimer'; readonly id: string; readonly delay: number }
  | { readonly type: 'cancelTimer'; readonly id: string }
  | { readonly type: 'changed'; readonly member: SwimMemberState; readonly previous: SwimStatus | undefined }

/** Counters kept by the instance; the shell exports them as metrics. */
export interface SwimStats {
  probes: number
  acks: number
  nacks: number
  indirectProbes: number
  failedProbes: number
  /** Failed probes not held against the target because this node stalled meanwhile. */
  inconclusiveProbes: number
  suspicionsRaised: number
  /** Suspicions of this node that it refuted. */
  refutations: number
  deathsDeclared: number
  stalls: number
  /** Pings addressed to another incarnation of this address. */
  misdirected: number
}

/** What a SWIM instance needs: who it is, its settings, and the injected clock and randomness. */
export interface SwimInstanceOptions {
  readonly self: SwimNode
  readonly meta?: Uint8Array
  readonly settings?: SwimSettings
  /** Current time in ms (virtual in the simulator). */
  readonly now: () => number
  /** Uniform in [0, 1) (seeded in the simulator). */
  readonly random: () => number
  /** Addresses to join through, re-joined while they are not live members (partition healing). */
  readonly seeds?: readonly SwimAddress[]
  /** Members known from the start, added silently (the simulator's converged bootstrap). */
  readonly members?: readonly SwimMemberState[]
}

interface MemberRecord {
  node: SwimNode
  status: SwimStatus
  incarnation: number
  meta: Uint8Array
  since: number
  /** When a message last came straight from it (-1: never); kept here, updated in place. */
  heard: number
}

interface Probe {
  readonly seq: number
  readonly key: string
  /** Uids whose ack for this seq counts: the target, then also the helpers asked. */
  readonly ackers: Set<string>
  acked: boolean
  expectedNacks: number
  nacks: number
}

type Pending =
  | { readonly kind: 'probe' }
  | { readonly kind: 'relay'; readonly origin: SwimNode; readonly originSeq: number; readonly target: string }
  | { readonly kind: 'reprobe'; readonly key: string; readonly target: string }
  /** A ping to a new uid heard of at an address where another uid is live: an answer proves it runs there now. */
  | { readonly kind: 'verify'; readonly key: string; readonly target: string }

const EMPTY = new Uint8Array(0)
const REAP_INTERVAL = 60_000
const ALONE_REJOIN = 2000
const LEAVE_DIRECT = 64
const SILENT_CHECKS = 2

/** One SWIM + Lifeguard protocol instance: feed it inputs, carry out the directives it returns (module comment). */
export class SwimInstance {
  readonly self: SwimNode
  readonly settings: ResolvedSwimSettings
  readonly stats: SwimStats = {
    probes: 0,
    acks: 0,
    nacks: 0,
    indirectProbes: 0,
    failedProbes: 0,
    inconclusiveProbes: 0,
    suspicionsRaised: 0,
    refutations: 0,
    deathsDeclared: 0,
    stalls: 0,
    misdirected: 0,
  }
  readonly health: LocalHealth

  readonly #now: () => number
  readonly #random: () => number
  readonly #seeds: readonly SwimAddress[]
  readonly #members = new Map<string, MemberRecord>()
  readonly #byAddress = new Map<string, string>()
  readonly #live: string[] = []
  readonly #liveIndex = new Map<string, number>()
  readonly #suspicions = new Map<string, Suspicion>()
  readonly #queue: Dissemination
  readonly #pending = new Map<number, Pending>()
  readonly #deadlines = new Map<string, number>()
  /**
   * When a message last arrived from each sender not in the member table (any kind); for members
   * it is their record's `heard`, so a message updates a field instead of allocating map entries.
   */
  readonly #lastHeard = new Map<string, number>()
  /** Keys of members declared dead, oldest first, for gossip-to-the-dead. */
  readonly #recentDead: string[] = []
  /** Members in the table with status dead (the reprobe tick has nothing to do while 0). */
  #deadCount = 0
  /** Bumped whenever {@link statusOf} may answer differently; see {@link version}. */
  #version = 0
  /**
   * Addresses where more than one uid is live in the table (a restart, or a stale or replayed
   * message about an old incarnation). The first of them to answer a ping of ours proves it runs
   * there now, and the others are dead. Usually empty: an ack costs a size check, no string.
   */
  readonly #contested = new Set<string>()
  #meta: Uint8Array
  #incarnation = 0
  #seq = 0
  #order: string[] = []
  #orderIndex = 0
  #priority: string[] = []
  #probe: Probe | undefined
  #gossipArmed = false
  #leaving = false
  #started = false
  #out: Directive[] = []

  constructor(o: SwimInstanceOptions) {
    this.self = o.self
    this.settings = resolveSwimSettings(o.settings)
    this.health = new LocalHealth(this.settings.maxLocalHealth)
    this.#queue = new Dissemination(this.settings.maxQueueBytes)
    this.#now = o.now
    this.#random = o.random
    this.#seeds = (o.seeds ?? []).filter((s) => addressKey(s) !== addressKey(o.self))
    this.#meta = checkMeta(o.meta ?? EMPTY)
    if (!/^[0-9a-f]{16}$/.test(o.self.uid)) throw new ConfigError(`SWIM uid "${o.self.uid}" must be 16 lower-case hex digits.`)
    // A random start, so acks replayed from an earlier run of this address match nothing.
    this.#seq = Math.floor(o.random() * 0x1_0000_0000) >>> 0
    const now = o.now()
    for (const m of o.members ?? []) {
      if (addressKey(m.node) === addressKey(o.self)) continue
      this.#insert({ node: m.node, status: m.status, incarnation: m.incarnation, meta: m.meta, since: now, heard: -1 })
    }
  }

  // ── reading ────────────────────────────────────────────────────────────────

  get incarnation(): number {
    return this.#incarnation
  }

  get leaving(): boolean {
    return this.#leaving
  }

  /** Live members other than self. */
  get liveCount(): number {
    return this.#live.length
  }

  get queueLength(): number {
    return this.#queue.length
  }

  get queueBytes(): number {
    return this.#queue.bytes
  }

  /** This node's own state. */
  get selfState(): SwimMemberState {
    return { node: this.self, status: this.#leaving ? 'left' : 'alive', incarnation: this.#incarnation, meta: this.#meta }
  }

  /** Every member known, self first, including dead and left ones not yet forgotten. */
  members(): SwimMemberState[] {
    const out: SwimMemberState[] = [this.selfState]
    for (const m of this.#members.values()) out.push(snapshot(m))
    return out
  }

  member(node: SwimNode): SwimMemberState | undefined {
    const m = this.#members.get(nodeKey(node))
    return m && snapshot(m)
  }

  /**
   * The status of one member, or undefined if unknown: {@link member} without the copy, for
   * callers that ask about the same node objects again and again (the membership core, every step).
   */
  statusOf(node: SwimNode): SwimStatus | undefined {
    return this.#members.get(cachedNodeKey(node))?.status
  }

  /**
   * A number that changes whenever {@link statusOf} may answer differently (a member learned,
   * its status changed, or it was forgotten): callers may keep what they derived from statuses
   * while it stays the same.
   */
  get version(): number {
    return this.#version
  }

  // ── inputs ─────────────────────────────────────────────────────────────────

  /** Starts the periodic work and joins the seeds. Call once. */
  start(): Directive[] {
    return this.#run(() => {
      if (this.#started) return
      this.#started = true
      const s = this.settings
      // Random phase, so members started together do not probe in lockstep.
      this.#timer('probe', Math.floor(this.#random() * s.probeInterval))
      this.#timer('pushPull', Math.floor((0.5 + this.#random()) * pushPullPeriod(s.pushPullInterval, this.#live.length + 1)))
      this.#timer('reprobe', Math.floor((0.5 + this.#random()) * s.reprobeInterval))
      this.#timer('reap', REAP_INTERVAL)
      this.#enqueue(nodeKey(this.self), this.#selfUpdate())
      if (this.#seeds.length > 0) {
        this.#joinSeeds(this.#seeds)
        this.#timer('rejoin', this.#rejoinDelay())
      }
    })
  }

  /** Joins through more addresses (push-pull with each). */
  join(seeds: readonly SwimAddress[]): Directive[] {
    return this.#run(() => this.#joinSeeds(seeds.filter((s) => addressKey(s) !== addressKey(this.self))))
  }

  /** When a message last came straight from `node` (this instance's clock), if ever. */
  lastHeard(node: SwimNode): number | undefined {
    const key = cachedNodeKey(node)
    const m = this.#members.get(key)
    return m && m.heard >= 0 ? m.heard : this.#lastHeard.get(key)
  }

  /** This instance's clock (ms), the one `lastHeard` uses. */
  now(): number {
    return this.#now()
  }

  /** A datagram arrived (already authenticated and decoded). */
  onMessage(m: Message): Directive[] {
    return this.#run(() => {
      const from = nodeKey(m.from)
      const record = this.#members.get(from)
      if (record) record.heard = this.#now()
      else this.#lastHeard.set(from, this.#now())
      for (const u of m.updates) this.#apply(u, false)
      switch (m.type) {
        case 'ping':
          return this.#onPing(m.seq, m.from, m.targetUid)
        case 'pingReq':
          return this.#onPingReq(m.seq, m.from, m.target)
        case 'ack':
          return this.#onAck(m.seq, m.from)
        case 'nack':
          return this.#onNack(m.seq)
        case 'gossip':
          return
      }
    })
  }

  /** A timer started by a `startTimer` directive fired. Stale or unknown ids are ignored. */
  onTimer(id: string): Directive[] {
    return this.#run(() => {
      const deadline = this.#deadlines.get(id)
      if (deadline === undefined) return
      this.#deadlines.delete(id)
      const late = this.#now() - deadline > this.settings.stallThreshold
      if (late) this.#stalled()
      const colon = id.indexOf(':')
      const kind = colon < 0 ? id : id.slice(0, colon)
      const arg = colon < 0 ? '' : id.slice(colon + 1)
      switch (kind) {
        case 'probe':
          return this.#onProbeTick(late)
        case 'ping':
          return this.#onPingTimeout(Number(arg))
        case 'relay':
          return this.#onRelayTimeout(Number(arg))
        case 'verify':
          return this.#onVerifyTimeout(Number(arg))
        case 'suspect':
          return this.#onSuspicionTimer(arg)
        case 'gossip':
          return this.#onGossipTick()
        case 'pushPull':
          return this.#onPushPullTick()
        case 'reprobe':
          return this.#onReprobeTick()
        case 'rejoin':
          return this.#onRejoinTick()
        case 'reap':
          return this.#onReap()
      }
    })
  }

  /** The ack to a stream ping sent by a `streamPing` directive arrived. */
  onStreamAck(ack: Message): Directive[] {
    return this.#run(() => {
      for (const u of ack.updates) this.#apply(u, false)
      if (ack.type === 'ack') this.#probeAcked(ack.seq, ack.from)
    })
  }

  /**
   * A ping arrived over a stream (another member's TCP fallback). Returns the ack to send back on
   * the same stream (undefined: addressed to another incarnation), with gossip piggybacked as on
   * a datagram, so a suspect refutes over TCP as it would over UDP.
   */
  onStreamPing(ping: Message): { reply: Message | undefined; directives: Directive[] } {
    let reply: Message | undefined
    const directives = this.#run(() => {
      for (const u of ping.updates) this.#apply(u, false)
      if (ping.type !== 'ping' || !this.answersPing(ping.targetUid)) return
      this.#send(ping.from, { type: 'ack', seq: ping.seq, from: this.self, updates: [] })
      reply = (this.#out.pop() as { message: Message }).message
    })
    return { reply, directives }
  }

  /** Whether to answer a ping addressed to `targetUid`. */
  answersPing(targetUid: string): boolean {
    return targetUid === this.self.uid || targetUid === ANY_UID
  }

  /** Merges a push-pull request and returns the reply to send back (state after the merge). */
  onPushPull(request: PushPull): { reply: PushPull; directives: Directive[] } {
    const directives = this.#run(() => this.#merge(request))
    return { reply: this.#state('pushPullReply', request.join), directives }
  }

  /** Merges the reply to a push-pull this node started. */
  onPushPullReply(reply: PushPull): Directive[] {
    return this.#run(() => this.#merge(reply))
  }

  /** The shell measured an event-loop stall (delay in ms); slows this node's judgements. */
  onStall(delayMs: number): Directive[] {
    return this.#run(() => {
      if (delayMs > this.settings.stallThreshold) this.#stalled()
    })
  }

  /** Changes this node's metadata; spreads as an alive update with a new incarnation. */
  setMeta(meta: Uint8Array): Directive[] {
    checkMeta(meta)
    return this.#run(() => {
      this.#meta = meta
      this.#incarnation++
      this.#enqueue(nodeKey(this.self), this.#selfUpdate())
    })
  }

  /**
   * Leaves gracefully: announces `left` (a new incarnation, so nothing older overrides it) to a
   * few members at once and stops probing. The shell should keep the socket open for a few gossip
   * intervals so the announcement spreads, then close.
   */
  leave(): Directive[] {
    return this.#run(() => {
      if (this.#leaving) return
      this.#leaving = true
      this.#incarnation++
      if (this.#probe) this.#pending.delete(this.#probe.seq)
      this.#probe = undefined
      this.#enqueue(nodeKey(this.self), this.#selfUpdate())
      // Tell members directly (all of them up to 64, so small clusters never miss it; gossip
      // carries it on in larger ones).
      const left = this.#selfUpdate()
      for (const key of this.#pickLive(LEAVE_DIRECT, undefined))
        this.#send(this.#members.get(key)!.node, { type: 'gossip', from: this.self, updates: [] }, [left])
    })
  }

  // ── probing ────────────────────────────────────────────────────────────────

  #onProbeTick(late: boolean): void {
    this.#endProbe(late)
    if (this.#leaving) return
    this.#startProbe()
    this.#timer('probe', this.health.scale(this.settings.probeInterval))
  }

  #startProbe(): void {
    const key = this.#nextTarget()
    if (key === undefined) return
    const m = this.#members.get(key)!
    const seq = this.#nextSeq()
    this.#probe = { seq, key, ackers: new Set([m.node.uid]), acked: false, expectedNacks: 0, nacks: 0 }
    this.#pending.set(seq, { kind: 'probe' })
    this.stats.probes++
    this.#send(m.node, { type: 'ping', seq, from: this.self, targetUid: m.node.uid, updates: [] }, this.#buddy(m))
    this.#timer(`ping:${seq}`, this.health.scale(this.settings.pingTimeout))
  }

  /** Buddy system: a suspect learns of its suspicion from the ping itself and can refute at once. */
  #buddy(m: MemberRecord): Update[] {
    return m.status === 'suspect' ? [this.#updateOf(m)] : []
  }

  #onPingTimeout(seq: number): void {
    const p = this.#probe
    if (!p || p.seq !== seq || p.acked) return
    const m = this.#members.get(p.key)
    if (!m || !isLive(m.status)) return
    const helpers = this.#pickLive(this.settings.indirectChecks, p.key)
    for (const h of helpers) {
      const helper = this.#members.get(h)!.node
      p.ackers.add(helper.uid)
      this.#send(helper, { type: 'pingReq', seq, from: this.self, target: m.node, updates: [] })
    }
    p.expectedNacks = helpers.length
    if (helpers.length > 0) this.stats.indirectProbes++
    if (this.settings.tcpFallback) {
      const remaining = this.health.scale(this.settings.probeInterval) - this.health.scale(this.settings.pingTimeout)
      this.#send(m.node, { type: 'ping', seq, from: this.self, targetUid: m.node.uid, updates: [] }, this.#buddy(m))
      const { message } = this.#out.pop() as { message: Message & { type: 'ping' } }
      this.#out.push({ type: 'streamPing', to: m.node, message, timeout: Math.max(1, Math.floor(remaining)) })
    }
  }

  #endProbe(late: boolean): void {
    const p = this.#probe
    this.#probe = undefined
    if (!p) return
    this.#pending.delete(p.seq)
    if (p.acked) return
    const m = this.#members.get(p.key)
    if (!m || !isLive(m.status)) return
    if (late) {
      // This node stalled during the probe: the silence may be ours, not the target's.
      this.stats.inconclusiveProbes++
      return
    }
    this.stats.failedProbes++
    this.health.apply(p.expectedNacks > 0 ? p.expectedNacks - p.nacks : 1)
    this.#apply({ status: 'suspect', node: m.node, incarnation: m.incarnation, by: this.self.uid }, false)
    this.#checkSilent(p.key)
  }

  /**
   * After a failed probe, check next the two members not heard from for the longest (and not for
   * two periods): if this node is cut off from part of the cluster (a partition), it finds out in
   * a few periods instead of waiting for the round-robin to reach each one. Costs at most two
   * extra probes per failure.
   */
  #checkSilent(failed: string): void {
    const quiet = this.#now() - 2 * this.health.scale(this.settings.probeInterval)
    const candidates = this.#live
      .filter((k) => k !== failed && this.#members.get(k)!.status === 'alive' && this.#heard(k) < quiet && !this.#priority.includes(k))
      .sort((a, b) => this.#heard(a) - this.#heard(b) || (a < b ? -1 : 1))
    this.#priority.push(...candidates.slice(0, SILENT_CHECKS))
  }

  /** When a member was last heard from; -Infinity if never. */
  #heard(key: string): number {
    const h = this.#members.get(key)?.heard ?? -1
    return h >= 0 ? h : -Infinity
  }

  #probeAcked(seq: number, from: SwimNode): void {
    const p = this.#probe
    if (!p || p.seq !== seq || p.acked || !p.ackers.has(from.uid)) return
    p.acked = true
    this.stats.acks++
    const s = this.#suspicions.get(p.key)
    if (s?.checked) s.answered = true
    this.health.apply(-1)
    this.#cancel(`ping:${seq}`)
    this.#proven(p.key)
  }

  #nextTarget(): string | undefined {
    while (this.#priority.length > 0) {
      const key = this.#priority.shift()!
      if (this.#liveIndex.has(key)) return key
    }
    for (let pass = 0; pass < 2; pass++) {
      while (this.#orderIndex < this.#order.length) {
        const key = this.#order[this.#orderIndex++]!
        if (this.#liveIndex.has(key)) return key
      }
      // A full pass is done: reshuffle (SWIM's time-bounded completeness; the Swift reference does not).
      this.#order = shuffle([...this.#live], this.#random)
      this.#orderIndex = 0
    }
    return undefined
  }

  // ── message handlers ───────────────────────────────────────────────────────

  #onPing(seq: number, from: SwimNode, targetUid: string): void {
    if (!this.answersPing(targetUid)) {
      this.stats.misdirected++
      return
    }
    this.#send(from, { type: 'ack', seq, from: this.self, updates: [] })
  }

  #onPingReq(originSeq: number, origin: SwimNode, target: SwimNode): void {
    const seq = this.#nextSeq()
    this.#pending.set(seq, { kind: 'relay', origin, originSeq, target: target.uid })
    this.#send(target, { type: 'ping', seq, from: this.self, targetUid: target.uid, updates: [] })
    this.#timer(`relay:${seq}`, this.settings.pingTimeout * this.settings.indirectTimeoutFactor)
  }

  #onAck(seq: number, from: SwimNode): void {
    const p = this.#pending.get(seq)
    if (!p) return
    if (p.kind === 'probe') return this.#probeAcked(seq, from)
    if (p.target !== from.uid) return
    this.#pending.delete(seq)
    if (p.kind === 'relay') {
      this.#cancel(`relay:${seq}`)
      this.#send(p.origin, { type: 'ack', seq: p.originSeq, from: this.self, updates: [] })
    } else if (p.kind === 'verify') {
      this.#cancel(`verify:${seq}`)
      this.#proven(p.key)
    } else {
      // A member believed dead answered: the partition healed. Exchange full state with it.
      this.#proven(p.key)
      this.#pushPull(from, false)
    }
  }

  /**
   * `key` answered a ping of ours with its seq: its uid runs at its address now (a replayed
   * datagram cannot answer a ping sent after it was captured). Any other uid still live at that
   * address is an earlier incarnation, or a stale or replayed mention of one: it is dead.
   */
  #proven(key: string): void {
    if (this.#contested.size === 0) return
    const m = this.#members.get(key)
    if (!m || !isLive(m.status)) return
    const addr = addressKey(m.node)
    if (!this.#contested.has(addr)) return
    this.#contested.delete(addr)
    this.#byAddress.set(addr, key)
    for (const other of this.#live.slice()) {
      const o = this.#members.get(other)!
      if (other !== key && o.node.port === m.node.port && o.node.host === m.node.host)
        this.#apply({ status: 'dead', node: o.node, incarnation: o.incarnation, by: this.self.uid }, false)
    }
  }

  /** Pings `m`, a new uid at an address where another uid is live, at once rather than in its turn. */
  #verify(key: string, m: MemberRecord): void {
    const seq = this.#nextSeq()
    this.#pending.set(seq, { kind: 'verify', key, target: m.node.uid })
    this.#send(m.node, { type: 'ping', seq, from: this.self, targetUid: m.node.uid, updates: [] })
    this.#timer(`verify:${seq}`, this.health.scale(this.settings.pingTimeout))
  }

  #onVerifyTimeout(seq: number): void {
    const p = this.#pending.get(seq)
    if (!p || p.kind !== 'verify') return
    this.#pending.delete(seq)
    // No answer over UDP (lost, or a stale uid): the regular probe next period, with helpers and
    // the TCP fallback, settles it either way.
    if (this.#liveIndex.has(p.key) && !this.#priority.includes(p.key)) this.#priority.push(p.key)
  }

  #onNack(seq: number): void {
    const p = this.#probe
    if (!p || p.seq !== seq) return
    p.nacks++
    this.stats.nacks++
  }

  #onRelayTimeout(seq: number): void {
    const p = this.#pending.get(seq)
    if (!p || p.kind !== 'relay') return
    this.#pending.delete(seq)
    this.#send(p.origin, { type: 'nack', seq: p.originSeq, from: this.self, updates: [] })
  }

  // ── suspicion ──────────────────────────────────────────────────────────────

  #armSuspicion(key: string, s: Suspicion): void {
    const set = this.settings
    // Not scaled by local health (as in memberlist): a node cut off from most of the cluster has a
    // high score, and must still conclude, or it could never learn that it is in a minority.
    const timeout = suspicionTimeout(s.confirmations, set.suspicionMin, set.suspicionMax, set.confirmations)
    const delay = s.start + timeout - this.#now()
    if (delay <= 0) this.#declareDead(key)
    else this.#timer(`suspect:${key}`, delay)
  }

  #onSuspicionTimer(key: string): void {
    const s = this.#suspicions.get(key)
    const m = this.#members.get(key)
    if (!s || !m || m.status !== 'suspect' || m.incarnation !== s.incarnation) return
    if (s.answered) {
      // It answered our own check without refuting (an older peer, or an ack relayed without
      // gossip): it lives. Start the suspicion over rather than kill a member that answers.
      const again = new Suspicion(s.incarnation, this.#now(), s.accuser)
      this.#suspicions.set(key, again)
      this.#armSuspicion(key, again)
      return
    }
    if (s.confirmations < this.settings.confirmations && !s.checked) {
      // Too few independent confirmations to be sure: check it ourselves first (the buddy ping lets
      // it refute, or tells us of a refutation we missed); dead after one more period if it fails.
      s.checked = true
      this.#priority.push(key)
      this.#timer(`suspect:${key}`, 2 * this.settings.probeInterval)
      return
    }
    this.#declareDead(key)
  }

  #declareDead(key: string): void {
    const m = this.#members.get(key)!
    this.stats.deathsDeclared++
    this.#apply({ status: 'dead', node: m.node, incarnation: m.incarnation, by: this.self.uid }, false)
  }

  // ── applying updates ───────────────────────────────────────────────────────

  /**
   * Applies one belief about a member. `merge`: it came from a push-pull (dead is then only
   * suspected). Who sent it does not matter: any message may be stale or replayed.
   */
  #apply(u: Update, merge: boolean): void {
    // Same address as addressKey() equality, without two strings per update (push-pulls carry every member).
    if (u.node.port === this.self.port && u.node.host === this.self.host) return this.#applyAboutSelfAddress(u)
    const key = nodeKey(u.node)
    const m = this.#members.get(key)
    if (!m) return this.#applyUnknown(key, u)
    if (merge && u.status === 'dead' && isLive(m.status) && u.incarnation >= m.incarnation) {
      // memberlist's rule: a remote full state says dead, but we see it live; suspect it so it
      // gets a chance to refute, rather than killing it on hearsay from another partition.
      u = { status: 'suspect', node: u.node, incarnation: u.incarnation, by: u.by ?? ANY_UID }
    }
    if (!supersedes(u, m)) {
      if (u.status === 'suspect' && m.status === 'suspect' && u.incarnation === m.incarnation && u.by) this.#confirm(key, u)
      else if (u.status !== 'alive' && supersedes(m, u) && !this.#queue.peek(key)) {
        // An out-of-date accusation (its sender missed a refutation or a leave): spread what we
        // know, so the sender learns it before its own timer declares a live or departed member dead.
        this.#enqueue(key, this.#updateOf(m))
      }
      return
    }
    const previous = m.status
    const metaChanged = u.status === 'alive' && !sameBytes(u.meta ?? EMPTY, m.meta)
    m.incarnation = u.incarnation
    if (previous === 'dead') this.#deadCount--
    if (u.status === 'dead') this.#deadCount++
    m.status = u.status
    if (previous !== u.status) this.#version++
    // Same bytes: keep the array held (no new one retained per update).
    if (metaChanged) m.meta = u.meta ?? EMPTY
    if (previous !== u.status) m.since = this.#now()
    if (u.status === 'dead' && previous !== 'dead') this.#recentDead.push(key)
    if (u.status !== 'suspect') this.#clearSuspicion(key)
    if (isLive(u.status)) this.#addLive(key)
    else if (this.#removeLive(key) && this.#contested.size > 0) this.#uncontest(m)
    if (u.status === 'suspect') this.#suspect(key, u)
    this.#enqueue(key, u)
    if (previous !== u.status || metaChanged) this.#changed(m, previous)
  }

  #applyAboutSelfAddress(u: Update): void {
    if (u.node.uid !== this.self.uid) {
      // Another incarnation of this address: an earlier run of this process. It is dead.
      if (u.status === 'alive' || u.status === 'suspect') {
        const key = nodeKey(u.node)
        const m = this.#members.get(key)
        if (!m || isLive(m.status)) this.#enqueue(key, { status: 'dead', node: u.node, incarnation: u.incarnation, by: this.self.uid })
      }
      return
    }
    if (u.status === 'alive') return
    if (this.#leaving) {
      if (u.status !== 'left' || u.incarnation < this.#incarnation) this.#enqueue(nodeKey(this.self), this.#selfUpdate())
      return
    }
    if (u.incarnation < this.#incarnation) {
      // A stale accusation: its holder missed the refutation. Re-announce the current incarnation,
      // so the reply to its (buddy) ping carries it.
      if (!this.#queue.peek(nodeKey(this.self))) this.#enqueue(nodeKey(this.self), this.#selfUpdate())
      return
    }
    // Refute: only this node raises its own incarnation.
    this.#incarnation = u.incarnation + 1
    this.stats.refutations++
    this.health.apply(1)
    this.#enqueue(nodeKey(this.self), this.#selfUpdate())
  }

  #applyUnknown(key: string, u: Update): void {
    // Suspicions, deaths and leaves of members never known are dropped (as memberlist does): a
    // record of them would only be passed around and re-taught by every push-pull, forever.
    if (u.status !== 'alive') return
    const m: MemberRecord = { node: u.node, status: u.status, incarnation: u.incarnation, meta: u.meta ?? EMPTY, since: this.#now(), heard: -1 }
    const addr = addressKey(u.node)
    const oldKey = this.#byAddress.get(addr)
    const old = oldKey === undefined ? undefined : this.#members.get(oldKey)
    this.#insert(m)
    // Probe newcomers in this pass, at a random place in what is left of it (a swap, not a splice:
    // merging thousands of members must stay linear).
    const order = this.#order
    const at = this.#orderIndex + Math.floor(this.#random() * (order.length - this.#orderIndex + 1))
    order.push(key)
    ;[order[at], order[order.length - 1]] = [order[order.length - 1]!, order[at]!]
    this.#enqueue(key, u)
    this.#changed(m, undefined)
    if (old && isLive(old.status)) {
      // A new uid at an address where another is live: a restart, or a stale or replayed message
      // about an old incarnation, even when it comes from that uid itself (an authenticated
      // datagram can be replayed). Neither is killed on its word: both are kept, the new one is
      // pinged at once, and whichever answers a ping of ours first proves it runs there (#proven).
      this.#contested.add(addr)
      this.#verify(key, m)
    }
  }

  #insert(m: MemberRecord): void {
    const key = nodeKey(m.node)
    const replaced = this.#members.get(key)
    if (replaced?.status === 'dead') this.#deadCount--
    if (m.status === 'dead') this.#deadCount++
    this.#members.set(key, m)
    this.#version++
    const heard = this.#lastHeard.get(key)
    if (heard !== undefined) {
      m.heard = heard
      this.#lastHeard.delete(key)
    }
    const addr = addressKey(m.node)
    const current = this.#byAddress.get(addr)
    if (current === undefined || isLive(m.status) || !isLive(this.#members.get(current)?.status ?? 'dead')) this.#byAddress.set(addr, key)
    if (isLive(m.status)) this.#addLive(key)
  }

  #suspect(key: string, u: Update): void {
    const by = u.by ?? ANY_UID
    const s = new Suspicion(u.incarnation, this.#now(), by)
    this.#suspicions.set(key, s)
    if (by === this.self.uid) this.stats.suspicionsRaised++
    else if (this.#random() * Math.max(1, this.#live.length - 1) < this.settings.confirmationProbes) {
      // Ask this member to check the suspect itself next period: independent confirmations (or a
      // refutation) arrive within about one period at any cluster size.
      this.#priority.push(key)
    }
    this.#armSuspicion(key, s)
  }

  #confirm(key: string, u: Update): void {
    const s = this.#suspicions.get(key)
    if (!s || !s.confirm(u.by!)) return
    this.#enqueue(key, u)
    this.#armSuspicion(key, s)
  }

  #clearSuspicion(key: string): void {
    if (this.#suspicions.delete(key)) this.#cancel(`suspect:${key}`)
  }

  #merge(p: PushPull): void {
    if (p.members.length > this.settings.maxMembers) return
    for (const u of p.members) this.#apply(u, true)
  }

  // ── dissemination ──────────────────────────────────────────────────────────

  #enqueue(key: string, u: Update): void {
    this.#queue.enqueue(key, u)
    if (!this.#gossipArmed && this.#started) {
      this.#gossipArmed = true
      this.#timer('gossip', this.settings.gossipInterval)
    }
  }

  #onGossipTick(): void {
    this.#gossipArmed = false
    if (this.#queue.length === 0) return
    const targets = this.#pickLive(this.settings.gossipFanout, undefined)
    // memberlist's gossip-to-the-dead: a member declared dead recently may be alive and refute.
    const dead = this.#recentlyDead()
    if (dead !== undefined) targets.push(dead)
    this.#gossipTo(targets)
    if (this.#queue.length > 0) {
      this.#gossipArmed = true
      this.#timer('gossip', this.settings.gossipInterval)
    }
  }

  #gossipTo(keys: readonly string[]): void {
    for (const key of keys) {
      const m = this.#members.get(key)
      if (m) this.#send(m.node, { type: 'gossip', from: this.self, updates: [] })
    }
  }

  /** Sends `message` with `first` and then queued updates, up to the datagram budget. */
  #send(to: SwimAddress, message: Message, first: Update[] = []): void {
    let budget = this.settings.maxDatagram - baseSize(message)
    for (const u of first) budget -= updateSize(u)
    const limit = retransmitLimit(this.settings.retransmitMult, this.#live.length + 1)
    const more = this.#queue.take(budget, limit, MAX_UPDATES - first.length, first.length > 0 ? nodeKey(first[0]!.node) : undefined)
    const updates = first.length === 0 ? more : first.concat(more)
    this.#out.push({ type: 'send', to, message: { ...message, updates } as Message })
  }

  // ── anti-entropy, healing, reaping ─────────────────────────────────────────

  #state(type: PushPull['type'], join: boolean): PushPull {
    const members: Update[] = [this.#selfUpdate()]
    for (const m of this.#members.values()) members.push(this.#updateOf(m))
    return { type, from: this.self, join, members }
  }

  #pushPull(to: SwimAddress, join: boolean): void {
    this.#out.push({ type: 'pushPull', to, message: this.#state('pushPull', join) })
  }

  #joinSeeds(seeds: readonly SwimAddress[]): void {
    for (const s of seeds) this.#pushPull(s, true)
  }

  #onPushPullTick(): void {
    const [key] = this.#pickLive(1, undefined)
    if (key !== undefined && !this.#leaving) this.#pushPull(this.#members.get(key)!.node, false)
    this.#timer('pushPull', pushPullPeriod(this.settings.pushPullInterval, this.#live.length + 1))
  }

  #onReprobeTick(): void {
    this.#timer('reprobe', this.settings.reprobeInterval)
    // Most ticks find no one dead: skip the walk over every member (O(members) per tick each).
    if (this.#leaving || this.#deadCount === 0) return
    const dead: MemberRecord[] = []
    for (const m of this.#members.values()) if (m.status === 'dead' && this.#byAddress.get(addressKey(m.node)) === nodeKey(m.node)) dead.push(m)
    if (dead.length === 0) return
    const m = dead[Math.floor(this.#random() * dead.length)]!
    for (const [seq, p] of this.#pending) if (p.kind === 'reprobe') this.#pending.delete(seq)
    const seq = this.#nextSeq()
    const key = nodeKey(m.node)
    this.#pending.set(seq, { kind: 'reprobe', key, target: m.node.uid })
    this.#send(m.node, { type: 'ping', seq, from: this.self, targetUid: m.node.uid, updates: [] }, [this.#updateOf(m)])
  }

  #onRejoinTick(): void {
    this.#timer('rejoin', this.#rejoinDelay())
    if (this.#leaving) return
    const missing = this.#seeds.filter((s) => {
      const key = this.#byAddress.get(addressKey(s))
      return key === undefined || !this.#liveIndex.has(key)
    })
    if (missing.length > 0) this.#pushPull(missing[Math.floor(this.#random() * missing.length)]!, true)
  }

  #rejoinDelay(): number {
    return this.#live.length === 0 ? ALONE_REJOIN : this.settings.rejoinInterval
  }

  #onReap(): void {
    this.#timer('reap', REAP_INTERVAL)
    const horizon = this.#now() - this.settings.tombstoneTtl
    for (const [key, m] of this.#members) {
      if (isLive(m.status) || m.since > horizon) continue
      this.#members.delete(key)
      this.#version++
      if (m.status === 'dead') this.#deadCount--
      if (m.heard >= 0) this.#lastHeard.set(key, m.heard)
      const addr = addressKey(m.node)
      if (this.#byAddress.get(addr) === key) this.#byAddress.delete(addr)
    }
  }

  #recentlyDead(): string | undefined {
    const horizon = this.#now() - this.settings.gossipToTheDead
    const recent = this.#recentDead
    // Oldest first: drop those past the horizon, or no longer dead.
    while (recent.length > 0 && !this.#isRecentlyDead(recent[0]!, horizon)) recent.shift()
    const candidates = recent.filter((key) => this.#isRecentlyDead(key, horizon))
    return candidates.length === 0 ? undefined : candidates[Math.floor(this.#random() * candidates.length)]
  }

  #isRecentlyDead(key: string, horizon: number): boolean {
    const m = this.#members.get(key)
    return m !== undefined && m.status === 'dead' && m.since > horizon
  }

  // ── helpers ────────────────────────────────────────────────────────────────

  #stalled(): void {
    this.stats.stalls++
    this.health.apply(1)
  }

  #selfUpdate(): Update {
    return this.#leaving
      ? { status: 'left', node: this.self, incarnation: this.#incarnation, by: this.self.uid }
      : { status: 'alive', node: this.self, incarnation: this.#incarnation, meta: this.#meta }
  }

  /** The update that states what we believe of `m`; a suspicion keeps its own accuser, never ours. */
  #updateOf(m: MemberRecord): Update {
    if (m.status === 'alive') return { status: 'alive', node: m.node, incarnation: m.incarnation, meta: m.meta }
    const by = m.status === 'suspect' ? (this.#suspicions.get(nodeKey(m.node))?.accuser ?? ANY_UID) : this.self.uid
    return { status: m.status, node: m.node, incarnation: m.incarnation, by }
  }

  #changed(m: MemberRecord, previous: SwimStatus | undefined): void {
    this.#out.push({ type: 'changed', member: snapshot(m), previous })
  }

  #addLive(key: string): void {
    if (this.#liveIndex.has(key)) return
    this.#liveIndex.set(key, this.#live.length)
    this.#live.push(key)
  }

  /** Whether it was live. */
  #removeLive(key: string): boolean {
    const i = this.#liveIndex.get(key)
    if (i === undefined) return false
    const last = this.#live.pop()!
    if (last !== key) {
      this.#live[i] = last
      this.#liveIndex.set(last, i)
    }
    this.#liveIndex.delete(key)
    return true
  }

  /** `m` is no longer live: if its address was contested, the uids still live there keep it. */
  #uncontest(m: MemberRecord): void {
    const addr = addressKey(m.node)
    if (!this.#contested.has(addr)) return
    const rivals = this.#live.filter((k) => {
      const o = this.#members.get(k)!.node
      return o.port === m.node.port && o.host === m.node.host
    })
    if (rivals.length < 2) this.#contested.delete(addr)
    if (rivals.length > 0 && this.#byAddress.get(addr) === nodeKey(m.node)) this.#byAddress.set(addr, rivals[0]!)
  }

  /** Up to `count` distinct random live members, never `exclude`. */
  #pickLive(count: number, exclude: string | undefined): string[] {
    const n = this.#live.length - (exclude !== undefined && this.#liveIndex.has(exclude) ? 1 : 0)
    if (n <= count) return this.#live.filter((k) => k !== exclude)
    const out: string[] = []
    while (out.length < count) {
      const key = this.#live[Math.floor(this.#random() * this.#live.length)]!
      if (key !== exclude && !out.includes(key)) out.push(key)
    }
    return out
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0
    return this.#seq
  }

  #timer(id: string, delay: number): void {
    const d = Math.max(0, Math.round(delay))
    this.#deadlines.set(id, this.#now() + d)
    this.#out.push({ type: 'startTimer', id, delay: d })
  }

  #cancel(id: string): void {
    if (this.#deadlines.delete(id)) this.#out.push({ type: 'cancelTimer', id })
  }

  #run(fn: () => void): Directive[] {
    const saved = this.#out
    this.#out = []
    try {
      fn()
      return this.#out
    } finally {
      this.#out = saved
    }
  }
}

function checkMeta(meta: Uint8Array): Uint8Array {
  if (meta.length > MAX_META_BYTES)
    throw new ConfigError(`SWIM metadata of ${meta.length} bytes exceeds ${MAX_META_BYTES}: peers would refuse every message carrying it.`)
  return meta
}

function snapshot(m: MemberRecord): SwimMemberState {
  return { node: m.node, status: m.status, incarnation: m.incarnation, meta: m.meta }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Fisher–Yates with the injected randomness. */
export function shuffle<T>(a: T[], random: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = a[i]!
    a[i] = a[j]!
    a[j] = t
  }
  return a
}
