/**
 * `npm run bench:virtual-handover`: hand-over of 10,000 active event-sourced virtual actors
 * (SQLite journal), in one process on loopback TCP, under a closed loop of calls to every id:
 *
 * - a 4th node joins a 3-node cluster: how long after it is up until every shard the new table
 *   gives it is open on it; failed calls; p99 latency of calls to ids on moving shards during the
 *   move (the stall) and of the others (unaffected);
 * - that node leaves gracefully: how long after `leave()` until every shard is open on the nodes
 *   that stay; failed calls; deactivations on the nodes that stay (0: nothing moves but the
 *   leaver's ids).
 *
 * Prints a table with the targets of the virtual-actors issue. (kill -9 of an owner is measured
 * across real processes by test/virtual-process.test.ts.)
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteEventStore } from '@shoal/journal-sqlite'
import { ClusterSystem, distributed, EventSourcedActor, journalPlugin, virtualActorsPlugin } from 'shoal'
import { shardOf } from '../../../packages/shoal/src/virtual/ShardTable.ts'

const IDS = 10_000
const IN_FLIGHT = 200

class Account extends EventSourcedActor<{ n: number }, { type: 'Touched' }> {
  constructor(readonly key: string) {
    super()
  }
  get persistenceId(): string {
    return `account-${this.key}`
  }
  initialState(): { n: number } {
    return { n: 0 }
  }
  applyEvent(s: { n: number }): { n: number } {
    return { n: s.n + 1 }
  }
  @distributed async touch(): Promise<number> {
    await this.emit({ type: 'Touched' })
    return this.system.node.endpoint.port
  }
  @distributed async read(): Promise<number> {
    return this.system.node.endpoint.port
  }
}

const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-handover-'))
const store = SqliteEventStore.open(join(dir, 'journal.db'))
const plugins = () => [journalPlugin({ store }), virtualActorsPlugin()]
const start = (seeds: string[]) =>
  ClusterSystem.start({ host: '127.0.0.1', port: 0, logLevel: 'error', plugins: plugins(), cluster: { seeds, selfJoinAfter: 200 } })

const first = await start([])
const seed = `127.0.0.1:${first.node.endpoint.port}`
const systems = [first, await start([seed]), await start([seed])]
for (const s of systems) s.virtualActors.host(Account, (id) => new Account(id))
await allOpen(systems, 3)

const ids = Array.from({ length: IDS }, (_, i) => `acct-${i}`)
const caller = systems[0]!
const refs = ids.map((id) => caller.virtualActors.get(Account, id))
// Every id active, with one event written.
for (let i = 0; i < IDS; i += 500) await Promise.all(refs.slice(i, i + 500).map((r) => r.touch()))

const rows: Array<[string, string, string, string]> = []
const verdict = (ok: boolean): string => (ok ? 'pass' : '**miss**')

// ── join ──────────────────────────────────────────────────────────────────────
{
  const load = startLoad()
  await sleep(1000)
  const joiner = await start([seed])
  const up = whenUp(joiner) // from now: the node may be up before joined() resolves
  joiner.virtualActors.host(Account, (id) => new Account(id))
  const upAt = await up
  const openAt = await whenOpen([...systems, joiner], 4)
  await sleep(1000)
  const r = await load.stop()
  // The shards that moved: those of the ids the new node answers for now.
  const port = joiner.node.endpoint.port
  const answers = await Promise.all(refs.map((ref) => ref.read()))
  const moved = new Set(ids.filter((_, i) => answers[i] === port).map((id) => shardOf('Account', id)))
  // Calls in flight at some moment of the move (started before the shards opened, answered after the node was up).
  const during = r.latencies.filter((l) => l.started <= openAt && l.at >= upAt)
  const moving = during.filter((l) => moved.has(l.shard)).map((l) => l.ms)
  const others = during.filter((l) => !moved.has(l.shard)).map((l) => l.ms)
  const served = openAt - upAt
  rows.push([
    'join: all its shards served by the new node (every round of moves), after it is up',
    `${served.toFixed(0)} ms (${moved.size} shards)`,
    '≤ 2,000 ms',
    verdict(served <= 2000),
  ])
  rows.push(['join: failed calls', String(r.failed), '0', verdict(r.failed === 0)])
  rows.push([
    'join: p99 of calls to moving shards in flight during the move',
    `${p99(moving).toFixed(1)} ms (${moving.length} calls)`,
    '≤ 300 ms',
    verdict(p99(moving) <= 300),
  ])
  rows.push(['join: p99 of calls to other shards in flight meanwhile', `${p99(others).toFixed(1)} ms (${others.length} calls)`, 'unaffected', ''])
  systems.push(joiner)
}

// ── graceful leave ────────────────────────────────────────────────────────────
{
  const leaver = systems[3]!
  const stayers = systems.slice(0, 3)
  const before = stayers.map((s) => s.virtualActors.status().deactivations)
  const load = startLoad()
  await sleep(1000)
  const leftAt = performance.now()
  const leaving = leaver.cluster.leave()
  const openAt = await whenOpen(stayers, 3, leaver.node.uid)
  await leaving
  await sleep(1000)
  const r = await load.stop()
  const deactivated = stayers.reduce((n, s, i) => n + s.virtualActors.status().deactivations - before[i]!, 0)
  rows.push(['leave: every shard served by the stayers, after leave()', `${(openAt - leftAt).toFixed(0)} ms`, '≤ 2,000 ms', verdict(openAt - leftAt <= 2000)])
  rows.push(['leave: failed calls', String(r.failed), '0', verdict(r.failed === 0)])
  rows.push(['leave: deactivations on the nodes that stay', String(deactivated), '0', verdict(deactivated === 0)])
  await leaver.shutdown()
}

for (const s of systems.slice(0, 3)) await s.shutdown()
await store.close()
rmSync(dir, { recursive: true, force: true })

console.log(
  `\nbench:virtual-handover, ${new Date().toISOString()}, ${IDS.toLocaleString('en-US')} active event-sourced ids (SQLite), ${IN_FLIGHT} calls in flight, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
)
console.log('| figure | value | target | |\n|---|---:|---|---|')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
process.exit(0)

// ── helpers ───────────────────────────────────────────────────────────────────

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Calls every id in turn, IN_FLIGHT at a time (reads; every tenth a write), recording latencies by shard. */
function startLoad(): { stop(): Promise<{ failed: number; latencies: Array<{ shard: number; started: number; at: number; ms: number }> }> } {
  let running = true
  let failed = 0
  let next = 0
  const latencies: Array<{ shard: number; started: number; at: number; ms: number }> = []
  const worker = async (): Promise<void> => {
    while (running) {
      const i = next++ % IDS
      const t0 = performance.now()
      try {
        await (i % 10 === 0 ? refs[i]!.touch() : refs[i]!.read())
        const t1 = performance.now()
        latencies.push({ shard: shardOf('Account', ids[i]!), started: t0, at: t1, ms: t1 - t0 })
      } catch (e) {
        failed++
        if (failed <= 3) console.error(`call to ${ids[i]} failed: ${(e as Error).message}`)
      }
    }
  }
  const workers = Array.from({ length: IN_FLIGHT }, () => worker())
  return {
    async stop() {
      running = false
      await Promise.all(workers)
      return { failed, latencies }
    },
  }
}

