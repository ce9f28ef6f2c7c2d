/**
 * `npm run bench:singleton [-- --quick]`: the cluster singleton moving between real OS processes,
 * default settings (keep-majority, `stableAfter` 3 s, `downMargin` 3 s). Each trial starts 3 fresh
 * processes of the fixture packages/shoal/test/fixtures/singleton-node.ts (the first, then 2 seeded
 * with it), every one calling the singleton "counter" through its proxy every 10 ms, one call at a
 * time. The first node is the oldest, so it hosts. 1. Graceful hand-over: SIGTERM the host; how
 * long the other nodes' calls waited, and whether any failed. 2. Crash failover: kill -9 the host;
 * time until the other nodes' calls are served by the new instance, broken down from the nodes'
 * logs, and whether every call started after the kill succeeded. Both scenarios run twice: plain,
 * and with a singleton lease (an SQLite file shared by the 3 processes, fresh per trial, ttl 8 s),
 * to show what the lease costs.
 * All times come from the processes' own clocks (one machine): the log lines' `time`, and each
 * call's `started` + `ms`. Prints progress and Markdown tables.
 * @module
 */

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { eventually, type LogLine, NodeProcess } from 'shoal/testkit'
import { percentile } from '../harness.ts'
import { describeMachine } from '../report.ts'

