/**
 * `node --conditions=source --import tsx bench/src/virtual/effect-peer.ts [--quick]`: the
 * @effect/cluster peer of `npm run bench:virtual`, run on the same machine with the same load shape.
 *
 * Setup, in one process: one runner that hosts the `Tiny` entity and owns every shard (its shard
 * locks and runner registration in a SQLite file in a temp dir, through @effect/sql-sqlite-node),
 * and a client-only caller (it hosts nothing, like the caller of Shoal's cross-node figures) that
 * reads the shard assignments from the same SQLite file and sends to the runner over the runners'
 * own transport: msgpack RPC over TCP on 127.0.0.1 (NodeClusterSocket).
 *
 * - first-call activations/s of fresh entity ids, 100 in flight, closed loop: across the socket
 *   (caller → runner), and on the runner itself (local send, which by default still serializes)
 * - warm calls/s to 1,000 active entities round-robin, at 1, 10, 100 in flight, p50/p99
 *
 * Ping is not annotated `ClusterSchema.Persisted`, so messages are not written to the message
 * table: SQLite serves runner registration and shard locks only, off the call path. (Shoal's
 * bench:virtual runs its virtual actors without a lease store, which is optional there; neither
 * side touches storage per call.)
 * @effect/cluster 0.60 is the last line on Effect 3 (Effect 4 moved it into `effect` itself, and its
 * @effect/platform-node needs Node ≥ 22.19).
 *
 * Ends with one line `EFFECT_PEER {json}` and exit 0; on failure a message and a non-zero exit.
 * EFFECT_PEER_LOG=1 prints the heap after each phase; EFFECT_PEER_LOG=debug also the cluster's logs.
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Entity from '@effect/cluster/Entity'
import * as EntityId from '@effect/cluster/EntityId'
import * as RunnerAddress from '@effect/cluster/RunnerAddress'
import * as ShardId from '@effect/cluster/ShardId'
import * as Sharding from '@effect/cluster/Sharding'
import * as NodeClusterSocket from '@effect/platform-node/NodeClusterSocket'
import * as Rpc from '@effect/rpc/Rpc'
import * as SqliteClient from '@effect/sql-sqlite-node/SqliteClient'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import * as Logger from 'effect/Logger'
import * as LogLevel from 'effect/LogLevel'
import * as ManagedRuntime from 'effect/ManagedRuntime'
import * as Option from 'effect/Option'
import * as Schema from 'effect/Schema'
import { closedLoop, FULL_TIMING, type LoadResult, QUICK_TIMING, type Timing } from '../harness.ts'

const quick = process.argv.includes('--quick')
/** Activations: ~3 s (quick) or ~8 s (full) measured after a warm-up. Warm calls: Shoal's timing. */
const activationTiming: Timing = quick ? { warmupMs: 500, durationMs: 3000 } : { warmupMs: 1000, durationMs: 8000 }
const warmTiming: Timing = quick ? QUICK_TIMING : FULL_TIMING
const SHARDS = 300 // @effect/cluster's default shardsPerGroup, kept

const require = createRequire(import.meta.url)
const version = (name: string): string => (require(`${name}/package.json`) as { version: string }).version

// The peer of Shoal's `Tiny` actor: one RPC, `Ping`, answering 1.
const Tiny = Entity.make('Tiny', [Rpc.make('Ping', { success: Schema.Number })])
// maxIdleTime as Shoal's default idleTimeout (120 s; @effect/cluster's default is 60 s): no entity
// of the run is passivated while the run measures.
const TinyLive = Tiny.toLayer({ Ping: () => Effect.succeed(1) }, { maxIdleTime: '120 seconds' })

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

const quiet = Logger.minimumLogLevel(process.env.EFFECT_PEER_LOG === 'debug' ? LogLevel.Debug : LogLevel.Warning)

function runnerLayer(filename: string, port: number) {
  const cluster = NodeClusterSocket.layer({
    storage: 'sql',
    shardingConfig: {
      runnerAddress: Option.some(RunnerAddress.RunnerAddress.make({ host: '127.0.0.1', port })),
      shardsPerGroup: SHARDS,
    },
  })
  return TinyLive.pipe(Layer.provideMerge(cluster), Layer.provide(SqliteClient.layer({ filename })), Layer.provide(quiet))
}

function callerLayer(filename: string) {
  const cluster = NodeClusterSocket.layer({ clientOnly: true, storage: 'sql', shardingConfig: { shardsPerGroup: SHARDS } })
  return cluster.pipe(Layer.provide(SqliteClient.layer({ filename })), Layer.provide(quiet))
}

/** Promise-returning `ping(id)` through a runtime's cluster client. */
async function pinger(runtime: ManagedRuntime.ManagedRuntime<Sharding.Sharding, unknown>) {
  const client = await runtime.runPromise(Tiny.client)
  /** A reference kept and reused, like the `refs` of Shoal's warm figures. */
  const ref = (id: string): (() => Promise<number>) => {
    const c = client(id)
    return () => runtime.runPromise(c.Ping())
  }
  /** A fresh client per call, like `virtualActors.get(Tiny, id).ping()`. */
  const ping = (id: string): Promise<number> => runtime.runPromise(client(id).Ping())
  return { ref, ping }
}

