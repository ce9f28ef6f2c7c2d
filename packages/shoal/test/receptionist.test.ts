/**
 * The receptionist across in-process nodes over real TCP: check-in, check-out, stop, node down,
 * catch-up of a late joiner with bounded messages, typed refs, listings with additions and removals.
 */

import { type ActorRef, ClusterSystem, ConfigError, DistributedActor, distributed, type Listing, ReceptionKey } from 'shoal'
import { eventually, startCluster, type TestNodes } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

class Fish extends DistributedActor {
  @distributed async name(): Promise<string> {
    return this.system.node.endpoint.name
  }
}

const fishKey = new ReceptionKey('fish', Fish)
const otherKey = new ReceptionKey<Fish>('other')

let nodes: TestNodes | undefined
const extra: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(extra.splice(0).map((s) => s.shutdown()))
  await nodes?.shutdown()
  nodes = undefined
})

const ids = (refs: readonly ActorRef<Fish>[]): string[] => refs.map((r) => r.id.toString()).sort()

/** Collects every yield of a listing in the background. */
function collect(system: ClusterSystem, key: ReceptionKey<Fish>): { yields: Listing<Fish>[]; stop: AbortController } {
  const yields: Listing<Fish>[] = []
  const stop = new AbortController()
  void (async () => {
    for await (const l of system.receptionist.listing(key, { signal: stop.signal })) yields.push(l)
  })()
  return { yields, stop }
}

describe('receptionist', () => {
  it('four nodes each check in an actor and all see all, with typed refs that call', async () => {
    nodes = await startCluster(4)
    const fish = nodes.systems.map((s) => s.spawn(Fish))
    nodes.systems.forEach((s, i) => s.receptionist.checkIn(fish[i]!, fishKey))
    const all = ids(fish)
    await eventually(() => {
      for (const s of nodes!.systems) expect(ids(s.receptionist.lookup(fishKey))).toEqual(all)
    })
    const seen = await Promise.all(nodes.systems[2]!.receptionist.lookup(fishKey).map((r) => r.name()))
    expect(seen.sort()).toEqual(nodes.systems.map((s) => s.node.endpoint.name).sort())
    expect(nodes.systems[1]!.receptionist.lookup(otherKey)).toEqual([])
  })

  it('a stopped actor and a checked-out one disappear everywhere; listings report additions and removals', async () => {
    nodes = await startCluster(4)
    const [a, b, c, d] = nodes.systems as [ClusterSystem, ClusterSystem, ClusterSystem, ClusterSystem]
    const listings = nodes.systems.map((s) => collect(s, fishKey))
    const fa = a.spawn(Fish)
    const fb = b.spawn(Fish)
    const fc = c.spawn(Fish)
    a.receptionist.checkIn(fa, fishKey)
    b.receptionist.checkIn(fb, fishKey)
    c.receptionist.checkIn(fc, fishKey)
    c.receptionist.checkIn(fc, otherKey)
    await eventually(() => {
      for (const s of nodes!.systems) expect(s.receptionist.lookup(fishKey)).toHaveLength(3)
    })
    await b.stop(fb)
    c.receptionist.checkOut(fc, fishKey)
    await eventually(() => {
      for (const s of nodes!.systems) {
        expect(ids(s.receptionist.lookup(fishKey))).toEqual(ids([fa]))
        expect(ids(s.receptionist.lookup(otherKey))).toEqual(ids([fc]))
      }
    })
    for (const { yields, stop } of listings) {
      await eventually(() => expect(ids(yields.at(-1)!.refs)).toEqual(ids([fa])))
      stop.abort()
      expect(yields[0]!.removed).toEqual([])
      const added = yields.flatMap((y) => ids(y.added))
      const removed = yields.flatMap((y) => ids(y.removed))
      // Every change reported exactly once, whatever the coalescing: fb and fc came and went.
      expect(added.filter((x) => x !== fa.id.toString()).sort()).toEqual(removed.sort())
      expect(removed.sort()).toEqual(ids([fb, fc]))
    }
    expect(d.receptionist.size).toBe(2)
  })

  it('the entries of a downed node vanish everywhere', async () => {
    nodes = await startCluster(4, { cluster: { downing: 'none' } })
    const systems = nodes.systems
    for (const s of systems) for (let i = 0; i < 3; i++) s.receptionist.checkIn(s.spawn(Fish), fishKey)
    await eventually(() => {
      for (const s of systems) expect(s.receptionist.lookup(fishKey)).toHaveLength(12)
    })
    const victim = systems[3]!
    const listing = collect(systems[0]!, fishKey)
    systems[1]!.cluster.down(victim.node)
    await eventually(() => {
      for (const s of systems.slice(0, 3)) {
        const refs = s.receptionist.lookup(fishKey)
        expect(refs).toHaveLength(9)
        expect(refs.every((r) => r.id.node.uid !== victim.node.uid)).toBe(true)
      }
    })
    await eventually(() => expect(listing.yields.flatMap((y) => y.removed).filter((r) => r.id.node.uid === victim.node.uid)).toHaveLength(3))
    listing.stop.abort()
  })

  it('a late joiner catches up on many registrations in bounded messages', async () => {
    nodes = await startCluster(3, { receptionist: { maxBatch: 64, maxOps: 100 } })
    const per = 400
    for (const s of nodes.systems) for (let i = 0; i < per; i++) s.receptionist.checkIn(s.spawn(Fish), new ReceptionKey(`k${i % 7}`, Fish))
    const seed = `127.0.0.1:${nodes.systems[0]!.node.endpoint.port}`
    const late = await ClusterSystem.start({
      name: 'late',
      port: 0,
      logLevel: 'silent',
      receptionist: { maxBatch: 64 },
      cluster: { seeds: [seed], selfJoinAfter: 60_000 },
    })
    extra.push(late)
    await eventually(() => expect(late.receptionist.size).toBe(3 * per), { timeoutMs: 20_000 })
    for (const s of nodes.systems) {
      expect(s.receptionist.size).toBe(3 * per)
      // 64 registrations of ~40 bytes each, plus framing: bounded whatever the total.
      expect(s.receptionist.stats.largestMessage).toBeLessThan(8 * 1024)
    }
  })

  it('refuses to check in another node’s actor, and invalid keys', async () => {
    nodes = await startCluster(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = a.resolve(Fish, b.spawn(Fish).id)
    expect(() => a.receptionist.checkIn(remote, fishKey)).toThrow(ConfigError)
    expect(() => new ReceptionKey('')).toThrow(ConfigError)
    expect(() => new ReceptionKey('x'.repeat(257))).toThrow(ConfigError)
    expect(() => new ReceptionKey('a\u0000b')).toThrow(ConfigError)
    expect(() => new ReceptionKey('\uD800')).toThrow(ConfigError)
    expect(new ReceptionKey('lobby:🐟 "quoted" \'; DROP TABLE').id).toBe('lobby:🐟 "quoted" \'; DROP TABLE')
  })

  it('works on a system without cluster membership, locally', async () => {
    const solo = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    extra.push(solo)
    const f = solo.spawn(Fish)
    solo.receptionist.checkIn(f, fishKey)
    expect(ids(solo.receptionist.lookup(fishKey))).toEqual(ids([f]))
    await solo.stop(f)
    expect(solo.receptionist.lookup(fishKey)).toEqual([])
  })
})
