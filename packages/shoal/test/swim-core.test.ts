/**
 * The SWIM + Lifeguard core as a pure state machine: a manual clock, seeded randomness, messages
 * fed in by hand and the returned directives inspected. No sockets, no wall-clock time.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { seededRandom } from '../src/sim/Random.ts'
import {
  decodeMessage,
  decodePushPull,
  deriveKey,
  encodeMessage,
  encodePushPull,
  MAX_META_BYTES,
  type Message,
  open,
  type PushPull,
  SwimCodecError,
  seal,
  TAG_BYTES,
  type Update,
  updateSize,
} from '../src/swim/Codec.ts'
import { Dissemination } from '../src/swim/Dissemination.ts'
import { suspicionTimeout } from '../src/swim/Suspicion.ts'
import { type Directive, SwimInstance } from '../src/swim/SwimInstance.ts'
import { ANY_UID, nodeKey, type SwimMemberState, type SwimNode, type SwimStatus, supersedes } from '../src/swim/SwimNode.ts'
import { retransmitLimit, SWIM_DEFAULTS, type SwimSettings } from '../src/swim/SwimSettings.ts'

// ── fixtures ─────────────────────────────────────────────────────────────────

const uidOf = (i: number, generation = 0): string => (0xa0000 + generation * 0x10000 + i).toString(16).padStart(16, '0')
/** Member i: 10.0.0.i:7946. Index 0 is the node under test. */
const nodeOf = (i: number, generation = 0): SwimNode => ({ host: `10.0.${i >> 8}.${i & 255}`, port: 7946, uid: uidOf(i, generation) })
const aliveState = (node: SwimNode, incarnation = 0): SwimMemberState => ({ node, status: 'alive', incarnation, meta: new Uint8Array(0) })
const aliveU = (node: SwimNode, incarnation = 0, meta = new Uint8Array(0)): Update => ({ status: 'alive', node, incarnation, meta })
const accuse = (status: 'suspect' | 'dead' | 'left', node: SwimNode, incarnation: number, by: SwimNode): Update => ({ status, node, incarnation, by: by.uid })
const gossip = (from: SwimNode, updates: Update[]): Message => ({ type: 'gossip', from, updates })

type Send = Extract<Directive, { type: 'send' }>
const sends = (ds: readonly Directive[], type?: Message['type']): Send[] =>
  ds.filter((d): d is Send => d.type === 'send' && (type === undefined || d.message.type === type))
const changes = (ds: readonly Directive[]) => ds.flatMap((d) => (d.type === 'changed' ? [d] : []))
const started = (ds: readonly Directive[], id: string) => ds.flatMap((d) => (d.type === 'startTimer' && d.id === id ? [d.delay] : []))
const hasUpdate = (m: Message, want: Partial<Update> & { node: SwimNode }) =>
  m.updates.some(
    (u) =>
      nodeKey(u.node) === nodeKey(want.node) &&
      (want.status === undefined || u.status === want.status) &&
      (want.incarnation === undefined || u.incarnation === want.incarnation),
  )

type Responder = (d: Directive, h: Harness) => void

/**
 * One SwimInstance with a manual clock. Tracks the timers it asked for (id → deadline) and logs
 * every directive with its time. `fire` sets the clock to a timer's deadline and fires it.
 */
class Harness {
  now = 0
  readonly self: SwimNode
  readonly others: SwimNode[]
  readonly instance: SwimInstance
  readonly timers = new Map<string, number>()
  readonly log: { time: number; d: Directive }[] = []

  constructor(o: { others?: number; seed?: number; settings?: SwimSettings; members?: SwimMemberState[]; self?: SwimNode } = {}) {
    this.self = o.self ?? nodeOf(0)
    this.others = Array.from({ length: o.others ?? 4 }, (_, i) => nodeOf(i + 1))
    this.instance = new SwimInstance({
      self: this.self,
      settings: o.settings,
      now: () => this.now,
      random: seededRandom(o.seed ?? 1),
      members: o.members ?? this.others.map((n) => aliveState(n)),
    })
  }

  take(ds: Directive[]): Directive[] {
    for (const d of ds) {
      if (d.type === 'startTimer') {
        this.timers.delete(d.id)
        this.timers.set(d.id, this.now + d.delay)
      } else if (d.type === 'cancelTimer') this.timers.delete(d.id)
      this.log.push({ time: this.now, d })
    }
    return ds
  }

  start(): Directive[] {
    return this.take(this.instance.start())
  }

  /** Fires timer `id` at its deadline (plus `late` ms). */
  fire(id: string, late = 0): Directive[] {
    const at = this.timers.get(id)
    if (at === undefined) throw new Error(`timer ${id} is not running (running: ${[...this.timers.keys()].join(', ')})`)
    if (at + late < this.now) throw new Error(`timer ${id} was due at ${at}, the clock is already at ${this.now}`)
    this.now = at + late
    this.timers.delete(id)
    return this.take(this.instance.onTimer(id))
  }

  receive(m: Message): Directive[] {
    return this.take(this.instance.onMessage(m))
  }

  advance(ms: number): void {
    this.now += ms
  }

  /** Fires every timer due up to `until` in deadline order, passing each directive to `respond`. */
  runUntil(until: number, respond?: Responder): void {
    for (;;) {
      let next: [string, number] | undefined
      for (const [id, at] of this.timers) if (at <= until && (next === undefined || at < next[1])) next = [id, at]
      if (next === undefined) break
      const ds = this.fire(next[0])
      if (respond) for (const d of ds) respond(d, this)
    }
    this.now = Math.max(this.now, until)
  }

  changesAbout(node: SwimNode) {
    return this.log.flatMap((e) =>
      e.d.type === 'changed' && nodeKey(e.d.member.node) === nodeKey(node) ? [{ time: e.time, status: e.d.member.status, previous: e.d.previous }] : [],
    )
  }

  status(node: SwimNode): SwimStatus | undefined {
    return this.instance.member(node)?.status
  }
}

/** The ping `ds` sends (exactly one). */
function onePing(ds: readonly Directive[]): { to: SwimNode; seq: number; message: Message } {
  const pings = sends(ds, 'ping')
  expect(pings).toHaveLength(1)
  const p = pings[0]!
  if (p.message.type !== 'ping') throw new Error('unreachable')
  return { to: { host: p.to.host, port: p.to.port, uid: p.message.targetUid }, seq: p.message.seq, message: p.message }
}

const ack = (seq: number, from: SwimNode, updates: Update[] = []): Message => ({ type: 'ack', seq, from, updates })
const nack = (seq: number, from: SwimNode): Message => ({ type: 'nack', seq, from, updates: [] })

/** Answers every ping at once with a plain ack from its target (a healthy, silent network). */
const ackEveryPing =
  (except: (target: SwimNode) => boolean = () => false): Responder =>
  (d, h) => {
    if (d.type !== 'send' || d.message.type !== 'ping') return
    const target = { host: d.to.host, port: d.to.port, uid: d.message.targetUid }
    if (!except(target)) h.take(h.instance.onMessage(ack(d.message.seq, target)))
  }

// ── member states ────────────────────────────────────────────────────────────

describe('supersedes', () => {
  const order: [SwimStatus, number][] = [
    ['alive', 1],
    ['suspect', 1],
    ['dead', 1],
    ['left', 1],
    ['alive', 2],
    ['suspect', 2],
    ['dead', 2],
    ['left', 2],
    ['alive', 3],
  ]
  it('orders alive(n) < suspect(n) < dead(n) < left(n) < alive(n+1), strictly', () => {
    for (let i = 0; i < order.length; i++) {
      for (let j = 0; j < order.length; j++) {
        const a = { status: order[i]![0], incarnation: order[i]![1] }
        const b = { status: order[j]![0], incarnation: order[j]![1] }
        expect(supersedes(a, b), `${a.status}(${a.incarnation}) vs ${b.status}(${b.incarnation})`).toBe(i > j)
      }
    }
  })
})

// ── determinism ──────────────────────────────────────────────────────────────

