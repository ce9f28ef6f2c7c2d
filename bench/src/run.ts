/**
 * `npm run bench [-- flags]`: runs the scenarios side by side, each peer in fresh processes, prints
 * the tables and targets, and writes the results as JSON.
 *
 * Flags (all optional; `npm run bench -- --quick --only=calls --peers=shoal,raw` is a ~15 s loop):
 * - `--quick`: 300 ms warm-up and 700 ms per point, one round, 100,000 one-way messages (default:
 *   1 s + 2.5 s per point, three rounds, 1,000,000 messages).
 * - `--only=LIST`: scenarios to run, comma-separated: `calls` (remote calls at each in-flight
 *   level), `oneway` (one-way messages), `remote` (both), `local`, `memory`. Default: all.
 * - `--peers=LIST`: peers to run: `shoal`, `shoal-traced`, `raw-immediate`, `raw-microtask`, `raw`
 *   (both raw flush modes), `moleculer`, `grpc` (remote); `shoal`, `direct`, `nact` (local; `shoal`
 *   names both the remote and the local Shoal peer). Default: all.
 * - `--in-flight=LIST`: in-flight levels of the remote-call scenario (default 1,10,100).
 * - `--rounds=N`: interleaved rounds; each figure is the median over them (default 3, quick 1).
 * - `--warmup=MS`, `--duration=MS`: override the warm-up and measured time of each point.
 * - `--out=FILE`: where the JSON goes. Default `bench/results/latest.json` for a complete run and
 *   `bench/results/partial.json` when --only, --peers or --in-flight left something out, so a
 *   quick iteration does not overwrite the last full figures.
 *
 * "raw" in the ratios and targets is the faster of the two raw flush modes at each point (see
 * report.ts). Targets whose figures a partial run did not measure print as SKIP, not MISS.
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Packr } from 'msgpackr'
import { FULL_TIMING, type LoadResult, makePayload, QUICK_TIMING, type Timing } from './harness.ts'
import { Child, killAll } from './proc.ts'
import {
  type ChildConfig,
  LOCAL_PEERS,
  type LocalPeerName,
  type LocalResult,
  type MemoryResult,
  ONE_WAY_PEERS,
  RAW_PEERS,
  REMOTE_PEERS,
  type RemotePeerName,
  type RemoteResult,
} from './protocol.ts'
import { computeRatios, describeMachine, evaluateTargets, type Results, rawCeiling, render, SCENARIOS, type Scenario } from './report.ts'

const median = (values: number[]): number => {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!
}

/** Median of each figure over rounds (the middle round for three; the lower middle for two). */
function medianLoad(runs: LoadResult[]): LoadResult {
  return {
    inFlight: runs[0]!.inFlight,
    calls: runs.reduce((n, r) => n + r.calls, 0),
    seconds: runs.reduce((n, r) => n + r.seconds, 0),
    callsPerSec: median(runs.map((r) => r.callsPerSec)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
  }
}

function medianRemote(rounds: RemoteResult[]): RemoteResult {
  const calls = rounds[0]!.calls.map((_, i) => medianLoad(rounds.map((r) => r.calls[i]!)))
  const oneWays = rounds.flatMap((r) => (r.oneWay ? [r.oneWay] : []))
  const oneWay = oneWays.length === 0 ? undefined : { ...oneWays[0]!, messagesPerSec: median(oneWays.map((o) => o.messagesPerSec)) }
  return { calls, oneWay, notes: [...new Set(rounds.flatMap((r) => r.notes ?? []))] }
}

function medianLocal(rounds: LocalResult[]): LocalResult {
  return { ...rounds[0]!, ...medianLoad(rounds), notes: [...new Set(rounds.flatMap((r) => r.notes))] }
}

/** The command line, checked: an unknown flag or name stops the run with the list of valid ones. */
function parseArgs(argv: readonly string[]) {
  const flags = new Map<string, string>()
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (!m || !['quick', 'only', 'peers', 'in-flight', 'rounds', 'warmup', 'duration', 'out'].includes(m[1]!)) {
      throw new Error(`unknown argument ${arg}: see the flags at the top of bench/src/run.ts`)
    }
    flags.set(m[1]!, m[2] ?? '')
  }
  const list = (name: string): string[] | undefined =>
    flags
      .get(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
  const positive = (name: string, text: string): number => {
    const n = Number(text)
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: ${text} is not a positive integer`)
    return n
  }
  const quick = flags.has('quick')
  const base = quick ? QUICK_TIMING : FULL_TIMING
  const warmup = flags.get('warmup')
  const duration = flags.get('duration')
  const timing: Timing = {
    warmupMs: warmup ? positive('warmup', warmup) : base.warmupMs,
    durationMs: duration ? positive('duration', duration) : base.durationMs,
  }

  const scenarios = new Set<Scenario>()
  for (const name of list('only') ?? SCENARIOS) {
    if (name === 'remote') scenarios.add('calls').add('oneway')
    else if ((SCENARIOS as readonly string[]).includes(name)) scenarios.add(name as Scenario)
    else throw new Error(`--only: unknown scenario ${name} (valid: ${SCENARIOS.join(', ')}, remote)`)
  }
  const peerNames = list('peers')
  const remotePeers = new Set<RemotePeerName>()
  const localPeers = new Set<LocalPeerName>()
  for (const name of peerNames ?? [...REMOTE_PEERS, ...LOCAL_PEERS]) {
    let known = false
    if (name === 'raw') {
      for (const peer of Object.values(RAW_PEERS)) remotePeers.add(peer)
      known = true
    }
    if ((REMOTE_PEERS as readonly string[]).includes(name)) {
      remotePeers.add(name as RemotePeerName)
      known = true
    }
    if ((LOCAL_PEERS as readonly string[]).includes(name)) {
      localPeers.add(name as LocalPeerName)
      known = true
    }
    if (!known) throw new Error(`--peers: unknown peer ${name} (valid: raw, ${[...new Set([...REMOTE_PEERS, ...LOCAL_PEERS])].join(', ')})`)
  }
  const inFlight = (list('in-flight') ?? ['1', '10', '100']).map((n) => positive('in-flight', n))
  const rounds = flags.has('rounds') ? positive('rounds', flags.get('rounds')!) : quick ? 1 : 3
  const partial = flags.has('only') || flags.has('peers') || flags.has('in-flight')
  const out = flags.get('out') || fileURLToPath(new URL(partial ? '../results/partial.json' : '../results/latest.json', import.meta.url))
  return {
    quick,
    timing,
    scenarios: SCENARIOS.filter((s) => scenarios.has(s)),
    // Keep the canonical order: it decides the interleaving.
    remotePeers: REMOTE_PEERS.filter((p) => remotePeers.has(p)),
    localPeers: LOCAL_PEERS.filter((p) => localPeers.has(p)),
    inFlight,
    rounds,
    partial,
    out: resolve(out),
  }
}

const args = ((): ReturnType<typeof parseArgs> => {
  try {
    return parseArgs(process.argv.slice(2))
  } catch (error) {
    console.error(`bench: ${(error as Error).message}`)
    process.exit(2)
  }
})()
const { quick, timing } = args
/**
 * Rounds of every remote and local scenario, peers interleaved (raw-immediate, shoal, … then again,
 * in reverse order every other round): this shared 2-core machine drifts by tens of percent within
 * minutes, so each figure is the median of its rounds and every ratio compares peers measured side
 * by side.
 */
const ROUNDS = args.rounds
const IN_FLIGHT = args.scenarios.includes('calls') ? args.inFlight : []
const ONE_WAY = quick ? { total: 100_000, window: 5_000 } : { total: 1_000_000, window: 10_000 }
const LOCAL_BATCH = 1000
const ACTORS = 100_000
const RESULT_FILE = args.out
const startedAt = performance.now()
const loadAtStart = loadavg()

function progress(text: string): void {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)
  console.log(`[${seconds}s] ${text}`)
}

/** msgpack size of the call argument; the scenarios promise about 100 bytes. */
function payloadBytes(): number {
  const bytes = new Packr({ useRecords: false }).pack(makePayload()).length
  if (bytes < 90 || bytes > 110) throw new Error(`the call argument is ${bytes} bytes of msgpack, expected about 100`)
  return bytes
}

/** Generous per-scenario limit: a hung peer fails its scenario instead of the whole run. */
function budgetMs(points: number): number {
  return points * (timing.warmupMs + timing.durationMs) + 60_000
}

/** Forks a child for one scenario, takes its result, and always stops it. */
async function runChild(label: string, config: ChildConfig, points: number, extraExecArgv: string[] = []): Promise<unknown> {
  const child = new Child(label, config, (text) => progress(`${label}: ${text}`), extraExecArgv)
  try {
    return await child.next('result', budgetMs(points))
  } finally {
    await child.stop()
  }
}

/** The one-way run this peer takes part in, if any. */
function oneWayFor(peer: RemotePeerName): typeof ONE_WAY | undefined {
  return args.scenarios.includes('oneway') && ONE_WAY_PEERS.includes(peer) ? ONE_WAY : undefined
}

async function runRemote(peer: RemotePeerName): Promise<RemoteResult> {
  progress(`remote · ${peer}: starting server and client processes`)
  const server = new Child(`${peer} server`, { role: 'server', peer }, (text) => progress(`remote · ${peer} server: ${text}`))
  try {
    const info = await server.next('ready', 30_000)
    const oneWay = oneWayFor(peer)
    const config: ChildConfig = { role: 'client', peer, info, timing, inFlight: IN_FLIGHT, oneWay }
    return (await runChild(`remote · ${peer}`, config, IN_FLIGHT.length + 1)) as RemoteResult
  } finally {
    await server.stop()
  }
}

async function runLocal(peer: LocalPeerName): Promise<LocalResult> {
  progress(`local · ${peer}: starting`)
  const result = (await runChild(`local · ${peer}`, { role: 'local', peer, timing, batch: LOCAL_BATCH }, 1)) as LocalResult
  for (const note of result.notes) progress(`local · ${peer}: note: ${note}`)
  return result
}

async function runMemory(): Promise<MemoryResult> {
  progress(`memory: idle node RSS, then heap per actor with ${ACTORS.toLocaleString('en-US')} actors`)
  return (await runChild('memory', { role: 'memory', actors: ACTORS }, 1, ['--expose-gc'])) as MemoryResult
}

/** Runs a scenario; a failure is recorded and the run goes on with the next one. */
async function attempt<T>(what: string, errors: Record<string, string>, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    errors[what] = message
    progress(`${what} FAILED: ${message.split('\n')[0]}`)
    return undefined
  }
}

async function main(): Promise<number> {
  const bytes = payloadBytes()
  progress(`${quick ? 'quick' : 'full'} run; argument is ${bytes} bytes of msgpack; warm-up ${timing.warmupMs} ms, ${timing.durationMs} ms per point`)
  if (args.partial)
    progress(
      `partial run: ${args.scenarios.join(', ')}; peers ${[...args.remotePeers, ...args.localPeers.map((p) => `local ${p}`)].join(', ')}; in flight ${IN_FLIGHT.join(', ')}`,
    )
  const errors: Record<string, string> = {}
  const remoteRounds = new Map<RemotePeerName, RemoteResult[]>()
  const localRounds = new Map<LocalPeerName, LocalResult[]>()
  // Remote peers with something to do: calls at some level, or one-way messages.
  const remotePeers = args.remotePeers.filter((peer) => IN_FLIGHT.length > 0 || oneWayFor(peer) !== undefined)
  const localPeers = args.scenarios.includes('local') ? args.localPeers : []
  for (let round = 1; round <= ROUNDS; round++) {
    if (ROUNDS > 1) progress(`round ${round} of ${ROUNDS}`)
    // Every other round runs the peers in reverse, so no peer always follows the same neighbour.
    const order = <T>(peers: readonly T[]): T[] => (round % 2 === 1 ? [...peers] : [...peers].reverse())
    for (const peer of order(remotePeers)) {
      const result = await attempt(`remote ${peer}`, errors, () => runRemote(peer))
      if (result) remoteRounds.set(peer, [...(remoteRounds.get(peer) ?? []), result])
    }
    for (const peer of order(localPeers)) {
      const result = await attempt(`local ${peer}`, errors, () => runLocal(peer))
      if (result) localRounds.set(peer, [...(localRounds.get(peer) ?? []), result])
    }
  }
  const remote: Results['remote'] = {}
  for (const [peer, rounds] of remoteRounds) remote[peer] = medianRemote(rounds)
  const local: Results['local'] = {}
  for (const [peer, rounds] of localRounds) local[peer] = medianLocal(rounds)
  const memory = args.scenarios.includes('memory') ? await attempt('memory', errors, runMemory) : undefined

  const plan = {
    inFlight: IN_FLIGHT,
    oneWayMessages: ONE_WAY.total,
    localBatch: LOCAL_BATCH,
    actors: ACTORS,
    rounds: ROUNDS,
    scenarios: args.scenarios,
    peers: [...remotePeers, ...localPeers.map((p) => `local ${p}`)],
    partial: args.partial,
  }
  const results: Results = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: describeMachine(loadAtStart),
    timing,
    plan,
    payloadBytes: bytes,
    remote,
    local,
    memory,
    errors,
  }
  const raw = rawCeiling(results)
  const ratios = computeRatios(results, raw)
  const targets = evaluateTargets(results, ratios, raw)
  mkdirSync(dirname(RESULT_FILE), { recursive: true })
  writeFileSync(RESULT_FILE, JSON.stringify({ ...results, rawCeiling: raw, ratios, targets }, null, 2) + '\n')
  progress(`done; results in ${RESULT_FILE}`)
  console.log(`\n${render(results, ratios, raw, targets)}`)
  return Object.keys(errors).length > 0 ? 1 : 0
}

// Children must not outlive the runner, whatever ends it.
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

main()
  .then((code) => {
    process.exitCode = code
  })
  .catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(killAll)
