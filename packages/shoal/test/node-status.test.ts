/**
 * What each node reports to a dashboard (`system.nodeStatus()`, served to other nodes at
 * `/system/node-status`) and the dashboard's cluster-wide answer: actors by type, the methods a node
 * served (sampled only while someone reads, then stopped), a member that shut down, and the
 * singleton and shard moves published for the event log.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import { ClusterSystem, DistributedActor, distributed, singletonPlugin, virtualActorsPlugin } from 'shoal'
import { eventually, virtualActorsSettled } from 'shoal/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dashboardState } from '../src/management/DashboardState.ts'
import { ChannelNames, type ShardTableMessage, type SingletonChangeMessage } from '../src/observability/Channels.ts'
import { METHOD_BUCKETS, MethodStats } from '../src/observability/MethodStats.ts'
import type { NodeStatus } from '../src/observability/NodeStatus.ts'

class Greeter extends DistributedActor {
  @distributed async hello(name: string): Promise<string> {
    return `hello ${name}`
  }
  @distributed async fail(): Promise<void> {
    throw new Error('no')
  }
}
class Keeper extends DistributedActor {
  @distributed async ping(): Promise<string> {
    return 'pong'
  }
}

const systems: ClusterSystem[] = []
const moves: Array<SingletonChangeMessage | ShardTableMessage> = []
const onMove = (m: unknown): void => void moves.push(m as SingletonChangeMessage | ShardTableMessage)

beforeAll(async () => {
  diagnostics_channel.subscribe(ChannelNames.singletonChange, onMove)
  diagnostics_channel.subscribe(ChannelNames.shardTable, onMove)
  for (let i = 0; i < 3; i++) {
    const s = await ClusterSystem.start({
      name: `n${i}`,
      port: 0,
      logLevel: 'silent',
      plugins: [singletonPlugin(), virtualActorsPlugin()],
      cluster: { selfJoinAfter: 200, seeds: i === 0 ? [] : [`127.0.0.1:${systems[0]!.node.endpoint.port}`] },
    })
    systems.push(s)
    s.singleton.host('keeper', (sys) => sys.spawn(Keeper))
    s.virtualActors.host(Greeter, () => new Greeter())
  }
  await eventually(() => expect(systems[0]!.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(3), { timeoutMs: 15_000 })
  // Balancing moves shards (and their activations) in rounds: counts are exact only once it is done.
  await virtualActorsSettled(systems)
}, 30_000)

afterAll(async () => {
  diagnostics_channel.unsubscribe(ChannelNames.singletonChange, onMove)
  diagnostics_channel.unsubscribe(ChannelNames.shardTable, onMove)
  await Promise.all(systems.map((s) => s.shutdown()))
})

describe('node status', () => {
  it("every member's report, asked from one node: actors by type, and the methods each served once someone reads", async () => {
    const [a, b] = systems as [ClusterSystem, ClusterSystem]
    await a.singleton.proxy(Keeper, 'keeper').ping()
    const here = b.spawn(Greeter)
    const first = await dashboardState(a)
    expect(first.nodes).toHaveLength(3)
    const statuses = first.nodes as NodeStatus[]
    expect(statuses.every((n) => !('error' in n))).toBe(true)
    expect(statuses.reduce((sum, n) => sum + (n.actors.byType.Keeper ?? 0), 0)).toBe(1)
    expect(statuses.find((n) => n.name === 'n1')!.actors.byType.Greeter).toBe(1)
    expect(statuses.reduce((sum, n) => sum + n.virtual![0]!.owned, 0)).toBe(1024)

    // Sampling is on now, on every node that was read: one served call in 16 is timed, per method.
    for (let i = 0; i < 64; i++) await a.resolve(Greeter, here.id).hello('x')
    for (let i = 0; i < 32; i++) await expect(a.resolve(Greeter, here.id).fail()).rejects.toThrow()
    const bs = (await dashboardState(a)).nodes.find((n) => n.name === 'n1') as NodeStatus
    expect(bs.methods.sampleEvery).toBe(16)
    const hello = bs.methods.methods.find((m) => m.actorType === 'Greeter' && m.method === 'hello')!
    // Estimates: 64 calls are 4 (or, with other calls on the node in between, 3 to 5) samples × 16.
    expect(hello.calls).toBeGreaterThanOrEqual(48)
    expect(hello.calls).toBeLessThanOrEqual(80)
    expect(hello.errors).toBe(0)
    expect(hello.buckets).toHaveLength(METHOD_BUCKETS.length + 1)
    expect(hello.buckets.reduce((x, y) => x + y, 0)).toBe(hello.calls)
    const fail = bs.methods.methods.find((m) => m.method === 'fail')!
    expect(fail.errors).toBe(fail.calls)
    expect(fail.calls).toBeGreaterThanOrEqual(16)
    expect(bs.methods.since).toBe((first.nodes.find((n) => n.name === 'n1') as NodeStatus).methods.since)
  })

  it('a member that shut down is dropped; every answer comes from a live node', async () => {
    const c = systems[2]!
    const status = await dashboardState(systems[0]!)
    expect(status.nodes.filter((n) => 'error' in n)).toEqual([])
    await c.shutdown()
    await eventually(async () => {
      const s = await dashboardState(systems[0]!)
      expect(s.nodes).toHaveLength(2)
      expect(s.nodes.every((n) => !('error' in n))).toBe(true)
    })
  }, 20_000)

  it('singleton and shard moves are published for the event log', () => {
    const tables = moves.filter((m): m is ShardTableMessage => 'moved' in m)
    expect(tables.length).toBeGreaterThan(0)
    expect(tables.some((t) => t.moved > 0 && t.gained + t.lost > 0)).toBe(true)
    const singleton = moves.filter((m): m is SingletonChangeMessage => 'singleton' in m)
    expect(singleton).toContainEqual(expect.objectContaining({ singleton: 'keeper', event: 'activated' }))
  })
})

describe('MethodStats', () => {
  it('samples one call in sampleEvery only while touched, estimates by scaling, caps the methods, and stops after idleMs', async () => {
    const stats = new MethodStats({ idleMs: 50, maxMethods: 2, sampleEvery: 4 })
    expect(stats.active).toBe(false)
    stats.touch()
    expect(stats.active).toBe(true)
    // Eight calls of m (two sampled: the 4th and the 8th), one sampled failure, then two more methods.
    const sampled = Array.from({ length: 8 }, () => stats.sample()).filter((t) => t >= 0)
    expect(sampled).toHaveLength(2)
    for (const t of sampled) stats.record('T', 'm', true, t)
    stats.record('T', 'm', false, performance.now())
    stats.record('T', 'n', true, performance.now())
    stats.record('T', 'o', true, performance.now()) // past maxMethods: (other)
    const { methods, sampleEvery } = stats.snapshot()
    expect(sampleEvery).toBe(4)
    expect(methods.map((m) => [m.method, m.calls, m.errors])).toEqual([
      ['m', 12, 4],
      ['n', 4, 0],
      ['(other)', 4, 0],
    ])
    await eventually(() => expect(stats.active).toBe(false))
    expect(() => new MethodStats({ sampleEvery: 10 })).toThrow(RangeError)
  })
})