describe('determinism', () => {
  const script = (seed: number) => {
    const h = new Harness({ others: 6, seed })
    h.start()
    h.runUntil(
      3000,
      ackEveryPing((t) => t.uid === uidOf(3)),
    )
    h.receive(gossip(nodeOf(1), [aliveU(nodeOf(20)), accuse('suspect', nodeOf(2), 0, nodeOf(1))]))
    h.take(h.instance.onStall(1000))
    h.runUntil(
      30_000,
      ackEveryPing((t) => t.uid === uidOf(3)),
    )
    return h.log
  }

  it('gives identical directives for identical inputs', () => {
    const a = script(7)
    const b = script(7)
    expect(a.length).toBeGreaterThan(50)
    expect(a).toEqual(b)
  })

  it('gives different directives for a different seed', () => {
    expect(script(7)).not.toEqual(script(8))
  })
})

// ── probing ──────────────────────────────────────────────────────────────────

describe('probe round', () => {
  const s = SWIM_DEFAULTS

  /** Starts a 5-member view (self + 4), fires the first probe, returns the probe's target and seq. */
  function firstProbe(seed = 1) {
    const h = new Harness({ others: 4, seed })
    h.start()
    const ds = h.fire('probe')
    const p = onePing(ds)
    return { h, ds, ...p }
  }

  it('the probe timer pings one member and arms a ping timeout and the next probe', () => {
    const { h, ds, to, seq, message } = firstProbe()
    expect(h.others.map((n) => n.uid)).toContain(to.uid)
    expect(message).toMatchObject({ type: 'ping', from: h.self, targetUid: to.uid })
    expect(started(ds, `ping:${seq}`)).toEqual([s.pingTimeout])
    expect(started(ds, 'probe')).toEqual([s.probeInterval])
    expect(changes(ds)).toEqual([])
  })

  it('without an ack, the ping timeout sends k = 3 ping-reqs to other live members and a stream ping', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { h, to, seq } = firstProbe(seed)
      const ds = h.fire(`ping:${seq}`)
      const reqs = sends(ds, 'pingReq')
      expect(reqs).toHaveLength(3)
      const helpers = reqs.map((r) => r.to.host)
      expect(new Set(helpers).size).toBe(3)
      expect(helpers).not.toContain(to.host)
      for (const r of reqs) {
        expect(h.others.map((n) => n.host)).toContain(r.to.host)
        expect(r.message).toMatchObject({ type: 'pingReq', seq, from: h.self, target: to })
      }
      const streams = ds.filter((d) => d.type === 'streamPing')
      expect(streams).toMatchObject([
        { type: 'streamPing', to, message: { type: 'ping', seq, from: h.self, targetUid: to.uid }, timeout: s.probeInterval - s.pingTimeout },
      ])
      // Not suspected yet: the indirect round has the rest of the period.
      expect(changes(ds)).toEqual([])
      expect(h.status(to)).toBe('alive')
    }
  })

  it('suspects the target at the next probe tick when nothing acked', () => {
    const { h, to, seq } = firstProbe()
    h.fire(`ping:${seq}`)
    const ds = h.fire('probe')
    expect(changes(ds)).toEqual([{ type: 'changed', member: { node: to, status: 'suspect', incarnation: 0, meta: new Uint8Array(0) }, previous: 'alive' }])
    expect(h.status(to)).toBe('suspect')
    expect(h.instance.stats.suspicionsRaised).toBe(1)
  })

  const acks: [string, (h: Harness, to: SwimNode, seq: number) => void][] = [
    ['a direct ack before the ping timeout', (h, to, seq) => void h.receive(ack(seq, to))],
    [
      'a direct ack after the ping timeout',
      (h, to, seq) => {
        h.fire(`ping:${seq}`)
        h.receive(ack(seq, to))
      },
    ],
    [
      'an ack forwarded by a helper with the probe seq',
      (h, _to, seq) => {
        const helper = sends(h.fire(`ping:${seq}`), 'pingReq')[0]!.to
        h.receive(ack(seq, h.others.find((n) => n.host === helper.host)!))
      },
    ],
    [
      'a stream ack',
      (h, to, seq) => {
        h.fire(`ping:${seq}`)
        h.take(h.instance.onStreamAck(ack(seq, to)))
      },
    ],
  ]
  it.each(acks)('%s prevents the suspicion', (_name, acked) => {
    const { h, to, seq } = firstProbe()
    acked(h, to, seq)
    const ds = h.fire('probe')
    expect(changes(ds)).toEqual([])
    expect(h.status(to)).toBe('alive')
    expect(h.instance.stats.acks).toBe(1)
  })

  it('a direct ack cancels the ping timeout', () => {
    const { h, to, seq } = firstProbe()
    const ds = h.receive(ack(seq, to))
    expect(ds).toContainEqual({ type: 'cancelTimer', id: `ping:${seq}` })
    expect(h.timers.has(`ping:${seq}`)).toBe(false)
  })

  it('an ack or stream ack with another seq, or a nack, does not count', () => {
    const { h, to, seq } = firstProbe()
    h.receive(ack(seq + 1000, to))
    h.fire(`ping:${seq}`)
    h.take(h.instance.onStreamAck(ack(seq + 1, to)))
    h.receive(nack(seq, h.others.find((n) => n.uid !== to.uid)!))
    expect(changes(h.fire('probe'))).toHaveLength(1)
    expect(h.status(to)).toBe('suspect')
  })

  it('probes every live member exactly once per pass of n−1 periods, reshuffling between passes', () => {
    const n1 = 5
    let reshuffled = 0
    for (let seed = 1; seed <= 10; seed++) {
      const h = new Harness({ others: n1, seed })
      h.start()
      const targets: string[] = []
      for (let period = 0; period < 3 * n1; period++) {
        const { to, seq } = onePing(h.fire('probe'))
        targets.push(to.uid)
        h.receive(ack(seq, to))
      }
      const all = h.others.map((n) => n.uid).sort()
      const passes = [targets.slice(0, n1), targets.slice(n1, 2 * n1), targets.slice(2 * n1)]
      for (const pass of passes) expect([...pass].sort()).toEqual(all)
      if (passes[0]!.join() !== passes[1]!.join() || passes[1]!.join() !== passes[2]!.join()) reshuffled++
    }
    expect(reshuffled).toBeGreaterThan(0)
  })
})

// ── relaying (indirect probes for others) ────────────────────────────────────

describe('relay', () => {
  const origin = nodeOf(1)
  const target = nodeOf(2)

  function relay() {
    const h = new Harness({ others: 4 })
    h.start()
    h.take(h.instance.onStall(1000)) // health 1, to see that relaying leaves it alone
    expect(h.instance.health.score).toBe(1)
    const ds = h.receive({ type: 'pingReq', seq: 77, from: origin, target, updates: [] })
    const ping = onePing(ds)
    return { h, ds, ping }
  }

  it('pings the target on behalf of the origin, with a relay timeout', () => {
    const { ds, ping } = relay()
    expect(ping.to).toEqual(target)
    expect(ping.message).toMatchObject({ targetUid: target.uid })
    expect(ping.seq).not.toBe(77)
    expect(started(ds, `relay:${ping.seq}`)).toEqual([SWIM_DEFAULTS.pingTimeout * SWIM_DEFAULTS.indirectTimeoutFactor])
  })

  it("forwards the target's ack to the origin with the origin's seq", () => {
    const { h, ping } = relay()
    const ds = h.receive(ack(ping.seq, target))
    const acks = sends(ds, 'ack')
    expect(acks).toHaveLength(1)
    expect(acks[0]!.to).toEqual(origin)
    expect(acks[0]!.message).toMatchObject({ type: 'ack', seq: 77, from: h.self })
    expect(ds).toContainEqual({ type: 'cancelTimer', id: `relay:${ping.seq}` })
    expect(sends(ds, 'nack')).toEqual([])
    expect(h.instance.health.score).toBe(1)
  })

  it('nacks the origin when the target does not answer in time', () => {
    const { h, ping } = relay()
    const ds = h.fire(`relay:${ping.seq}`)
    const nacks = sends(ds, 'nack')
    expect(nacks).toHaveLength(1)
    expect(nacks[0]!.to).toEqual(origin)
    expect(nacks[0]!.message).toMatchObject({ type: 'nack', seq: 77, from: h.self })
    // A late ack is not forwarded any more.
    expect(sends(h.receive(ack(ping.seq, target)), 'ack')).toEqual([])
    expect(h.instance.health.score).toBe(1)
  })
})

// ── suspicion ────────────────────────────────────────────────────────────────

