/**
 * Lifecycle watch: tell a watcher, exactly once, that an actor it watches has terminated.
 *
 * A watch ends in a termination when the actor stops (on this node, or on another node that
 * sends a "terminated" system message), when the actor's node is down or removed (cluster
 * membership), shut down, or replaced by a new incarnation (transport), or at once when the actor
 * does not exist. Watches of remote actors are registered on the actor's node by a "watch" system
 * message; all system messages travel over a {@link SystemChannel} per peer (numbered,
 * acknowledged, redelivered), so neither a watch nor its termination is lost to a dropped
 * connection. Control-message kind `ControlKind.Watch`.
 *
 * Watchers are actors (`this.watch(ref)` → `onTerminated(id, reason)`, run as a turn) or promises
 * (`system.watch(ref)`). An actor's watch fires at most once, and never after `unwatch`.
 * @module
 */
import type { Logger } from 'pino'
import type { Registry as PromRegistry } from 'prom-client'
import { Gauge } from 'prom-client'
import type { ActorCell, Invocation } from '../actor/ActorCell.ts'
import { ActorId } from '../actor/ActorId.ts'
import { type ClusterNode, formatNode } from '../actor/ClusterNode.ts'
import type { Termination, TerminationReason } from '../actor/Termination.ts'
import { isPresent } from '../cluster/Member.ts'
import { type ControlChannel, controlTarget, type MembershipView } from '../control/ControlChannel.ts'
import { ControlKind } from '../control/ControlKind.ts'
import { AbortedError, ShoalError, SystemShutDownError, TimeoutError } from '../errors.ts'
import { type Batch, SystemChannel } from './SystemChannel.ts'
import { decodeWatchFrame, encodeAck, encodeBatch, type SystemMessage, WatchDecodeError } from './WatchCodec.ts'

/** How a watched actor ended. */
export type { Termination, TerminationReason } from '../actor/Termination.ts'

/** Settings of lifecycle watch (`ClusterSystem.start({ watch })`). */
export interface WatchSettings {
  /** Resend unacknowledged system messages after this long, ms. Default 1000. */
  readonly redeliverAfter?: number
}

/** Something told of terminations: an actor's watcher or a `system.watch` promise. */
export interface Watcher {
  terminated(t: Termination): void
  /** The system shuts down while the watch is pending. */
  closed?(): void
}

/** The part of ClusterSystem lifecycle watch uses. */
export interface WatchHost extends ControlChannel {
  readonly node: ClusterNode
  readonly log: Logger
  isTombstoned(uid: string): boolean
  /** True if `id` is an actor of this node that has not finished stopping. */
  hasActor(id: ActorId): boolean
  /** The system's one monotonic clock, ms: redelivery and forgetting gone nodes are timed on it. */
  now(): number
}

interface Watched {
  readonly id: ActorId
  readonly watchers: Set<Watcher>
}

interface Peer {
  readonly node: ClusterNode
  readonly channel: SystemChannel<SystemMessage>
}

const DEAD_TTL = 24 * 3600_000
/** How long a watched node may be unknown to the membership before its watches fire. */
const ABSENT_GRACE = 30_000
/** Stopped actors remembered to answer a late watch with 'stopped' rather than 'not-found'. */
const RECENTLY_STOPPED = 10_000

/** Lifecycle watch of one system; see the module comment. */
export class LifecycleWatch {
  readonly #host: WatchHost
  readonly #cluster: MembershipView | undefined
  readonly #log: Logger
  readonly #redeliverAfter: number
  /** Actors watched from this node, by id string. */
  readonly #watched = new Map<string, Watched>()
  /** Keys of #watched per remote node uid, to fire them all when the node goes. */
  readonly #byNode = new Map<string, Set<string>>()
  /** Remote nodes watching each local actor (by id string). */
  readonly #watchersOf = new Map<string, Map<string, ClusterNode>>()
  readonly #peers = new Map<string, Peer>()
  readonly #gone = new Map<string, number>()
  readonly #acksDue = new Set<string>()
  /** Tracked nodes without a membership record, since when. */
  readonly #absent = new Map<string, number>()
  readonly #cellWatchers = new WeakMap<ActorCell, CellWatcher>()
  /** Ids of local actors that stopped lately, oldest first (bounded). */
  readonly #recentlyStopped = new Set<string>()
  readonly #timer: NodeJS.Timeout
  #unsubscribe: (() => void) | undefined
  #stopped = false
  /** Terminations delivered to watchers, by reason. */
  readonly stats = { stopped: 0, 'not-found': 0, 'node-down': 0, redelivered: 0, decodeErrors: 0 }

