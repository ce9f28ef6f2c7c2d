/**
 * A deterministic simulator for SWIM: many {@link SwimInstance}s in one process on a virtual
 * clock, over a simulated network with per-link loss, delay and jitter, partitions, one-way
 * links, process stalls, crashes, restarts and joins. Datagrams go through the real codec (unless
 * `codec: false`), so
 * sizes are real. The same seed and script give a byte-identical event trace ({@link traceHash}).
 *
 * Stalls model a blocked Node.js event loop: nothing is processed while stalled; on resume the
 * queued inbound messages are handled first, then the stall is reported (as the shell's
 * event-loop-delay monitor would), then the timers that came due.
 * @module
 */
import { createHash, type Hash } from 'node:crypto'
import { decodeMessage, decodePushPull, encodeMessage, encodePushPull, type Message, messageSize, TAG_BYTES } from '../swim/Codec.ts'
import { type Directive, SwimInstance } from '../swim/SwimInstance.ts'
import { nodeKey, type SwimAddress, type SwimMemberState, type SwimNode, type SwimStatus } from '../swim/SwimNode.ts'
import type { SwimSettings } from '../swim/SwimSettings.ts'
import { EventQueue, type Timed } from './EventQueue.ts'
import { mixSeed, randomUid, seededRandom } from './Random.ts'

/** Simulator options; network defaults model a LAN (0.5 ms ± 0.2 ms, no loss). */
export interface SimulatorOptions {
  /** Members at the start. */
  readonly members: number
  readonly seed: number
  readonly settings?: SwimSettings
  /** `converged`: everyone starts knowing everyone (default); `join`: each joins through the seeds. */
  readonly bootstrap?: 'converged' | 'join'
  /** Members 0..seeds-1 are the seeds joiners use. Default 3. */
  readonly seeds?: number
  /** One-way latency in ms. Default 0.5. */
  readonly delay?: number
  /** Uniform extra latency in [0, jitter) ms. Default 0.2. */
  readonly jitter?: number
  /** Datagram loss probability on every link. Default 0. */
  readonly loss?: number
  /**
   * Encode and decode every datagram (default true). `false` hands the message object itself to
   * the receiver, sized by the codec's own size functions (so traffic, hashes and runs are the
   * same): the cluster simulator, whose sweeps test the layers above SWIM, saves the codec's 6%
   * of a run. The codec has its own tests (byte at a time, fuzzed). Streams always encode.
   */
  readonly codec?: boolean
}

/** A status change seen by one member about another. */
export interface ChangeRecord {
  readonly time: number
  readonly observer: number
  readonly subject: string
  /** The subject's address and uid. */
  readonly node: SwimNode
  readonly status: SwimStatus
  readonly incarnation: number
}

/** @internal One simulated process. */
export interface SimMember {
  readonly index: number
  node: SwimNode
  instance: SwimInstance
  up: boolean
  generation: number
  stalledUntil: number
  stallStart: number
  backlog: (() => void)[]
  dueTimers: string[]
  readonly timers: Map<string, number>
}

/** What a queued event does; see {@link SimEvent}. */
const enum Kind {
  /** `at(time, fn)`: `data` is the function. */
  Call,
  /** A member's SWIM timer: `member`, `generation`, `num` the timer's generation, `data` its id. */
  Timer,
  /** A datagram in flight: `num` the target's index, `data` the bytes. */
  Datagram,
  /** A stream (control-lane) message: `member` the destination, `generation`, `num` the sender's index, `data` the handler. */
  Stream,
  /** A periodic run ({@link Simulator.every}): `member`, `generation`, `num` the period, `data` the function; queued again each period. */
  Periodic,
}

/**
 * One queued event. Every kind shares this one class (a tag and a few slots) instead of a class or
 * a closure per kind: the run loop and the heap then see one object shape (with five shapes V8's
 * property caches went megamorphic and the loop got slower), and the frequent kinds allocate no
 * closure.
 */
class SimEvent implements Timed {
  seq = 0
  constructor(
    public time: number,
    readonly kind: Kind,
    readonly member: SimMember | undefined,
    readonly generation: number,
    readonly num: number,
    readonly data: unknown,
  ) {}
}