describe('suspicion timeout', () => {
  const { suspicionMin: min, suspicionMax: max, confirmations: k, probeInterval } = SWIM_DEFAULTS

  it('follows the Lifeguard formula with the defaults (min 3000, max 9000, K 3)', () => {
    expect([min, max, k]).toEqual([3000, 9000, 3])
    expect(suspicionTimeout(0, min, max, k)).toBe(9000)
    expect(suspicionTimeout(1, min, max, k)).toBe(6000)
    expect(suspicionTimeout(2, min, max, k)).toBe(4245)
    expect(suspicionTimeout(3, min, max, k)).toBe(3000)
    expect(suspicionTimeout(4, min, max, k)).toBe(3000)
    expect(suspicionTimeout(100, min, max, k)).toBe(3000)
    // Degenerate settings: the minimum.
    expect(suspicionTimeout(0, 3000, 3000, 3)).toBe(3000)
    expect(suspicionTimeout(0, 3000, 9000, 0)).toBe(3000)
  })

  const d = nodeOf(4)
  const dKey = nodeKey(d)
  const accusers = [nodeOf(1), nodeOf(2), nodeOf(3), nodeOf(5)]

  /** An instance that is not started (no probing), told at t0 that d is suspect, confirmed by `c` others. */
  function suspected(c: number, t0 = 1000) {
    const h = new Harness({ others: 5 })
    h.now = t0
    const ds = h.receive(gossip(accusers[0]!, [accuse('suspect', d, 0, accusers[0]!)]))
    expect(changes(ds).map((x) => x.member.status)).toEqual(['suspect'])
    for (let i = 1; i <= c; i++) h.receive(gossip(accusers[i]!, [accuse('suspect', d, 0, accusers[i]!)]))
    return h
  }

  const deadAt = (h: Harness) => h.changesAbout(d).find((c) => c.status === 'dead')?.time

  it.each([0, 1, 2, 3])('with C = %i confirmations, the suspicion timer runs the formula from the first report', (c) => {
    const h = suspected(c)
    expect(h.timers.get(`suspect:${dKey}`)).toBe(1000 + suspicionTimeout(c, min, max, k))
  })

  it('with C < K, the timer starts a self-check (2 periods) before the death; with C ≥ K it declares dead at once', () => {
    for (const c of [0, 1, 2, 3]) {
      const h = suspected(c)
      const ds = h.fire(`suspect:${dKey}`)
      if (c < k) {
        expect(changes(ds), `C=${c}`).toEqual([])
        expect(started(ds, `suspect:${dKey}`)).toEqual([2 * probeInterval])
        h.fire(`suspect:${dKey}`)
        expect(deadAt(h), `C=${c}`).toBe(1000 + suspicionTimeout(c, min, max, k) + 2 * probeInterval)
      } else {
        expect(deadAt(h)).toBe(1000 + suspicionTimeout(c, min, max, k))
      }
      expect(h.status(d)).toBe('dead')
      expect(h.changesAbout(d).map((x) => x.status)).toEqual(['suspect', 'dead'])
    }
  })

  it('a lone accuser: suspicion to death takes exactly the C = 0 timeout plus the self-check', () => {
    const h = suspected(0, 0)
    h.runUntil(60_000)
    const suspectAt = h.changesAbout(d).find((x) => x.status === 'suspect')!.time
    expect(deadAt(h)! - suspectAt).toBe(suspicionTimeout(0, min, max, k) + 2 * probeInterval)
  })

  it('repeated accusations by the same members do not shorten it', () => {
    const h = suspected(1, 0) // accuser 1, confirmed by 2: 6000
    for (let t = 500; t <= 3000; t += 500) {
      h.advance(500)
      expect(started(h.receive(gossip(accusers[0]!, [accuse('suspect', d, 0, accusers[0]!)])), `suspect:${dKey}`)).toEqual([])
      expect(started(h.receive(gossip(accusers[1]!, [accuse('suspect', d, 0, accusers[1]!)])), `suspect:${dKey}`)).toEqual([])
      // Relayed by someone else, naming the same accuser: still the same accusation.
      expect(started(h.receive(gossip(accusers[3]!, [accuse('suspect', d, 0, accusers[1]!)])), `suspect:${dKey}`)).toEqual([])
    }
    expect(h.timers.get(`suspect:${dKey}`)).toBe(6000)
    h.runUntil(60_000)
    expect(deadAt(h)).toBe(6000 + 2 * probeInterval)
  })

  it('a confirmation that arrives after the shrunk timeout has passed declares dead at once', () => {
    const h = suspected(0, 0)
    h.advance(5000)
    h.receive(gossip(accusers[1]!, [accuse('suspect', d, 0, accusers[1]!)])) // C=1: 6000, not yet
    expect(h.status(d)).toBe('suspect')
    const ds = h.receive(gossip(accusers[2]!, [accuse('suspect', d, 0, accusers[2]!)])) // C=2: 4245 < 5000
    expect(changes(ds).map((x) => x.member.status)).toEqual(['dead'])
  })

  it('a suspicion at an older incarnation is ignored, and does not confirm a newer one', () => {
    const h = new Harness({ others: 5, members: [nodeOf(1), nodeOf(2), nodeOf(3), nodeOf(5)].map((n) => aliveState(n)).concat([aliveState(d, 2)]) })
    let ds = h.receive(gossip(accusers[0]!, [accuse('suspect', d, 1, accusers[0]!)]))
    expect(changes(ds)).toEqual([])
    expect(h.instance.member(d)).toMatchObject({ status: 'alive', incarnation: 2 })
    expect(h.timers.has(`suspect:${dKey}`)).toBe(false)

    ds = h.receive(gossip(accusers[0]!, [accuse('suspect', d, 2, accusers[0]!)]))
    expect(changes(ds).map((x) => x.member.status)).toEqual(['suspect'])
    const deadline = h.timers.get(`suspect:${dKey}`)
    expect(deadline).toBe(9000)
    ds = h.receive(gossip(accusers[1]!, [accuse('suspect', d, 1, accusers[1]!)]))
    expect(started(ds, `suspect:${dKey}`)).toEqual([])
    expect(h.timers.get(`suspect:${dKey}`)).toBe(deadline)
  })

  it('a suspicion of an unknown member is ignored', () => {
    const h = new Harness({ others: 2 })
    const ds = h.receive(gossip(nodeOf(1), [accuse('suspect', nodeOf(9), 0, nodeOf(1))]))
    expect(ds.filter((x) => x.type === 'changed' || x.type === 'startTimer')).toEqual([])
    expect(h.instance.member(nodeOf(9))).toBeUndefined()
  })

  describe('self-check of an under-confirmed suspicion (started instance)', () => {
    // self + a, b, c, d; at t0, a accuses d. Random confirmation probes are off, so only the round
    // robin and the self-check probe d. a, b and c ack every ping; helpers nack what they cannot
    // reach. Before t0, d acks too; after t0 it behaves as `mode` says.
    const settings: SwimSettings = { confirmationProbes: 0 }
    const a = nodeOf(1)
    const t0 = 5000

    function run(mode: 'refutes' | 'silent' | 'stream-only') {
      const h = new Harness({ others: 4, settings, seed: 3 })
      h.start()
      let dIncarnation = 0
      const respond: Responder = (x, hh) => {
        const afterT0 = hh.now > t0
        if (x.type === 'streamPing') {
          if (x.to.uid === d.uid && afterT0 && mode === 'stream-only') hh.take(hh.instance.onStreamAck(ack(x.message.seq, d)))
          return
        }
        if (x.type !== 'send') return
        const m = x.message
        if (m.type === 'pingReq') {
          const helper = hh.others.find((n) => n.host === x.to.host)!
          hh.take(hh.instance.onMessage(nack(m.seq, helper)))
          return
        }
        if (m.type !== 'ping') return
        if (m.targetUid !== d.uid) return void hh.take(hh.instance.onMessage(ack(m.seq, hh.others.find((n) => n.uid === m.targetUid)!)))
        if (afterT0 && mode !== 'refutes') return // silent, or UDP to d broken (TCP works)
        // A live d answers; if the ping tells it that it is suspected, its ack carries the refutation.
        const accused = m.updates.find((u) => u.node.uid === d.uid && u.status === 'suspect')
        if (accused) dIncarnation = Math.max(dIncarnation, accused.incarnation + 1)
        hh.take(hh.instance.onMessage(ack(m.seq, d, accused ? [aliveU(d, dIncarnation)] : [])))
      }
      h.runUntil(t0, respond)
      h.take(h.instance.onMessage(gossip(a, [accuse('suspect', d, 0, a)])))
      h.runUntil(t0 + 60_000, respond)
      return h
    }

    /** When the suspicion timer started the self-check (re-armed for 2 periods), and the first ping after it. */
    function selfCheck(h: Harness) {
      const armed = h.log.find((e) => e.d.type === 'startTimer' && e.d.id === `suspect:${dKey}` && e.d.delay === 2 * probeInterval)
      if (!armed) return undefined
      const ping = h.log.find((e) => e.time > armed.time && e.d.type === 'send' && e.d.message.type === 'ping')
      return { at: armed.time, ping: ping?.d.type === 'send' ? ping.d.message : undefined }
    }

    it('a suspect that can hear the buddy ping refutes, and is never declared dead', () => {
      const h = run('refutes')
      expect(h.status(d)).toBe('alive')
      expect(h.instance.member(d)!.incarnation).toBe(1)
      expect(h.changesAbout(d).map((x) => x.status)).toEqual(['suspect', 'alive'])
    })

    it('a silent suspect is self-checked with the suspicion attached, then declared dead within 2 periods', () => {
      const h = run('silent')
      const check = selfCheck(h)
      expect(check).toBeDefined()
      // The next probe after the timer targets the suspect, and carries the suspicion so it can refute.
      expect(check!.ping).toMatchObject({ type: 'ping', targetUid: d.uid })
      expect(hasUpdate(check!.ping!, { node: d, status: 'suspect', incarnation: 0 })).toBe(true)
      const dead = h.changesAbout(d).find((x) => x.status === 'dead')
      expect(dead).toBeDefined()
      expect(dead!.time).toBeGreaterThan(check!.at)
      expect(dead!.time).toBeLessThanOrEqual(check!.at + 2 * probeInterval)
      // d went silent at once, so self's own failed probes confirmed it (C = 1, 6000); never later
      // than the lone-accuser bound.
      expect(dead!.time - t0).toBeGreaterThanOrEqual(suspicionTimeout(1, min, max, k))
      expect(dead!.time - t0).toBeLessThanOrEqual(suspicionTimeout(0, min, max, k) + 2 * probeInterval)
    })

    it('a suspect that acks the self-check probe (over the TCP fallback) is not declared dead', () => {
      const h = run('stream-only')
      // Every probe of d was acked over the stream, so self never confirmed the suspicion (C = 0).
      expect(h.instance.stats.failedProbes).toBe(0)
      const check = selfCheck(h)
      expect(check).toBeDefined()
      expect(check!.ping).toMatchObject({ type: 'ping', targetUid: d.uid })
      // Suspicion.ts: "this node first probes the suspect itself … and declares it dead only if
      // that probe fails too." This probe was acked.
      expect(h.changesAbout(d).map((x) => x.status)).not.toContain('dead')
    })
  })
})