const TRIALS = process.argv.includes('--quick') ? 1 : 5
const LOAD_MS = 10
/** The default downMargin: max(2 s, keep-majority's stableAfter of 3 s). */
const DOWN_MARGIN_MS = 5000
const SECRET = randomBytes(32).toString('hex')
const FIXTURE = fileURLToPath(new URL('../../../packages/shoal/test/fixtures/singleton-node.ts', import.meta.url))
const started = performance.now()
const progress = (s: string): void => console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${s}`)

/** One "call" line of a fixture: a call through the proxy, `ended` = `started` + `ms`. */
interface Call {
  readonly ok: boolean
  readonly host: string | undefined
  readonly code: string | undefined
  /** Failed and known never to have run (held by the proxy until it gave up); else it may have run. */
  readonly notDelivered: boolean
  readonly started: number
  readonly ended: number
  readonly ms: number
}

const callsOf = (p: NodeProcess): Call[] =>
  p.lines
    .filter((l) => l.msg === 'call')
    .map((l) => ({
      ok: l.ok === true,
      host: l.host as string | undefined,
      code: l.code as string | undefined,
      notDelivered: l.notDelivered === true,
      started: Number(l.started),
      ended: Number(l.started) + Number(l.ms),
      ms: Number(l.ms),
    }))

const line = (p: NodeProcess, msg: string): LogLine | undefined => p.lines.find((l) => l.msg === msg)
const minOf = (xs: readonly number[]): number => Math.min(...xs)
const maxOf = (xs: readonly number[]): number => Math.max(...xs)
const sumOf = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0)
const median = (xs: readonly number[]): number => percentile(Float64Array.from(xs).sort(), 50)

/** A fixture process under load; NodeProcess reads its log, the spawner runs the fixture instead of the CLI. */
async function start(procs: NodeProcess[], lease: string | undefined, seed?: string): Promise<NodeProcess> {
  const args = ['--port', '0', '--http', '0', '--load', String(LOAD_MS), ...(seed ? ['--seed', seed] : []), ...(lease ? ['--lease', lease] : [])]
  const p = await NodeProcess.start('node', {
    args,
    env: { SHOAL_SECRET: SECRET },
    spawner: (command, _cli, options) => spawn(command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...args], options),
  })
  procs.push(p)
  return p
}

interface Cluster {
  readonly host: NodeProcess
  readonly others: NodeProcess[]
  /** p50 latency of the others' calls in the second before the event, ms. */
  readonly normalMs: number
}

/** 3 nodes; returns once every node's calls are served by the one instance, plus 2 s to settle. */
async function cluster(procs: NodeProcess[], lease: string | undefined): Promise<Cluster> {
  const first = await start(procs, lease)
  await Promise.all([start(procs, lease, first.address), start(procs, lease, first.address)])
  const host = await eventually(
    () => {
      const hosts = procs.filter((p) => line(p, 'singleton activated'))
      if (hosts.length !== 1 || !procs.every((p) => callsOf(p).some((c) => c.ok && c.host === hosts[0]!.address)))
        throw new Error('the singleton is not serving every node yet')
      return hosts[0]!
    },
    { timeoutMs: 30_000 },
  )
  await sleep(2000)
  const others = procs.filter((p) => p !== host)
  const recent = others.flatMap(callsOf).filter((c) => c.started >= Date.now() - 1000)
  return { host, others, normalMs: median(recent.map((c) => c.ms)) }
}

/** The first call served by a node other than `old`, as `eventually` waits for it. */
function firstServedElsewhere(others: readonly NodeProcess[], old: NodeProcess): Call {
  const served = others.flatMap(callsOf).filter((c) => c.ok && c.host !== old.address)
  if (served.length === 0) throw new Error('no call served by a new instance yet')
  return served.reduce((a, b) => (b.ended < a.ended ? b : a))
}

/** The survivor that activated the new instance. */
function successor(others: readonly NodeProcess[]): { node: NodeProcess; at: number } {
  const [node] = others.filter((p) => line(p, 'singleton activated'))
  if (!node) throw new Error('no survivor activated the singleton')
  return { node, at: line(node, 'singleton activated')!.time }
}

// ---- 1. graceful hand-over --------------------------------------------------------------------

interface HandOver {
  readonly normalMs: number
  /** ms after SIGTERM: the old host's instance passivated, the new one activated, the first call it served. */
  readonly passivatedMs: number
  readonly activatedMs: number
  readonly firstServedMs: number
  /** The longest call of the others that was under way at any time between SIGTERM and the first served by the new instance. */
  readonly longestMs: number
  /** Last call served by the old instance → first served by the new one (completions), ms. */
  readonly gapMs: number
  /** Failed calls on the other nodes, the whole trial. */
  readonly failed: number
  readonly overlap: boolean
  readonly exitCode: number | null
}

/** A fresh lease file for one trial (or none), removed afterwards. */
async function withLease<T>(leased: boolean, fn: (lease: string | undefined) => Promise<T>): Promise<T> {
  if (!leased) return fn(undefined)
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-lease-'))
  try {
    return await fn(join(dir, 'leases.db'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function handOver(i: number, lease: string | undefined): Promise<HandOver> {
  const procs: NodeProcess[] = []
  try {
    const { host, others, normalMs } = await cluster(procs, lease)
    const t0 = Date.now()
    host.signal('SIGTERM')
    const first = await eventually(() => firstServedElsewhere(others, host), { timeoutMs: 30_000 })
    const { code: exitCode } = await host.exited
    await sleep(1000)
    const calls = others.flatMap(callsOf)
    const passivated = line(host, 'singleton passivated')?.time ?? Number.NaN
    const activated = successor(others).at
    const r: HandOver = {
      normalMs,
      passivatedMs: passivated - t0,
      activatedMs: activated - t0,
      firstServedMs: first.ended - t0,
      longestMs: maxOf(calls.filter((c) => c.ended >= t0 && c.started <= first.ended).map((c) => c.ms)),
      gapMs: first.ended - maxOf(calls.filter((c) => c.ok && c.host === host.address).map((c) => c.ended)),
      failed: calls.filter((c) => !c.ok).length,
      overlap: !(activated >= passivated), // also when no passivation was logged
      exitCode,
    }
    progress(
      `hand-over${lease ? ' (lease)' : ''} ${i}/${TRIALS}: SIGTERM → passivated ${r.passivatedMs} ms → activated ${r.activatedMs} ms → first call served ${r.firstServedMs} ms; longest call ${r.longestMs} ms (normal p50 ${r.normalMs} ms), gap ${r.gapMs} ms, ${r.failed} failed, exit ${r.exitCode}`,
    )
    return r
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
  }
}

// ---- 2. crash failover ------------------------------------------------------------------------

interface Failover {
  /** ms after kill -9 was sent until this process saw the host's exit. */
  readonly goneMs: number
  /** ms after kill -9: the first survivor sees the host unreachable, the first marks it down, the successor activates, the first call it serves. */
  readonly unreachableMs: number
  readonly downMs: number
  readonly activatedMs: number
  readonly firstServedMs: number
  readonly longestMs: number
  /** Calls the other nodes started between the kill and the first call served by the new instance: all, and those that succeeded. */
  readonly duringFailover: number
  readonly served: number
  /** Calls of the other nodes that failed after the kill (code, started ms after the kill; negative: under way at the kill). */
  readonly failed: readonly { code: string; startedMs: number; notDelivered: boolean }[]
}

async function failover(i: number, lease: string | undefined): Promise<Failover> {
  const procs: NodeProcess[] = []
  try {
    const { host, others } = await cluster(procs, lease)
    const t0 = Date.now()
    await host.kill()
    const goneMs = Date.now() - t0
    const first = await eventually(() => firstServedElsewhere(others, host), { timeoutMs: 60_000 })
    await sleep(1000)
    const member = `@${host.address}#${host.uid}`
    const seen = (pred: (l: LogLine) => boolean): number =>
      minOf(others.flatMap((p) => p.lines.filter((l) => typeof l.member === 'string' && l.member.endsWith(member) && pred(l)).map((l) => l.time))) - t0
    const calls = others.flatMap(callsOf)
    const during = calls.filter((c) => c.started >= t0 && c.started <= first.ended)
    const r: Failover = {
      goneMs,
      unreachableMs: seen((l) => l.msg === 'member reachability changed' && l.reachability === 'unreachable'),
      downMs: seen((l) => l.msg === 'member status changed' && l.status === 'down'),
      activatedMs: successor(others).at - t0,
      firstServedMs: first.ended - t0,
      longestMs: maxOf(during.map((c) => c.ms)),
      duringFailover: during.length,
      served: during.filter((c) => c.ok).length,
      failed: calls.filter((c) => !c.ok && c.ended >= t0).map((c) => ({ code: c.code ?? '?', startedMs: c.started - t0, notDelivered: c.notDelivered })),
    }
    const failures = r.failed.map((f) => `${f.code} (started ${f.startedMs >= 0 ? '+' : ''}${f.startedMs} ms)`).join(', ')
    progress(
      `failover${lease ? ' (lease)' : ''} ${i}/${TRIALS}: kill -9 (exit seen after ${r.goneMs} ms) → unreachable ${r.unreachableMs} ms → down ${r.downMs} ms → activated ${r.activatedMs} ms → first call served ${r.firstServedMs} ms; ${r.duringFailover} calls started in between, ${r.served} served by the new instance; ${r.failed.length} failed${failures ? `: ${failures}` : ''}`,
    )
    return r
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
  }
}

