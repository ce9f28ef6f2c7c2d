/**
 * `npm run bench:profile [-- flags]`: CPU profile of remote calls, client and server, per peer.
 *
 * For each peer it forks a server and a client (bench/src/profile/node.ts) with
 * `node --cpu-prof` (and the runner's own execArgv, so `--conditions=source --import tsx`: tsx
 * transpiles, function names stay), keeps `--in-flight` calls going, and takes a steady-state
 * window after the warm-up. It then aggregates the samples inside the window (profile/analyze.ts)
 * and prints, per side, CPU µs per call (from process.cpuUsage, and from the samples), calls per
 * socket write, bytes per call, GC time per call and calls per scavenge (perf_hooks), then the cost
 * categories side by side for all peers; report.md adds the top functions, files, top-level frames
 * and every project function (self and inclusive). The .cpuprofile files (open them in Chrome
 * DevTools or speedscope), report.md and summary.json go to `--out`.
 *
 * Siblings: profile/micro.ts (ns per operation of clock reads, promises with and without
 * AsyncLocalStorage, Map traffic, histograms, tracing channels) and profile/promoted.ts (allocation
 * stacks of the caller's promoted garbage). Findings: bench/notes/profile-2026-12-06.md.
 *
 * Flags:
 * - `--scenario=calls|oneway`: remote calls (default), or one-way messages as in the harness's
 *   oneWayRun, endlessly: windows of `--window=N` (default 10000) tells, each followed by a count
 *   call (awaited before the next window but one); "calls" in the tables are then messages, counted
 *   by the server's count replies
 * - `--peers=LIST`: remote peers (default `shoal,raw-immediate,raw-microtask`; `raw` = both raw modes)
 * - `--in-flight=N` (default 100), `--seconds=S` measured window (default 5), `--warmup=MS` (default 1500)
 * - `--interval=US`: sampling interval in µs (default 1000, V8's own; at 250 the sampling itself
 *   slowed Shoal by a third on this VM, at 1000 it did not measurably)
 * - `--no-prof`: no profiler, CPU time per call only
 * - `--no-calibrate`: skip the run without profiler that precedes each profiled run. By default
 *   each peer runs twice, first without the profiler for its true CPU time per call (sampling costs
 *   CPU itself), then with it; the tables give each function its share
 *   of the sampled busy time times that true CPU time per call
 * - `--top=N`: rows in the function tables (default 25)
 * - `--v8=FLAGS`: extra V8/Node flags for both sides, comma-separated (e.g. `--v8=--max-inlining-levels=0`
 *   to keep TurboFan from inlining callees into their callers, for cleaner per-function attribution
 *   at some cost in speed)
 * - `--out=DIR`: default bench/results/profile
 * @module
 */
import { type ChildProcess, fork } from 'node:child_process'
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RAW_PEERS, REMOTE_PEERS, type RemotePeerName } from '../protocol.ts'
import { type Analysis, analyze, type Breakdown, loadProfile, report } from './analyze.ts'
import type { NodeConfig, NodeMessage, RunnerMessage, WindowReport } from './node.ts'

const NODE_ENTRY = fileURLToPath(new URL('./node.ts', import.meta.url))