async function withTimeout<A>(what: string, ms: number, p: Promise<A>): Promise<A> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const round2 = (n: number): number => Math.round(n * 100) / 100

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'effect-peer-'))
  const filename = join(dir, 'cluster.db')
  const port = await freePort()
  const runtimes: Array<ManagedRuntime.ManagedRuntime<unknown, unknown>> = []
  try {
    const runner = ManagedRuntime.make(runnerLayer(filename, port))
    runtimes.push(runner as ManagedRuntime.ManagedRuntime<unknown, unknown>)
    await withTimeout('runner start', 30_000, runner.runtime())
    const caller = ManagedRuntime.make(callerLayer(filename))
    runtimes.push(caller as ManagedRuntime.ManagedRuntime<unknown, unknown>)
    await withTimeout('caller start', 30_000, caller.runtime())

    const { ping: remote, ref } = await pinger(caller)
    const { ping: local } = await pinger(runner)
    const heap = (what: string): void => {
      if (process.env.EFFECT_PEER_LOG) console.error(`${what}: heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MiB`)
    }

    // Ready: the runner holds the lock of every shard (in SQLite), then a probe per shard through the
    // caller. (Thousands of first sends at once before the locks are held are retried every
    // sendRetryInterval and starved the process here: readiness is waited for, not probed for.)
    const t0 = performance.now()
    const sharding = await runner.runPromise(Sharding.Sharding)
    const shards = Array.from({ length: SHARDS }, (_, i) => ShardId.make('default', i + 1))
    while (!shards.every((id) => sharding.hasShardId(id))) {
      if (performance.now() - t0 > 60_000)
        throw new Error(`readiness: the runner holds ${shards.filter((id) => sharding.hasShardId(id)).length} of ${SHARDS} shards after 60 s`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const probeIds = new Map<number, string>()
    for (let i = 0; probeIds.size < SHARDS; i++) probeIds.set(sharding.getShardId(EntityId.make(`probe-${i}`), 'default').id, `probe-${i}`)
    await withTimeout('readiness probe', 60_000, Promise.all([...probeIds.values()].map((id) => remote(id))))
    const readyMs = performance.now() - t0

    let next = 0
    const activationsRemote = await closedLoop(() => remote(`remote-${next++}`), undefined, 100, activationTiming)
    const activationsLocal = await closedLoop(() => local(`local-${next++}`), undefined, 100, activationTiming)

    heap('after activations')
    const warmIds = Array.from({ length: 1000 }, (_, i) => `warm-${i}`)
    await Promise.all(warmIds.map((id) => remote(id)))
    const refs = warmIds.map(ref)
    const warm: Record<string, LoadResult> = {}
    for (const inFlight of [1, 10, 100]) {
      const rounds: LoadResult[] = []
      let i = 0
      for (let r = 0; r < (quick ? 1 : 3); r++) rounds.push(await closedLoop(() => refs[i++ % refs.length]!(), undefined, inFlight, warmTiming))
      const m = median(rounds.map((x) => x.callsPerSec))
      warm[inFlight] = rounds.find((x) => x.callsPerSec === m)!
      heap(`after warm ${inFlight}`)
    }

    const result = {
      version: version('@effect/cluster'),
      effect: version('effect'),
      storage: 'sqlite',
      transport: 'tcp-loopback msgpack rpc (NodeClusterSocket)',
      runners: '1 hosting runner + 1 client-only caller, one process',
      shards: SHARDS,
      quick,
      readyMs: Math.round(readyMs),
      activationsPerSec: Math.round(activationsRemote.callsPerSec),
      activationsLocalPerSec: Math.round(activationsLocal.callsPerSec),
      warm: Object.fromEntries(Object.entries(warm).map(([k, v]) => [k, Math.round(v.callsPerSec)])),
      p50Ms: {
        activations: round2(activationsRemote.p50Ms),
        activationsLocal: round2(activationsLocal.p50Ms),
        ...Object.fromEntries(Object.entries(warm).map(([k, v]) => [k, round2(v.p50Ms)])),
      },
      p99Ms: {
        activations: round2(activationsRemote.p99Ms),
        activationsLocal: round2(activationsLocal.p99Ms),
        ...Object.fromEntries(Object.entries(warm).map(([k, v]) => [k, round2(v.p99Ms)])),
      },
      loadavg: loadavg().map(round2),
    }
    console.log(`EFFECT_PEER ${JSON.stringify(result)}`)
  } finally {
    // Entities are interrupted on shutdown (up to entityTerminationTimeout each): do not wait forever.
    for (const rt of runtimes.reverse()) await withTimeout('shutdown', 20_000, rt.dispose()).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
}

try {
  await main()
  process.exit(0)
} catch (error) {
  console.error(`effect-peer: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exit(1)
}
