/**
 * Ratios, targets and the printed tables of a benchmark run.
 *
 * "raw" in every ratio and target is the raw ceiling: per scenario point (each in-flight level, and
 * one-way), the faster of the two raw flush modes measured in the same run (`raw-immediate`,
 * `raw-microtask`; faster = more calls or messages per second, and that mode's latencies go with
 * it). Which mode it was is printed beside the figure and kept in the results JSON (`rawCeiling`).
 * @module
 */
import { cpus, platform, release, totalmem } from 'node:os'
import type { LoadResult, OneWayResult, Timing } from './harness.ts'
import {
  LOCAL_PEERS,
  type LocalPeerName,
  type LocalResult,
  type MemoryResult,
  RAW_PEERS,
  type RawFlushMode,
  type RemotePeerName,
  type RemoteResult,
} from './protocol.ts'

/** The machine a run happened on, with its load when the run began. */
export function describeMachine(loadAverageAtStart: readonly number[]): Machine {
  const cpu = cpus()
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cpuCount: cpu.length,
    totalMemoryBytes: totalmem(),
    platform: `${platform()} ${release()}`,
    node: process.version,
    loadAverageAtStart,
  }
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

/** Scenarios a run can be limited to (`--only=`). */
export const SCENARIOS = ['calls', 'oneway', 'local', 'memory'] as const
export type Scenario = (typeof SCENARIOS)[number]

/** Everything measured in one run; a failed scenario is absent and its error is in `errors`. */
export interface Results {
  readonly date: string
  readonly mode: 'quick' | 'full'
  readonly machine: Machine
  readonly timing: Timing
  /**
   * Scenario sizes (in-flight levels, one-way message count, local batch, actors for memory), and
   * what was selected: `partial` when --only or --peers left something out.
   */
  readonly plan: {
    readonly inFlight: readonly number[]
    readonly oneWayMessages: number
    readonly localBatch: number
    readonly actors: number
    readonly rounds: number
    readonly scenarios: readonly Scenario[]
    readonly peers: readonly string[]
    readonly partial: boolean
  }
  readonly payloadBytes: number
  readonly remote: Partial<Record<RemotePeerName, RemoteResult>>
  readonly local: Partial<Record<LocalPeerName, LocalResult>>
  readonly memory: MemoryResult | undefined
  readonly errors: Record<string, string>
}

/** One point of the raw ceiling: the faster flush mode's figures. */
export interface RawCallPoint extends LoadResult {
  readonly mode: RawFlushMode
}

export interface RawOneWay extends OneWayResult {
  readonly mode: RawFlushMode
}

/** The raw ceiling: per in-flight level and for one-way, the faster of the raw flush modes. */
export interface RawCeiling {
  readonly calls: readonly RawCallPoint[]
  readonly oneWay: RawOneWay | undefined
}

/** Peers Shoal is compared with: the raw ceiling, and the other frameworks. */
export type ComparedPeer = 'raw' | 'moleculer' | 'grpc'
const OTHERS: readonly ComparedPeer[] = ['raw', 'moleculer', 'grpc']

/** Shoal divided by a peer: above 1 means Shoal is faster (calls/s) or slower (latency). */
export interface RemoteRatio {
  readonly inFlight: number
  readonly peer: ComparedPeer
  readonly callsPerSec: number
  readonly p50: number
  readonly p99: number
}

/** shoal-traced divided by shoal at one in-flight level: the cost of a no-op tracing subscriber. */
export interface TracedRatio {
  readonly inFlight: number
  readonly callsPerSec: number
  readonly p50: number
}

export interface Ratios {
  readonly remote: readonly RemoteRatio[]
  readonly traced: readonly TracedRatio[]
  readonly oneWayVsRaw: number
  readonly localVsDirect: number
  readonly localVsNact: number
}

export interface Target {
  readonly goal: string
  readonly actual: string
  /** False when a figure it needs was not measured (failed, or left out by --only/--peers). */
  readonly measured: boolean
  readonly pass: boolean
}

function callsOf(r: Results, peer: RemotePeerName, inFlight: number): LoadResult | undefined {
  return r.remote[peer]?.calls.find((c) => c.inFlight === inFlight)
}

const RAW_MODES = Object.keys(RAW_PEERS) as RawFlushMode[]