// ── local health ─────────────────────────────────────────────────────────────

describe('local health (LHM)', () => {
  const { probeInterval, pingTimeout, stallThreshold, maxLocalHealth } = SWIM_DEFAULTS

  it('+1 on a failed probe with no helpers; the next period and ping timeout are scaled by 1 + LHM', () => {
    const h = new Harness({ others: 1 })
    h.start()
    const { seq } = onePing(h.fire('probe'))
    const ds = h.fire(`ping:${seq}`)
    expect(sends(ds, 'pingReq')).toEqual([])
    expect(h.instance.health.score).toBe(0)
    const next = h.fire('probe')
    expect(h.instance.health.score).toBe(1)
    expect(started(next, 'probe')).toEqual([probeInterval * 2])
    const again = onePing(next)
    expect(started(next, `ping:${again.seq}`)).toEqual([pingTimeout * 2])
  })

  it('+(expected − received nacks) on a failed probe with helpers', () => {
    for (const [received, delta] of [
      [0, 3],
      [1, 2],
      [2, 1],
    ] as const) {
      const h = new Harness({ others: 4, settings: { maxLocalHealth: 8 } })
      h.start()
      const { seq } = onePing(h.fire('probe'))
      const helpers = sends(h.fire(`ping:${seq}`), 'pingReq').map((r) => h.others.find((n) => n.host === r.to.host)!)
      for (let i = 0; i < received; i++) h.receive(nack(seq, helpers[i]!))
      h.receive(nack(seq + 1, helpers[2]!)) // another probe's nack does not count
      const next = h.fire('probe')
      expect(h.instance.health.score, `${received} nacks`).toBe(delta)
      expect(started(next, 'probe')).toEqual([probeInterval * (1 + delta)])
    }
  })

  it('−1 on a successful probe, never below 0', () => {
    const h = new Harness({ others: 4, settings: { maxLocalHealth: 8 } })
    h.start()
    h.take(h.instance.onStall(1000))
    h.take(h.instance.onStall(1000))
    expect(h.instance.health.score).toBe(2)
    let p = onePing(h.fire('probe'))
    for (const expected of [1, 0, 0]) {
      h.receive(ack(p.seq, p.to))
      expect(h.instance.health.score).toBe(expected)
      const next = h.fire('probe')
      expect(started(next, 'probe')).toEqual([probeInterval * (1 + expected)])
      p = onePing(next)
    }
  })

  it('+1 on refuting a suspicion of itself', () => {
    const h = new Harness({ others: 2 })
    h.receive(gossip(nodeOf(1), [accuse('suspect', h.self, 0, nodeOf(1))]))
    expect(h.instance.health.score).toBe(1)
  })

  it('+1 on a reported stall longer than stallThreshold, not on a shorter one', () => {
    const h = new Harness({ others: 2 })
    h.take(h.instance.onStall(stallThreshold))
    expect(h.instance.health.score).toBe(0)
    h.take(h.instance.onStall(stallThreshold + 1))
    expect(h.instance.health.score).toBe(1)
    expect(h.instance.stats.stalls).toBe(1)
  })

  it('+1 when a timer fires later than stallThreshold past its deadline', () => {
    const onTime = new Harness({ others: 2 })
    onTime.start()
    onTime.fire('probe', stallThreshold)
    expect(onTime.instance.health.score).toBe(0)

    const late = new Harness({ others: 2 })
    late.start()
    late.fire('probe', stallThreshold + 1)
    expect(late.instance.health.score).toBe(1)
    expect(late.instance.stats.stalls).toBe(1)
  })

  it('a probe that failed while this node stalled is inconclusive: no suspicion, no failure penalty', () => {
    const h = new Harness({ others: 1 })
    h.start()
    const { to, seq } = onePing(h.fire('probe'))
    h.fire(`ping:${seq}`)
    const ds = h.fire('probe', 2000)
    expect(changes(ds)).toEqual([])
    expect(h.status(to)).toBe('alive')
    expect(h.instance.stats.inconclusiveProbes).toBe(1)
    expect(h.instance.health.score).toBe(1) // the stall only
  })

  it('is clamped to [0, maxLocalHealth], and the period to probeInterval · (1 + max)', () => {
    const h = new Harness({ others: 2 })
    h.start()
    for (let i = 0; i < 3 * maxLocalHealth; i++) h.take(h.instance.onStall(10_000))
    expect(h.instance.health.score).toBe(maxLocalHealth)
    const ds = h.fire('probe')
    expect(started(ds, 'probe')).toEqual([probeInterval * (1 + maxLocalHealth)])
  })

  it('a suspicion timeout is not scaled by LHM (a minority must still conclude)', () => {
    const h = new Harness({ others: 4 })
    h.take(h.instance.onStall(1000))
    expect(h.instance.health.score).toBe(1)
    h.receive(gossip(nodeOf(1), [accuse('suspect', nodeOf(2), 0, nodeOf(1))]))
    expect(h.timers.get(`suspect:${nodeKey(nodeOf(2))}`)).toBe(SWIM_DEFAULTS.suspicionMax)
  })
})

// ── refutation ───────────────────────────────────────────────────────────────

