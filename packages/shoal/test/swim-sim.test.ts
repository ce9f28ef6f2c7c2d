/**
 * SWIM in the deterministic simulator: many instances on a virtual clock over a simulated network.
 * Bounds are on virtual time (generous: 2–3× what the defaults give), counts are exact where the
 * protocol guarantees them. Small clusters, so the whole file runs in a few seconds.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { EventQueue } from '../src/sim/EventQueue.ts'
import { seededRandom } from '../src/sim/Random.ts'
import { runScenario, type ScenarioOptions } from '../src/sim/Scenario.ts'
import { type ChangeRecord, Simulator } from '../src/sim/Simulator.ts'
import { nodeKey, type SwimNode, type SwimStatus } from '../src/swim/SwimNode.ts'
import { SWIM_DEFAULTS } from '../src/swim/SwimSettings.ts'

const EMPTY_TRACE = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' // sha256 of nothing

/** Runs `sim` in 250 ms steps until `pred` holds or `deadline`; returns the virtual time it first held, or null. */
function runUntil(sim: Simulator, deadline: number, pred: () => boolean): number | null {
  for (let t = sim.now; t <= deadline; t += 250) {
    sim.run(t)
    if (pred()) return sim.now
  }
  return null
}

const others = (sim: Simulator, i: number) => sim.upMembers().filter((o) => o !== i)
const everyoneSees = (sim: Simulator, subject: number, status: SwimStatus) => others(sim, subject).every((o) => sim.view(o, subject) === status)
const statusOf = (sim: Simulator, observer: number, node: SwimNode) => sim.members[observer]!.instance.member(node)?.status
const recordsAbout = (sim: Simulator, node: SwimNode) => sim.changes.filter((c) => c.subject === nodeKey(node))

/** runScenario, with every change recorded (the scenario runner turns recording off). */
function scenario(o: ScenarioOptions) {
  const records: ChangeRecord[] = []
  let sim: Simulator | undefined
  const report = runScenario({
    ...o,
    inspect: (s) => {
      sim = s
      s.listeners.push((c) => records.push(c))
      o.inspect?.(s)
    },
  })
  return { report, records, sim: sim! }
}

describe('determinism', () => {
  const script: Omit<ScenarioOptions, 'seed'> = {
    members: 20,
    duration: 60_000,
    crashes: 1,
    restarts: 1,
    loss: 0.02,
    stalls: { count: 1, duration: 1500, every: 15_000 },
  }

  it('the same seed and script give the same trace; another seed another', () => {
    const a = runScenario({ ...script, seed: 5 })
    const b = runScenario({ ...script, seed: 5 })
    const c = runScenario({ ...script, seed: 6 })
    expect(a.simulation.traceHash).not.toBe(EMPTY_TRACE)
    expect(b.simulation.traceHash).toBe(a.simulation.traceHash)
    expect(b.events).toEqual(a.events)
    expect(b.load).toEqual(a.load)
    expect(c.simulation.traceHash).not.toBe(a.simulation.traceHash)
  })

  it('without any injected fault (no status change), two seeds still hash differently; one seed always the same', () => {
    const quiet = { members: 20, duration: 20_000 }
    const a = runScenario({ ...quiet, seed: 1 })
    const b = runScenario({ ...quiet, seed: 1 })
    const c = runScenario({ ...quiet, seed: 2 })
    expect(a.falseSuspicions + a.falseDeaths + c.falseSuspicions + c.falseDeaths).toBe(0)
    expect(a.simulation.traceHash).not.toBe(EMPTY_TRACE)
    expect(b.simulation.traceHash).toBe(a.simulation.traceHash)
    expect(c.simulation.traceHash).not.toBe(a.simulation.traceHash)
  })
})

