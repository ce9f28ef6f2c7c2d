/**
 * `npm run bench:swim [-- --quick]`: the SWIM failure detector in the deterministic simulator,
 * default settings everywhere. Crash detection at 100 members, flatness across cluster sizes,
 * join, false deaths under loss and stalls, steady-state load, simulator speed, and (once wired)
 * real UDP on loopback. Prints progress, then a table per target with PASS/MISS and the same
 * tables as Markdown; writes bench/results/swim.json and the plot docs/swim-detection.svg
 * (bench/results/swim-detection.quick.svg for `--quick`, so a smoke run leaves docs/ alone).
 * @module
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { type InjectedEvent, runScenario, type ScenarioOptions } from '../../../packages/shoal/src/sim/Scenario.ts'
import { SWIM_DEFAULTS } from '../../../packages/shoal/src/swim/SwimSettings.ts'
import { describeMachine } from '../report.ts'
import { detectionSvg } from './plot.ts'
import { DETECTION_TARGET_SECONDS, evaluateTargets, renderMarkdown, renderText, sec } from './report.ts'
import {
  type DetectionRow,
  type FaultRow,
  type JoinResult,
  type LoadRow,
  type Machine,
  mean,
  type Plan,
  type RunRecord,
  type SpeedResult,
  type SwimResults,
  summarize,
} from './results.ts'
import { realUdp } from './udp.ts'

const quick = process.argv.includes('--quick')

const STALLS = { count: 5, duration: 2000, every: 20_000 } as const

const FULL: Plan = {
  seeds: 20,
  crashMembers: 100,
  crashDuration: 40_000,
  sizes: [10, 25, 50, 100, 200, 500, 1000],
  sizeBudgetSeconds: 240,
  minSeeds: 5,
  join: { members: 200, seeds: 10, duration: 30_000 },
  faults: { members: 100, duration: 600_000, seeds: 3, loss: 0.05, stalls: STALLS },
  load: { sizes: [25, 50, 100, 200, 500], duration: 120_000, seeds: 3 },
  speed: { members: 1000, duration: 600_000, targetWallSeconds: 60 },
}

/** About a minute: fewer seeds and sizes, shorter runs; the speed target scales with the run (10× real time). */
const QUICK: Plan = {
  seeds: 5,
  crashMembers: 100,
  crashDuration: 40_000,
  sizes: [10, 100, 300],
  sizeBudgetSeconds: 60,
  minSeeds: 3,
  join: { members: 200, seeds: 5, duration: 30_000 },
  faults: { members: 100, duration: 120_000, seeds: 1, loss: 0.05, stalls: STALLS },
  load: { sizes: [25, 100, 300], duration: 60_000, seeds: 1 },
  speed: { members: 1000, duration: 120_000, targetWallSeconds: 12 },
}

const plan = quick ? QUICK : FULL
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const RESULTS_DIR = fileURLToPath(new URL('../../results/', import.meta.url))
const RESULT_FILE = `${RESULTS_DIR}swim.json`
const MARKDOWN_FILE = `${RESULTS_DIR}swim.md`
const SVG_FILE = quick ? `${RESULTS_DIR}swim-detection.quick.svg` : `${ROOT}docs/swim-detection.svg`
const startedAt = performance.now()
const loadAtStart = loadavg()
/** Read now: the sources were loaded at start, and the checkout may move while the run goes on. */
const commitAtStart = commit()

function elapsed(): number {
  return (performance.now() - startedAt) / 1000
}

function progress(text: string): void {
  console.log(`[${elapsed().toFixed(1).padStart(6)}s] ${text}`)
}

// ---- running scenarios ------------------------------------------------------------------------

const totals = { runs: 0, largestDatagram: 0, largestDatagramRun: 'none' }

/**
 * Runs one scenario with default settings and keeps the figures. Long runs print a line every
 * quarter of their simulated time (an extra timer in the simulator that only prints: it changes
 * no member, so the trace is the same).
 */