describe('refutation', () => {
  it('a suspicion of itself at incarnation N raises it to N + 1, announced in the very next message', () => {
    const h = new Harness({ others: 3 })
    h.start()
    h.take(h.instance.setMeta(Uint8Array.of(1))) // incarnation 1
    h.take(h.instance.setMeta(Uint8Array.of(2))) // incarnation 2
    expect(h.instance.incarnation).toBe(2)
    // A buddy ping: the suspicion arrives on the ping, the refutation leaves on the ack.
    const ds = h.receive({ type: 'ping', seq: 5, from: nodeOf(1), targetUid: h.self.uid, updates: [accuse('suspect', h.self, 2, nodeOf(1))] })
    expect(h.instance.incarnation).toBe(3)
    expect(h.instance.stats.refutations).toBe(1)
    const acks = sends(ds, 'ack')
    expect(acks).toHaveLength(1)
    expect(acks[0]!.message.updates).toContainEqual({ status: 'alive', node: h.self, incarnation: 3, meta: Uint8Array.of(2) })
    expect(changes(ds)).toEqual([])
  })

  it('the refutation also goes out on the next gossip', () => {
    const h = new Harness({ others: 3 })
    h.start()
    h.receive(gossip(nodeOf(1), [accuse('suspect', h.self, 0, nodeOf(1))]))
    const out = sends(h.fire('gossip'), 'gossip')
    expect(out.length).toBeGreaterThan(0)
    for (const g of out) expect(hasUpdate(g.message, { node: h.self, status: 'alive', incarnation: 1 })).toBe(true)
  })

  it('an older suspicion does not raise the incarnation', () => {
    const h = new Harness({ others: 3 })
    h.receive(gossip(nodeOf(1), [accuse('suspect', h.self, 4, nodeOf(1))]))
    expect(h.instance.incarnation).toBe(5)
    for (const old of [0, 3, 4]) {
      h.receive(gossip(nodeOf(2), [accuse('suspect', h.self, old, nodeOf(2))]))
      expect(h.instance.incarnation).toBe(5)
    }
    expect(h.instance.stats.refutations).toBe(1)
    expect(h.instance.health.score).toBe(1)
  })

  it('dead(self) is refuted too (dead is not absorbing)', () => {
    const h = new Harness({ others: 3 })
    const ds = h.receive({ type: 'ping', seq: 9, from: nodeOf(2), targetUid: h.self.uid, updates: [accuse('dead', h.self, 3, nodeOf(2))] })
    expect(h.instance.incarnation).toBe(4)
    expect(hasUpdate(sends(ds, 'ack')[0]!.message, { node: h.self, status: 'alive', incarnation: 4 })).toBe(true)
  })

  it('alive(self) gossip never changes the incarnation', () => {
    const h = new Harness({ others: 3 })
    h.receive(gossip(nodeOf(1), [aliveU(h.self, 7)]))
    expect(h.instance.incarnation).toBe(0)
  })
})

// ── dissemination ────────────────────────────────────────────────────────────

describe('Dissemination queue', () => {
  const u = (i: number, incarnation = 0, status: 'alive' | 'suspect' = 'alive'): Update =>
    status === 'alive' ? aliveU(nodeOf(i), incarnation) : accuse('suspect', nodeOf(i), incarnation, nodeOf(99))
  const key = (i: number) => nodeKey(nodeOf(i))

  it('a newer update about a member replaces the older one', () => {
    const q = new Dissemination(1 << 20)
    q.enqueue(key(1), u(1, 0))
    q.enqueue(key(2), u(2, 0))
    q.enqueue(key(1), u(1, 1, 'suspect'))
    expect(q.length).toBe(2)
    expect(q.bytes).toBe(updateSize(u(1, 1, 'suspect')) + updateSize(u(2, 0)))
    const out = q.take(10_000, 10, 255)
    expect(out).toHaveLength(2)
    expect(out).toContainEqual(u(1, 1, 'suspect'))
    expect(out).not.toContainEqual(u(1, 0))
  })

  it('sends the least-transmitted updates first (newest first among equals)', () => {
    const q = new Dissemination(1 << 20)
    for (let i = 1; i <= 3; i++) q.enqueue(key(i), u(i))
    expect(q.take(10_000, 10, 1)).toEqual([u(3)])
    expect(q.take(10_000, 10, 1)).toEqual([u(2)])
    expect(q.take(10_000, 10, 1)).toEqual([u(1)])
    // All sent once: newest first again.
    expect(q.take(10_000, 10, 2)).toEqual([u(3), u(2)])
    q.enqueue(key(4), u(4))
    expect(q.take(10_000, 10, 2)).toEqual([u(4), u(1)])
  })

  it('sends each update at most `limit` times', () => {
    const q = new Dissemination(1 << 20)
    for (let i = 1; i <= 5; i++) q.enqueue(key(i), u(i))
    const counts = new Map<string, number>()
    for (let round = 0; round < 20; round++) for (const x of q.take(10_000, 3, 2)) counts.set(nodeKey(x.node), (counts.get(nodeKey(x.node)) ?? 0) + 1)
    expect([...counts.values()]).toEqual([3, 3, 3, 3, 3])
    expect(q.length).toBe(0)
    expect(q.bytes).toBe(0)
  })

  it('fills up to the byte budget and no further, skipping a given member', () => {
    const q = new Dissemination(1 << 20)
    // Hosts 10.0.0.100 to 10.0.0.149: all updates the same size.
    for (let i = 100; i < 150; i++) q.enqueue(key(i), u(i))
    const size = updateSize(u(100))
    for (const budget of [0, 19, size - 1, size, 2 * size + 5, 10 * size, 333]) {
      const out = q.take(budget, 1000, 255)
      const bytes = out.reduce((s, x) => s + updateSize(x), 0)
      expect(bytes).toBeLessThanOrEqual(budget)
      expect(out.length).toBe(budget < 20 ? 0 : Math.floor(budget / size))
    }
    expect(q.take(10_000, 1000, 7)).toHaveLength(7)
    const skipped = q.take(10 * size, 1000, 255, key(149))
    expect(skipped).toHaveLength(10)
    expect(skipped.map((x) => x.node.uid)).not.toContain(nodeOf(149).uid)
  })

  it('is bounded in bytes: over the bound it drops the most-sent, then the oldest, down to 90%', () => {
    const size = updateSize(u(1))
    const q = new Dissemination(3 * size)
    q.enqueue(key(1), u(1))
    q.enqueue(key(2), u(2))
    q.take(size, 10, 1) // u2 sent once
    q.enqueue(key(3), u(3))
    expect(q.dropped).toBe(0)
    q.enqueue(key(4), u(4))
    // 4 > 3 entries: shed to ≤ 2.7 entries' bytes, so two go: u2 (most sent), then u1 (oldest).
    expect(q.dropped).toBe(2)
    expect(q.peek(key(2))).toBeUndefined()
    expect(q.peek(key(1))).toBeUndefined()
    expect(q.peek(key(4))).toBeDefined()
    expect(q.bytes).toBeLessThanOrEqual(0.9 * 3 * size)
  })
})

describe('datagram size', () => {
  it('never exceeds maxDatagram, even with 1,000 updates pending, and sends each at most retransmitLimit times', () => {
    const h = new Harness({ others: 4, seed: 11 })
    h.start()
    const meta = new Uint8Array(60).fill(7)
    const fresh = Array.from({ length: 1000 }, (_, i) => nodeOf(100 + i))
    for (let i = 0; i < fresh.length; i += 250)
      h.receive(
        gossip(
          nodeOf(1),
          fresh.slice(i, i + 250).map((n) => aliveU(n, 0, meta)),
        ),
      )
    expect(h.instance.queueLength).toBeGreaterThanOrEqual(1000)
    h.runUntil(300_000, ackEveryPing())

    const out = h.log.flatMap((e) => (e.d.type === 'send' ? [e.d.message] : []))
    expect(out.length).toBeGreaterThan(500)
    let largest = 0
    const sent = new Map<string, number>()
    for (const m of out) {
      const size = encodeMessage(m).length + TAG_BYTES
      largest = Math.max(largest, size)
      expect(size).toBeLessThanOrEqual(h.instance.settings.maxDatagram)
      expect(m.updates.length).toBeLessThanOrEqual(255)
      for (const x of m.updates) if (x.status === 'alive' && x.node.host !== h.self.host) sent.set(nodeKey(x.node), (sent.get(nodeKey(x.node)) ?? 0) + 1)
    }
    // The budget was actually used: datagrams were filled close to the limit.
    expect(largest).toBeGreaterThan(h.instance.settings.maxDatagram - 100)
    const limit = retransmitLimit(SWIM_DEFAULTS.retransmitMult, 1005)
    for (const n of fresh) expect(sent.get(nodeKey(n)), n.host).toBe(limit)
    expect(h.instance.queueLength).toBe(0)
  })
})