/** When (performance.now) `s` saw itself up (polled every millisecond). */
async function whenUp(s: ClusterSystem): Promise<number> {
  for (;;) {
    if (s.cluster.membership.members.find((m) => m.node.uid === s.node.uid)?.status === 'up') return performance.now()
    await sleep(1)
  }
}

/** When every system of `group` had a balanced table of `n` owners (none of them `without`) with every shard it owns open. */
async function whenOpen(group: ClusterSystem[], n: number, without?: string): Promise<number> {
  return allOpen(group, n, without)
}

async function allOpen(group: ClusterSystem[], n: number, without?: string): Promise<number> {
  const deadline = performance.now() + 60_000
  for (;;) {
    // Balanced (moves go in rounds of maxShardMoves: the last round too), and every owned shard open.
    const ok = group.every((s) => {
      const g = s.virtualActors.status().groups[0]
      return g !== undefined && g.owned >= Math.floor(1024 / n) && g.open === g.owned
    })
    const owners = new Set(group.flatMap((s) => shardsOwnerIds(s)))
    const total = group.reduce((k, s) => k + (s.virtualActors.status().groups[0]?.owned ?? 0), 0)
    if (ok && total === 1024 && owners.size === n && (without === undefined || !owners.has(without))) return performance.now()
    if (performance.now() > deadline) throw new Error('shards never all opened')
    await sleep(5)
  }
}

function shardsOwnerIds(s: ClusterSystem): string[] {
  return (s.virtualActors.status().groups[0]?.owned ?? 0) > 0 ? [s.node.uid] : []
}

function p99(xs: number[]): number {
  if (xs.length === 0) return 0
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!
}