function simulate(label: string, o: ScenarioOptions): RunRecord {
  const long = o.members * (o.duration / 1000) >= 60_000
  const wallStart = performance.now()
  const inspect = long
    ? (sim: { at(time: number, fn: () => void): void }) => {
        for (let q = 1; q < 4; q++) {
          const t = (o.duration * q) / 4
          sim.at(t, () => progress(`${label}: ${t / 1000} of ${o.duration / 1000} s simulated (${((performance.now() - wallStart) / 1000).toFixed(1)} s)`))
        }
      }
    : undefined
  const r = runScenario({ ...o, inspect })
  const wallSeconds = (performance.now() - wallStart) / 1000
  totals.runs++
  if (r.load.largestDatagram > totals.largestDatagram) {
    totals.largestDatagram = r.load.largestDatagram
    totals.largestDatagramRun = label
  }
  return {
    seed: r.seed,
    members: r.members,
    durationSeconds: r.durationSeconds,
    loss: r.loss,
    events: r.events,
    falseSuspicions: r.falseSuspicions,
    falseDeaths: r.falseDeaths,
    load: r.load,
    wallSeconds,
    runWallSeconds: r.simulation.wallSeconds,
    traceHash: r.simulation.traceHash,
  }
}

function eventOf(run: RunRecord, kind: InjectedEvent['kind']): InjectedEvent | undefined {
  return run.events.find((e) => e.kind === kind)
}

/** One crash per run at `members`, seeds 1..N (fewer if the size runs over its budget). */
function detection(members: number): Omit<DetectionRow, 'ratioTo100'> {
  const runs: RunRecord[] = []
  const start = performance.now()
  let skipped = 0
  for (let seed = 1; seed <= plan.seeds; seed++) {
    const spent = (performance.now() - start) / 1000
    if (seed > plan.minSeeds && spent > plan.sizeBudgetSeconds) {
      skipped = plan.seeds - seed + 1
      progress(`crash · ${members} members: over the ${plan.sizeBudgetSeconds} s budget after ${seed - 1} seeds; skipping ${skipped}`)
      break
    }
    const run = simulate(`crash · ${members} members · seed ${seed}`, { members, duration: plan.crashDuration, seed, crashes: 1 })
    runs.push(run)
    if (members >= 500) {
      const e = eventOf(run, 'crash')
      progress(
        `crash · ${members} members · seed ${seed}/${plan.seeds}: allAgree ${sec(e?.allAgree ?? Infinity)} s, firstDead ${sec(e?.firstDead ?? Infinity)} s (${run.wallSeconds.toFixed(1)} s)`,
      )
    }
  }
  const events = runs.map((r) => eventOf(r, 'crash'))
  const row = {
    members,
    durationSeconds: plan.crashDuration / 1000,
    seeds: runs.length,
    allAgree: summarize(events.map((e) => e?.allAgree)),
    firstDead: summarize(events.map((e) => e?.firstDead)),
    firstSuspect: summarize(events.map((e) => e?.firstSuspect)),
    wallSeconds: (performance.now() - start) / 1000,
    skippedSeeds: skipped,
    runs,
  }
  progress(
    `crash · ${members} members, ${row.seeds} seeds: allAgree p50 ${sec(row.allAgree.p50)} s, p99 ${sec(row.allAgree.p99)} s; firstDead p50 ${sec(row.firstDead.p50)} s (${row.wallSeconds.toFixed(1)} s)`,
  )
  return row
}