// ── leaving, restarts, merges ────────────────────────────────────────────────

describe('graceful leave', () => {
  it('leave() raises the incarnation and gossips left at once; then it stops probing', () => {
    const h = new Harness({ others: 4 })
    h.start()
    const ds = h.take(h.instance.leave())
    expect(h.instance.incarnation).toBe(1)
    expect(h.instance.leaving).toBe(true)
    const g = sends(ds, 'gossip')
    expect(g.length).toBe(4)
    for (const s of g) expect(s.message.updates).toContainEqual({ status: 'left', node: h.self, incarnation: 1, by: h.self.uid })
    expect(sends(h.fire('probe'), 'ping')).toEqual([])
    expect(h.timers.has('probe')).toBe(false)
  })

  it('a receiver marks the leaver left directly, never suspect, and nothing older overrides it', () => {
    const leaver = nodeOf(3)
    const h = new Harness({ others: 4 })
    h.start()
    const ds = h.receive(gossip(leaver, [{ status: 'left', node: leaver, incarnation: 1, by: leaver.uid }]))
    expect(changes(ds)).toEqual([{ type: 'changed', member: { node: leaver, status: 'left', incarnation: 1, meta: new Uint8Array(0) }, previous: 'alive' }])
    h.receive(gossip(nodeOf(1), [accuse('suspect', leaver, 1, nodeOf(1)), accuse('dead', leaver, 1, nodeOf(1)), aliveU(leaver, 1), aliveU(leaver, 0)]))
    h.runUntil(60_000, ackEveryPing())
    expect(h.changesAbout(leaver).map((x) => x.status)).toEqual(['left'])
    expect(h.instance.liveCount).toBe(3)
  })
})

describe('restart with a new uid on the same address', () => {
  it('pings the new uid at once; its answer marks the old uid dead, and stale gossip does not resurrect the old one', () => {
    const old = nodeOf(2)
    const fresh = nodeOf(2, 1)
    expect(fresh.host).toBe(old.host)
    const h = new Harness({ others: 4, members: [nodeOf(1), nodeOf(3), nodeOf(4)].map((n) => aliveState(n)).concat([aliveState(old, 3)]) })
    h.start()
    const ds = h.receive(gossip(fresh, [aliveU(fresh, 0)]))
    // Its own word is not enough (the datagram may be a replay): added, and pinged with a fresh seq.
    expect(changes(ds).map((c) => [c.member.node.uid, c.member.status, c.previous])).toEqual([[fresh.uid, 'alive', undefined]])
    expect(h.status(old)).toBe('alive')
    const verify = onePing(ds)
    expect(verify.to).toEqual(fresh)
    expect(started(ds, `verify:${verify.seq}`)).toEqual([SWIM_DEFAULTS.pingTimeout])

    const answered = h.receive(ack(verify.seq, fresh))
    expect(changes(answered).map((c) => [c.member.node.uid, c.member.status, c.previous])).toEqual([[old.uid, 'dead', 'alive']])
    expect(answered).toContainEqual({ type: 'cancelTimer', id: `verify:${verify.seq}` })
    expect(h.instance.member(old)).toMatchObject({ status: 'dead', incarnation: 3 })
    expect(h.instance.liveCount).toBe(4)

    const stale = h.receive(gossip(nodeOf(1), [aliveU(old, 3), aliveU(old, 2), accuse('suspect', old, 3, nodeOf(1))]))
    expect(changes(stale)).toEqual([])
    expect(h.status(old)).toBe('dead')
    expect(h.status(fresh)).toBe('alive')
  })

  it('a new uid that misses the ping at once is probed next period (helpers and TCP), and its ack then replaces the old uid', () => {
    const old = nodeOf(2)
    const fresh = nodeOf(2, 1)
    const h = new Harness({ others: 4, members: [nodeOf(1), nodeOf(3), nodeOf(4)].map((n) => aliveState(n)).concat([aliveState(old)]) })
    h.start()
    const first = onePing(h.fire('probe'))
    h.receive(ack(first.seq, first.to))
    const verify = onePing(h.receive(gossip(fresh, [aliveU(fresh, 0)])))
    h.fire(`verify:${verify.seq}`)
    const probe = onePing(h.fire('probe'))
    expect(probe.to).toEqual(fresh)
    // The stream ping's ack (the TCP fallback) counts like a datagram's.
    h.fire(`ping:${probe.seq}`)
    const ds = h.take(h.instance.onStreamAck(ack(probe.seq, fresh)))
    expect(changes(ds).map((c) => [c.member.node.uid, c.member.status])).toEqual([[old.uid, 'dead']])
    expect(h.status(fresh)).toBe('alive')
  })

  it('a ping to the old uid is not answered by the new process', () => {
    const h = new Harness({ others: 2 })
    const ds = h.receive({ type: 'ping', seq: 1, from: nodeOf(1), targetUid: uidOf(0, 5), updates: [] })
    expect(sends(ds)).toEqual([])
    expect(h.instance.stats.misdirected).toBe(1)
    // ANY_UID (a seed whose uid is not known yet) is answered.
    expect(sends(h.receive({ type: 'ping', seq: 2, from: nodeOf(1), targetUid: ANY_UID, updates: [] }), 'ack')).toHaveLength(1)
  })
})

describe('replayed datagrams (issue 15)', () => {
  const key = deriveKey('replay-secret')
  const capture = (ds: readonly Directive[], into: Buffer[]) => {
    for (const d of sends(ds)) into.push(seal(key, encodeMessage(d.message)))
  }
  const replay = (h: Harness, packet: Buffer) => h.receive(decodeMessage(packet, open(key, packet)))
  const aboutAccusing = (h: Harness, node: SwimNode) =>
    h.log.flatMap((e) => (e.d.type === 'send' ? e.d.message.updates : [])).filter((u) => nodeKey(u.node) === nodeKey(node) && u.status !== 'alive')

  it("a fresh node fed an old incarnation's captured datagrams never marks the live incarnation dead", () => {
    const old = nodeOf(2)
    const live = nodeOf(2, 1)
    // The old incarnation at work: its own alive rides its pings, acks and gossip.
    const packets: Buffer[] = []
    const x = new Harness({ self: old, members: [nodeOf(1), nodeOf(3)].map((n) => aliveState(n)) })
    capture(x.start(), packets)
    capture(x.fire('probe'), packets)
    capture(x.receive({ type: 'ping', seq: 77, from: nodeOf(1), targetUid: old.uid, updates: [aliveU(nodeOf(1))] }), packets)
    capture(x.receive({ type: 'pingReq', seq: 78, from: nodeOf(1), target: nodeOf(3), updates: [] }), packets)
    capture(x.fire('gossip'), packets)
    const decoded = packets.map((p) => decodeMessage(p, open(key, p)))
    expect(decoded.some((m) => m.updates.some((u) => u.status === 'alive' && u.node.uid === old.uid))).toBe(true)
    expect(new Set(decoded.map((m) => m.type))).toEqual(new Set(['ping', 'ack', 'gossip']))

    // A node started after the restart: it knows the live incarnation, never heard of the old one.
    const c = new Harness({ members: [nodeOf(1), live, nodeOf(3)].map((n) => aliveState(n)) })
    c.start()
    const answerLive = ackEveryPing((t) => t.uid === old.uid)
    for (let round = 0; round < 3; round++) {
      for (const p of packets) {
        for (const d of replay(c, p)) answerLive(d, c)
        expect(c.status(live)).toBe('alive')
      }
      c.runUntil(c.now + 20_000, answerLive)
    }
    expect(c.changesAbout(live)).toEqual([])
    expect(aboutAccusing(c, live)).toEqual([])
    // The replayed uid was pinged, never answered, and is dead: later replays change nothing.
    expect(c.status(old)).toBe('dead')
    const after = c.log.length
    for (const p of packets) replay(c, p)
    expect(changes(c.log.slice(after).map((e) => e.d))).toEqual([])
  })

  it('the live incarnation answering a probe settles the address at once: the replayed uid is dead', () => {
    const old = nodeOf(2)
    const live = nodeOf(2, 1)
    const c = new Harness({ members: [live].map((n) => aliveState(n)) })
    c.start()
    const probe = onePing(c.fire('probe'))
    expect(probe.to).toEqual(live)
    // The replay arrives while our ping to the live incarnation is out.
    const packet = seal(key, encodeMessage(gossip(old, [aliveU(old, 4)])))
    const verify = onePing(replay(c, packet))
    expect(verify.to).toEqual(old)
    expect(c.status(old)).toBe('alive')
    const ds = c.receive(ack(probe.seq, live))
    expect(changes(ds).map((x) => [x.member.node.uid, x.member.status])).toEqual([[old.uid, 'dead']])
    expect(c.status(old)).toBe('dead')
    expect(c.changesAbout(live)).toEqual([])
  })

  it("replays of the live incarnation's own datagrams and of old accusations change nothing", () => {
    const live = nodeOf(2)
    const c = new Harness({ members: [nodeOf(1), nodeOf(3)].map((n) => aliveState(n)).concat([aliveState(live, 1)]) })
    c.start()
    const packets = [
      // From before it refuted a suspicion at incarnation 0, and the accusations themselves.
      gossip(live, [aliveU(live, 0)]),
      gossip(nodeOf(1), [accuse('suspect', live, 0, nodeOf(1)), accuse('dead', live, 0, nodeOf(1))]),
      ack(12_345, live, [aliveU(live, 0)]),
    ].map((m) => seal(key, encodeMessage(m)))
    for (const p of packets) replay(c, p)
    expect(changes(c.log.map((e) => e.d))).toEqual([])
    expect(c.instance.member(live)).toMatchObject({ status: 'alive', incarnation: 1 })
    // An old ack never completes a probe of ours: its seq is not the one we sent.
    for (;;) {
      const probe = onePing(c.fire('probe'))
      if (probe.to.uid !== live.uid) {
        c.receive(ack(probe.seq, probe.to))
        continue
      }
      for (const p of packets) replay(c, p)
      expect(c.instance.stats.acks).toBe(c.instance.stats.probes - 1)
      break
    }
  })
})