/** Many SWIM instances on a virtual clock over a simulated network (module comment). */
export class Simulator {
  readonly options: Required<Omit<SimulatorOptions, 'settings'>> & { settings: SwimSettings }
  readonly members: SimMember[] = []
  /** Datagrams sent, bytes sent (tags included), largest datagram, stream messages and bytes. */
  readonly traffic = { datagrams: 0, bytes: 0, largest: 0, dropped: 0, streams: 0, streamBytes: 0 }
  /** Every status change, if `record` is on. */
  readonly changes: ChangeRecord[] = []
  /** Record every change in {@link changes} (off for large runs; the hash is always kept). */
  record = true
  readonly listeners: ((c: ChangeRecord) => void)[] = []

  #now = 0
  readonly #queue = new EventQueue<SimEvent>()
  readonly #netRandom: () => number
  readonly #running = new Map<string, number>()
  readonly #group = new Map<number, number>()
  readonly #blocked = new Set<string>()
  readonly #linkLoss = new Map<string, number>()
  readonly #trace: Hash = createHash('sha256')
  /**
   * Two 32-bit lanes hashing every datagram and stream message (time, sender, receiver, size), so
   * runs without a status change (no injected fault) still hash what happened; cheaper per message
   * than feeding sha256.
   */
  #wire1 = 0x811c9dc5
  #wire2 = 0x2545f491
  #wireCount = 0
  /** Member index by host, then port: finds a datagram's target without building a string. */
  readonly #byHostPort = new Map<string, Map<number, number>>()
  #timerGen = 0
  /** Clock rate per member index (absent: 1). */
  readonly #rates: number[] = []
  /** The network's current latency, jitter and loss (start from the options; faults change them). */
  #net: { delay: number; jitter: number; loss: number }
  /** Arrival time of the last stream message per directed link, so a link never reorders. */
  readonly #linkClock = new Map<number, number>()

