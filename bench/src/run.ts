/**
 * `npm run bench [-- --quick]`: runs every scenario side by side, each peer in fresh processes,
 * prints the tables and targets, and writes bench/results/latest.json.
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Packr } from 'msgpackr'
import { FULL_TIMING, type LoadResult, makePayload, QUICK_TIMING, type Timing } from './harness.ts'
import { Child, killAll } from './proc.ts'
import { type ChildConfig, LOCAL_PEERS, type LocalPeerName, type LocalResult, type MemoryResult, REMOTE_PEERS, type RemotePeerName, type RemoteResult } from './protocol.ts'
import { computeRatios, describeMachine, evaluateTargets, render, type Results } from './report.ts'

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
  return { calls, oneWay }
}

function medianLocal(rounds: LocalResult[]): LocalResult {
  return { ...rounds[0]!, ...medianLoad(rounds), notes: [...new Set(rounds.flatMap((r) => r.notes))] }
}

const quick = process.argv.includes('--quick')
const timing: Timing = quick ? QUICK_TIMING : FULL_TIMING
/**
 * Rounds of every remote and local scenario, peers interleaved (raw, shoal, … then again): this
 * shared 2-core machine drifts by tens of percent within minutes, so each figure is the median of
 * its rounds and every ratio compares peers measured side by side.
 */
const ROUNDS = quick ? 1 : 3
const IN_FLIGHT = [1, 10, 100]
const ONE_WAY = quick ? { total: 100_000, window: 5_000 } : { total: 1_000_000, window: 10_000 }
const LOCAL_BATCH = 1000
const ACTORS = 100_000
const RESULT_FILE = fileURLToPath(new URL('../results/latest.json', import.meta.url))
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

async function runRemote(peer: RemotePeerName): Promise<RemoteResult> {
  progress(`remote · ${peer}: starting server and client processes`)
  const server = new Child(`${peer} server`, { role: 'server', peer }, (text) => progress(`remote · ${peer} server: ${text}`))
  try {
    const info = await server.next('ready', 30_000)
    const oneWay = peer === 'shoal' || peer === 'raw' ? ONE_WAY : undefined
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
  const errors: Record<string, string> = {}
  const remoteRounds = new Map<RemotePeerName, RemoteResult[]>()
  const localRounds = new Map<LocalPeerName, LocalResult[]>()
  for (let round = 1; round <= ROUNDS; round++) {
    if (ROUNDS > 1) progress(`round ${round} of ${ROUNDS}`)
    for (const peer of REMOTE_PEERS) {
      const result = await attempt(`remote ${peer}`, errors, () => runRemote(peer))
      if (result) remoteRounds.set(peer, [...(remoteRounds.get(peer) ?? []), result])
    }
    for (const peer of LOCAL_PEERS) {
      const result = await attempt(`local ${peer}`, errors, () => runLocal(peer))
      if (result) localRounds.set(peer, [...(localRounds.get(peer) ?? []), result])
    }
  }
  const remote: Results['remote'] = {}
  for (const [peer, rounds] of remoteRounds) remote[peer] = medianRemote(rounds)
  const local: Results['local'] = {}
  for (const [peer, rounds] of localRounds) local[peer] = medianLocal(rounds)
  const memory = await attempt('memory', errors, runMemory)

  const plan = { inFlight: IN_FLIGHT, oneWayMessages: ONE_WAY.total, localBatch: LOCAL_BATCH, actors: ACTORS, rounds: ROUNDS }
  const results: Results = { date: new Date().toISOString(), mode: quick ? 'quick' : 'full', machine: describeMachine(loadAtStart), timing, plan, payloadBytes: bytes, remote, local, memory, errors }
  const ratios = computeRatios(results)
  const targets = evaluateTargets(results, ratios)
  mkdirSync(fileURLToPath(new URL('../results/', import.meta.url)), { recursive: true })
  writeFileSync(RESULT_FILE, JSON.stringify({ ...results, ratios, targets }, null, 2) + '\n')
  progress(`done; results in ${RESULT_FILE}`)
  console.log(`\n${render(results, ratios, targets)}`)
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