describe('EventQueue', () => {
  it('pops by time, then in insertion order, whatever the order of pushes', () => {
    const random = seededRandom(7)
    const q = new EventQueue<{ time: number; seq: number; id: number }>()
    const pushed: { time: number; seq: number; id: number }[] = []
    let id = 0
    const popped: { time: number; seq: number; id: number }[] = []
    for (let round = 0; round < 50; round++) {
      for (let k = Math.floor(random() * 40); k > 0; k--) {
        const e = { time: Math.floor(random() * 20), seq: 0, id: id++ }
        q.push(e)
        pushed.push(e)
      }
      for (let k = Math.floor(random() * 40); k > 0 && q.size > 0; k--) popped.push(q.pop()!)
    }
    while (q.size > 0) popped.push(q.pop()!)
    expect(popped).toHaveLength(pushed.length)
    // Each pop is the least (time, seq) of what was queued then: check with a naive queue.
    const naive: typeof pushed = []
    const replay = seededRandom(7)
    id = 0
    const expected: typeof pushed = []
    for (let round = 0; round < 50; round++) {
      for (let k = Math.floor(replay() * 40); k > 0; k--) {
        replay()
        naive.push(pushed[id++]!)
      }
      for (let k = Math.floor(replay() * 40); k > 0 && naive.length > 0; k--) {
        naive.sort((x, y) => x.time - y.time || x.seq - y.seq)
        expected.push(naive.shift()!)
      }
    }
    naive.sort((x, y) => x.time - y.time || x.seq - y.seq)
    expected.push(...naive)
    expect(popped.map((e) => e.id)).toEqual(expected.map((e) => e.id))
  })
})

describe('bootstrap through seeds', () => {
  it.each([1, 2])('20 members joining one by one all see each other alive, never more than N − 1 others (seed %i)', (seed) => {
    const n = 20
    const sim = new Simulator({ members: n, seed, bootstrap: 'join' })
    let most = 0
    sim.listeners.push((c) => {
      most = Math.max(most, sim.members[c.observer]!.instance.members().length - 1)
    })
    const converged = runUntil(sim, 30_000, () => sim.members.every((_, o) => sim.members.every((__, x) => sim.view(o, x) === 'alive')))
    expect(converged).not.toBeNull()
    // Members start 10 ms apart; everyone knows everyone well within a few seconds of the last start.
    expect(converged!).toBeLessThanOrEqual(10 * n + 10_000)
    sim.run(60_000)
    for (const m of sim.members) expect(m.instance.members().length - 1).toBe(n - 1)
    expect(most).toBe(n - 1)
    expect(sim.changes.filter((c) => c.status !== 'alive')).toEqual([])
  })
})

describe('a crash', () => {
  const cases = [10, 10, 10, 50, 50].map((n, i) => [n, i + 1] as const)
  it.each(cases)('N = %i (seed %i): every live member marks it dead, nobody else dies, all within 20 s', (n, seed) => {
    const sim = new Simulator({ members: n, seed })
    const victim = 7
    const node = sim.members[victim]!.node
    const crashAt = 10_000
    sim.at(crashAt, () => sim.crash(victim))
    const agreed = runUntil(sim, crashAt + 60_000, () => sim.now > crashAt && everyoneSees(sim, victim, 'dead'))
    expect(agreed).not.toBeNull()
    expect(agreed! - crashAt).toBeLessThanOrEqual(20_000)
    sim.run(agreed! + 30_000)

    const about = recordsAbout(sim, node)
    const suspected = about.filter((c) => c.status === 'suspect')
    expect(suspected.length).toBeGreaterThan(0)
    expect(suspected[0]!.time).toBeGreaterThanOrEqual(crashAt)
    const deaths = about.filter((c) => c.status === 'dead')
    expect(new Set(deaths.map((c) => c.observer))).toEqual(new Set(others(sim, victim)))
    // Exactly one death record per observer: dead is never revisited for a crashed member.
    expect(deaths).toHaveLength(n - 1)
    expect(sim.changes.filter((c) => c.status === 'dead' && c.subject !== nodeKey(node))).toEqual([])
    expect(sim.changes.filter((c) => c.time < crashAt)).toEqual([])
    for (const o of others(sim, victim)) expect(statusOf(sim, o, node)).toBe('dead')
  })

  it('N = 50: no datagram exceeds maxDatagram (1400 bytes), even while 50 joins fill the queues', () => {
    // Joining through seeds queues ~50 updates everywhere, so datagrams are filled to the budget.
    const report = runScenario({ members: 50, duration: 60_000, seed: 3, crashes: 1, bootstrap: 'join' })
    expect(report.events[0]!.allAgree).not.toBeNull()
    expect(report.load.largestDatagram).toBeGreaterThan(1000)
    expect(report.load.largestDatagram).toBeLessThanOrEqual(SWIM_DEFAULTS.maxDatagram)
    expect(SWIM_DEFAULTS.maxDatagram).toBe(1400)
  })

  it('N = 50 with maxDatagram 512: the smaller budget holds too', () => {
    const report = runScenario({ members: 50, duration: 60_000, seed: 3, crashes: 1, bootstrap: 'join', settings: { maxDatagram: 512 } })
    expect(report.events[0]!.allAgree).not.toBeNull()
    expect(report.load.largestDatagram).toBeGreaterThan(400)
    expect(report.load.largestDatagram).toBeLessThanOrEqual(512)
  })
})