  constructor(o: SimulatorOptions) {
    this.options = { bootstrap: 'converged', seeds: 3, delay: 0.5, jitter: 0.2, loss: 0, codec: true, settings: {}, ...o }
    this.#netRandom = seededRandom(mixSeed(o.seed, 0xfeed))
    this.#net = { delay: this.options.delay, jitter: this.options.jitter, loss: this.options.loss }
    const nodes: SwimNode[] = []
    for (let i = 0; i < o.members; i++) nodes.push(this.#nodeFor(i, 0))
    const initial: SwimMemberState[] = nodes.map((node) => ({ node, status: 'alive', incarnation: 0, meta: new Uint8Array(0) }))
    for (let i = 0; i < o.members; i++) {
      const converged = this.options.bootstrap === 'converged'
      const m = this.#create(i, nodes[i]!, converged ? initial : undefined, converged ? [] : this.#seedAddresses(i))
      this.members.push(m)
      this.#addAddress(m.node, i)
      // In join mode members start one after another, 10 ms apart, as a rolling start would.
      this.at(converged ? 0 : i * 10, () => this.#start(m))
    }
  }

  get now(): number {
    return this.#now
  }

  /**
   * Hash of the event trace so far: every status change, in order, with its time, and every
   * datagram and stream message (send time, sender, receiver, size). Two seeds give different
   * hashes even when nothing changes status; the same seed and script give the same hash.
   */
  traceHash(): string {
    return this.#trace
      .copy()
      .update(`wire|${this.#wireCount}|${this.#wire1 >>> 0}|${this.#wire2 >>> 0}\n`)
      .digest('hex')
  }

  /** Stops a {@link run} after the current event (a failed check that ends the run early). */
  halt(): void {
    this.#halted = true
  }

  #halted = false

  /** Runs `fn` at virtual time `time` (ms). */
  at(time: number, fn: () => void): void {
    this.#queue.push(new SimEvent(Math.max(time, this.#now), Kind.Call, undefined, 0, 0, fn))
  }

  /** Runs the simulation until virtual time `until` (ms); `afterEach` runs after every event (invariant checks). */
  run(until: number, afterEach?: () => void): void {
    this.#halted = false
    for (;;) {
      if (this.#halted) return
      const next = this.#queue.peek()
      if (!next || next.time > until) break
      this.#queue.pop()
      this.#now = next.time
      this.#dispatch(next)
      afterEach?.()
    }
    this.#now = Math.max(this.#now, until)
  }

  // ── faults and churn ───────────────────────────────────────────────────────

  /** Kills a member's process: it stops at once, without a word. */
  crash(i: number): void {
    const m = this.members[i]!
    if (m.up) this.#running.delete(nodeKey(m.node))
    m.up = false
    m.generation++
    m.timers.clear()
    m.backlog = []
  }

  /** Starts a new process (new uid) on a crashed member's address; it joins through the seeds. */
  restart(i: number): void {
    const old = this.members[i]!
    if (old.up) this.crash(i)
    const fresh = this.#create(i, this.#nodeFor(i, old.generation), undefined, this.#seedAddresses(i), old.generation)
    this.members[i] = fresh
    this.#start(fresh)
  }

  /** Adds a new member that joins through the seeds; returns its index. */
  join(): number {
    const i = this.members.length
    const m = this.#create(i, this.#nodeFor(i, 0), undefined, this.#seedAddresses(i))
    this.members.push(m)
    this.#addAddress(m.node, i)
    this.#start(m)
    return i
  }

  /** Freezes a member's event loop for `ms`. */
  stall(i: number, ms: number): void {
    const m = this.members[i]!
    if (!m.up) return
    const until = Math.max(m.stalledUntil, this.#now + ms)
    // Overlapping stalls are one longer stall, reported whole.
    if (m.stalledUntil <= this.#now) m.stallStart = this.#now
    m.stalledUntil = until
    const generation = m.generation
    this.at(until, () => {
      if (m.generation !== generation || m.stalledUntil !== until) return
      m.stalledUntil = 0
      const backlog = m.backlog
      m.backlog = []
      for (const fn of backlog) if (m.generation === generation) fn()
      if (m.up) this.#apply(m, m.instance.onStall(until - m.stallStart))
      const due = m.dueTimers
      m.dueTimers = []
      for (const id of due) if (m.generation === generation) this.#apply(m, m.instance.onTimer(id))
    })
  }

  /** Leaves gracefully (once its event loop runs); the process stops after `after` ms. */
  leave(i: number, after = 2000): void {
    const m = this.members[i]!
    const generation = m.generation
    this.#inProcess(m, generation, () => this.#apply(m, m.instance.leave()))
    this.at(this.#now + after, () => {
      if (m.generation === generation) this.crash(i)
    })
  }

  /** Splits the network: members in different groups cannot exchange anything. */
  partition(groups: readonly (readonly number[])[]): void {
    this.#group.clear()
    groups.forEach((g, id) => g.forEach((i) => this.#group.set(i, id + 1)))
  }

  heal(): void {
    this.#group.clear()
    this.#blocked.clear()
  }

  /** Drops everything `from` sends to `to` (a one-way link failure). */
  block(from: number, to: number): void {
    this.#blocked.add(`${from}>${to}`)
  }

  unblock(from: number, to: number): void {
    this.#blocked.delete(`${from}>${to}`)
  }

  /** Loss probability of the directed link `from` → `to`, overriding the global one. */
  setLinkLoss(from: number, to: number, loss: number): void {
    this.#linkLoss.set(`${from}>${to}`, loss)
  }

  /** Changes the whole network's latency, jitter or loss from now on (a degraded network, and back). */
  setNetwork(n: Partial<{ delay: number; jitter: number; loss: number }>): void {
    this.#net = { ...this.#net, ...n }
  }

  /** Whether `from` can currently send to `to` (partitions and one-way blocks). */
  reachable(from: number, to: number): boolean {
    if (this.#group.size > 0 && (this.#group.get(from) ?? 0) !== (this.#group.get(to) ?? 0)) return false
    return this.#blocked.size === 0 || !this.#blocked.has(`${from}>${to}`)
  }

  /** Indices of running (not crashed) members. */
  upMembers(): number[] {
    return this.members.filter((m) => m.up).map((m) => m.index)
  }

  /** Index of the running process with this member key (`host:port#uid`), if one runs. */
  runningIndex(key: string): number | undefined {
    return this.#running.get(key)
  }

  /** Status of `subject` as seen by member `observer` (undefined: unknown). */
  view(observer: number, subject: number): SwimStatus | undefined {
    const o = this.members[observer]!
    const s = this.members[subject]!
    if (o === s) return 'alive'
    return o.instance.member(s.node)?.status
  }

  // ── hosting more layers (the cluster simulator) ──────────────────────────────

  /** Runs `fn` in member `i`'s current process now, or when its stall ends; never after it crashed. */
  inProcess(i: number, fn: () => void): void {
    const m = this.members[i]!
    this.#inProcess(m, m.generation, fn)
  }

  /**
   * Makes member `i`'s clock run at `rate` × the simulator's (clock-rate skew between machines):
   * its SWIM instance, its timers and {@link localNow} all follow it. Set it before the member starts.
   */
  setClockRate(i: number, rate: number): void {
    this.#rates[i] = rate
  }

  /** Member `i`'s own monotonic clock, ms (the simulator's, scaled by its rate). */
  localNow(i: number): number {
    return this.#now * (this.#rates[i] ?? 1)
  }

  /** Whether member `i`'s event loop is frozen now. */
  stalled(i: number): boolean {
    return this.members[i]!.stalledUntil > this.#now
  }

  /**
   * Runs `fn` in member `i`'s current process every `period` ms, first after `first` ms, until the
   * process crashes; a stall delays a run to its end (one run, not one per missed period).
   */
  every(i: number, period: number, first: number, fn: () => void): void {
    const m = this.members[i]!
    const rate = this.#rates[i] ?? 1
    this.#queue.push(new SimEvent(this.#now + first / rate, Kind.Periodic, m, m.generation, period / rate, fn))
  }

  #dispatch(e: SimEvent): void {
    switch (e.kind) {
      case Kind.Call:
        return (e.data as () => void)()
      case Kind.Timer:
        return this.#timerDue(e.member!, e.generation, e.data as string, e.num)
      case Kind.Datagram:
        return this.#deliver(e.num, e.data as Buffer | Message)
      case Kind.Stream:
        return this.#streamArrives(e.num, e.member!, e.generation, e.data as (target: number) => void)
      case Kind.Periodic:
        return this.#periodicDue(e)
    }
  }

  /** A periodic run comes due: runs it (after a stall, if frozen) and queues it again while its process lives. */
  #periodicDue(p: SimEvent): void {
    const m = p.member!
    if (m.generation !== p.generation || !m.up) return
    if (m.stalledUntil > this.#now) p.time = m.stalledUntil
    else {
      ;(p.data as () => void)()
      p.time = this.#now + p.num
    }
    this.#queue.push(p)
  }

  /**
   * Sends a message over a stream (the control lane: TCP, no loss, ordered per link) from member
   * `from`'s process to the process at `to` that has uid `uid` (any uid if undefined). It arrives
   * after the link's latency if the link works both at sending and at arrival, and is handled in
   * the target's process (after its stall, if frozen). `deliver` gets the target's index.
   */
  send(from: number, to: { host: string; port: number; uid?: string }, size: number, deliver: (target: number) => void): void {
    const target = this.#targetOf(to)
    this.traffic.streams++
    this.traffic.streamBytes += size
    if (target === undefined || !this.members[from]!.up || !this.reachable(from, target)) return
    this.#hashWire(from, target, size)
    const dest = this.members[target]!
    const generation = dest.generation
    if (to.uid !== undefined && dest.node.uid !== to.uid) return
    // Ordered per link: never before the previous message on the same link.
    const key = from * 65536 + target
    const at = Math.max(this.#now + this.#latency(), this.#linkClock.get(key) ?? 0)
    this.#linkClock.set(key, at)
    this.#queue.push(new SimEvent(at, Kind.Stream, dest, generation, from, deliver))
  }

  /** A stream message arrives: dropped if the link broke meanwhile or its process is gone (as `#inProcess`, without a closure per message). */
  #streamArrives(from: number, dest: SimMember, generation: number, deliver: (target: number) => void): void {
    if (!this.reachable(from, dest.index) || !dest.up || dest.generation !== generation) return
    if (dest.stalledUntil > this.#now) dest.backlog.push(() => deliver(dest.index))
    else deliver(dest.index)
  }

  /** Member `i`'s SWIM starts probing `seeds` (a shell's `swim.join`). */
  swimJoin(i: number, seeds: readonly SwimAddress[]): void {
    const m = this.members[i]!
    if (m.up) this.#apply(m, m.instance.join(seeds))
  }

  // ── internals ──────────────────────────────────────────────────────────────

  #nodeFor(i: number, generation: number): SwimNode {
    const random = seededRandom(mixSeed(this.options.seed, i, generation, 0x5eed))
    return { host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 7946, uid: randomUid(random) }
  }

  #seedAddresses(i: number): SwimNode[] {
    const out: SwimNode[] = []
    for (let s = 0; s < Math.min(this.options.seeds, this.members.length); s++) if (s !== i) out.push(this.members[s]!.node)
    return out
  }

  #create(i: number, node: SwimNode, members: readonly SwimMemberState[] | undefined, seeds: readonly SwimNode[], generation = 0): SimMember {
    const random = seededRandom(mixSeed(this.options.seed, i, generation + 1))
    const instance = new SwimInstance({ self: node, settings: this.options.settings, now: () => this.localNow(i), random, seeds, members })
    return { index: i, node, instance, up: true, generation, stalledUntil: 0, stallStart: 0, backlog: [], dueTimers: [], timers: new Map() }
  }

  #start(m: SimMember): void {
    this.#running.set(nodeKey(m.node), m.index)
    this.#apply(m, m.instance.start())
  }

  /** Runs `fn` in member `m`'s process now, or after its stall; never after it crashed. */
  #inProcess(m: SimMember, generation: number, fn: () => void): void {
    if (!m.up || m.generation !== generation) return
    if (m.stalledUntil > this.#now) m.backlog.push(fn)
    else fn()
  }

  #apply(m: SimMember, directives: readonly Directive[]): void {
    for (const d of directives) {
      switch (d.type) {
        case 'send':
          if (this.options.codec) this.#sendDatagram(m, d.to, encodeMessage(d.message))
          else this.#sendDatagram(m, d.to, d.message, messageSize(d.message))
          break
        case 'startTimer':
          this.#startTimer(m, d.id, d.delay)
          break
        case 'cancelTimer':
          m.timers.delete(d.id)
          break
        case 'streamPing': {
          const ping = encodeMessage(d.message)
          const sentAt = this.#now
          this.#stream(
            m,
            d.to,
            ping.length + TAG_BYTES,
            (target) => {
              const { reply, directives } = target.instance.onStreamPing(decodeMessage(ping))
              this.#apply(target, directives)
              return reply && [encodeMessage(reply)]
            },
            // Past its timeout the shell has given up on the request.
            (reply) => this.#now - sentAt <= d.timeout && this.#apply(m, m.instance.onStreamAck(decodeMessage(reply!))),
          )
          break
        }
        case 'pushPull': {
          const bytes = encodePushPull(d.message)
          this.#stream(
            m,
            d.to,
            bytes.length,
            (target) => {
              const { reply, directives } = target.instance.onPushPull(decodePushPull(bytes, 1e6))
              this.#apply(target, directives)
              return [encodePushPull(reply)]
            },
            (reply) => this.#apply(m, m.instance.onPushPullReply(decodePushPull(reply!, 1e6))),
          )
          break
        }
        case 'changed':
          this.#recordChange(m, d.member)
          break
      }
    }
  }