function join(): JoinResult {
  const { members, seeds, duration } = plan.join
  const runs: RunRecord[] = []
  for (let seed = 1; seed <= seeds; seed++) runs.push(simulate(`join · 1 into ${members} · seed ${seed}`, { members, duration, seed, joins: 1 }))
  const events = runs.map((r) => eventOf(r, 'join'))
  const result: JoinResult = {
    members,
    durationSeconds: duration / 1000,
    joinAtSeconds: events.find((e) => e !== undefined)?.at ?? Math.floor(duration * 0.3) / 1000,
    seeds,
    allAgree: summarize(events.map((e) => e?.allAgree)),
    knowsAll: summarize(events.map((e) => e?.knowsAll)),
    runs,
  }
  progress(
    `join · 1 into ${members}, ${seeds} seeds: allAgree p50 ${sec(result.allAgree.p50)} s, p99 ${sec(result.allAgree.p99)} s; knowsAll p99 ${sec(result.knowsAll.p99)} s`,
  )
  return result
}

function faults(name: string, loss: number, stalls: boolean): FaultRow {
  const { members, duration, seeds } = plan.faults
  const runs: RunRecord[] = []
  for (let seed = 1; seed <= seeds; seed++) {
    const label = `false deaths · ${name} · seed ${seed}/${seeds}`
    const run = simulate(label, { members, duration, seed, loss, stalls: stalls ? plan.faults.stalls : undefined })
    runs.push(run)
    progress(`${label}: ${run.falseDeaths} false deaths, ${run.falseSuspicions} false suspicions (${run.wallSeconds.toFixed(1)} s)`)
  }
  const stallEvents = runs.flatMap((r) => r.events.filter((e) => e.kind === 'stall'))
  return {
    name,
    members,
    durationSeconds: duration / 1000,
    loss,
    stalls: stalls ? plan.faults.stalls : null,
    seeds,
    falseDeaths: runs.reduce((n, r) => n + r.falseDeaths, 0),
    falseSuspicions: runs.reduce((n, r) => n + r.falseSuspicions, 0),
    stallEvents: stallEvents.length,
    stalledSuspected: stallEvents.filter((e) => e.suspected).length,
    stalledDeclaredDead: stallEvents.filter((e) => e.declaredDead).length,
    runs,
  }
}

function load(): LoadRow[] {
  const rows: Omit<LoadRow, 'messagesRatio' | 'bytesRatio'>[] = []
  for (const members of plan.load.sizes) {
    const runs: RunRecord[] = []
    for (let seed = 1; seed <= plan.load.seeds; seed++)
      runs.push(simulate(`load · ${members} members · seed ${seed}`, { members, duration: plan.load.duration, seed }))
    const row = {
      members,
      durationSeconds: plan.load.duration / 1000,
      seeds: runs.length,
      messagesPerMemberPerSecond: mean(runs.map((r) => r.load.messagesPerMemberPerSecond)),
      bytesPerMemberPerSecond: mean(runs.map((r) => r.load.bytesPerMemberPerSecond)),
      streamBytesPerMemberPerSecond: mean(runs.map((r) => r.load.streamBytesPerMemberPerSecond)),
      largestDatagram: Math.max(...runs.map((r) => r.load.largestDatagram)),
      runs,
    }
    rows.push(row)
    progress(
      `load · ${members} members: ${row.messagesPerMemberPerSecond.toFixed(2)} datagrams/member/s, ${row.bytesPerMemberPerSecond.toFixed(1)} B/member/s UDP, ${row.streamBytesPerMemberPerSecond.toFixed(1)} B/member/s TCP, largest ${row.largestDatagram} B`,
    )
  }
  const base = rows[0]
  return rows.map((r) => ({
    ...r,
    messagesRatio: base ? r.messagesPerMemberPerSecond / base.messagesPerMemberPerSecond : Number.NaN,
    bytesRatio: base ? r.bytesPerMemberPerSecond / base.bytesPerMemberPerSecond : Number.NaN,
  }))
}