describe('a join storm', () => {
  // Gossip alone usually spreads the joiners in under a second; a member that every piggybacked
  // copy happened to miss (seed 27: one of 40) learns of them at its next push-pull (30 s period),
  // hence the 45 s bound.
  it.each([1, 2, 27])('10 joiners into 40: each known by all and knowing all, no false deaths (seed %i)', (seed) => {
    const { report, sim } = scenario({ members: 40, duration: 90_000, seed, joins: 10, joinAt: 10_000 })
    const joins = report.events.filter((e) => e.kind === 'join')
    expect(joins).toHaveLength(10)
    for (const e of joins) {
      expect(e.knowsAll).not.toBeNull()
      expect(e.allAgree).not.toBeNull()
      expect(e.knowsAll!).toBeLessThanOrEqual(10)
      expect(e.allAgree!).toBeLessThanOrEqual(45)
    }
    expect(report.falseDeaths).toBe(0)
    expect(report.partitionDeaths).toBe(0)
    expect(sim.members).toHaveLength(50)
    for (let o = 0; o < 50; o++) for (let x = 0; x < 50; x++) expect(sim.view(o, x)).toBe('alive')
  })
})

describe('packet loss', () => {
  it.each([1, 2])('N = 30 at 5% loss for 300 s: no false deaths, and a crash is still detected by all (seed %i)', (seed) => {
    const { report, sim, records } = scenario({ members: 30, duration: 300_000, seed, loss: 0.05, crashes: 1 })
    expect(report.load.droppedDatagrams).toBeGreaterThan(1000)
    expect(report.falseDeaths).toBe(0)
    expect(report.partitionDeaths).toBe(0)
    const [crash] = report.events
    expect(crash).toMatchObject({ kind: 'crash' })
    expect(crash!.allAgree).not.toBeNull()
    expect(crash!.allAgree!).toBeLessThanOrEqual(30)
    const victim = sim.members[crash!.member!]!.node
    expect(records.filter((c) => c.status === 'dead' && c.subject !== nodeKey(victim))).toEqual([])
  })
})

describe('an asymmetric link', () => {
  it.each([
    [3, 4],
    [4, 3],
  ])('member %i cannot send to member %i for 300 s: neither is declared dead', (from, to) => {
    const { report, records, sim } = scenario({ members: 20, duration: 300_000, seed: 1, oneWay: [[from, to]] })
    expect(report.load.droppedDatagrams).toBeGreaterThan(0)
    // partitionDeaths counts every death while a one-way fault is set.
    expect(report.partitionDeaths).toBe(0)
    expect(report.falseDeaths).toBe(0)
    const pair = new Set([nodeKey(sim.members[from]!.node), nodeKey(sim.members[to]!.node)])
    expect(records.filter((c) => c.status === 'dead' && pair.has(c.subject))).toEqual([])
  })
})

