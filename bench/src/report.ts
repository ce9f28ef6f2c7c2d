/**
 * Ratios, targets and the printed tables of a benchmark run.
 * @module
 */
import { cpus, platform, release, totalmem } from 'node:os'
import type { LoadResult, OneWayResult, Timing } from './harness.ts'
import { LOCAL_PEERS, type LocalPeerName, type LocalResult, type MemoryResult, type RemotePeerName, type RemoteResult } from './protocol.ts'

/** The machine a run happened on, with its load when the run began. */
export function describeMachine(loadAverageAtStart: readonly number[]): Machine {
  const cpu = cpus()
  return { cpuModel: cpu[0]?.model.trim() ?? 'unknown', cpuCount: cpu.length, totalMemoryBytes: totalmem(), platform: `${platform()} ${release()}`, node: process.version, loadAverageAtStart }
}

export interface Machine {
  readonly cpuModel: string
  readonly cpuCount: number
  readonly totalMemoryBytes: number
  readonly platform: string
  readonly node: string
  /** 1/5/15-minute load averages when the run began: other work on the machine skews the numbers. */
  readonly loadAverageAtStart: readonly number[]
}

/** Everything measured in one run; a failed scenario is absent and its error is in `errors`. */
export interface Results {
  readonly date: string
  readonly mode: 'quick' | 'full'
  readonly machine: Machine
  readonly timing: Timing
  /** Scenario sizes: in-flight levels, one-way message count, local batch, actors for memory. */
  readonly plan: { readonly inFlight: readonly number[]; readonly oneWayMessages: number; readonly localBatch: number; readonly actors: number; readonly rounds: number }
  readonly payloadBytes: number
  readonly remote: Partial<Record<RemotePeerName, RemoteResult>>
  readonly local: Partial<Record<LocalPeerName, LocalResult>>
  readonly memory: MemoryResult | undefined
  readonly errors: Record<string, string>
}

/** Shoal divided by a peer: above 1 means Shoal is faster (calls/s) or slower (latency). */
export interface RemoteRatio {
  readonly inFlight: number
  readonly peer: RemotePeerName
  readonly callsPerSec: number
  readonly p50: number
  readonly p99: number
}

export interface Ratios {
  readonly remote: readonly RemoteRatio[]
  readonly oneWayVsRaw: number
  readonly localVsDirect: number
  readonly localVsNact: number
}

export interface Target {
  readonly goal: string
  readonly actual: string
  readonly pass: boolean
}

const OTHERS: readonly RemotePeerName[] = ['raw', 'moleculer', 'grpc']

function callsAt(r: Results, peer: RemotePeerName, inFlight: number): LoadResult | undefined {
  return r.remote[peer]?.calls.find((c) => c.inFlight === inFlight)
}

/** a / b, NaN when either side is missing. */
function ratio(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined ? Number.NaN : a / b
}

export function computeRatios(r: Results): Ratios {
  const remote: RemoteRatio[] = []
  for (const c of r.remote.shoal?.calls ?? []) {
    for (const peer of OTHERS) {
      const other = callsAt(r, peer, c.inFlight)
      remote.push({ inFlight: c.inFlight, peer, callsPerSec: ratio(c.callsPerSec, other?.callsPerSec), p50: ratio(c.p50Ms, other?.p50Ms), p99: ratio(c.p99Ms, other?.p99Ms) })
    }
  }
  return {
    remote,
    oneWayVsRaw: ratio(r.remote.shoal?.oneWay?.messagesPerSec, r.remote.raw?.oneWay?.messagesPerSec),
    localVsDirect: ratio(r.local.shoal?.callsPerSec, r.local.direct?.callsPerSec),
    localVsNact: ratio(r.local.shoal?.callsPerSec, r.local.nact?.callsPerSec),
  }
}

function remoteRatio(x: Ratios, peer: RemotePeerName, inFlight: number): RemoteRatio | undefined {
  return x.remote.find((q) => q.peer === peer && q.inFlight === inFlight)
}

/** A target passes only when measured: a missing number is a MISS, never a silent PASS. */
function target(goal: string, value: number, pass: (v: number) => boolean, show: (v: number) => string): Target {
  const measured = Number.isFinite(value)
  return { goal, actual: measured ? show(value) : 'not measured', pass: measured && pass(value) }
}

export function evaluateTargets(r: Results, x: Ratios): Target[] {
  const pct = (v: number): string => `${(v * 100).toFixed(0)}% of raw`
  return [
    target('remote calls at 100 in flight ≥ 70% of raw', remoteRatio(x, 'raw', 100)?.callsPerSec ?? Number.NaN, (v) => v >= 0.7, pct),
    target('remote calls at 100 in flight ≥ 2× Moleculer', remoteRatio(x, 'moleculer', 100)?.callsPerSec ?? Number.NaN, (v) => v >= 2, times),
    target('p50 latency at 1 in flight ≤ 1.25× raw', remoteRatio(x, 'raw', 1)?.p50 ?? Number.NaN, (v) => v <= 1.25, times),
    target('local calls ≥ 1,000,000/s', r.local.shoal?.callsPerSec ?? Number.NaN, (v) => v >= 1_000_000, (v) => `${int(v)}/s`),
    target("local calls ≥ 3× nact's ask", x.localVsNact, (v) => v >= 3, times),
    target('≤ 1 KB heap per idle actor', r.memory?.heapPerActorBytes ?? Number.NaN, (v) => v <= 1024, (v) => `${int(v)} B`),
  ]
}

