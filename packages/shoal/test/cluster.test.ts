/**
 * The cluster API in one process: events, waitFor, minMembers, leave, down, replacement.
 */

import { pino } from 'pino'
import { type ClusterEvent, type ClusterSettings, ClusterSystem, SystemShutDownError, TimeoutError } from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { LogCapture } from './support/rawPeer.ts'

const systems: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function node(cluster: ClusterSettings = {}, port = 0): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ port, logLevel: 'silent', cluster: { selfJoinAfter: 200, ...cluster } })
  systems.push(s)
  return s
}

const addr = (s: ClusterSystem): string => `127.0.0.1:${s.node.endpoint.port}`

describe('cluster API', () => {
  it('a node with no seeds, clusterd or discovery says once that it forms a one-node cluster, and how to join others', async () => {
    const logs = new LogCapture()
    const alone = await ClusterSystem.start({ port: 0, cluster: {}, logger: pino({ level: 'info' }, logs) })
    systems.push(alone)
    const said = logs.lines.filter((l) => l.msg?.includes('one-node cluster'))
    expect(said).toHaveLength(1)
    expect(said[0]!.level).toBe(30)
    expect(said[0]!.msg).toContain("seeds: ['host:port']")
    expect(said[0]!.msg).toContain('clusterd: true')
    expect(said[0]!.msg).toContain('discovery')
    // A node with seeds does not say it.
    const logsB = new LogCapture()
    systems.push(await ClusterSystem.start({ port: 0, cluster: { seeds: [addr(alone)] }, logger: pino({ level: 'info' }, logsB) }))
    expect(logsB.lines.filter((l) => l.msg?.includes('one-node cluster'))).toHaveLength(0)
  })

  it('confirmedUntil is never more than one window ahead, even alone (hosts cache it across membership changes)', async () => {
    const a = await node()
    await a.cluster.joined()
    // Alone no member can down it, yet the answer holds for this membership only.
    const until = a.cluster.confirmedUntil(4000)
    expect(Number.isFinite(until)).toBe(true)
    expect(until).toBeLessThanOrEqual(a.cluster.now() + 4000)
    expect(until).toBeGreaterThan(a.cluster.now())
  })

  it('events(): a snapshot first, then member changes and the leader, in order', async () => {
    const a = await node()
    await a.cluster.joined()
    const seen: ClusterEvent[] = []
    const done = (async () => {
      for await (const e of a.cluster.events()) {
        seen.push(e)
        if (e.type === 'member' && e.member.status === 'up' && e.member.node.uid !== a.node.uid) break
      }
    })()
    const b = await node({ seeds: [addr(a)] })
    await done
    expect(seen[0]!.type).toBe('snapshot')
    const aboutB = seen.filter((e): e is Extract<ClusterEvent, { type: 'member' }> => e.type === 'member' && e.member.node.uid === b.node.uid)
    expect(aboutB.map((e) => e.member.status)).toEqual(['joining', 'up'])
    expect(a.cluster.membership.leader?.node.uid).toBe([a, b].sort((x, y) => x.node.endpoint.port - y.node.endpoint.port)[0]!.node.uid)
  })

  it('minMembers 3: two nodes stay joining until the third arrives', async () => {
    const a = await node({ minMembers: 3 })
    const b = await node({ minMembers: 3, seeds: [addr(a)] })
    await eventually(() => expect(a.cluster.membership.members).toHaveLength(2))
    await expect(a.cluster.joined({ timeout: 1500 })).rejects.toBeInstanceOf(TimeoutError)
    expect(a.cluster.status).toBe('joining')
    const c = await node({ minMembers: 3, seeds: [addr(a)] })
    await Promise.all([a, b, c].map((s) => s.cluster.joined({ timeout: 10_000 })))
  })

  it('leave(): leaving → exiting → removed everywhere, never unreachable', async () => {
    const a = await node()
    const b = await node({ seeds: [addr(a)] })
    const c = await node({ seeds: [addr(a)] })
    await Promise.all([a, b, c].map((s) => s.cluster.joined()))
    await eventually(() => expect(a.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(3))
    const unreachable: string[] = []
    const statuses: string[] = []
    const watch = (async () => {
      for await (const e of a.cluster.events()) {
        if (e.type === 'reachability' && e.member.node.uid === c.node.uid) unreachable.push(e.member.reachability)
        if (e.type === 'member' && e.member.node.uid === c.node.uid) statuses.push(e.member.status)
        if (statuses.includes('removed')) break
      }
    })()
    await c.cluster.leave()
    await watch
    expect(statuses).toEqual(['leaving', 'exiting', 'removed'])
    expect(unreachable).toEqual([])
    await b.cluster.waitFor(c.node, 'removed')
  })

  it('down(node): the node is removed everywhere and shuts itself down', async () => {
    const a = await node()
    const b = await node({ seeds: [addr(a)] })
    await Promise.all([a, b].map((s) => s.cluster.joined()))
    await eventually(() => expect(b.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(2))
    expect(a.cluster.down(addr(b))).toBe(true)
    await a.cluster.waitFor(b.node, 'removed')
    await b.terminated
    expect(b.running).toBe(false)
    expect(a.cluster.down('127.0.0.1:1')).toBe(false)
  })

  it('the last member leaving removes itself (no leader is left to do it)', async () => {
    const a = await node()
    await a.cluster.joined()
    await a.cluster.leave()
    expect(a.cluster.status).toBe('removed')
  })

  it('waits pending at shutdown reject with SystemShutDownError', async () => {
    const a = await node({ minMembers: 2 })
    const waiting = a.cluster.joined({ timeout: 60_000 }).catch((e: unknown) => e)
    await a.shutdown()
    expect(await waiting).toBeInstanceOf(SystemShutDownError)
  })

  it('everyone leaving at once: all are removed, nobody waits for a leader that is gone', async () => {
    const a = await node({ leaveTimeout: 20_000 })
    const b = await node({ seeds: [addr(a)], leaveTimeout: 20_000 })
    const c = await node({ seeds: [addr(a)], leaveTimeout: 20_000 })
    await Promise.all([a, b, c].map((s) => s.cluster.joined()))
    await eventually(() => expect(a.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(3))
    await Promise.all([a, b, c].map((s) => s.cluster.leave()))
    for (const s of [a, b, c]) expect(s.cluster.status).toBe('removed')
  })
})
