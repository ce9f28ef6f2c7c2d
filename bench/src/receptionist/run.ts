/**
 * `npm run bench:receptionist [-- --quick]`: the receptionist and lifecycle watch on 10 nodes over
 * real TCP on loopback, default settings. The nodes run in this one process, so they share its
 * event loop and the machine's cores. 1. A check-in, until every other node lists it. 2. A node
 * marked down, until no other node lists any of its entries. 3. The same down, until every other
 * node's watch of one of its actors has fired. 4. 10,000 registrations (1,000 per node) until every
 * node lists them all, and a late 11th node until it has caught up.
 * Times are taken in receptionist listeners and `onTerminated`, in the tick the change lands, so no
 * polling delay is included. Prints progress and Markdown tables; writes
 * bench/results/receptionist.json (where `null` is a time that never came within the wait).
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { type ActorId, type ActorRef, ClusterSystem, type ClusterSystemSettings, DistributedActor, ReceptionKey, type TerminationReason } from 'shoal'
import { eventually, startCluster } from 'shoal/testkit'
import { percentile } from '../harness.ts'
import { describeMachine } from '../report.ts'

const quick = process.argv.includes('--quick')
const NODES = 10
const TARGET_MS = 1000
const PLAN = {
  settleMs: 2000,
  checkIns: quick ? 50 : 200,
  /** Open loop: check-ins go out at this pace whether or not the previous one has arrived. */
  checkInEveryMs: 25,
  trials: quick ? 2 : 10,
  entriesPerNodeInTrials: 100,
  entriesPerNode: 1000,
  keys: 10,
}
const started = performance.now()
const progress = (s: string): void => console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${s}`)

/** A registered actor; what it does does not matter here. */
class Probe extends DistributedActor {}

/** Watches `target` from its first turn and reports when `onTerminated` runs. */
class Watcher extends DistributedActor {
  constructor(
    readonly target: ActorRef<Probe>,
    readonly fired: (reason: TerminationReason) => void,
  ) {
    super()
  }
  override onStart(): void {
    this.watch(this.target)
  }
  override onTerminated(_id: ActorId, reason: TerminationReason): void {
    this.fired(reason)
  }
}

const KEYS = Array.from({ length: PLAN.keys }, (_, i) => new ReceptionKey(`service-${i}`, Probe))

// ---- helpers ----------------------------------------------------------------------------------

interface Summary {
  readonly n: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** Samples that never happened within the wait (counted as +∞ above). */
  readonly missing: number
}

function summarize(ms: readonly number[]): Summary {
  const sorted = Float64Array.from(ms).sort()
  return {
    n: ms.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: percentile(sorted, 100),
    missing: ms.filter((x) => x === Infinity).length,
  }
}

type Change = { readonly added: readonly string[]; readonly removed: readonly string[] }

/** Calls `on` with every change under `keys` on each node, in the tick it lands; returns the unsubscribe. */
function listen(systems: readonly ClusterSystem[], keys: readonly ReceptionKey[], on: (node: number, c: Change, now: number) => void): () => void {
  const offs = systems.flatMap((s, i) => keys.map((k) => s.receptionist.subscribe(k, (c) => on(i, c, performance.now()))))
  return () => offs.forEach((off) => off())
}

/** When each node's running total of `count(change)` (from `initial`) first reached `want`; +∞ until then. */
function reachTimes(
  systems: readonly ClusterSystem[],
  count: (c: Change) => number,
  want: number,
  initial: (s: ClusterSystem) => number = () => 0,
): { at: number[]; off: () => void } {
  const totals = systems.map(initial)
  const at = totals.map((t) => (t >= want ? performance.now() : Infinity))
  const off = listen(systems, KEYS, (i, c, now) => {
    totals[i]! += count(c)
    if (totals[i]! >= want && at[i] === Infinity) at[i] = now
  })
  return { at, off }
}

/** Waits until `done()` or `ms` pass. The figures come from listeners: this only ends the wait. */
async function waitUntil(done: () => boolean, ms: number): Promise<void> {
  await eventually(
    () => {
      if (!done()) throw new Error('not yet')
    },
    { timeoutMs: ms, intervalMs: 10 },
  ).catch(() => undefined)
}

async function withCluster<T>(settings: ClusterSystemSettings, run: (systems: ClusterSystem[]) => Promise<T>): Promise<T> {
  const nodes = await startCluster(NODES, settings)
  try {
    // Membership traffic goes on for a moment after every node sees every node up; on the one
    // shared event loop it would delay whatever is measured first (up to ~200 ms).
    await sleep(PLAN.settleMs)
    return await run(nodes.systems)
  } finally {
    await nodes.shutdown()
  }
}

/** Spawns `n` probes on `s` and checks them in, spread over the keys. */
function register(s: ClusterSystem, n: number): ActorRef<Probe>[] {
  const probes = Array.from({ length: n }, () => s.spawn(Probe))
  probes.forEach((p, i) => s.receptionist.checkIn(p, KEYS[i % KEYS.length]!))
  return probes
}

interface Traffic {
  readonly messages: number
  readonly bytes: number
  readonly largestMessage: number
}

function traffic(systems: readonly ClusterSystem[]): Traffic {
  const stats = systems.map((s) => s.receptionist.stats)
  return {
    messages: sum(stats.map((x) => x.messagesOut)),
    bytes: sum(stats.map((x) => x.bytesOut)),
    largestMessage: Math.max(...stats.map((x) => x.largestMessage)),
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0)
const maxOf = (xs: readonly number[]): number => Math.max(...xs)
/** A time in ms for a table cell, and for prose. */
const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : 'never')
const took = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'never')
const int = (v: number): string => v.toLocaleString('en-US')

// ---- 1. check-in visibility -------------------------------------------------------------------

interface Visibility {
  readonly checkIns: number
  readonly everyMs: number
  /** Per check-in, in order: ms until the last of the other nodes listed it. */
  readonly latenciesMs: readonly number[]
  readonly everywhere: Summary
}

async function visibility(): Promise<Visibility> {
  return withCluster({}, async (systems) => {
    const key = KEYS[0]!
    const seenAt = systems.map(() => new Map<string, number>())
    const off = listen(systems, [key], (i, c, now) => {
      for (const a of c.added) if (!seenAt[i]!.has(a)) seenAt[i]!.set(a, now)
    })
    const owner = (i: number): ClusterSystem => systems[i % NODES]!
    const probes = Array.from({ length: PLAN.checkIns }, (_, i) => owner(i).spawn(Probe))
    const checkedInAt: number[] = []
    for (const [i, p] of probes.entries()) {
      checkedInAt.push(performance.now())
      owner(i).receptionist.checkIn(p, key)
      await sleep(PLAN.checkInEveryMs)
    }
    await waitUntil(() => seenAt.every((m) => m.size === probes.length), 10_000)
    off()
    const latencies = probes.map((p, i) => maxOf(seenAt.map((m, n) => (n === i % NODES ? 0 : (m.get(p.id.toString()) ?? Infinity) - checkedInAt[i]!))))
    const everywhere = summarize(latencies)
    progress(
      `1. check-in visibility: ${PLAN.checkIns} check-ins, one every ${PLAN.checkInEveryMs} ms round-robin over ${NODES} nodes; on all ${NODES}: p50 ${took(everywhere.p50)}, p99 ${took(everywhere.p99)}, max ${took(everywhere.max)}`,
    )
    return { checkIns: PLAN.checkIns, everyMs: PLAN.checkInEveryMs, latenciesMs: latencies, everywhere }
  })
}

// ---- 2 and 3. a node marked down --------------------------------------------------------------

interface Trial {
  readonly victim: string
  readonly downedBy: string
  /** Per surviving node: ms from `down()` until it listed none of the victim's entries. */
  readonly entriesGoneMs: readonly number[]
  /** Per surviving node: ms from `down()` until its watcher's `onTerminated` ran. */
  readonly watchFiredMs: readonly number[]
  readonly reasons: readonly (TerminationReason | undefined)[]
  /** Victim entries still listed on surviving nodes at the end (must be 0). */
  readonly leftover: number
}

/**
 * A fresh cluster per trial: every trial has the same 9 observers, and none runs while the previous
 * victim shuts down. Downing 'none': only the down under test happens, even if the loaded process
 * makes SWIM suspect someone.
 */
async function downTrial(n: number): Promise<Trial> {
  return withCluster({ cluster: { downing: 'none' } }, async (systems) => {
    const v = 1 + (n % (NODES - 1))
    const victim = systems[v]!
    const downer = systems[(v + 1) % NODES]!
    const survivors = systems.filter((s) => s !== victim)
    const probes = systems.map((s) => register(s, PLAN.entriesPerNodeInTrials))
    await eventually(() => {
      if (!systems.every((s) => s.receptionist.size === NODES * PLAN.entriesPerNodeInTrials)) throw new Error('registrations not replicated')
    })
    const victimIds = new Set(probes[v]!.map((p) => p.id.toString()))
    const gone = reachTimes(survivors, (c) => c.removed.filter((a) => victimIds.has(a)).length, victimIds.size)
    const firedAt = survivors.map(() => Infinity)
    const reasons: (TerminationReason | undefined)[] = survivors.map(() => undefined)
    const target = probes[v]![0]!
    survivors.forEach((s, i) =>
      s.spawn(Watcher, s.resolve(Probe, target.id), (reason) => {
        firedAt[i] = performance.now()
        reasons[i] = reason
      }),
    )
    // Let the watch messages reach the victim first, so that the down is all that is in flight.
    await sleep(500)
    const downAt = performance.now()
    if (!downer.cluster.down(victim.node)) throw new Error(`${victim.node.endpoint.name} is not a member`)
    await waitUntil(() => [...gone.at, ...firedAt].every(Number.isFinite), 10_000)
    gone.off()
    const leftover = sum(survivors.flatMap((s) => KEYS.map((k) => s.receptionist.lookup(k).filter((r) => victimIds.has(r.id.toString())).length)))
    const trial = {
      victim: victim.node.endpoint.name,
      downedBy: downer.node.endpoint.name,
      entriesGoneMs: gone.at.map((t) => t - downAt),
      watchFiredMs: firedAt.map((t) => t - downAt),
      reasons,
      leftover,
    }
    progress(
      `2/3. trial ${n + 1}/${PLAN.trials}: ${trial.downedBy} downs ${trial.victim}; its ${victimIds.size} entries gone on all ${survivors.length} others after ${took(maxOf(trial.entriesGoneMs))}, every watch fired after ${took(maxOf(trial.watchFiredMs))} (${[...new Set(reasons)].join(', ')}; ${leftover} left over)`,
    )
    return trial
  })
}

// ---- 4. 10,000 registrations ------------------------------------------------------------------

interface Bulk {
  readonly registrations: number
  /** ms the synchronous check-in loop of all nodes took (one event loop for all). */
  readonly checkInLoopMs: number
  /** ms from the first check-in until each node listed all of them. */
  readonly listedMs: readonly number[]
  readonly traffic: Traffic
  readonly late: LateJoin
}

interface LateJoin {
  /** ms from `ClusterSystem.start` of the 11th node until it was up, and until it listed everything. */
  readonly upMs: number
  readonly listedMs: number
  /** Replication messages and bytes the late node received while catching up. */
  readonly messagesIn: number
  readonly bytesIn: number
}

async function bulk(): Promise<Bulk> {
  return withCluster({}, async (systems) => {
    const total = NODES * PLAN.entriesPerNode
    const listed = reachTimes(systems, (c) => c.added.length - c.removed.length, total)
    const before = traffic(systems)
    const firstCheckIn = performance.now()
    for (const s of systems) register(s, PLAN.entriesPerNode)
    const checkInLoopMs = performance.now() - firstCheckIn
    await waitUntil(() => listed.at.every(Number.isFinite), 60_000)
    listed.off()
    const after = traffic(systems)
    const result = {
      registrations: total,
      checkInLoopMs,
      listedMs: listed.at.map((t) => t - firstCheckIn),
      traffic: { messages: after.messages - before.messages, bytes: after.bytes - before.bytes, largestMessage: after.largestMessage },
    }
    progress(
      `4. ${int(total)} registrations: listed on all ${NODES} nodes ${took(maxOf(result.listedMs))} after the first check-in (check-in loop ${took(checkInLoopMs)}); ${int(result.traffic.messages)} messages, ${int(result.traffic.bytes)} bytes, largest ${int(result.traffic.largestMessage)} bytes`,
    )
    await sleep(1000)
    return { ...result, late: await lateJoin(systems, total) }
  })
}

async function lateJoin(systems: readonly ClusterSystem[], total: number): Promise<LateJoin> {
  const startAt = performance.now()
  const late = await ClusterSystem.start({
    name: 'node-late',
    host: '127.0.0.1',
    port: 0,
    logLevel: process.env.SHOAL_LOG_LEVEL ?? 'silent',
    cluster: { seeds: [`127.0.0.1:${systems[0]!.node.endpoint.port}`] },
  })
  try {
    // Nothing has arrived yet (no I/O ran since start), but count from what is there to be sure.
    const listed = reachTimes(
      [late],
      (c) => c.added.length - c.removed.length,
      total,
      (s) => s.receptionist.size,
    )
    let upAt = Infinity
    void late.cluster.joined().then(
      () => (upAt = performance.now()),
      () => undefined,
    )
    await waitUntil(() => Number.isFinite(listed.at[0]!) && Number.isFinite(upAt), 60_000)
    listed.off()
    const stats = late.receptionist.stats
    const result = { upMs: upAt - startAt, listedMs: listed.at[0]! - startAt, messagesIn: stats.messagesIn, bytesIn: stats.bytesIn }
    progress(
      `4. late 11th node: up after ${took(result.upMs)}, listed all ${int(total)} after ${took(result.listedMs)} (${int(result.messagesIn)} messages, ${int(result.bytesIn)} bytes in)`,
    )
    return result
  } finally {
    await late.shutdown()
  }
}

// ---- the run ----------------------------------------------------------------------------------

function evaluate(vis: Visibility, trials: readonly Trial[], b: Bulk): [string, string, boolean][] {
  const gone = summarize(trials.map((t) => maxOf(t.entriesGoneMs)))
  const fired = summarize(trials.map((t) => maxOf(t.watchFiredMs)))
  const noLeftovers = trials.every((t) => t.leftover === 0)
  const allNodeDown = trials.every((t) => t.reasons.every((r) => r === 'node-down'))
  return [
    [
      `a check-in is listed on all ${NODES} nodes within 1 s (p99 of ${vis.checkIns})`,
      `p99 ${took(vis.everywhere.p99)} (p50 ${ms(vis.everywhere.p50)}, max ${ms(vis.everywhere.max)})`,
      vis.everywhere.p99 <= TARGET_MS,
    ],
    [
      `a downed node's entries are gone on every other node within 1 s (${trials.length} trials)`,
      `p50 ${took(gone.p50)}, max ${took(gone.max)}`,
      gone.max <= TARGET_MS && noLeftovers,
    ],
    [
      `a watch fires on every other node within 1 s of the down (${trials.length} trials)`,
      `p50 ${took(fired.p50)}, max ${took(fired.max)}`,
      fired.max <= TARGET_MS && allNodeDown,
    ],
    [
      `${int(b.registrations)} registrations (${int(PLAN.entriesPerNode)} per node) converge on all ${NODES} nodes`,
      `${took(maxOf(b.listedMs))} after the first check-in; largest message ${int(b.traffic.largestMessage)} B`,
      b.listedMs.every(Number.isFinite),
    ],
    [`a late 11th node lists all ${int(b.registrations)}`, `${took(b.late.listedMs)} after it started`, Number.isFinite(b.late.listedMs)],
  ]
}