// ---- formatting -------------------------------------------------------------------------------

function int(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–'
}

function ms(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : '–'
}

function times(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}×` : '–'
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

/** Left-aligns the first `labels` columns (names), right-aligns the rest (numbers). */
function table(header: readonly string[], rows: readonly (readonly string[])[], labels = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    '  ' + cells.map((c, i) => (i < labels ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ').trimEnd()
  return [line(header), '  ' + widths.map((w) => '─'.repeat(w)).join('   '), ...rows.map(line)]
}

function remoteSection(r: Results, x: Ratios): string[] {
  const rows: string[][] = []
  const inFlights = [...new Set(Object.values(r.remote).flatMap((res) => res.calls.map((c) => c.inFlight)))].sort((a, b) => a - b)
  for (const n of inFlights) {
    for (const peer of ['shoal', ...OTHERS] as const) {
      const c = callsAt(r, peer, n)
      const q = peer === 'shoal' ? undefined : remoteRatio(x, peer, n)
      if (!c) {
        rows.push([`${n}`, peer, 'error', '', '', '', ''])
        continue
      }
      rows.push([`${n}`, peer, int(c.callsPerSec), ms(c.p50Ms), ms(c.p99Ms), q ? times(q.callsPerSec) : '', q ? times(q.p50) : ''])
    }
  }
  return [
    `Remote calls: ${r.payloadBytes}-byte msgpack argument, loopback, server and client in separate processes`,
    ...table(['in flight', 'peer', 'calls/s', 'p50 ms', 'p99 ms', 'Shoal÷peer calls/s', 'Shoal÷peer p50'], rows, 2),
    '  (calls/s ratio above 1× = Shoal faster; p50 ratio below 1× = Shoal quicker)',
  ]
}

function oneWaySection(r: Results, x: Ratios): string[] {
  const row = (peer: RemotePeerName, w: OneWayResult | undefined, vs: string): string[] =>
    w ? [peer, int(w.messages), int(w.messagesPerSec), vs] : [peer, 'error', '', '']
  return [
    'One-way messages: N sent without replies, then one call reads the count',
    ...table(['peer', 'messages', 'messages/s', 'Shoal÷peer'], [row('shoal', r.remote.shoal?.oneWay, ''), row('raw', r.remote.raw?.oneWay, times(x.oneWayVsRaw))]),
  ]
}

function localSection(r: Results, x: Ratios): string[] {
  const row = (peer: LocalPeerName, label: string, vs: string): string[] => {
    const c = r.local[peer]
    return c ? [label, int(c.callsPerSec), vs] : [label, 'error', '']
  }
  return [
    `Local calls in one process: batches of ${r.plan.localBatch} calls awaited with Promise.all`,
    ...table(
      ['peer', 'calls/s', 'Shoal÷peer'],
      [row('shoal', 'shoal (local ref)', ''), row('direct', 'direct method call', times(x.localVsDirect)), row('nact', 'nact ask (query)', times(x.localVsNact))],
    ),
    ...LOCAL_PEERS.flatMap((peer) => (r.local[peer]?.notes ?? []).map((note) => `  note (${peer}): ${note}`)),
  ]
}

function memorySection(r: Results): string[] {
  const m = r.memory
  if (!m) return ['Memory', '  error']
  return [
    'Memory',
    `  idle Shoal node RSS: ${mb(m.idleRssBytes)} (bare Node + TypeScript loader: ${mb(m.baselineRssBytes)}; Shoal adds ${mb(m.idleRssBytes - m.baselineRssBytes)})`,
    `  heap per idle actor: ${int(m.heapPerActorBytes)} B (${int(m.actors)} actors)`,
  ]
}

export function render(r: Results, x: Ratios, targets: readonly Target[]): string {
  const m = r.machine
  return [
    `Shoal benchmark (${r.mode}): ${m.cpuCount} × ${m.cpuModel}, ${mb(m.totalMemoryBytes)} RAM, ${m.platform}, Node ${m.node}, ${r.date}`,
    `warm-up ${r.timing.warmupMs} ms, measured ${r.timing.durationMs} ms per point, median of ${r.plan.rounds} interleaved round(s); load average at start ${m.loadAverageAtStart.map((l) => l.toFixed(2)).join(" ")}`,
    '',
    ...remoteSection(r, x),
    '',
    ...oneWaySection(r, x),
    '',
    ...localSection(r, x),
    '',
    ...memorySection(r),
    '',
    'Targets',
    ...targets.map((t) => `  ${t.pass ? 'PASS' : 'MISS'}  ${t.goal}: ${t.actual}`),
    ...Object.entries(r.errors).map(([what, error]) => `  ERROR ${what}: ${error.split('\n')[0]}`),
  ].join('\n')
}