describe('event-loop stalls', () => {
  it.each([1, 2])('N = 30, 2 members frozen 2 s every 20 s for 300 s: no deaths (seed %i)', (seed) => {
    const { report, records } = scenario({ members: 30, duration: 300_000, seed, stalls: { count: 2, duration: 2000, every: 20_000 } })
    const stalls = report.events.filter((e) => e.kind === 'stall')
    expect(stalls).toHaveLength(2 * 14)
    for (const e of stalls) expect(e.declaredDead).toBe(false)
    expect(report.falseDeaths).toBe(0)
    expect(records.filter((c) => c.status === 'dead')).toEqual([])
  })

  it('a freeze longer than suspicionMax gets the member declared dead by all; after it resumes it refutes and is alive everywhere', () => {
    const sim = new Simulator({ members: 10, seed: 2 })
    const frozen = 5
    const start = 5000
    const length = 30_000
    sim.at(start, () => sim.stall(frozen, length))
    const allDead = runUntil(sim, start + length - 1, () => sim.now > start && everyoneSees(sim, frozen, 'dead'))
    expect(allDead).not.toBeNull()
    expect(allDead! - start).toBeLessThanOrEqual(20_000)
    // Still frozen, still dead everywhere just before it resumes.
    sim.run(start + length - 1)
    expect(everyoneSees(sim, frozen, 'dead')).toBe(true)

    const back = runUntil(sim, start + length + 60_000, () => sim.now >= start + length && everyoneSees(sim, frozen, 'alive'))
    expect(back).not.toBeNull()
    expect(back! - (start + length)).toBeLessThanOrEqual(30_000)
    const self = sim.members[frozen]!
    expect(self.instance.incarnation).toBeGreaterThanOrEqual(1)
    for (const o of others(sim, frozen))
      expect(sim.members[o]!.instance.member(self.node)).toMatchObject({ status: 'alive', incarnation: self.instance.incarnation })
    // The frozen member did not declare anyone dead either, and sees everyone alive.
    expect(sim.changes.filter((c) => c.status === 'dead' && c.subject !== nodeKey(self.node))).toEqual([])
    sim.run(sim.now + 30_000)
    for (const o of others(sim, frozen)) expect(sim.view(frozen, o)).toBe('alive')
    expect(everyoneSees(sim, frozen, 'alive')).toBe(true)
  })
})

describe('graceful leave', () => {
  function leaveRun(seed: number) {
    const sim = new Simulator({ members: 10, seed })
    const leaver = 4
    const node = sim.members[leaver]!.node
    sim.at(5000, () => sim.leave(leaver))
    const done = runUntil(sim, 40_000, () => sim.now >= 5000 && everyoneSees(sim, leaver, 'left'))
    sim.run(60_000)
    return { sim, leaver, node, done }
  }

  // Seed 50: member 3 misses every gossip copy of the announcement (at 9 members each copy is
  // retransmitted only 4 times), probes the departed process, suspects it and declares it dead,
  // and learns of the leave only at its next push-pull, 19 s later. See the report.
  it.each([1, 2, 3, 50])('everyone marks the leaver left, and nobody suspected it first (seed %i)', (seed) => {
    const { sim, leaver, node, done } = leaveRun(seed)
    expect(sim.members[leaver]!.up).toBe(false)
    const about = recordsAbout(sim, node)
    expect(about.filter((c) => c.status !== 'left').map((c) => `member ${c.observer} marked it ${c.status} at ${Math.round(c.time)} ms`)).toEqual([])
    expect(about.map((c) => c.observer).sort((x, y) => x - y)).toEqual(others(sim, leaver))
    expect(done).not.toBeNull()
    expect(done! - 5000).toBeLessThanOrEqual(5000)
    for (const o of others(sim, leaver)) expect(statusOf(sim, o, node)).toBe('left')
  })
})

describe('partition and heal', () => {
  it.each([1, 2])('N = 20 split 10|10 for 60 s: each side marks the other dead; one cluster of 20 after the heal (seed %i)', (seed) => {
    const { report, sim } = scenario({ members: 20, duration: 200_000, seed, partition: { at: 10_000, duration: 60_000 } })
    const [p] = report.events
    expect(p).toMatchObject({ kind: 'partition' })
    // Split completed while the partition lasted.
    expect(p!.firstDead).not.toBeNull()
    expect(p!.firstDead!).toBeLessThan(60)
    // Healed into one cluster well within 120 s.
    expect(p!.allAgree).not.toBeNull()
    expect(p!.allAgree!).toBeLessThanOrEqual(120)
    expect(report.partitionDeaths).toBeGreaterThanOrEqual(20 * 10)
    expect(report.falseDeaths).toBe(0)
    for (let o = 0; o < 20; o++) for (let x = 0; x < 20; x++) expect(sim.view(o, x), `${o} sees ${x}`).toBe('alive')
  })
})

