/**
 * The receptionist: find actors by key anywhere in the cluster (`system.receptionist`).
 *
 * Each node owns its own registrations and is their only writer; the pure {@link Registrations} keeps
 * one replica per owner. This shell moves its deltas over the control lane
 * (`ControlKind.Receptionist`):
 * - a local check-in or check-out is pushed at once (next tick, coalesced) to every member;
 * - a new member is sent this node's registrations as soon as it appears;
 * - anti-entropy: every `syncInterval` this node sends its digest (`owner → seq`) to one random
 *   member, which answers with what is missing, and with its own digest if it is missing
 *   something itself; a receiver that sees a gap in an owner's operations asks the sender too.
 *   Every message holds at most `maxBatch` registrations, however many exist.
 * - a member that is down or removed is dropped from every replica, and its late deltas ignored.
 * Entries of local actors that stop are checked out automatically.
 * @module
 */
import type { Logger } from 'pino'
import type { Registry as PromRegistry } from 'prom-client'
import { Counter, Gauge } from 'prom-client'
import { ActorId } from '../actor/ActorId.ts'
import type { ActorRef } from '../actor/ActorRef.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { DistributedActor } from '../actor/DistributedActor.ts'
import type { ClusterEvent } from '../cluster/Cluster.ts'
import { type ClusterMember, isPresent } from '../cluster/Member.ts'
import { type ControlChannel, controlTarget, type MembershipView } from '../control/ControlChannel.ts'
import { ControlKind } from '../control/ControlKind.ts'
import { ConfigError } from '../errors.ts'
import { decodeReceptionist, encodeDelta, encodeDigest, ReceptionistDecodeError } from './ReceptionistCodec.ts'
import type { ReceptionKey } from './ReceptionKey.ts'
import { type Change, type Delta, Registrations } from './Registrations.ts'

/** Receptionist settings (`ClusterSystem.start({ receptionist })`); all optional. */
export interface ReceptionistSettings {
  /** Anti-entropy period, ms: a digest to one random member. Default 1000. */
  readonly syncInterval?: number
  /** Most registrations in one replication message. Default 256 (about 10 KB with short keys and paths). */
  readonly maxBatch?: number
  /** Own operations kept for peers slightly behind; further behind gets a snapshot. Default 1000. */
  readonly maxOps?: number
}

/** What a listing yields: the set under the key now, and what changed since the previous yield. */
export interface Listing<T> {
  /** Every actor listed under the key now. */
  readonly refs: readonly ActorRef<T>[]
  /** Listed since the previous yield (the first yield: everything). */
  readonly added: readonly ActorRef<T>[]
  /** No longer listed since the previous yield (stopped, checked out, or its node down). */
  readonly removed: readonly ActorRef<T>[]
}

/** The part of ClusterSystem the receptionist uses. */
export interface ReceptionistHost extends ControlChannel {
  readonly node: ClusterNode
  readonly log: Logger
  isTombstoned(uid: string): boolean
  /** A ref for `id`, typed by `Class` when given. */
  refOf(id: ActorId, Class: (abstract new (...args: never[]) => DistributedActor) | undefined): unknown
  /** True if `id` is a live actor of this node. */
  isLocalAlive(id: ActorId): boolean
  /** The system's monotonic clock, ms (pull pacing, dead owners' memory, absence grace). */
  now(): number
}

const DEAD_TTL = 24 * 3600_000
const PULL_AT_MOST_EVERY = 250
/** How long an owner may be unknown to the membership before its registrations are dropped. */
const ABSENT_GRACE = 30_000

type Actorish = ActorRef<unknown> | DistributedActor | { readonly id: ActorId }

/** `system.receptionist`: check actors in and out under keys, look them up, follow listings. */
export class Receptionist {
  readonly #host: ReceptionistHost
  readonly #cluster: MembershipView | undefined
  readonly #registrations: Registrations
  readonly #log: Logger
  readonly #listeners = new Map<string, Set<(c: Change) => void>>()
  /** Keys of each own actor, for the automatic check-out when it stops. */
  readonly #keysOf = new Map<string, Set<string>>()
  readonly #dead = new Map<string, number>()
  readonly #lastPull = new Map<string, number>()
  /** Owners with registrations but no membership record, since when. */
  readonly #absent = new Map<string, number>()
  readonly #closers = new Set<() => void>()
  readonly #timers: NodeJS.Timeout[] = []
  #unsubscribe: (() => void) | undefined
  #pushedSeq = 0
  #pushScheduled = false
  #stopped = false
  /** Traffic, for metrics and the benchmark. */
  readonly stats = { messagesOut: 0, messagesIn: 0, bytesOut: 0, bytesIn: 0, largestMessage: 0, decodeErrors: 0 }

