/**
 * What each node reports to a dashboard (`system.nodeStatus()`, served to other nodes at
 * `/system/node-status`) and the dashboard's cluster-wide answer: actors by type, the methods a node
 * served (counted only while someone reads, then stopped), a member that does not answer, and the
 * singleton and shard moves published for the event log.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import { ClusterSystem, DistributedActor, distributed, singletonPlugin, virtualActorsPlugin } from 'shoal'
import { eventually, virtualActorsSettled } from 'shoal/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dashboardState } from '../src/management/DashboardState.ts'
import { ChannelNames, callTracing, type ShardTableMessage, type SingletonChangeMessage } from '../src/observability/Channels.ts'
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

    // Counting is on now, on every node that was read: calls served are counted per method.
    for (let i = 0; i < 5; i++) await a.resolve(Greeter, here.id).hello('x')
    await expect(a.resolve(Greeter, here.id).fail()).rejects.toThrow()
    const bs = (await dashboardState(a)).nodes.find((n) => n.name === 'n1') as NodeStatus
    const hello = bs.methods.methods.find((m) => m.actorType === 'Greeter' && m.method === 'hello')!
    expect(hello).toMatchObject({ calls: 5, errors: 0 })
    expect(hello.buckets).toHaveLength(METHOD_BUCKETS.length + 1)
    expect(hello.buckets.reduce((x, y) => x + y, 0)).toBe(5)
    expect(bs.methods.methods.find((m) => m.method === 'fail')).toMatchObject({ calls: 1, errors: 1 })
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
  it('counts nothing until touched, then calls served by its node only, and stops after idleMs', async () => {
    const stats = new MethodStats('node-a', { idleMs: 50, maxMethods: 2 })
    const served = (uid: string, method: string, outcome: string) =>
      callTracing
        .tracePromise(
          async () => {
            await new Promise((r) => setTimeout(r, 2))
            if (outcome !== 'ok') throw new Error(outcome)
          },
          {
            side: 'callee',
            actorType: 'T',
            method,
            target: 'x',
            targetNode: { endpoint: { name: 'a', host: '127.0.0.1', port: 1 }, uid },
            local: false,
            oneWay: false,
            headers: undefined,
            outcome,
          },
        )
        .catch(() => undefined)
    await served('node-a', 'm', 'ok')
    expect(stats.snapshot().methods).toEqual([])
    stats.touch()
    expect(stats.active).toBe(true)
    await served('node-a', 'm', 'ok')
    await served('node-a', 'm', 'SHOAL_REMOTE')
    await served('node-b', 'm', 'ok') // another node in this process
    await served('node-a', 'n', 'ok')
    await served('node-a', 'o', 'ok') // past maxMethods: (other)
    const { methods } = stats.snapshot()
    expect(methods.map((m) => [m.method, m.calls, m.errors])).toEqual([
      ['m', 2, 1],
      ['n', 1, 0],
      ['(other)', 1, 0],
    ])
    expect(methods[0]!.seconds).toBeGreaterThan(0.001)
    await eventually(() => expect(stats.active).toBe(false))
    await served('node-a', 'm', 'ok')
    expect(stats.snapshot().methods[0]!.calls).toBe(2) // not counting any more
  })
})
