/**
 * The Membership core (cluster/Membership.ts) on its own: no sockets, no timers, no SWIM process.
 * Time is a number passed in; SWIM's view is a table the test sets; the directives the cores
 * return are routed by hand. What the cluster shell and the cluster simulator both rely on.
 */
import { describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/actor/ClusterNode.ts'
import { keepMajority } from '../src/cluster/Downing.ts'
import { DEFAULT_HEARTBEAT } from '../src/cluster/Heartbeat.ts'
import { Membership, type MembershipDirective, type SwimView } from '../src/cluster/Membership.ts'
import type { SwimStatus } from '../src/swim/SwimNode.ts'

const node = (i: number): ClusterNode => ({ endpoint: { name: 'shoal', host: '10.0.0.1', port: 7000 + i }, uid: `${i}`.padStart(16, '0') })

/** A map that counts its changes (SWIM's `version`: the core keeps derived answers while it stays). */
class CountingMap<K, V> extends Map<K, V> {
  changes = 0
  override set(k: K, v: V): this {
    this.changes++
    return super.set(k, v)
  }
  override delete(k: K): boolean {
    this.changes++
    return super.delete(k)
  }
  override clear(): void {
    this.changes++
    super.clear()
  }
}

/** SWIM's view as a table: observer uid → subject uid → status. */
class Swim implements SwimView {
  readonly status = new CountingMap<string, SwimStatus>()
  readonly heard = new Map<string, number>()
  get version(): number {
    return this.status.changes
  }
  statusOf(n: { uid: string }): SwimStatus | undefined {
    return this.status.get(n.uid)
  }
  lastHeard(n: { uid: string }): number | undefined {
    return this.heard.get(n.uid)
  }
}

/** Cores that exchange gossip by routing their directives until nothing is in flight. */
class Cluster {
  readonly cores = new Map<string, Membership>()
  readonly swims = new Map<string, Swim>()
  readonly events: string[] = []
  now = 0

  add(i: number, providers = false, self: ClusterNode = node(i)): Membership {
    const swim = new Swim()
    const core = new Membership({
      self,
      roles: [],
      minMembers: 1,
      downing: keepMajority(3000),
      heartbeat: DEFAULT_HEARTBEAT,
      hasProviders: providers,
      selfJoinAfter: 2000,
      swim,
      random: () => 0.5,
      now: this.now,
    })
    this.cores.set(self.uid, core)
    this.swims.set(self.uid, swim)
    return core
  }

  /** Everyone's SWIM sees everyone alive. */
  allAlive(): void {
    for (const [self, swim] of this.swims) for (const uid of this.cores.keys()) if (uid !== self) swim.status.set(uid, 'alive')
  }

  route(from: Membership, ds: readonly MembershipDirective[]): void {
    const queue: [Membership, MembershipDirective][] = ds.map((d) => [from, d])
    while (queue.length > 0) {
      const [sender, d] = queue.shift()!
      if (d.kind === 'event' && d.event.type === 'member')
        this.events.push(`${sender.self.uid.slice(-1)}: ${d.event.member.node.uid.slice(-1)} ${d.event.member.status}`)
      // Heartbeats go both ways: a leader moves joiners up only while the up members answer them.
      if (d.kind === 'heartbeat' || d.kind === 'heartbeat-answer') {
        const target = this.cores.get(d.to.uid)
        const answer = (c: Membership): readonly MembershipDirective[] =>
          d.kind === 'heartbeat' ? c.heartbeatRequest(sender.self, d.seq, this.now) : c.heartbeatAnswer(sender.self, d.answer, this.now)
        if (target && this.swims.get(target.self.uid)?.status.get(sender.self.uid) === 'alive') for (const next of answer(target)) queue.push([target, next])
        continue
      }
      if (d.kind !== 'gossip') continue
      for (const t of d.to) {
        const target = [...this.cores.values()].find((c) => c.self.endpoint.port === t.port)
        if (target && target !== sender) for (const next of target.receiveGossip(sender.self, sender.gossip, this.now)) queue.push([target, next])
      }
    }
  }

  tick(ms: number): void {
    this.now += ms
    for (const c of this.cores.values()) this.route(c, c.tick(this.now))
  }
}

/**
 * Three cores that joined the first and gossiped for two ticks: the leader moves a joiner up only
 * while every other up member answers its heartbeats, so the second joiner follows a tick after
 * the first, once the first's answers are in.
 */
function threeUp(): { c: Cluster; cores: Membership[] } {
  const c = new Cluster()
  const cores = [0, 1, 2].map((i) => c.add(i, true))
  c.allAlive()
  for (const core of cores) c.route(core, core.start(0))
  for (const core of cores.slice(1)) c.route(core, core.join(cores[0]!.self.endpoint, 0))
  c.tick(250)
  c.tick(250)
  return { c, cores }
}

describe('Membership core', () => {
  it('a node with nowhere to join is up at once; one with seeds waits selfJoinAfter while alone', () => {
    const c = new Cluster()
    const alone = c.add(0)
    c.route(alone, alone.start(0))
    expect(alone.status).toBe('up')
    const seeded = c.add(1, true)
    c.route(seeded, seeded.start(0))
    c.tick(1000)
    expect(seeded.status).toBe('joining')
    c.tick(1500)
    expect(seeded.status).toBe('up')
  })

  it('the lowest listed address forms a cluster only once it has met every listed endpoint, and says which it waits for', () => {
    const c = new Cluster()
    const a = c.add(0, true)
    c.route(a, a.start(0))
    a.mayFormAlone(true, 0, [node(0).endpoint, node(1).endpoint])
    const logs = [2000, 10_000, 10_250, 40_250].flatMap((t) => a.tick(t)).filter((d) => d.kind === 'log' && d.level === 'warn')
    expect(a.status).toBe('joining') // past selfJoinAfter, but 10.0.0.1:7001 never answered
    expect(logs).toHaveLength(2) // after 10 s, then 30 s later
    expect(logs[0]).toMatchObject({ fields: { unmet: ['10.0.0.1:7001'] } })
    // Nothing else listed: alone after selfJoinAfter.
    a.mayFormAlone(true, 40_300, [node(0).endpoint])
    expect(a.status).toBe('up')
  })

  it('three cores that gossip become one cluster: all up, one leader, the same view, in order', () => {
    const { c, cores } = threeUp()
    for (const core of cores) {
      expect(core.members().map((m) => m.status)).toEqual(['up', 'up', 'up'])
      expect(core.leader).toBe(node(0).uid)
      expect(core.converged).toBe(true)
    }
    // Every node saw every member become up exactly once (a node that joined later meets the earlier ones up).
    for (const i of ['0', '1', '2'])
      expect(c.events.filter((e) => e.startsWith(`${i}:`) && e.endsWith(' up')).sort()).toEqual([`${i}: 0 up`, `${i}: 1 up`, `${i}: 2 up`])
  })

  it('a crashed member: unreachable at once, downed by the leader after stableAfter, then removed; time is all it needs', () => {
    const { c, cores } = threeUp()
    c.cores.delete(node(2).uid)
    for (const i of [0, 1]) {
      c.swims.get(node(i).uid)!.status.set(node(2).uid, 'suspect')
      c.swims.get(node(i).uid)!.heard.set(node(2).uid, 0)
      c.swims.get(node(i).uid)!.heard.set(node(1 - i).uid, 1_000_000)
      c.route(cores[i]!, cores[i]!.swimChanged({ host: '10.0.0.1', port: 7002, uid: node(2).uid }, 'suspect', c.now))
    }
    expect(cores[0]!.members().find((m) => m.node.uid === node(2).uid)!.reachability).toBe('unreachable')
    c.tick(2000)
    expect(cores[0]!.member(node(2).uid)!.status).toBe('up')
    // Heartbeats to the crashed member stall too; nothing else is needed but the clock.
    for (let t = 0; t < 8; t++) c.tick(250)
    for (const core of cores.slice(0, 2)) expect(core.member(node(2).uid)!.status).toBe('removed')
    expect(cores[0]!.stats.downingDecisions.strategy).toBe(1)
  })

  it('members this node downed count on the other side in confirmedUntil, whatever they answer (found by the cluster simulator)', () => {
    const c = new Cluster()
    const cores = [0, 1, 2, 3, 4].map((i) => c.add(i, true))
    c.allAlive()
    for (const core of cores) c.route(core, core.start(0))
    for (const core of cores.slice(1)) c.route(core, core.join(cores[0]!.self.endpoint, 0))
    for (let t = 0; t < 8; t++) c.tick(250)
    const a = cores[0]!
    expect(a.members().map((m) => m.status)).toEqual(['up', 'up', 'up', 'up', 'up'])
    // Five seconds later (older confirmations have run out) a asks everyone, then downs 3 and 4; the
    // push is not delivered, so 1 and 2 have not seen the downs. Only 3 and 4 answer, confirming a.
    c.now += 5000
    const beats = a.tick(c.now).filter((d) => d.kind === 'heartbeat')
    a.down((m) => m.node.uid === node(3).uid || m.node.uid === node(4).uid, c.now)
    for (const d of beats)
      if (d.to.uid === node(3).uid || d.to.uid === node(4).uid) a.heartbeatAnswer(d.to, { seq: d.seq, status: 'up', reachable: true }, c.now)
    // Over there 3 and 4 are up: their answers must not make a's side three of five.
    // (Counted, they confirm it until now + 4 s.) What is left is the older round of 1 and 2, run out.
    expect(a.confirmedUntil(c.now, 4000)).toBeLessThanOrEqual(c.now)
  })

  it('woken from a freeze among the members it knew: confirmed within a heartbeat round, it leads again', () => {
    const { c, cores } = threeUp()
    c.now += 10_000 // everyone froze (a suspended VM host), so nobody downed anyone
    const beats = cores[0]!.tick(c.now)
    // Frozen past the stall bound: until a member it knew answers a heartbeat sent now, it does not
    // serve, and knows no leader (so it neither leads nor decides shard tables).
    expect(cores[0]!.confirmedUntil(c.now, 4000)).toBe(Number.NEGATIVE_INFINITY)
    expect(cores[0]!.leader).toBeUndefined()
    c.route(cores[0]!, beats)
    expect(cores[0]!.confirmedUntil(c.now, 4000)).toBeGreaterThan(c.now)
    expect(cores[0]!.leader).toBe(node(0).uid)
    // And it leads: a newcomer moves up.
    const d = c.add(3, true)
    c.allAlive()
    c.route(d, d.start(c.now))
    c.route(d, d.join(cores[0]!.self.endpoint, c.now))
    for (let t = 0; t < 4; t++) c.tick(250)
    expect(cores[0]!.member(node(3).uid)!.status).toBe('up')
  })

  it('a cluster of one is not fenced after a freeze: nobody could have gone on without it', () => {
    const c = new Cluster()
    const alone = c.add(0)
    c.route(alone, alone.start(0))
    c.tick(250)
    expect(alone.confirmedUntil(c.now + 10_000, 4000)).toBeGreaterThan(c.now + 10_000)
    c.tick(10_000)
    expect(alone.leader).toBe(node(0).uid)
    expect(alone.confirmedUntil(c.now, 4000)).toBeGreaterThan(c.now)
  })

  it('woken from a freeze to find every member it knew restarted, it downs itself rather than take them in as a new cluster (found by the cluster simulator)', () => {
    const { c, cores } = threeUp()
    const a = cores[0]!
    // 1 and 2 die while a is frozen; the cluster went on without a, which it cannot know.
    c.cores.delete(node(1).uid)
    c.cores.delete(node(2).uid)
    c.now += 26_000
    const restarted = [1, 2].map((i) => c.add(i, true, { endpoint: node(i).endpoint, uid: `${i}`.padStart(15, '0') + 'f' }))
    const swim = c.swims.get(node(0).uid)!
    for (const i of [1, 2]) {
      swim.status.set(node(i).uid, 'dead')
      swim.status.set(`${i}`.padStart(15, '0') + 'f', 'alive')
      c.swims.get(`${i}`.padStart(15, '0') + 'f')!.status.set(node(0).uid, 'alive')
    }
    for (const r of restarted) c.route(r, r.start(c.now))
    // They reach a (as the woken node's SWIM found them at the old addresses): a sees them join,
    // downs the old incarnations, and would be alone, a majority of one, with joiners to move up.
    for (const r of restarted) c.route(r, r.join(a.self.endpoint, c.now))
    for (let t = 0; t < 8; t++) c.tick(250)
    expect(['down', 'removed']).toContain(a.status)
    for (const r of restarted) expect(a.member(r.self.uid)?.status).not.toBe('up')
  })

  it('a stopped core emits nothing more', () => {
    const c = new Cluster()
    const core = c.add(0)
    c.route(core, core.start(0))
    const last = core.stop(10)
    expect(last.some((d) => d.kind === 'gossip' || d.kind === 'event')).toBe(true)
    expect(core.tick(20)).toEqual([])
    expect(core.receiveGossip(node(1), core.gossip, 30)).toEqual([])
  })
})