// ---- the run ----------------------------------------------------------------------------------

const machine = describeMachine(loadavg())
progress(
  `bench:singleton on ${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, load ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}; ${TRIALS} trial(s) of each scenario, 3 fresh processes per trial, a call every ${LOAD_MS} ms from each`,
)
for (const leased of [false, true]) {
  const handOvers: HandOver[] = []
  for (let i = 1; i <= TRIALS; i++) handOvers.push(await withLease(leased, (lease) => handOver(i, lease)))
  const failovers: Failover[] = []
  for (let i = 1; i <= TRIALS; i++) failovers.push(await withLease(leased, (lease) => failover(i, lease)))
  report(handOvers, failovers, leased)
}

function report(handOvers: readonly HandOver[], failovers: readonly Failover[], leased: boolean): void {
  const s = (ms: number): string => (ms / 1000).toFixed(2)
  const spread = (xs: readonly number[], show: (v: number) => string): string => `p50 ${show(median(xs))}, worst ${show(maxOf(xs))}`
  const handWait = handOvers.map((h) => Math.max(h.longestMs, h.gapMs))
  const failedAfterKill = failovers.flatMap((f) => f.failed).filter((f) => f.startedMs >= 0)
  // A proxy fails a held call only when it gives up on it (never delivered); a call it had already
  // sent when the host died fails as ambiguous (it may have run), which at-most-once cannot retry.
  const heldFailed = failedAfterKill.filter((f) => f.notDelivered)
  const inFlight = failedAfterKill.filter((f) => !f.notDelivered)
  const marginKept = failovers.map((f) => f.activatedMs - f.downMs)
  const targets: [string, string, boolean | 'info'][] = [
    [
      'graceful hand-over: calls wait ≤ 1 s (longest call, and gap between the old and new instance serving)',
      `longest call ${spread(
        handOvers.map((h) => h.longestMs),
        (v) => `${v} ms`,
      )}; gap ${spread(
        handOvers.map((h) => h.gapMs),
        (v) => `${v} ms`,
      )}`,
      maxOf(handWait) <= 1000,
    ],
    ['graceful hand-over: no failed call', `${sumOf(handOvers.map((h) => h.failed))} failed`, handOvers.every((h) => h.failed === 0)],
    [
      'graceful hand-over: new instance only after the old one passivated (design check)',
      `${handOvers.filter((h) => h.overlap).length} overlaps`,
      handOvers.every((h) => !h.overlap),
    ],
    [
      'kill -9: first call served by the new instance ≤ 12 s after the kill',
      spread(
        failovers.map((f) => f.firstServedMs),
        (v) => `${s(v)} s`,
      ),
      maxOf(failovers.map((f) => f.firstServedMs)) <= 12_000,
    ],
    [
      'kill -9: every call held (buffered) during the failover succeeds',
      `${heldFailed.length} held calls failed; ${sumOf(failovers.map((f) => f.served))} calls started after the kill were served by the new instance`,
      heldFailed.length === 0,
    ],
    [
      'kill -9: calls already sent to the host when it died (informational: ambiguous, at-most-once)',
      inFlight.length === 0
        ? 'none'
        : `${inFlight.length} in ${failovers.length} trials (${[...new Set(inFlight.map((f) => f.code))].join(', ')}), sent ${minOf(inFlight.map((f) => f.startedMs))}–${maxOf(inFlight.map((f) => f.startedMs))} ms after the kill, before the survivors saw the connection drop`,
      'info',
    ],
    [
      `kill -9: successor starts ≥ downMargin (${s(DOWN_MARGIN_MS)} s) after the down (design check)`,
      `down → activated p50 ${median(marginKept)} ms, range ${minOf(marginKept)}–${maxOf(marginKept)} ms`,
      minOf(marginKept) >= DOWN_MARGIN_MS,
    ],
  ]
  console.log(
    [
      '',
      `${leased ? 'With a lease (SQLite file, ttl 8 s). ' : 'No lease. '}Graceful hand-over (SIGTERM the host; ms after the signal; calls of the 2 other nodes)`,
      '',
      '| trial | normal call p50 (ms) | → old passivated | → new activated | → first call served by new | longest call (ms) | gap old → new serving (ms) | failed calls | leaver exit |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...handOvers.map(
        (h, i) =>
          `| ${i + 1} | ${h.normalMs} | ${h.passivatedMs} | ${h.activatedMs} | ${h.firstServedMs} | ${h.longestMs} | ${h.gapMs} | ${h.failed} | ${h.exitCode} |`,
      ),
      '',
      'Crash failover (kill -9 the host; s after the kill, first survivor to log each step)',
      '',
      '| trial | → exit seen | → unreachable | → down | → new activated | → first call served by new | longest call (s) | calls started in between | served by new | failed |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...failovers.map(
        (f, i) =>
          `| ${i + 1} | ${s(f.goneMs)} | ${s(f.unreachableMs)} | ${s(f.downMs)} | ${s(f.activatedMs)} | ${s(f.firstServedMs)} | ${s(f.longestMs)} | ${f.duringFailover} | ${f.served} | ${f.failed.length} |`,
      ),
      '',
      '| target | result | |',
      '|---|---|---|',
      ...targets.map(([t, r, ok]) => `| ${t} | ${r} | ${ok === 'info' ? '—' : ok ? 'PASS' : '**MISS**'} |`),
    ].join('\n'),
  )
}
progress('done')