  #startTimer(m: SimMember, id: string, delay: number): void {
    const gen = ++this.#timerGen
    m.timers.set(id, gen)
    this.#queue.push(new SimEvent(this.#now + delay / (this.#rates[m.index] ?? 1), Kind.Timer, m, m.generation, gen, id))
  }

  /** A timer came due; stale ones (cancelled, restarted, crashed) are ignored. */
  #timerDue(m: SimMember, generation: number, id: string, gen: number): void {
    if (m.generation !== generation || m.timers.get(id) !== gen) return
    m.timers.delete(id)
    if (m.stalledUntil > this.#now) m.dueTimers.push(id)
    else this.#apply(m, m.instance.onTimer(id))
  }

  #latency(): number {
    return this.#net.delay + this.#netRandom() * this.#net.jitter
  }

  /** Sends a datagram: its bytes, or with `codec: false` the message itself and its encoded size. */
  #sendDatagram(from: SimMember, to: { host: string; port: number }, body: Buffer | Message, bodySize = (body as Buffer).length): void {
    const size = bodySize + TAG_BYTES
    this.traffic.datagrams++
    this.traffic.bytes += size
    if (size > this.traffic.largest) this.traffic.largest = size
    const target = this.#targetOf(to)
    if (target !== undefined) this.#hashWire(from.index, target, size)
    const loss = target === undefined ? 1 : this.#linkLoss.size > 0 ? (this.#linkLoss.get(`${from.index}>${target}`) ?? this.#net.loss) : this.#net.loss
    if (target === undefined || !this.reachable(from.index, target) || this.#netRandom() < loss) {
      this.traffic.dropped++
      return
    }
    this.#queue.push(new SimEvent(this.#now + this.#latency(), Kind.Datagram, undefined, 0, target, body))
  }

  /** A datagram arrives at member `target`. */
  #deliver(target: number, body: Buffer | Message): void {
    const dest = this.members[target]!
    if (!dest.up) return
    // Stalled: handled when the event loop resumes (stall() replays the backlog).
    if (dest.stalledUntil > this.#now) return void dest.backlog.push(() => this.#apply(dest, dest.instance.onMessage(messageOf(body))))
    this.#apply(dest, dest.instance.onMessage(messageOf(body)))
  }

  #targetOf(to: SwimAddress): number | undefined {
    return this.#byHostPort.get(to.host)?.get(to.port)
  }

  /** An address maps to one index for the whole run (a restart reuses its index). */
  #addAddress(node: SwimNode, i: number): void {
    let ports = this.#byHostPort.get(node.host)
    if (!ports) this.#byHostPort.set(node.host, (ports = new Map()))
    ports.set(node.port, i)
  }

  /** Mixes one message into the wire lanes (FNV-1a style on 32-bit words, two multipliers). */
  #hashWire(from: number, to: number, size: number): void {
    this.#wireCount++
    const t = Math.round(this.#now * 1000) >>> 0
    this.#wire1 = mix1(mix1(mix1(mix1(this.#wire1, t), from), to), size)
    this.#wire2 = mix2(mix2(mix2(mix2(this.#wire2, t), from), to), size)
  }

  /**
   * A request/response over a stream (TCP): no loss, but it needs both directions of the link,
   * and a connect costs a round trip. `serve` runs at the target and returns the reply (or
   * undefined for no answer); `done` runs back at the sender.
   */
  #stream(
    from: SimMember,
    to: { host: string; port: number },
    size: number,
    serve: (target: SimMember) => Buffer[] | undefined,
    done: (reply: Buffer | undefined) => void,
  ): void {
    this.traffic.streams++
    this.traffic.streamBytes += size
    const target = this.#targetOf(to)
    if (target === undefined) return
    this.#hashWire(from.index, target, size)
    const generation = from.generation
    const ok = () => this.reachable(from.index, target) && this.reachable(target, from.index)
    if (!ok()) return
    this.at(this.#now + 3 * this.#latency(), () => {
      const dest = this.members[target]!
      this.#inProcess(dest, dest.generation, () => {
        const reply = serve(dest)
        if (reply === undefined || !ok()) return
        for (const r of reply) this.traffic.streamBytes += r.length
        this.at(this.#now + this.#latency(), () => this.#inProcess(from, generation, () => done(reply[0])))
      })
    })
  }

  #recordChange(m: SimMember, s: SwimMemberState): void {
    const c: ChangeRecord = { time: this.#now, observer: m.index, subject: nodeKey(s.node), node: s.node, status: s.status, incarnation: s.incarnation }
    this.#trace.update(`${c.time}|${c.observer}|${c.subject}|${c.status}|${c.incarnation}\n`)
    if (this.record) this.changes.push(c)
    for (const l of this.listeners) l(c)
  }
}

function mix1(h: number, w: number): number {
  return Math.imul(h ^ w, 0x01000193)
}

function mix2(h: number, w: number): number {
  const x = Math.imul(h ^ w, 0x5bd1e995)
  return x ^ (x >>> 15)
}

/** A datagram's message: decoded from its bytes, or the object itself (`codec: false`). */
function messageOf(body: Buffer | Message): Message {
  return body instanceof Uint8Array ? decodeMessage(body) : body
}