describe('review fixes', () => {
  it('second-hand alive gossip about an old uid does not kill the current one', () => {
    const current = nodeOf(2, 1)
    const old = nodeOf(2)
    const h = new Harness({ others: 4, members: [nodeOf(1), nodeOf(3), nodeOf(4)].map((n) => aliveState(n)).concat([aliveState(current)]) })
    h.start()
    const ds = h.receive(gossip(nodeOf(1), [aliveU(old, 0)]))
    expect(changes(ds).map((c) => [c.member.node.uid, c.member.status])).toEqual([[old.uid, 'alive']])
    expect(h.status(current)).toBe('alive')
  })

  it('a suspicion, death or leave of a member never known is not recorded', () => {
    const h = new Harness({ others: 2 })
    const ghost = nodeOf(9)
    h.receive(gossip(nodeOf(1), [accuse('suspect', ghost, 0, nodeOf(1)), accuse('dead', ghost, 0, nodeOf(1)), accuse('left', ghost, 0, ghost)]))
    h.take(h.instance.onPushPullReply({ type: 'pushPullReply', from: nodeOf(1), join: false, members: [accuse('dead', nodeOf(8), 4, nodeOf(1))] }))
    expect(h.instance.members().map((m) => m.node.uid)).toEqual([h.self.uid, nodeOf(1).uid, nodeOf(2).uid])
  })

  it('an ack with the probe seq from anyone but the target or a helper asked does not count', () => {
    const h = new Harness({ others: 4 })
    h.start()
    const { to, seq } = onePing(h.fire('probe'))
    const stranger = h.others.find((n) => n.uid !== to.uid)!
    h.receive(ack(seq, stranger))
    expect(h.instance.stats.acks).toBe(0)
    h.receive(ack(seq, to))
    expect(h.instance.stats.acks).toBe(1)
  })

  it('re-gossiped suspicions keep their accuser: no confirmation is made up', () => {
    const d = nodeOf(3)
    const h = new Harness({ others: 4 })
    h.start()
    h.receive(gossip(nodeOf(1), [accuse('suspect', d, 1, nodeOf(1))]))
    // A stale accusation at an older incarnation from member 2: we answer with what we hold.
    const ds = h.receive(gossip(nodeOf(2), [accuse('suspect', d, 0, nodeOf(2))]))
    const out = [...sends(ds), ...sends(h.fire('gossip'))].flatMap((x) => x.message.updates).filter((u) => u.node.uid === d.uid)
    expect(out.length).toBeGreaterThan(0)
    for (const u of out) expect(u).toMatchObject({ status: 'suspect', incarnation: 1, by: nodeOf(1).uid })
    const state = h.instance.onPushPull({ type: 'pushPull', from: nodeOf(4), join: false, members: [] }).reply
    expect(state.members.find((u) => u.node.uid === d.uid)).toMatchObject({ status: 'suspect', by: nodeOf(1).uid })
  })

  it('leave() tells every live member directly, up to 64, without using up the retransmit budget', () => {
    const h = new Harness({ others: 40 })
    h.start()
    const g = sends(h.take(h.instance.leave()), 'gossip')
    expect(new Set(g.map((x) => x.to.host)).size).toBe(40)
    for (const x of g) expect(x.message.updates[0]).toMatchObject({ status: 'left', node: h.self })
  })

  it('refuses metadata above 512 bytes and a malformed uid', () => {
    expect(() => new SwimInstance({ self: nodeOf(0), meta: new Uint8Array(MAX_META_BYTES + 1), now: () => 0, random: Math.random })).toThrow(/exceeds 512/)
    expect(() => new SwimInstance({ self: { ...nodeOf(0), uid: 'ABCDEFABCDEFABCD' }, now: () => 0, random: Math.random })).toThrow(/16 lower-case hex/)
    const h = new Harness({ others: 1 })
    expect(() => h.instance.setMeta(new Uint8Array(600))).toThrow(/exceeds 512/)
  })
})

describe('partition merge rule', () => {
  const d = nodeOf(3)
  const fullState = (type: PushPull['type'], members: Update[]): PushPull => ({ type, from: nodeOf(1), join: false, members })

  it('a push-pull reply saying dead about a member we see alive makes it suspect, not dead', () => {
    const h = new Harness({ others: 4 })
    h.start()
    const ds = h.take(h.instance.onPushPullReply(fullState('pushPullReply', [aliveU(nodeOf(1)), accuse('dead', d, 0, nodeOf(1))])))
    expect(changes(ds).map((c) => [c.member.node.uid, c.member.status])).toEqual([[d.uid, 'suspect']])
    expect(h.status(d)).toBe('suspect')
    expect(h.timers.has(`suspect:${nodeKey(d)}`)).toBe(true)
  })

  it('the same for a push-pull request', () => {
    const h = new Harness({ others: 4 })
    const { directives, reply } = h.instance.onPushPull(fullState('pushPull', [accuse('dead', d, 0, nodeOf(1))]))
    h.take(directives)
    expect(h.status(d)).toBe('suspect')
    expect(reply.type).toBe('pushPullReply')
    expect(reply.members.find((u) => u.node.uid === d.uid)).toMatchObject({ status: 'suspect' })
  })

  it('while gossip (not a full-state merge) saying dead kills it', () => {
    const h = new Harness({ others: 4 })
    h.receive(gossip(nodeOf(1), [accuse('dead', d, 0, nodeOf(1))]))
    expect(h.status(d)).toBe('dead')
  })
})

// ── codec ────────────────────────────────────────────────────────────────────