/** Per scenario point, the raw flush mode with the higher throughput. */
export function rawCeiling(r: Results): RawCeiling {
  const levels = [...new Set(RAW_MODES.flatMap((mode) => r.remote[RAW_PEERS[mode]]?.calls.map((c) => c.inFlight) ?? []))].sort((a, b) => a - b)
  const calls: RawCallPoint[] = []
  for (const n of levels) {
    let best: RawCallPoint | undefined
    for (const mode of RAW_MODES) {
      const c = callsOf(r, RAW_PEERS[mode], n)
      if (c && Number.isFinite(c.callsPerSec) && (!best || c.callsPerSec > best.callsPerSec)) best = { ...c, mode }
    }
    if (best) calls.push(best)
  }
  let oneWay: RawOneWay | undefined
  for (const mode of RAW_MODES) {
    const w = r.remote[RAW_PEERS[mode]]?.oneWay
    if (w && (!oneWay || w.messagesPerSec > oneWay.messagesPerSec)) oneWay = { ...w, mode }
  }
  return { calls, oneWay }
}

/** A compared peer's figures at one level (the ceiling for raw). */
function comparedAt(r: Results, raw: RawCeiling, peer: ComparedPeer, inFlight: number): LoadResult | undefined {
  return peer === 'raw' ? raw.calls.find((c) => c.inFlight === inFlight) : callsOf(r, peer, inFlight)
}

/** a / b, NaN when either side is missing. */
function ratio(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined ? Number.NaN : a / b
}

export function computeRatios(r: Results, raw: RawCeiling): Ratios {
  const remote: RemoteRatio[] = []
  for (const c of r.remote.shoal?.calls ?? []) {
    for (const peer of OTHERS) {
      const other = comparedAt(r, raw, peer, c.inFlight)
      remote.push({
        inFlight: c.inFlight,
        peer,
        callsPerSec: ratio(c.callsPerSec, other?.callsPerSec),
        p50: ratio(c.p50Ms, other?.p50Ms),
        p99: ratio(c.p99Ms, other?.p99Ms),
      })
    }
  }
  const traced: TracedRatio[] = []
  for (const t of r.remote['shoal-traced']?.calls ?? []) {
    const s = callsOf(r, 'shoal', t.inFlight)
    traced.push({ inFlight: t.inFlight, callsPerSec: ratio(t.callsPerSec, s?.callsPerSec), p50: ratio(t.p50Ms, s?.p50Ms) })
  }
  return {
    remote,
    traced,
    oneWayVsRaw: ratio(r.remote.shoal?.oneWay?.messagesPerSec, raw.oneWay?.messagesPerSec),
    localVsDirect: ratio(r.local.shoal?.callsPerSec, r.local.direct?.callsPerSec),
    localVsNact: ratio(r.local.shoal?.callsPerSec, r.local.nact?.callsPerSec),
  }
}

function remoteRatio(x: Ratios, peer: ComparedPeer, inFlight: number): RemoteRatio | undefined {
  return x.remote.find((q) => q.peer === peer && q.inFlight === inFlight)
}

/** A target passes only when measured: a missing number is a MISS, never a silent PASS. */
function target(goal: string, value: number, pass: (v: number) => boolean, show: (v: number) => string): Target {
  const measured = Number.isFinite(value)
  return { goal, actual: measured ? show(value) : 'not measured', measured, pass: measured && pass(value) }
}

