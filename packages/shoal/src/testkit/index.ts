/**
 * Testkit: helpers for tests of Shoal itself and of applications built on it.
 *
 * - {@link startNodes}: several systems in one process on free loopback ports.
 * - {@link eventually}: retry an assertion until it passes or a generous deadline expires
 *   (assert behaviour, not timing: shared CI machines are noisy).
 * @module
 */
import { ClusterSystem } from '../system/ClusterSystem.ts'
import type { ClusterSystemSettings } from '../system/Settings.ts'

/** A set of in-process nodes; `shutdown()` stops them all. */
export interface TestNodes {
  readonly systems: ClusterSystem[]
  shutdown(): Promise<void>
}

/**
 * Starts `count` systems on 127.0.0.1 with free ports (port 0), named `node-0`, `node-1`, …
 * Logging is silent unless `settings.logLevel` or `SHOAL_LOG_LEVEL` says otherwise.
 */
export async function startNodes(count: number, settings: ClusterSystemSettings = {}): Promise<TestNodes> {
  const systems: ClusterSystem[] = []
  for (let i = 0; i < count; i++) {
    systems.push(
      await ClusterSystem.start({
        logLevel: process.env.SHOAL_LOG_LEVEL ?? 'silent',
        ...settings,
        name: `${settings.name ?? 'node'}-${i}`,
        host: '127.0.0.1',
        port: 0,
      }),
    )
  }
  return {
    systems,
    shutdown: async () => {
      await Promise.all(systems.map((s) => s.shutdown()))
    },
  }
}

/**
 * Starts a cluster of `count` in-process nodes (the others seeded with the first) and resolves
 * once every node sees every node up. `settings.cluster` is merged into each node's cluster
 * settings. Use for tests of cluster services; `shutdown()` stops them all.
 */
export async function startCluster(count: number, settings: ClusterSystemSettings = {}, { timeoutMs = 30_000 } = {}): Promise<TestNodes> {
  const nodes: ClusterSystem[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((s) => s.shutdown()))
  }
  try {
    for (let i = 0; i < count; i++) {
      const seeds = i === 0 ? [] : [`127.0.0.1:${nodes[0]!.node.endpoint.port}`]
      nodes.push(
        await ClusterSystem.start({
          logLevel: process.env.SHOAL_LOG_LEVEL ?? 'silent',
          ...settings,
          name: `${settings.name ?? 'node'}-${i}`,
          host: '127.0.0.1',
          port: 0,
          cluster: { selfJoinAfter: 200, ...settings.cluster, seeds },
        }),
      )
    }
    await eventually(
      () => {
        for (const s of nodes) {
          const up = s.cluster.membership.members.filter((m) => m.status === 'up' && m.reachability === 'reachable')
          if (up.length !== count) throw new Error(`${s.node.endpoint.name} sees ${up.length} of ${count} members up`)
        }
      },
      { timeoutMs },
    )
  } catch (e) {
    await stop()
    throw e
  }
  return { systems: nodes, shutdown: stop }
}

/** Retries `check` (which throws or rejects while not yet true) until it passes or `timeoutMs` elapses. */
export async function eventually<T>(check: () => T | Promise<T>, { timeoutMs = 10_000, intervalMs = 20 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (e) {
      if (Date.now() > deadline) throw e
      await new Promise((r) => setTimeout(r, intervalMs))
    }
  }
}

/**
 * Resolves once the virtual actors of `systems` (all hosting the same role-less group) have
 * settled: every system holds the same shard table, every shard is owned and open, each system
 * owns its fair share (balancing moves shards in capped rounds, one table each), and the table held
 * for `quietMs`. Before that, a new table may still move shards, and the activations on them.
 */
export async function virtualActorsSettled(systems: readonly ClusterSystem[], { timeoutMs = 20_000, quietMs = 500 } = {}): Promise<void> {
  await eventually(
    async () => {
      const read = () => systems.map((s) => s.virtualActors.status().groups.find((g) => g.role === undefined))
      const groups = read()
      const versions = new Set(groups.map((g) => g?.tableVersion))
      if (versions.size !== 1 || groups.some((g) => !g || g.tableVersion === 0)) throw new Error(`tables differ: ${[...versions].join(', ')}`)
      const owned = groups.map((g) => g!.owned)
      const total = owned.reduce((a, b) => a + b, 0)
      if (groups.some((g) => g!.open !== g!.owned)) throw new Error('shards not open yet')
      if (Math.max(...owned) - Math.min(...owned) > 1) throw new Error(`shares not balanced yet: ${owned.join(', ')} of ${total}`)
      await new Promise((r) => setTimeout(r, quietMs))
      if (read().some((g) => g?.tableVersion !== groups[0]!.tableVersion)) throw new Error('the table changed')
    },
    { timeoutMs },
  )
}

/** A seeded uniform [0, 1) source (mulberry32), the simulator's: for tests that inject randomness into a pure core. */
export { seededRandom } from '../sim/Random.ts'
export { type ConformanceFramework, eventStoreConformance, events as conformanceEvents } from './EventStoreConformance.ts'
export { leaseStoreConformance } from './LeaseStoreConformance.ts'
export { type LogLine, NodeProcess, type NodeProcessOptions, SHOAL_BIN } from './NodeProcess.ts'