describe('restart with a new uid', () => {
  it.each([1, 2, 3])('the old uid is dead everywhere and the new one alive everywhere (seed %i)', (seed) => {
    const sim = new Simulator({ members: 20, seed })
    const i = 6
    const old = sim.members[i]!.node
    sim.at(10_000, () => sim.crash(i))
    sim.at(12_000, () => sim.restart(i))
    const ok = () =>
      sim.now >= 12_000 &&
      others(sim, i).every((o) => statusOf(sim, o, old) === 'dead' && sim.view(o, i) === 'alive') &&
      others(sim, i).every((o) => sim.view(i, o) === 'alive')
    // Usually within a second or two; a member that every gossip copy of the new uid happened to
    // miss learns it at its next push-pull (30 s period), hence the bound.
    const done = runUntil(sim, 90_000, ok)
    expect(done).not.toBeNull()
    expect(done! - 12_000).toBeLessThanOrEqual(45_000)
    sim.run(120_000)
    expect(ok()).toBe(true)
    const fresh = sim.members[i]!.node
    expect(fresh.uid).not.toBe(old.uid)
    expect(fresh.host).toBe(old.host)
    // Once an observer has the old uid dead, it never comes back.
    const oldRecords = recordsAbout(sim, old)
    for (const o of others(sim, i)) {
      const seen = oldRecords.filter((c) => c.observer === o).map((c) => c.status)
      expect(seen.at(-1)).toBe('dead')
      expect(seen.slice(seen.indexOf('dead'))).not.toContain('alive')
    }
    expect(sim.changes.filter((c) => c.status === 'dead' && c.subject !== nodeKey(old))).toEqual([])
  })
})

describe('shoal sim CLI', () => {
  it('prints a JSON report with an events array', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url))
    const out = execFileSync('node_modules/.bin/shoal', ['sim', '--members', '20', '--duration', '30', '--crash', '1', '--seed', '3', '--json'], {
      cwd: root,
      encoding: 'utf8',
    })
    const report = JSON.parse(out) as { members: number; events: { kind: string; allAgree: number | null }[]; falseDeaths: number }
    expect(report.members).toBe(20)
    expect(Array.isArray(report.events)).toBe(true)
    expect(report.events).toHaveLength(1)
    expect(report.events[0]!.kind).toBe('crash')
    expect(report.falseDeaths).toBe(0)
  })
})

describe('sim: UDP-only fault', () => {
  function isolateUdp(tcpFallback: boolean): Simulator {
    const sim = new Simulator({ members: 10, seed: 5, settings: { tcpFallback } })
    for (let j = 0; j < 10; j++) {
      if (j === 4) continue
      sim.setLinkLoss(4, j, 1)
      sim.setLinkLoss(j, 4, 1)
    }
    sim.run(120_000)
    return sim
  }

  it('a member whose datagrams are all lost stays alive through the TCP fallback ping', () => {
    const sim = isolateUdp(true)
    for (const o of [0, 1, 2, 3, 5, 6, 7, 8, 9]) expect(sim.view(o, 4)).toBe('alive')
    expect(sim.changes.filter((c) => c.status === 'dead')).toEqual([])
  })

  it('without the fallback the same member is declared dead (the fault is real)', () => {
    const sim = isolateUdp(false)
    for (const o of [0, 1, 2, 3, 5, 6, 7, 8, 9]) expect(sim.view(o, 4)).toBe('dead')
  })
})

describe('SwimInstance.version (what the membership core keeps its derived answers by)', () => {
  it('changes when a member is learned, when a status changes and when a member is forgotten; not while nothing changes', () => {
    const sim = new Simulator({ members: 3, seed: 11, bootstrap: 'join', settings: { tombstoneTtl: 20_000 } })
    const me = sim.members[0]!.instance
    const learned = me.version
    sim.run(10_000)
    expect(me.statusOf(sim.members[2]!.node)).toBe('alive')
    expect(me.version).toBeGreaterThan(learned)
    // Quiet: probes, acks and gossip go on, no status changes.
    const quiet = me.version
    sim.run(20_000)
    expect(me.version).toBe(quiet)
    // A crash: suspect, then dead.
    const node = sim.members[2]!.node
    sim.crash(2)
    const statuses: (SwimStatus | undefined)[] = []
    for (let t = 21_000; t <= 40_000; t += 1000) {
      const before = me.version
      const was = me.statusOf(node)
      sim.run(t)
      const now = me.statusOf(node)
      if (now !== was) {
        statuses.push(now)
        expect(me.version, `${was} → ${now}`).not.toBe(before)
      }
    }
    expect(statuses).toContain('dead')
    // Reaped after tombstoneTtl: forgotten, and the version says so.
    const dead = me.version
    sim.run(80_000)
    expect(me.statusOf(node)).toBeUndefined()
    expect(me.version).not.toBe(dead)
  })
})