  constructor(host: WatchHost, cluster: MembershipView | undefined, settings: WatchSettings = {}) {
    this.#host = host
    this.#cluster = cluster
    this.#log = host.log.child({ watch: true })
    this.#redeliverAfter = settings.redeliverAfter ?? 1000
    host.onControl(ControlKind.Watch, (from, body) => this.#onMessage(from, body))
    this.#unsubscribe = cluster?.subscribe((e) => {
      if (e.type === 'member' && (e.member.status === 'down' || e.member.status === 'removed')) this.nodeGone(e.member.node)
    })
    this.#timer = setInterval(() => this.#redeliver(), Math.max(50, this.#redeliverAfter / 2))
    this.#timer.unref()
  }

  /** Watches `target` for `watcher`; fires at once if it is known not to exist or its node is gone. */
  watch(target: ActorId, watcher: Watcher): void {
    if (this.#stopped) return watcher.closed?.()
    const key = target.toString()
    const existing = this.#watched.get(key)
    if (existing) {
      existing.watchers.add(watcher)
      return
    }
    const local = target.node.uid === this.#host.node.uid
    if (local && !this.#host.hasActor(target)) return this.#tell(watcher, { id: target, reason: this.#absence(key) })
    if (!local && this.#isGone(target.node)) return this.#tell(watcher, { id: target, reason: 'node-down' })
    this.#watched.set(key, { id: target, watchers: new Set([watcher]) })
    if (local) return
    let keys = this.#byNode.get(target.node.uid)
    if (!keys) this.#byNode.set(target.node.uid, (keys = new Set()))
    keys.add(key)
    this.#sendSystem(target.node, { type: 'watch', path: target.path, incarnation: target.incarnation })
  }

  /** Stops watching `target` for `watcher`; the last watcher of a remote actor unregisters there. */
  unwatch(target: ActorId, watcher: Watcher): void {
    const key = target.toString()
    const w = this.#watched.get(key)
    if (!w?.watchers.delete(watcher) || w.watchers.size > 0) return
    this.#forget(key, w)
    if (target.node.uid !== this.#host.node.uid && !this.#isGone(target.node)) {
      this.#sendSystem(target.node, { type: 'unwatch', path: target.path, incarnation: target.incarnation })
    }
  }

  /**
   * `system.watch(id)`: resolves once when `id` terminates; when `signal` aborts, unwatches and
   * rejects with TimeoutError (`AbortSignal.timeout`) or AbortedError (any other reason; a Shoal
   * error as reason is passed on as is), the signal's reason as `cause`; with SystemShutDownError
   * when this system shuts down first.
   */
  until(id: ActorId, signal: AbortSignal | undefined): Promise<Termination> {
    return new Promise<Termination>((resolve, reject) => {
      if (signal?.aborted) return reject(watchAborted(id, signal.reason))
      const onAbort = (): void => {
        this.unwatch(id, watcher)
        reject(watchAborted(id, signal!.reason))
      }
      const watcher = {
        terminated: (t: Termination) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(t)
        },
        closed: () => {
          signal?.removeEventListener('abort', onAbort)
          reject(new SystemShutDownError(`The actor system shut down while watching ${id.toString()}.`))
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.watch(id, watcher)
    })
  }

  /** `actor.watch(target)`: the cell's watcher watches `target` (once). */
  watchFrom(cell: ActorCell, target: ActorId): void {
    const w = this.cellWatcher(cell)
    if (cell.alive && w.add(target)) this.watch(target, w)
  }

  /** `actor.unwatch(target)`. */
  unwatchFrom(cell: ActorCell, target: ActorId): void {
    const w = this.cellWatcher(cell)
    if (w.remove(target)) this.unwatch(target, w)
  }

  /** `actor.isWatching(target)`. */
  isWatchingFrom(cell: ActorCell, target: ActorId): boolean {
    return this.cellWatcher(cell).has(target)
  }

  /** The watcher standing for actor `cell` (created on first use). */
  cellWatcher(cell: ActorCell): CellWatcher {
    let w = this.#cellWatchers.get(cell)
    if (!w) this.#cellWatchers.set(cell, (w = new CellWatcher(cell, this.#log)))
    return w
  }

  /** A local actor stopped: its watchers here and on other nodes learn it; its own watches end. */
  actorStopped(cell: ActorCell): void {
    const id = cell.id
    const key = id.toString()
    this.#recentlyStopped.add(key)
    if (this.#recentlyStopped.size > RECENTLY_STOPPED) this.#recentlyStopped.delete(this.#recentlyStopped.values().next().value!)
    this.#fire(key, 'stopped')
    const remote = this.#watchersOf.get(key)
    this.#watchersOf.delete(key)
    for (const node of remote?.values() ?? []) this.#sendSystem(node, { type: 'terminated', path: id.path, incarnation: id.incarnation, reason: 'stopped' })
    const own = this.#cellWatchers.get(cell)
    if (own) for (const target of own.clear()) this.unwatch(target, own)
  }

  /** A node is gone for good (down, removed, shut down, replaced): every watch of its actors fires. */
  nodeGone(node: ClusterNode): void {
    if (node.uid === this.#host.node.uid || this.#gone.has(node.uid)) return
    this.#gone.set(node.uid, this.#host.now())
    for (const key of this.#byNode.get(node.uid) ?? []) this.#fire(key, 'node-down')
    this.#byNode.delete(node.uid)
    for (const [key, nodes] of this.#watchersOf) {
      nodes.delete(node.uid)
      if (nodes.size === 0) this.#watchersOf.delete(key)
    }
    this.#peers.delete(node.uid)
    this.#acksDue.delete(node.uid)
  }

  /** Actors watched from this node (local and remote). */
  get watchedCount(): number {
    return this.#watched.size
  }

  /** System messages sent and not yet acknowledged, over all peers. */
  get unacked(): number {
    let n = 0
    for (const p of this.#peers.values()) n += p.channel.unacked
    return n
  }

  /** @internal Shutdown: pending `system.watch` promises reject; nothing more is sent. */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    clearInterval(this.#timer)
    this.#unsubscribe?.()
    for (const w of this.#watched.values()) for (const watcher of w.watchers) watcher.closed?.()
    this.#watched.clear()
  }

  /** @internal Registers the `shoal_watch_*` metrics. */
  registerMetrics(registry: PromRegistry): void {
    const registers = [registry]
    const watched = (): number => this.watchedCount
    const unacked = (): number => this.unacked
    const stats = this.stats
    new Gauge({
      name: 'shoal_watch_watched_actors',
      help: 'Actors watched from this node',
      registers,
      collect() {
        this.set(watched())
      },
    })
    new Gauge({
      name: 'shoal_watch_unacked_system_messages',
      help: 'System messages awaiting acknowledgement',
      registers,
      collect() {
        this.set(unacked())
      },
    })
    new Gauge({
      name: 'shoal_watch_terminations',
      help: 'Terminations delivered to watchers since start, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        for (const r of ['stopped', 'not-found', 'node-down'] as const) this.set({ reason: r }, stats[r])
      },
    })
  }

  // ── firing ──────────────────────────────────────────────────────────────────

  /** Why a local actor is absent: it stopped lately (a watch raced its stop), or never was. */
  #absence(key: string): 'stopped' | 'not-found' {
    return this.#recentlyStopped.has(key) ? 'stopped' : 'not-found'
  }

  #fire(key: string, reason: TerminationReason): void {
    const w = this.#watched.get(key)
    if (!w) return
    this.#forget(key, w)
    for (const watcher of w.watchers) this.#tell(watcher, { id: w.id, reason })
  }

  #forget(key: string, w: Watched): void {
    this.#watched.delete(key)
    const keys = this.#byNode.get(w.id.node.uid)
    keys?.delete(key)
    if (keys?.size === 0) this.#byNode.delete(w.id.node.uid)
  }

  #tell(watcher: Watcher, t: Termination): void {
    this.stats[t.reason]++
    try {
      watcher.terminated(t)
    } catch (err) {
      this.#log.error({ err, actor: t.id.toString() }, 'a watcher threw')
    }
  }

  #isGone(node: ClusterNode): boolean {
    if (this.#gone.has(node.uid) || this.#host.isTombstoned(node.uid)) return true
    const m = this.#cluster?.membership.members.find((x) => x.node.uid === node.uid)
    return m !== undefined && !isPresent(m.status)
  }

  /**
   * A backstop for missed events: a node this watch tracks whose member is down or removed, or
   * that has been absent from the membership for ABSENT_GRACE (never joined, or forgotten while
   * this node was cut off), is treated as gone, so no watch waits forever.
   */
  #reconcile(now: number): void {
    if (!this.#cluster) return
    const members = new Map(this.#cluster.membership.members.map((m) => [m.node.uid, m]))
    const tracked = new Map<string, ClusterNode>()
    for (const w of this.#watched.values()) if (w.id.node.uid !== this.#host.node.uid) tracked.set(w.id.node.uid, w.id.node)
    for (const p of this.#peers.values()) tracked.set(p.node.uid, p.node)
    for (const [uid, node] of tracked) {
      const m = members.get(uid)
      if (m) this.#absent.delete(uid)
      else if (!this.#absent.has(uid)) this.#absent.set(uid, now)
      if ((m && !isPresent(m.status)) || now - (this.#absent.get(uid) ?? now) >= ABSENT_GRACE) {
        this.#absent.delete(uid)
        this.nodeGone(node)
      }
    }
  }

  // ── system messages ─────────────────────────────────────────────────────────

  #peer(node: ClusterNode): Peer {
    let p = this.#peers.get(node.uid)
    if (!p) this.#peers.set(node.uid, (p = { node, channel: new SystemChannel({ redeliverAfter: this.#redeliverAfter }) }))
    return p
  }

  #sendSystem(node: ClusterNode, m: SystemMessage): void {
    if (this.#stopped) return
    const batch = this.#peer(node).channel.send(m, this.#host.now())
    if (batch) this.#transmit(node, encodeBatch(batch))
    else this.#log.error({ peer: formatNode(node), type: m.type }, 'system message buffer full: the peer acknowledges nothing (it should be downed soon)')
  }

  #transmit(node: ClusterNode, body: Buffer): void {
    try {
      this.#host.sendControl(controlTarget(node), ControlKind.Watch, body)
    } catch (e) {
      // In reconnect backoff: redelivery sends it again.
      this.#log.debug({ err: e, peer: node.uid }, 'system message not sent now')
    }
  }

  #redeliver(): void {
    const now = this.#host.now()
    for (const p of this.#peers.values()) {
      for (const b of p.channel.redeliver(now)) {
        this.stats.redelivered += b.messages.length
        this.#transmit(p.node, encodeBatch(b))
      }
    }
    for (const [uid, at] of this.#gone) if (now - at > DEAD_TTL) this.#gone.delete(uid)
    this.#reconcile(now)
  }

  #onMessage(from: ClusterNode, body: Buffer): void {
    if (this.#stopped || this.#gone.has(from.uid)) return
    let frame
    try {
      frame = decodeWatchFrame(body)
    } catch (e) {
      if (!(e instanceof WatchDecodeError)) throw e
      this.stats.decodeErrors++
      this.#log.warn({ peer: from.uid, reason: e.message }, 'refused a malformed watch message')
      return
    }
    if (frame.kind === 'ack') {
      this.#peers.get(from.uid)?.channel.acknowledge(frame.seq)
      return
    }
    this.#onBatch(from, frame.batch)
  }

  #onBatch(from: ClusterNode, batch: Batch<SystemMessage>): void {
    const { deliver } = this.#peer(from).channel.receive(batch)
    for (const m of deliver as SystemMessage[]) this.#onSystemMessage(from, m)
    if (this.#acksDue.size === 0) setImmediate(() => this.#sendAcks())
    this.#acksDue.add(from.uid)
  }

  #sendAcks(): void {
    for (const uid of this.#acksDue) {
      const p = this.#peers.get(uid)
      if (p) this.#transmit(p.node, encodeAck(p.channel.received))
    }
    this.#acksDue.clear()
  }

  #onSystemMessage(from: ClusterNode, m: SystemMessage): void {
    if (m.type === 'terminated') {
      this.#fire(new ActorId(from, m.path, m.incarnation).toString(), m.reason)
      return
    }
    const id = new ActorId(this.#host.node, m.path, m.incarnation)
    const key = id.toString()
    if (m.type === 'unwatch') {
      const nodes = this.#watchersOf.get(key)
      nodes?.delete(from.uid)
      if (nodes?.size === 0) this.#watchersOf.delete(key)
      return
    }
    if (!this.#host.hasActor(id)) {
      this.#sendSystem(from, { type: 'terminated', path: m.path, incarnation: m.incarnation, reason: this.#absence(key) })
      return
    }
    let nodes = this.#watchersOf.get(key)
    if (!nodes) this.#watchersOf.set(key, (nodes = new Map()))
    nodes.set(from.uid, from)
  }
}

/**
 * The watcher of one actor: its `onTerminated` runs as a turn of that actor, once per watch, and
 * not at all if the actor unwatched before the turn began.
 */
export class CellWatcher implements Watcher {
  readonly #cell: ActorCell
  readonly #log: Logger
  readonly #watching = new Map<string, ActorId>()

  constructor(cell: ActorCell, log: Logger) {
    this.#cell = cell
    this.#log = log
  }

  /** Records a watch; false if `target` is already watched (nothing to do). */
  add(target: ActorId): boolean {
    const key = target.toString()
    if (this.#watching.has(key)) return false
    this.#watching.set(key, target)
    return true
  }

  /** Forgets a watch; false if it was not watched. */
  remove(target: ActorId): boolean {
    return this.#watching.delete(target.toString())
  }

  has(target: ActorId): boolean {
    return this.#watching.has(target.toString())
  }

  /** Forgets every watch and returns the targets (the actor stopped). */
  clear(): ActorId[] {
    const all = [...this.#watching.values()]
    this.#watching.clear()
    return all
  }

  terminated(t: Termination): void {
    const key = t.id.toString()
    if (!this.#watching.has(key)) return
    const watching = this.#watching
    const actor = this.#cell.actor as { onTerminated?: (id: ActorId, reason: TerminationReason) => unknown }
    const inv: Invocation = {
      method: 'onTerminated',
      args: [t.id, t.reason],
      chain: '',
      // Checked when the turn starts: an unwatch in between suppresses it.
      fn: () => (watching.delete(key) ? actor.onTerminated?.(t.id, t.reason) : undefined),
      succeed: () => undefined,
      fail: (err: unknown) => {
        if (this.#cell.alive) this.#log.error({ err, actor: this.#cell.id.toString(), watched: key }, 'onTerminated failed')
      },
    }
    this.#cell.deliver(inv, undefined)
  }
}

/** The error `system.watch` rejects with when its signal aborts with `reason`. */
function watchAborted(id: ActorId, reason: unknown): Error {
  if (reason instanceof ShoalError) return reason
  if (reason instanceof Error && reason.name === 'TimeoutError')
    return new TimeoutError(`system.watch(${id.toString()}) timed out (its AbortSignal) before the actor terminated; the watch is removed.`, { cause: reason })
  const why = reason instanceof Error ? reason.message : String(reason)
  return new AbortedError(`system.watch(${id.toString()}) was aborted (${why}) before the actor terminated; the watch is removed.`, { cause: reason })
}