  constructor(host: ReceptionistHost, cluster: MembershipView | undefined, settings: ReceptionistSettings = {}) {
    this.#host = host
    this.#cluster = cluster
    this.#log = host.log.child({ receptionist: true })
    const positive = (v: number | undefined, d: number, what: string): number => {
      const n = v ?? d
      if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`receptionist.${what} must be a positive whole number (got ${v}).`)
      return n
    }
    this.#registrations = new Registrations(host.node.uid, {
      maxBatch: positive(settings.maxBatch, 256, 'maxBatch'),
      maxOps: positive(settings.maxOps, 1000, 'maxOps'),
    })
    host.onControl(ControlKind.Receptionist, (from, body) => this.#onMessage(from, body))
    if (cluster) {
      this.#unsubscribe = cluster.subscribe((e) => this.#onClusterEvent(e))
      const t = setInterval(() => this.#sync(), positive(settings.syncInterval, 1000, 'syncInterval'))
      t.unref()
      this.#timers.push(t)
    }
  }

  /**
   * Lists a live actor of this node under `key`, on every node of the cluster. Idempotent.
   *
   * Details: visible here at once, elsewhere typically within milliseconds (pushed to every
   * member), at worst after an anti-entropy round. The entry goes away when the actor stops, when
   * it is checked out, or when this node is down or removed.
   *
   * Gotcha: only the node hosting an actor can check it in (it owns the entry, which dies with
   * it); checking in another node's actor throws ConfigError. Checking in an actor that has already
   * stopped does nothing.
   */
  checkIn<T extends DistributedActor>(actor: ActorRef<T> | T, key: ReceptionKey<T>): void {
    const id = this.#ownActor(actor, 'check in')
    if (!this.#host.isLocalAlive(id)) {
      this.#log.debug({ actor: id.toString(), key: key.id }, 'check-in of a stopped actor ignored')
      return
    }
    const change = this.#registrations.add(key.id, id.toString())
    if (!change) return
    let keys = this.#keysOf.get(change.added[0]!)
    if (!keys) this.#keysOf.set(change.added[0]!, (keys = new Set()))
    keys.add(key.id)
    this.#changed([change])
  }

  /** Removes this node's actor from `key` everywhere. Idempotent; other registrations stay. */
  checkOut<T extends DistributedActor>(actor: ActorRef<T> | T, key: ReceptionKey<T>): void {
    const id = this.#ownActor(actor, 'check out')
    const actorKey = id.toString()
    const change = this.#registrations.remove(key.id, actorKey)
    if (!change) return
    const keys = this.#keysOf.get(actorKey)
    keys?.delete(key.id)
    if (keys?.size === 0) this.#keysOf.delete(actorKey)
    this.#changed([change])
  }

  /**
   * Every actor listed under `key` as known on this node now, in no particular order.
   *
   * Gotcha: a node that has just joined may not have caught up yet; to wait for actors to
   * appear, iterate `listing(key)`.
   */
  lookup<T extends DistributedActor>(key: ReceptionKey<T>): ActorRef<T>[] {
    return [...this.#registrations.lookup(key.id)].map((a) => this.#ref(a, key))
  }

  /**
   * The actors under `key`: first the current set (possibly empty), then, on every change, the new
   * set with what was added and removed. Changes that arrive while the consumer is busy are merged
   * into one yield (an actor added and removed meanwhile is not reported), so a slow consumer never
   * makes memory grow. Ends when the loop breaks, `signal` aborts, or the system shuts down.
   */
  listing<T extends DistributedActor>(key: ReceptionKey<T>, options: { signal?: AbortSignal } = {}): AsyncIterableIterator<Listing<T>> {
    return this.#iterate(key, options.signal)
  }

  /**
   * Calls `listener` synchronously with every change under `key` (not the current set); returns
   * the unsubscribe function. For plugins that must react in the same tick; applications use
   * `listing`.
   */
  subscribe(
    key: ReceptionKey<never> | ReceptionKey,
    listener: (change: { readonly added: readonly string[]; readonly removed: readonly string[] }) => void,
  ): () => void {
    let set = this.#listeners.get(key.id)
    if (!set) this.#listeners.set(key.id, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.#listeners.get(key.id) === set) this.#listeners.delete(key.id)
    }
  }

  /** Every key with its actors (id strings) as known on this node, sorted: for tools and dashboards. */
  entries(): { key: string; actors: string[] }[] {
    return [...this.#registrations.keys()].sort().map((key) => ({ key, actors: [...this.#registrations.lookup(key)].sort() }))
  }

  /** Registrations known on this node, over all keys and owners. */
  get size(): number {
    return this.#registrations.size
  }

  /** @internal A local actor stopped: check it out of every key. */
  actorStopped(id: ActorId): void {
    const actorKey = id.toString()
    const keys = this.#keysOf.get(actorKey)
    if (!keys) return
    this.#keysOf.delete(actorKey)
    const changes: Change[] = []
    for (const k of keys) {
      const c = this.#registrations.remove(k, actorKey)
      if (c) changes.push(c)
    }
    this.#changed(changes)
  }

  /** @internal Stops timers and ends every listing. */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#unsubscribe?.()
    for (const t of this.#timers) clearInterval(t)
    for (const c of [...this.#closers]) c()
  }

  /** @internal Registers the `shoal_receptionist_*` metrics. */
  registerMetrics(registry: PromRegistry): void {
    const registers = [registry]
    const stats = this.stats
    const registry_ = this.#registrations
    new Gauge({
      name: 'shoal_receptionist_registrations',
      help: 'Registrations known on this node (all owners)',
      registers,
      collect() {
        this.set(registry_.size)
      },
    })
    new Gauge({
      name: 'shoal_receptionist_own_registrations',
      help: 'Registrations this node owns',
      registers,
      collect() {
        this.set(registry_.ownSize)
      },
    })
    new Gauge({
      name: 'shoal_receptionist_largest_message_bytes',
      help: 'Largest replication message sent',
      registers,
      collect() {
        this.set(stats.largestMessage)
      },
    })
    const last = { messagesOut: 0, messagesIn: 0, decodeErrors: 0 }
    const total = (name: string, help: string, stat: keyof typeof last): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.inc(stats[stat] - last[stat])
          last[stat] = stats[stat]
        },
      })
    }
    total('shoal_receptionist_messages_sent_total', 'Replication messages sent', 'messagesOut')
    total('shoal_receptionist_messages_received_total', 'Replication messages received', 'messagesIn')
    total('shoal_receptionist_decode_errors_total', 'Replication messages refused as malformed', 'decodeErrors')
  }

  // ── local changes ───────────────────────────────────────────────────────────

  #ownActor(actor: Actorish, what: string): ActorId {
    const id = (actor as { id?: unknown }).id
    if (!(id instanceof ActorId)) throw new ConfigError(`Cannot ${what} ${String(actor)}: pass an actor or an actor ref.`)
    if (id.node.uid !== this.#host.node.uid)
      throw new ConfigError(
        `Cannot ${what} ${id}: it lives on another node, and only the node hosting an actor may ${what} it (call this there, e.g. in the actor's onStart).`,
      )
    return id
  }

  #changed(changes: readonly Change[]): void {
    this.#notify(changes)
    if (this.#cluster && !this.#pushScheduled && this.#registrations.ownSeq > this.#pushedSeq) {
      this.#pushScheduled = true
      setImmediate(() => this.#push())
    }
  }

  /** Sends this node's new operations to every member (coalesced per tick). */
  #push(): void {
    this.#pushScheduled = false
    if (this.#stopped) return
    const deltas = this.#registrations.ownSince(this.#pushedSeq)
    this.#pushedSeq = this.#registrations.ownSeq
    if (deltas.length === 0) return
    const bodies = deltas.map((d) => encodeDelta(this.#host.node, d))
    for (const m of this.#peers()) for (const b of bodies) this.#send(m.node, b)
  }

  // ── replication ─────────────────────────────────────────────────────────────

  #peers(): ClusterMember[] {
    if (!this.#cluster) return []
    const self = this.#host.node.uid
    return this.#cluster.membership.members.filter((m) => m.node.uid !== self && isPresent(m.status))
  }

  #sync(): void {
    if (this.#stopped) return
    const peers = this.#peers().filter((m) => m.reachability === 'reachable')
    const peer = peers[Math.floor(Math.random() * peers.length)]
    if (peer) this.#send(peer.node, encodeDigest(this.#registrations.digest(), false))
    const now = this.#host.now()
    this.#reconcile(now)
    for (const [uid, at] of this.#dead) if (now - at > DEAD_TTL) this.#dead.delete(uid)
    for (const [uid, at] of this.#lastPull) if (now - at > PULL_AT_MOST_EVERY) this.#lastPull.delete(uid)
  }

  /**
   * A backstop for missed events: an owner whose member is down or removed, or that has been
   * absent from the membership for ABSENT_GRACE (forgotten while this node was cut off), is
   * dropped like a downed one. The grace lets a brand-new member's first push arrive before its
   * membership gossip does.
   */
  #reconcile(now: number): void {
    const members = new Map(this.#cluster!.membership.members.map((m) => [m.node.uid, m]))
    for (const owner of this.#registrations.digest().keys()) {
      if (owner === this.#host.node.uid) continue
      const m = members.get(owner)
      if (m) this.#absent.delete(owner)
      else if (!this.#absent.has(owner)) this.#absent.set(owner, now)
      if ((m && !isPresent(m.status)) || now - (this.#absent.get(owner) ?? now) >= ABSENT_GRACE) {
        this.#absent.delete(owner)
        this.#dropDead(owner)
      }
    }
  }

  #dropDead(uid: string): void {
    if (this.#dead.has(uid)) return
    this.#dead.set(uid, this.#host.now())
    this.#notify(this.#registrations.dropOwner(uid))
  }

  #send(to: ClusterNode, body: Buffer): void {
    this.stats.messagesOut++
    this.stats.bytesOut += body.length
    if (body.length > this.stats.largestMessage) this.stats.largestMessage = body.length
    try {
      this.#host.sendControl(controlTarget(to), ControlKind.Receptionist, body)
    } catch (e) {
      // Unreachable for now (reconnect backoff): anti-entropy catches it up later.
      this.#log.debug({ err: e, peer: to.uid }, 'replication message not sent')
    }
  }

  #onMessage(from: ClusterNode, body: Buffer): void {
    if (this.#stopped) return
    this.stats.messagesIn++
    this.stats.bytesIn += body.length
    let msg
    try {
      msg = decodeReceptionist(body)
    } catch (e) {
      if (!(e instanceof ReceptionistDecodeError)) throw e
      this.stats.decodeErrors++
      this.#log.warn({ peer: from.uid, reason: e.message }, 'refused a malformed receptionist message')
      return
    }
    if (msg.kind === 'digest') return this.#onDigest(from, msg.digest, msg.reply)
    this.#onDelta(from, msg.owner, msg.delta)
  }

  #onDigest(from: ClusterNode, digest: ReadonlyMap<string, number>, reply: boolean): void {
    for (const d of this.#registrations.deltasFor(digest)) {
      const owner = d.owner === this.#host.node.uid ? this.#host.node : this.#ownerNode(d)
      if (owner) this.#send(from, encodeDelta(owner, d))
    }
    if (reply) return
    const mine = this.#registrations.digest()
    const behind = [...digest].some(([owner, seq]) => seq > (mine.get(owner) ?? 0) && owner !== this.#host.node.uid && !this.#isDead(owner))
    if (behind) this.#send(from, encodeDigest(mine, true))
  }

  #onDelta(from: ClusterNode, node: ClusterNode, delta: Delta): void {
    const owner = delta.owner
    if (owner === this.#host.node.uid || this.#isDead(owner)) return
    // State relayed by a third node is taken only about current members: a replica that outlived
    // its owner somewhere (a node partitioned away through the owner's whole life) must not spread.
    if (from.uid !== owner && !this.#isMember(owner, node)) return
    this.#notify(this.#registrations.apply(delta))
    if (delta.kind === 'ops' && delta.ops.length > 0) {
      const last = delta.ops[delta.ops.length - 1]!.seq
      if ((this.#registrations.digest().get(owner) ?? 0) < last) this.#pull(from)
    }
  }

  /** A gap: ask `from` for what is missing (at most every 250 ms per peer). */
  #pull(from: ClusterNode): void {
    const now = this.#host.now()
    if (now - (this.#lastPull.get(from.uid) ?? -Infinity) < PULL_AT_MOST_EVERY) return
    this.#lastPull.set(from.uid, now)
    this.#send(from, encodeDigest(this.#registrations.digest(), false))
  }

  /** The node of another owner, from its registrations (every one carries it). */
  #ownerNode(d: Delta): ClusterNode | undefined {
    const any = d.kind === 'ops' ? d.ops[0]?.actor : d.entries[0]?.actor
    if (any) return ActorId.parse(any).node
    const m = this.#cluster?.membership.members.find((x) => x.node.uid === d.owner)
    return m?.node
  }

  /** A present member, at the address the delta claims (a relay must not move an owner's actors). */
  #isMember(uid: string, node: ClusterNode): boolean {
    const m = this.#cluster?.membership.members.find((x) => x.node.uid === uid)
    return m !== undefined && isPresent(m.status) && m.node.endpoint.host === node.endpoint.host && m.node.endpoint.port === node.endpoint.port
  }

  #isDead(uid: string): boolean {
    return this.#dead.has(uid) || this.#host.isTombstoned(uid)
  }

  #onClusterEvent(e: ClusterEvent): void {
    if (e.type !== 'member') return
    const m = e.member
    if (m.node.uid === this.#host.node.uid) return
    if (m.status === 'down' || m.status === 'removed') return this.#dropDead(m.node.uid)
    if (e.previous === undefined && this.#registrations.ownSeq > 0) {
      // A new member: give it this node's registrations now rather than at its first sync.
      for (const d of this.#registrations.ownSince(0)) this.#send(m.node, encodeDelta(this.#host.node, d))
    }
  }

  // ── listings ────────────────────────────────────────────────────────────────

  #notify(changes: readonly Change[]): void {
    for (const c of changes) {
      const set = this.#listeners.get(c.key)
      if (!set) continue
      for (const l of [...set]) {
        try {
          l(c)
        } catch (err) {
          this.#log.error({ err, key: c.key }, 'a receptionist listener threw')
        }
      }
    }
  }

  #ref<T extends DistributedActor>(actor: string, key: ReceptionKey<T>): ActorRef<T> {
    return this.#host.refOf(ActorId.parse(actor), key.actorClass) as ActorRef<T>
  }

  async *#iterate<T extends DistributedActor>(key: ReceptionKey<T>, signal: AbortSignal | undefined): AsyncIterableIterator<Listing<T>> {
    const current = new Set(this.#registrations.lookup(key.id))
    let added = new Set(current)
    let removed = new Set<string>()
    let first = true
    let wake = (): void => undefined
    const off = this.subscribe(key, (c) => {
      for (const a of c.added) {
        current.add(a)
        if (!removed.delete(a)) added.add(a)
      }
      for (const r of c.removed) {
        current.delete(r)
        if (!added.delete(r)) removed.add(r)
      }
      wake()
    })
    let ended = this.#stopped || signal?.aborted === true
    const end = (): void => {
      ended = true
      wake()
    }
    this.#closers.add(end)
    signal?.addEventListener('abort', end)
    try {
      for (;;) {
        if (first || added.size + removed.size > 0) {
          first = false
          const listing: Listing<T> = {
            refs: [...current].map((a) => this.#ref(a, key)),
            added: [...added].map((a) => this.#ref(a, key)),
            removed: [...removed].map((a) => this.#ref(a, key)),
          }
          added = new Set()
          removed = new Set()
          yield listing
          continue
        }
        if (ended) return
        await new Promise<void>((r) => (wake = r))
      }
    } finally {
      off()
      this.#closers.delete(end)
      signal?.removeEventListener('abort', end)
    }
  }
}