function speed(): SpeedResult {
  const { members, duration, targetWallSeconds } = plan.speed
  const label = `speed · ${members} members, ${duration / 1000} s, 1 crash`
  progress(`${label}: starting`)
  const run = simulate(label, { members, duration, seed: 1, crashes: 1 })
  const e = eventOf(run, 'crash')
  progress(`${label}: ${run.wallSeconds.toFixed(1)} s wall clock; crash allAgree ${sec(e?.allAgree ?? Infinity)} s`)
  return { members, durationSeconds: duration / 1000, wallSeconds: run.wallSeconds, speed: duration / 1000 / run.wallSeconds, targetWallSeconds, run }
}

// ---- the run ----------------------------------------------------------------------------------

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== ''
    return `${head}${dirty ? '+dirty' : ''}`
  } catch {
    return 'unknown'
  }
}

function machine(): Machine {
  return { ...describeMachine(loadAtStart), commit: commitAtStart }
}

async function main(): Promise<void> {
  progress(`${quick ? 'quick' : 'full'} run, default SWIM settings; ${plan.seeds} seeds per size at ${plan.sizes.join(', ')} members`)

  // 1 and 2: the crash-detection size first, then the others.
  const bySize = new Map<number, Omit<DetectionRow, 'ratioTo100'>>()
  bySize.set(plan.crashMembers, detection(plan.crashMembers))
  for (const members of plan.sizes) if (!bySize.has(members)) bySize.set(members, detection(members))
  const baseP50 = bySize.get(plan.crashMembers)!.allAgree.p50
  const flatness: DetectionRow[] = [...bySize.values()].sort((a, b) => a.members - b.members).map((r) => ({ ...r, ratioTo100: r.allAgree.p50 / baseP50 }))
  const crash = flatness.find((r) => r.members === plan.crashMembers)!

  // 3.
  const joinResult = join()

  // 4.
  const faultRows = [
    faults(`${plan.faults.loss * 100}% loss`, plan.faults.loss, false),
    faults(`stalls ${STALLS.count} × ${STALLS.duration / 1000} s every ${STALLS.every / 1000} s`, 0, true),
    faults(`${plan.faults.loss * 100}% loss + stalls`, plan.faults.loss, true),
  ]

  // 5 and 6.
  const loadRows = load()
  const speedResult = speed()

  // 7.
  let udp: SwimResults['realUdp']
  try {
    udp = { result: await realUdp(progress) }
    progress(`real UDP: allAgree ${sec(udp.result.allAgreeSeconds)} s with ${udp.result.members} members`)
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    udp = { error: message }
    progress(`real UDP: not available (${message})`)
  }

  const results: SwimResults = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: machine(),
    settings: SWIM_DEFAULTS,
    plan,
    crash,
    flatness,
    join: joinResult,
    faults: faultRows,
    load: loadRows,
    speed: speedResult,
    realUdp: udp,
    largestDatagramAllRuns: totals.largestDatagram,
    largestDatagramRun: totals.largestDatagramRun,
    simulatedRuns: totals.runs,
    totalWallSeconds: Math.round(elapsed() * 10) / 10,
  }
  const targets = evaluateTargets(results)
  const markdown = renderMarkdown(results, targets)
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(RESULT_FILE, JSON.stringify({ ...results, targets }, null, 2) + '\n')
  writeFileSync(MARKDOWN_FILE, markdown + '\n')
  const seeds = [...new Set(flatness.map((f) => f.seeds))].join('/')
  const subtitle = `simulator, default settings, 1 crash per run, ${seeds} seeds per size, ${plan.crashDuration / 1000} s runs (${results.date.slice(0, 10)}, ${results.machine.commit})`
  writeFileSync(SVG_FILE, detectionSvg(flatness, DETECTION_TARGET_SECONDS, subtitle))
  progress(`done in ${elapsed().toFixed(1)} s; results in ${RESULT_FILE}, plot in ${SVG_FILE}, Markdown in ${MARKDOWN_FILE}`)

  console.log(`\n${renderText(results, targets)}`)
  console.log('\n---- Markdown for docs/benchmarks.md ----\n')
  console.log(markdown)
  console.log('\n---- end of Markdown ----')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