function render(vis: Visibility, trials: readonly Trial[], b: Bulk, targets: readonly [string, string, boolean][]): string {
  return [
    '',
    `| check-ins | pace | on all ${NODES} nodes p50 (ms) | p99 (ms) | max (ms) | never |`,
    '|---:|---:|---:|---:|---:|---:|',
    `| ${vis.checkIns} | 1 per ${vis.everyMs} ms | ${ms(vis.everywhere.p50)} | ${ms(vis.everywhere.p99)} | ${ms(vis.everywhere.max)} | ${vis.everywhere.missing} |`,
    '',
    `| trial | victim (${PLAN.entriesPerNodeInTrials} entries) | downed by | entries gone everywhere (ms) | watch fired everywhere (ms) | reasons | left over |`,
    '|---:|---|---|---:|---:|---|---:|',
    ...trials.map(
      (t, i) =>
        `| ${i + 1} | ${t.victim} | ${t.downedBy} | ${ms(maxOf(t.entriesGoneMs))} | ${ms(maxOf(t.watchFiredMs))} | ${[...new Set(t.reasons)].join(', ')} | ${t.leftover} |`,
    ),
    '',
    '| registrations | check-in loop (ms) | listed everywhere (ms) | messages | bytes | largest message (B) | late node up (ms) | late node lists all (ms) | late node received |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    `| ${int(b.registrations)} | ${ms(b.checkInLoopMs)} | ${ms(maxOf(b.listedMs))} | ${int(b.traffic.messages)} | ${int(b.traffic.bytes)} | ${int(b.traffic.largestMessage)} | ${ms(b.late.upMs)} | ${ms(b.late.listedMs)} | ${int(b.late.messagesIn)} messages, ${int(b.late.bytesIn)} B |`,
    '',
    '| target | result | |',
    '|---|---|---|',
    ...targets.map(([t, r, ok]) => `| ${t} | ${r} | ${ok ? 'PASS' : '**MISS**'} |`),
  ].join('\n')
}

const machine = describeMachine(loadavg())
progress(
  `bench:receptionist${quick ? ' --quick' : ''} on ${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}: ${NODES} nodes in this one process over loopback TCP, default settings`,
)
const vis = await visibility()
const trials: Trial[] = []
for (let n = 0; n < PLAN.trials; n++) trials.push(await downTrial(n))
const b = await bulk()
const targets = evaluate(vis, trials, b)
console.log(render(vis, trials, b, targets))
const dir = fileURLToPath(new URL('../../results/', import.meta.url))
mkdirSync(dir, { recursive: true })
writeFileSync(
  `${dir}receptionist.json`,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      machine,
      nodes: NODES,
      inOneProcess: true,
      plan: PLAN,
      visibility: vis,
      trials,
      bulk: b,
      targets,
    },
    null,
    2,
  ) + '\n',
)
progress(`done; results in ${dir}receptionist.json`)