/** Every target is a ratio within one run, except the absolute local and memory figures. */
export function evaluateTargets(r: Results, x: Ratios, raw: RawCeiling): Target[] {
  const vsRaw =
    (inFlight: number) =>
    (v: number): string => {
      const mode = raw.calls.find((c) => c.inFlight === inFlight)?.mode
      return `${times(v)} raw (${mode ?? '?'} flush)`
    }
  const at100 = remoteRatio(x, 'raw', 100)?.callsPerSec ?? Number.NaN
  const traced100 = x.traced.find((t) => t.inFlight === 100)?.callsPerSec ?? Number.NaN
  return [
    target(
      'remote calls at 100 in flight ≥ 0.7× raw (aim 0.8×)',
      at100,
      (v) => v >= 0.7,
      (v) => `${vsRaw(100)(v)}${v >= 0.8 ? '; aim met' : '; aim 0.8× not met'}`,
    ),
    target('remote calls at 100 in flight ≥ 2× Moleculer', remoteRatio(x, 'moleculer', 100)?.callsPerSec ?? Number.NaN, (v) => v >= 2, times),
    target('remote calls at 10 in flight ≥ 0.6× raw', remoteRatio(x, 'raw', 10)?.callsPerSec ?? Number.NaN, (v) => v >= 0.6, vsRaw(10)),
    target('p50 latency at 1 in flight ≤ 1.25× raw', remoteRatio(x, 'raw', 1)?.p50 ?? Number.NaN, (v) => v <= 1.25, vsRaw(1)),
    target(
      'one-way messages ≥ 0.5× raw',
      x.oneWayVsRaw,
      (v) => v >= 0.5,
      (v) => `${times(v)} raw (${raw.oneWay?.mode ?? '?'} flush)`,
    ),
    target(
      'local calls ≥ 1,500,000/s',
      r.local.shoal?.callsPerSec ?? Number.NaN,
      (v) => v >= 1_500_000,
      (v) => `${int(v)}/s`,
    ),
    target(
      '≤ 1 KB heap per idle actor',
      r.memory?.heapPerActorBytes ?? Number.NaN,
      (v) => v <= 1024,
      (v) => `${int(v)} B`,
    ),
    target(
      'no-op shoal.call tracing subscriber costs ≤ 5% of remote throughput at 100 in flight',
      traced100,
      (v) => v >= 0.95,
      (v) => `shoal-traced ÷ shoal = ${times(v)}`,
    ),
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
    '  ' +
    cells
      .map((c, i) => (i < labels ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('   ')
      .trimEnd()
  return [line(header), '  ' + widths.map((w) => '─'.repeat(w)).join('   '), ...rows.map(line)]
}

/** Rows of the remote table, in this order; raw flush modes sit where the ceiling is compared. */
const TABLE_PEERS: readonly RemotePeerName[] = ['shoal', 'shoal-traced', 'shoal-otel', 'shoal-dashboard', 'raw-immediate', 'raw-microtask', 'moleculer', 'grpc']

function modeOf(peer: RemotePeerName): RawFlushMode | undefined {
  return RAW_MODES.find((mode) => RAW_PEERS[mode] === peer)
}

function remoteSection(r: Results, x: Ratios, raw: RawCeiling): string[] {
  const rows: string[][] = []
  const inFlights = [...new Set(Object.values(r.remote).flatMap((res) => res.calls.map((c) => c.inFlight)))].sort((a, b) => a - b)
  const shown = TABLE_PEERS.filter((peer) => r.remote[peer] !== undefined || r.errors[`remote ${peer}`] !== undefined)
  for (const n of inFlights) {
    for (const peer of shown) {
      const c = callsOf(r, peer, n)
      if (!c) {
        rows.push([`${n}`, peer, 'error', '', '', '', '', ''])
        continue
      }
      const mode = modeOf(peer)
      const ceiling = mode !== undefined && raw.calls.find((p) => p.inFlight === n)?.mode === mode
      // Shoal ÷ this peer; for a raw mode, against that mode's own figures.
      const s = peer === 'shoal' || peer === 'shoal-traced' || peer === 'shoal-otel' || peer === 'shoal-dashboard' ? undefined : callsOf(r, 'shoal', n)
      const vs = s ? [times(s.callsPerSec / c.callsPerSec), times(s.p50Ms / c.p50Ms)] : ['', '']
      rows.push([`${n}`, peer, int(c.callsPerSec), ms(c.p50Ms), ms(c.p99Ms), ...vs, ceiling ? '← raw' : ''])
    }
  }
  return [
    `Remote calls: ${r.payloadBytes}-byte msgpack argument, loopback, server and client in separate processes`,
    ...table(['in flight', 'peer', 'calls/s', 'p50 ms', 'p99 ms', 'Shoal÷peer calls/s', 'Shoal÷peer p50', 'note'], rows, 2),
    '  (calls/s ratio above 1× = Shoal faster; p50 ratio below 1× = Shoal quicker; "← raw": the faster raw flush mode',
    '   at that level, the raw figure every target uses)',
    ...shown
      .filter((peer) => peer !== 'shoal-traced' && peer !== 'shoal-otel' && peer !== 'shoal-dashboard')
      .flatMap((peer) => (r.remote[peer]?.notes ?? []).map((note) => `  note (${peer}): ${note}`)),
  ]
}

function tracingSection(r: Results, x: Ratios): string[] {
  if (x.traced.length === 0) return []
  const rows = x.traced.map((t) => [`${t.inFlight}`, times(t.callsPerSec), times(t.p50)])
  return [
    '',
    "Tracing: shoal-traced (no-op subscriber on tracingChannel('shoal.call') in client and server) ÷ shoal",
    ...table(['in flight', 'calls/s', 'p50'], rows),
    ...(r.remote['shoal-traced']?.notes ?? []).map((note) => `  note: ${note}`),
  ]
}

function oneWaySection(r: Results, x: Ratios, raw: RawCeiling): string[] {
  const peers = (['shoal', 'raw-immediate', 'raw-microtask'] as const).filter(
    (peer) => r.remote[peer] !== undefined || r.errors[`remote ${peer}`] !== undefined,
  )
  if (peers.length === 0) return []
  const shoal = r.remote.shoal?.oneWay
  const rows = peers.map((peer): string[] => {
    const w = r.remote[peer]?.oneWay
    if (!w) return [peer, r.remote[peer] ? 'not run' : 'error', '', '', '']
    const mode = modeOf(peer)
    const vs = peer !== 'shoal' && shoal ? times(shoal.messagesPerSec / w.messagesPerSec) : ''
    return [peer, int(w.messages), int(w.messagesPerSec), vs, mode !== undefined && raw.oneWay?.mode === mode ? '← raw' : '']
  })
  return [
    '',
    'One-way messages: N sent without replies, then one call reads the count',
    ...table(['peer', 'messages', 'messages/s', 'Shoal÷peer', 'note'], rows),
    `  Shoal ÷ raw ceiling: ${times(x.oneWayVsRaw)}`,
  ]
}

function localSection(r: Results, x: Ratios): string[] {
  const peers = LOCAL_PEERS.filter((peer) => r.local[peer] !== undefined || r.errors[`local ${peer}`] !== undefined)
  if (peers.length === 0) return []
  const labels: Record<LocalPeerName, string> = { shoal: 'shoal (local ref)', direct: 'direct method call', nact: 'nact ask (query)' }
  const vs: Record<LocalPeerName, number> = { shoal: Number.NaN, direct: x.localVsDirect, nact: x.localVsNact }
  const rows = peers.map((peer) => {
    const c = r.local[peer]
    return c ? [labels[peer], int(c.callsPerSec), peer === 'shoal' ? '' : times(vs[peer])] : [labels[peer], 'error', '']
  })
  return [
    '',
    `Local calls in one process: batches of ${r.plan.localBatch} calls awaited with Promise.all`,
    ...table(['peer', 'calls/s', 'Shoal÷peer'], rows),
    ...LOCAL_PEERS.flatMap((peer) => (r.local[peer]?.notes ?? []).map((note) => `  note (${peer}): ${note}`)),
  ]
}

function memorySection(r: Results): string[] {
  if (!r.plan.scenarios.includes('memory')) return []
  const m = r.memory
  if (!m) return ['', 'Memory', '  error']
  return [
    '',
    'Memory',
    `  idle Shoal node RSS: ${mb(m.idleRssBytes)} (bare Node + TypeScript loader: ${mb(m.baselineRssBytes)}; Shoal adds ${mb(m.idleRssBytes - m.baselineRssBytes)})`,
    `  heap per idle actor: ${int(m.heapPerActorBytes)} B (${int(m.actors)} actors)`,
  ]
}

export function render(r: Results, x: Ratios, raw: RawCeiling, targets: readonly Target[]): string {
  const m = r.machine
  // A partial run (--only, --peers) skips what it did not measure instead of calling it a miss.
  const verdict = (t: Target): string => (t.pass ? 'PASS' : !t.measured && r.plan.partial ? 'SKIP' : 'MISS')
  const remote = Object.keys(r.remote).length > 0 || Object.keys(r.errors).some((k) => k.startsWith('remote '))
  return [
    `Shoal benchmark (${r.mode}${r.plan.partial ? `, partial: ${r.plan.scenarios.join(',')} / ${r.plan.peers.join(',')}` : ''}): ${m.cpuCount} × ${m.cpuModel}, ${mb(m.totalMemoryBytes)} RAM, ${m.platform}, Node ${m.node}, ${r.date}`,
    `warm-up ${r.timing.warmupMs} ms, measured ${r.timing.durationMs} ms per point, median of ${r.plan.rounds} interleaved round(s); load average at start ${m.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}`,
    ...(remote && r.plan.scenarios.includes('calls') ? ['', ...remoteSection(r, x, raw)] : []),
    ...tracingSection(r, x),
    ...(r.plan.scenarios.includes('oneway') ? oneWaySection(r, x, raw) : []),
    ...localSection(r, x),
    ...memorySection(r),
    '',
    'Targets (ratios within this run; "raw" = the faster raw flush mode at that point)',
    ...targets.map((t) => `  ${verdict(t)}  ${t.goal}: ${t.actual}`),
    ...Object.entries(r.errors).map(([what, error]) => `  ERROR ${what}: ${error.split('\n')[0]}`),
  ].join('\n')
}