function parseArgs(argv: readonly string[]) {
  const flags = new Map<string, string>()
  for (const arg of argv) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg)
    if (!m || !['peers', 'in-flight', 'seconds', 'warmup', 'interval', 'no-prof', 'no-calibrate', 'top', 'out', 'v8', 'scenario', 'window'].includes(m[1]!))
      throw new Error(`unknown argument ${arg}: see the flags at the top of bench/src/profile/run.ts`)
    flags.set(m[1]!, m[2] ?? '')
  }
  const num = (name: string, fallback: number): number => {
    const text = flags.get(name)
    if (text === undefined) return fallback
    const n = Number(text)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: ${text} is not a positive number`)
    return n
  }
  const peers: RemotePeerName[] = []
  for (const name of (flags.get('peers') ?? 'shoal,raw-immediate,raw-microtask').split(',').filter((s) => s !== '')) {
    if (name === 'raw') peers.push(...Object.values(RAW_PEERS))
    else if ((REMOTE_PEERS as readonly string[]).includes(name)) peers.push(name as RemotePeerName)
    else throw new Error(`--peers: unknown peer ${name} (valid: raw, ${REMOTE_PEERS.join(', ')})`)
  }
  const scenario = flags.get('scenario') ?? 'calls'
  if (scenario !== 'calls' && scenario !== 'oneway') throw new Error(`--scenario: ${scenario} is not calls or oneway`)
  return {
    scenario: scenario as 'calls' | 'oneway',
    window: num('window', 10_000),
    peers: [...new Set(peers)],
    inFlight: num('in-flight', 100),
    durationMs: num('seconds', 5) * 1000,
    warmupMs: num('warmup', 1500),
    intervalUs: Math.round(num('interval', 1000)),
    profile: !flags.has('no-prof'),
    calibrate: !flags.has('no-calibrate') && !flags.has('no-prof'),
    top: num('top', 25),
    v8: (flags.get('v8') ?? '').split(',').filter((s) => s !== ''),
    out: resolve(flags.get('out') || fileURLToPath(new URL('../../results/profile/', import.meta.url))),
  }
}

const args = ((): ReturnType<typeof parseArgs> => {
  try {
    return parseArgs(process.argv.slice(2))
  } catch (error) {
    console.error(`bench:profile: ${(error as Error).message}`)
    process.exit(2)
  }
})()

/**
 * Moves the main thread's profile (thread id 0 in Node's default name
 * `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`) to `<name>.cpuprofile` and drops the rest.
 */
function mainThreadProfile(name: string): string {
  const dir = join(args.out, name)
  const main = readdirSync(dir).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))
  if (!main) throw new Error(`no main-thread profile in ${dir}`)
  const file = join(args.out, `${name}.cpuprofile`)
  renameSync(join(dir, main), file)
  rmSync(dir, { recursive: true, force: true })
  return file
}

const live = new Set<ChildProcess>()
const killAll = (): void => {
  for (const p of live) p.kill('SIGKILL')
  live.clear()
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

function log(text: string): void {
  console.error(`[profile] ${text}`)
}

/**
 * Forks one side; resolves when it has exited. Each side profiles into a folder of its own: with
 * `--import tsx`, Node 20 runs the loader hooks on a second thread, which writes a profile too (a
 * fixed --cpu-prof-name would let it overwrite the main thread's).
 */
function spawnNode(
  config: NodeConfig,
  name: string,
  profile: boolean,
  onMessage: (m: NodeMessage) => void,
): { proc: ChildProcess; exited: Promise<number | null> } {
  const prof = profile ? ['--cpu-prof', `--cpu-prof-dir=${join(args.out, name)}`, `--cpu-prof-interval=${args.intervalUs}`] : []
  const proc = fork(NODE_ENTRY, [JSON.stringify(config)], {
    execArgv: [...process.execArgv, ...args.v8, ...prof],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  live.add(proc)
  proc.on('message', (m: NodeMessage) => onMessage(m))
  const exited = new Promise<number | null>((done) =>
    proc.on('exit', (code) => {
      live.delete(proc)
      done(code)
    }),
  )
  return { proc, exited }
}

/** Waits for a value set by a message, or fails after `ms`. */
function waitFor<T>(get: () => T | undefined, what: string, ms: number, failed: () => string | undefined): Promise<T> {
  const deadline = Date.now() + ms
  return new Promise((done, fail) => {
    const poll = (): void => {
      const v = get()
      const error = failed()
      if (v !== undefined) return done(v)
      if (error) return fail(new Error(error))
      if (Date.now() > deadline) return fail(new Error(`no ${what} within ${ms} ms`))
      setTimeout(poll, 20)
    }
    poll()
  })
}

interface Side {
  readonly window: WindowReport
  /** CPU time per call in this run (with the profiler's own cost when profiled). */
  readonly cpuUsPerCall: number
  /** CPU time per call the tables are scaled to: the calibration run's when there was one. */
  scaleUsPerCall: number
  readonly analysis: Analysis | undefined
}

interface PeerRun {
  readonly peer: RemotePeerName
  readonly calls: number
  readonly callsPerSec: number
  readonly client: Side
  readonly server: Side
  /** The same peer run without the profiler just before. */
  calibration?: PeerRun
}

async function profilePeer(peer: RemotePeerName, profile: boolean): Promise<PeerRun> {
  let error: string | undefined
  let info: unknown
  let serverWindow: WindowReport | undefined
  let clientWindow: WindowReport | undefined
  const fail = (m: NodeMessage): void => {
    if (m.kind === 'error') error = m.message
  }
  const server = spawnNode({ role: 'server', peer }, `${peer}-server`, profile, (m) => {
    fail(m)
    if (m.kind === 'ready') info = m.info
    if (m.kind === 'window') serverWindow = m.window
  })
  const send = (m: RunnerMessage): void => {
    if (server.proc.connected) server.proc.send(m)
  }
  try {
    await waitFor(
      () => (info === undefined ? undefined : true),
      `${peer} server ready`,
      30_000,
      () => error,
    )
    log(
      `${peer}${profile ? ' (profiled)' : ''}: server ready; client runs ${args.scenario === 'oneway' ? `one-way windows of ${args.window}` : `${args.inFlight} in flight`}, ${args.warmupMs} ms warm-up, ${args.durationMs} ms window`,
    )
    const client = spawnNode(
      {
        role: 'client',
        peer,
        info,
        inFlight: args.inFlight,
        warmupMs: args.warmupMs,
        durationMs: args.durationMs,
        scenario: args.scenario,
        window: args.window,
      },
      `${peer}-client`,
      profile,
      (m) => {
        fail(m)
        if (m.kind === 'mark') send({ kind: 'mark', edge: m.edge })
        if (m.kind === 'window') clientWindow = m.window
      },
    )
    const limit = args.warmupMs + args.durationMs + 60_000
    const cw = await waitFor(
      () => clientWindow,
      `${peer} client result`,
      limit,
      () => error,
    )
    const sw = await waitFor(
      () => serverWindow,
      `${peer} server window`,
      10_000,
      () => error,
    )
    await client.exited
    send({ kind: 'exit' })
    await server.exited
    const calls = cw.calls ?? 0
    const side = (w: WindowReport, name: string): Side => ({
      window: w,
      cpuUsPerCall: (w.userUs + w.systemUs) / calls,
      scaleUsPerCall: (w.userUs + w.systemUs) / calls,
      analysis: profile ? analyze(loadProfile(mainThreadProfile(`${peer}-${name}`)), { fromUs: w.fromUs, toUs: w.toUs }) : undefined,
    })
    return { peer, calls, callsPerSec: calls / ((cw.toUs - cw.fromUs) / 1e6), client: side(cw, 'client'), server: side(sw, 'server') }
  } finally {
    send({ kind: 'exit' })
    setTimeout(() => server.proc.kill('SIGKILL'), 5000).unref()
    await server.exited
  }
}

function lookup(rows: Breakdown, key: string): number {
  return rows.find(([k]) => k === key)?.[1] ?? 0
}

/**
 * Categories of every run side by side, µs per call, largest (over all columns) first: each
 * category's share of the sampled busy time times the process's CPU time per call.
 */
function comparison(runs: readonly PeerRun[]): string[] {
  const columns = runs.flatMap((r) =>
    (['client', 'server'] as const).map((side) => ({ label: `${r.peer} ${side}`, run: r, a: r[side].analysis!, cpu: r[side].scaleUsPerCall })),
  )
  const keys = [...new Set(columns.flatMap((c) => c.a.selfByCategory.map(([k]) => k)))]
  const perCall = (c: (typeof columns)[number], key: string): number => (lookup(c.a.selfByCategory, key) / c.a.busyUs) * c.cpu
  keys.sort((x, y) => Math.max(...columns.map((c) => perCall(c, y))) - Math.max(...columns.map((c) => perCall(c, x))))
  return [
    `| category (self, µs/call) | ${columns.map((c) => c.label).join(' | ')} |`,
    `|---|${columns.map(() => '---:').join('|')}|`,
    ...keys.map((k) => `| ${k} | ${columns.map((c) => perCall(c, k).toFixed(2)).join(' | ')} |`),
    `| **CPU per call (process.cpuUsage${runs[0]?.calibration ? ', run without profiler' : ''})** | ${columns.map((c) => c.cpu.toFixed(2)).join(' | ')} |`,
    `| busy, sampled wall time | ${columns.map((c) => (c.a.busyUs / c.run.calls).toFixed(2)).join(' | ')} |`,
  ]
}

function summaryTable(runs: readonly PeerRun[]): string[] {
  const cpu = (r: PeerRun, s: Side): string =>
    `${s.cpuUsPerCall.toFixed(2)} (${(s.window.userUs / r.calls).toFixed(2)} + ${(s.window.systemUs / r.calls).toFixed(2)})`
  const busy = (r: PeerRun, s: Side): string => (s.analysis ? (s.analysis.busyUs / r.calls).toFixed(2) : '–')
  const gcPerCall = (r: PeerRun, s: Side): string => ((s.window.minorGcUs + s.window.majorGcUs) / r.calls).toFixed(2)
  return [
    '| peer | run | calls/s | client CPU µs/call (user + sys) | server CPU µs/call (user + sys) | client sampled busy µs/call | server sampled busy µs/call | calls per write, client / server | bytes per call out, client / server | GC µs/call, client / server | calls per scavenge, client / server |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...runs.flatMap((r) =>
      [...(r.calibration ? [r.calibration] : []), r].map(
        (x) =>
          `| ${x.peer} | ${x.client.analysis ? 'profiled' : 'no profiler'} | ${Math.round(x.callsPerSec).toLocaleString('en-US')} | ${cpu(x, x.client)} | ${cpu(x, x.server)} | ${busy(x, x.client)} | ${busy(x, x.server)} | ` +
          `${(x.calls / x.client.window.writes).toFixed(1)} / ${(x.calls / x.server.window.writes).toFixed(1)} | ${(x.client.window.bytesWritten / x.calls).toFixed(0)} / ${(x.server.window.bytesWritten / x.calls).toFixed(0)} | ` +
          `${gcPerCall(x, x.client)} / ${gcPerCall(x, x.server)} | ${Math.round(x.calls / x.client.window.minorGcs)} / ${Math.round(x.calls / x.server.window.minorGcs)} |`,
      ),
    ),
  ]
}

/** JSON of one side: CPU per call, window, and categories and top functions in CPU-scaled µs per call. */
function sideSummary(s: Side, calls: number): unknown {
  const a = s.analysis
  const scaled = (rows: Breakdown, limit: number): Array<[string, number]> =>
    a ? rows.slice(0, limit).map(([k, us]) => [k, (us / a.busyUs) * s.scaleUsPerCall]) : []
  return {
    cpuUsPerCall: s.cpuUsPerCall,
    scaledToUsPerCall: s.scaleUsPerCall,
    sampledBusyUsPerCall: a ? a.busyUs / calls : undefined,
    window: s.window,
    categories: a ? scaled(a.selfByCategory, 100) : undefined,
    functions: a ? scaled(a.selfByFunction, 60) : undefined,
    inclusive: a ? scaled(a.inclusive, 60) : undefined,
  }
}

async function main(): Promise<void> {
  rmSync(args.out, { recursive: true, force: true })
  mkdirSync(args.out, { recursive: true })
  const runs: PeerRun[] = []
  for (const peer of args.peers) {
    const calibration = args.calibrate ? await profilePeer(peer, false) : undefined
    const run = await profilePeer(peer, args.profile)
    if (calibration) {
      run.calibration = calibration
      run.client.scaleUsPerCall = calibration.client.cpuUsPerCall
      run.server.scaleUsPerCall = calibration.server.cpuUsPerCall
    }
    runs.push(run)
  }
  const header = [
    `# CPU profile of ${args.scenario === 'oneway' ? 'one-way messages ("calls" below are messages)' : 'remote calls'}, ${new Date().toISOString()}`,
    '',
    `${args.scenario === 'oneway' ? `one-way windows of ${args.window} messages, each then a count call` : `${args.inFlight} in flight`}, ${args.warmupMs} ms warm-up, ${args.durationMs / 1000} s window, ${args.profile ? `sampling every ${args.intervalUs} µs` : 'no profiler'}; Node ${process.version}; execArgv ${[...process.execArgv, ...args.v8].join(' ')}`,
    '',
    ...summaryTable(runs),
    '',
  ]
  const body = args.profile
    ? [
        '## Cost categories side by side',
        '',
        'Self time per category, µs per call: its share of the sampled busy time × the CPU time per call (of the run without profiler, when calibrated).',
        '',
        ...comparison(runs),
        '',
        ...runs.flatMap((r) => [
          `## ${r.peer}`,
          '',
          ...report(`${r.peer} client`, r.client.analysis!, r.calls, args.top, r.client.scaleUsPerCall),
          ...report(`${r.peer} server`, r.server.analysis!, r.calls, args.top, r.server.scaleUsPerCall),
        ]),
      ]
    : []
  const text = [...header, ...body].join('\n')
  writeFileSync(join(args.out, 'report.md'), text + '\n')
  writeFileSync(
    join(args.out, 'summary.json'),
    JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        inFlight: args.inFlight,
        durationMs: args.durationMs,
        intervalUs: args.profile ? args.intervalUs : undefined,
        runs: runs.map((r) => ({
          peer: r.peer,
          calls: r.calls,
          callsPerSec: r.callsPerSec,
          calibration: r.calibration && {
            callsPerSec: r.calibration.callsPerSec,
            clientCpuUsPerCall: r.calibration.client.cpuUsPerCall,
            serverCpuUsPerCall: r.calibration.server.cpuUsPerCall,
          },
          client: sideSummary(r.client, r.calls),
          server: sideSummary(r.server, r.calls),
        })),
      },
      null,
      2,
    ) + '\n',
  )
  // The console gets the summary and the side-by-side categories; report.md has everything.
  console.log([...header, ...(args.profile ? ['## Cost categories side by side', '', ...comparison(runs), ''] : [])].join('\n'))
  log(`profiles, report.md and summary.json in ${args.out}`)
}

main().catch((error: unknown) => {
  console.error(error)
  killAll()
  process.exitCode = 1
})