describe('codec', () => {
  const a = nodeOf(1)
  const b: SwimNode = { host: 'fe80::1%eth0', port: 65535, uid: 'ffffffffffffffff' }
  const c: SwimNode = { host: 'node-7.example.internal', port: 1, uid: '0123456789abcdef' }
  const updates: Update[] = [
    aliveU(a, 0),
    aliveU(b, 0xffffffff, new Uint8Array(MAX_META_BYTES).fill(0xab)),
    accuse('suspect', c, 7, a),
    accuse('dead', a, 8, b),
    accuse('left', b, 9, b),
  ]
  const messages: Message[] = [
    { type: 'ping', seq: 1, from: a, targetUid: b.uid, updates },
    { type: 'ping', seq: 0xffffffff, from: c, targetUid: ANY_UID, updates: [] },
    { type: 'pingReq', seq: 2, from: a, target: c, updates },
    { type: 'ack', seq: 3, from: b, updates },
    { type: 'nack', seq: 4, from: c, updates: [] },
    { type: 'gossip', from: a, updates },
  ]
  const pushPulls: PushPull[] = [
    { type: 'pushPull', from: a, join: true, members: updates },
    { type: 'pushPullReply', from: b, join: false, members: updates },
    { type: 'pushPullReply', from: c, join: true, members: [] },
  ]

  // Decoded metadata is a copy (a Buffer); compare bytes, not classes.
  const plainUpdate = (u: Update): Update => (u.meta === undefined ? u : { ...u, meta: new Uint8Array(u.meta) })
  const plain = <T extends { updates: readonly Update[] } | { members: readonly Update[] }>(m: T): T =>
    'updates' in m ? { ...m, updates: m.updates.map(plainUpdate) } : { ...m, members: m.members.map(plainUpdate) }

  const reasonOf = (f: () => unknown): string => {
    try {
      f()
    } catch (e) {
      if (!(e instanceof SwimCodecError)) throw new Error(`expected a SwimCodecError, got ${String(e)}`, { cause: e })
      expect(e.reason).toMatch(/^[a-z-]+$/)
      return e.reason
    }
    throw new Error('did not throw')
  }

  it('round-trips every message type', () => {
    for (const m of messages) expect(plain(decodeMessage(encodeMessage(m)))).toEqual(m)
  })

  it('round-trips push-pull requests and replies', () => {
    for (const p of pushPulls) expect(plain(decodePushPull(encodePushPull(p), 100))).toEqual(p)
  })

  it('round-trips through seal and open', () => {
    const key = deriveKey('secret')
    for (const m of messages) {
      const packet = seal(key, encodeMessage(m))
      expect(packet.length).toBe(encodeMessage(m).length + TAG_BYTES)
      expect(plain(decodeMessage(packet, open(key, packet)))).toEqual(m)
    }
  })

  it('random bytes throw SwimCodecError, nothing else', () => {
    const random = seededRandom(42)
    const reasons = new Set<string>()
    for (let i = 0; i < 20_000; i++) {
      const buf = Buffer.alloc(Math.floor(random() * 120))
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(random() * 256)
      // Half of them with a valid header, to get past the first checks.
      if (i % 2 === 0 && buf.length >= 2) {
        buf[0] = 1
        buf[1] = 1 + (i % 5)
      }
      reasons.add(reasonOf(() => decodeMessage(buf)))
      if (i % 2 === 0 && buf.length >= 2) buf[1] = 16 + (i % 4 === 0 ? 0 : 1)
      reasons.add(reasonOf(() => decodePushPull(buf, 100)))
    }
    expect(reasons.has('version')).toBe(true)
    expect(reasons.has('truncated')).toBe(true)
  })

  it('mutated valid messages decode or throw SwimCodecError, nothing else', () => {
    const random = seededRandom(43)
    for (const m of messages) {
      const bytes = encodeMessage(m)
      for (let i = 0; i < 2000; i++) {
        const buf = Buffer.from(bytes)
        for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) buf[Math.floor(random() * buf.length)] = Math.floor(random() * 256)
        try {
          decodeMessage(buf)
        } catch (e) {
          expect(e).toBeInstanceOf(SwimCodecError)
        }
      }
    }
  })

  it('every truncated prefix of a valid message throws SwimCodecError', () => {
    for (const m of messages) {
      const bytes = encodeMessage(m)
      for (let len = 0; len < bytes.length; len++) {
        expect(reasonOf(() => decodeMessage(Buffer.from(bytes.subarray(0, len))))).toBe('truncated')
        expect(reasonOf(() => decodeMessage(bytes, len))).toBe('truncated')
      }
    }
    for (const p of pushPulls) {
      const bytes = encodePushPull(p)
      for (let len = 0; len < bytes.length; len++) expect(reasonOf(() => decodePushPull(bytes, 100, len))).toBe('truncated')
    }
  })

  it('rejects a wrong version, an unknown type, trailing bytes', () => {
    const bytes = encodeMessage(messages[0]!)
    for (const v of [0, 2, 255]) {
      const bad = Buffer.from(bytes)
      bad[0] = v
      expect(reasonOf(() => decodeMessage(bad))).toBe('version')
    }
    for (const t of [0, 6, 16, 17, 255]) {
      const bad = Buffer.from(bytes)
      bad[1] = t
      expect(reasonOf(() => decodeMessage(bad))).toBe('unknown-type')
    }
    const pp = encodePushPull(pushPulls[0]!)
    const badPp = Buffer.from(pp)
    badPp[1] = 1
    expect(reasonOf(() => decodePushPull(badPp, 100))).toBe('unknown-type')
    expect(reasonOf(() => decodeMessage(Buffer.concat([bytes, Buffer.of(0)])))).toBe('trailing-bytes')
    expect(reasonOf(() => decodePushPull(Buffer.concat([pp, Buffer.of(0)]), 100))).toBe('trailing-bytes')
  })

  it('rejects unknown status codes', () => {
    const m: Message = { type: 'gossip', from: a, updates: [accuse('dead', c, 1, a)] }
    const bytes = encodeMessage(m)
    // gossip: version, type, from node, count, then the first update's status byte.
    const statusAt = 2 + 1 + Buffer.byteLength(a.host) + 2 + 8 + 1
    expect(bytes[statusAt]).toBe(2)
    for (const code of [4, 5, 127, 255]) {
      const bad = Buffer.from(bytes)
      bad[statusAt] = code
      expect(reasonOf(() => decodeMessage(bad))).toBe('bad-update')
    }
  })

  it('rejects metadata longer than 512 bytes, accepts 512', () => {
    const ok: Message = { type: 'gossip', from: a, updates: [aliveU(c, 1, new Uint8Array(MAX_META_BYTES))] }
    expect(plain(decodeMessage(encodeMessage(ok)))).toEqual(ok)
    for (const len of [MAX_META_BYTES + 1, 4096, 65535]) {
      const bad: Message = { type: 'gossip', from: a, updates: [aliveU(c, 1, new Uint8Array(len))] }
      expect(reasonOf(() => decodeMessage(encodeMessage(bad)))).toBe('bad-update')
    }
  })

  it('rejects bad nodes (port 0, a host that is not a host name) and too many members', () => {
    expect(reasonOf(() => decodeMessage(encodeMessage({ type: 'gossip', from: { ...a, port: 0 }, updates: [] })))).toBe('bad-node')
    expect(reasonOf(() => decodeMessage(encodeMessage({ type: 'gossip', from: { ...a, host: 'a b' }, updates: [] })))).toBe('bad-node')
    expect(reasonOf(() => decodeMessage(encodeMessage({ type: 'gossip', from: { ...a, host: '' }, updates: [] })))).toBe('bad-node')
    expect(reasonOf(() => decodePushPull(encodePushPull(pushPulls[0]!), updates.length - 1))).toBe('bad-update')
  })

  it("open() rejects any tampered byte, a wrong key and another cluster's name with reason auth", () => {
    const key = deriveKey('secret')
    const packet = seal(key, encodeMessage(messages[2]!))
    for (let i = 0; i < packet.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const bad = Buffer.from(packet)
        bad[i]! ^= mask
        expect(
          reasonOf(() => open(key, bad)),
          `byte ${i}`,
        ).toBe('auth')
      }
    }
    expect(reasonOf(() => open(deriveKey('other'), packet))).toBe('auth')
    expect(reasonOf(() => open(deriveKey(undefined), packet))).toBe('auth')
    // The default cluster's key is the one from before cluster names (older nodes interoperate).
    expect(deriveKey('secret', 'shoal').equals(createHash('sha256').update('shoal/swim/v1|').update('secret').digest())).toBe(true)
    // Another cluster's name, with or without the same secret.
    expect(reasonOf(() => open(deriveKey('secret', 'other-cluster'), packet))).toBe('auth')
    expect(reasonOf(() => open(deriveKey(undefined, 'a'), seal(deriveKey(undefined, 'b'), encodeMessage(messages[2]!))))).toBe('auth')
    expect(reasonOf(() => open(key, packet.subarray(0, TAG_BYTES + 1)))).toBe('truncated')
    expect(open(key, packet)).toBe(packet.length - TAG_BYTES)
  })
})
