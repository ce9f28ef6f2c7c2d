/**
 * Targets and printed tables of `npm run bench:swim`: each section once as text for the terminal
 * and once as Markdown for docs/benchmarks.md.
 * @module
 */
import { CHECK_EVERY } from '../../../packages/shoal/src/sim/Scenario.ts'
import type { Summary, SwimResults, Target } from './results.ts'

/** Crash known by every live member within this many seconds (SwimSettings' promise). */
export const DETECTION_TARGET_SECONDS = 8
const JOIN_TARGET_SECONDS = 5
const FLATNESS_TOLERANCE = 0.25
const LOAD_TOLERANCE = 0.1
const MAX_DATAGRAM = 1400

// ---- formatting -------------------------------------------------------------------------------

/** Seconds with two decimals; +∞ is a run where it never happened. */
export function sec(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return 'undet.'
  return Number.isFinite(v) ? v.toFixed(2) : '–'
}

function num(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–'
}

function int(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–'
}

function times(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}×` : '–'
}

/** A ratio as a signed percentage off 1: 0.93 → −7%. */
function off(v: number): string {
  if (!Number.isFinite(v)) return '–'
  const p = Math.round((v - 1) * 100)
  return `${p > 0 ? '+' : p < 0 ? '−' : '±'}${Math.abs(p)}%`
}

function within(v: number, tolerance: number): boolean {
  return Number.isFinite(v) && Math.abs(v - 1) <= tolerance + 1e-9
}

// ---- targets ----------------------------------------------------------------------------------

/** Smallest and largest of some ratios, and the row of the one farthest from 1. */
function spread(rows: readonly { members: number; ratio: number }[]): { text: string; worst: { members: number; ratio: number } | undefined } {
  const finite = rows.filter((r) => Number.isFinite(r.ratio))
  if (finite.length < rows.length || rows.length === 0) return { text: 'not measured at every size', worst: undefined }
  const lo = Math.min(...finite.map((r) => r.ratio))
  const hi = Math.max(...finite.map((r) => r.ratio))
  const worst = finite.reduce((a, b) => (Math.abs(b.ratio - 1) > Math.abs(a.ratio - 1) ? b : a))
  return { text: `${times(lo)}–${times(hi)}; farthest: ${worst.members} members ${times(worst.ratio)} (${off(worst.ratio)})`, worst }
}

export function evaluateTargets(r: SwimResults): Target[] {
  const targets: Target[] = []
  const c = r.crash
  targets.push({
    id: 'crash',
    goal: `crash of 1 in ${c.members}: every live member marks it dead within ${DETECTION_TARGET_SECONDS} s at p99 (${c.seeds} seeds)`,
    actual: `p99 ${sec(c.allAgree.p99)} s (p50 ${sec(c.allAgree.p50)} s)`,
    pass: c.allAgree.p99 <= DETECTION_TARGET_SECONDS,
  })

  const base = r.flatness.find((f) => f.members === c.members)
  const flat = spread(r.flatness.map((f) => ({ members: f.members, ratio: f.ratioTo100 })))
  targets.push({
    id: 'flatness',
    goal: `flat in size: allAgree p50 at each size ÷ allAgree p50 at ${c.members} members (${base ? sec(base.allAgree.p50) : '–'} s) within 1 ± ${FLATNESS_TOLERANCE} (${r.flatness.map((f) => f.members).join(', ')})`,
    actual: `ratios ${flat.text}`,
    pass: flat.worst !== undefined && r.flatness.every((f) => within(f.ratioTo100, FLATNESS_TOLERANCE)),
  })

  const j = r.join
  targets.push({
    id: 'join',
    goal: `1 member joining ${j.members}: known by every member within ${JOIN_TARGET_SECONDS} s at p99 (${j.seeds} seeds)`,
    actual: `p99 ${sec(j.allAgree.p99)} s; the newcomer knows everyone at p99 ${sec(j.knowsAll.p99)} s`,
    pass: j.allAgree.p99 <= JOIN_TARGET_SECONDS,
  })

  for (const f of r.faults) {
    const stalls = f.stalls !== null
    targets.push({
      id: `faults: ${f.name}`,
      goal: `${f.name}, ${f.members} members, ${f.durationSeconds} s × ${plural(f.seeds, 'seed')}: no false death${stalls ? ', no stalled member declared dead' : ''}`,
      actual: `${plural(f.falseDeaths, 'false death')}${stalls ? `, ${f.stalledDeclaredDead} of ${f.stallEvents} stalled members declared dead (${f.stalledSuspected} suspected)` : ''}; ${plural(f.falseSuspicions, 'false suspicion')}`,
      pass: f.falseDeaths === 0 && f.stalledDeclaredDead === 0,
    })
  }

  const smallest = r.load[0]
  const msgs = spread(r.load.map((l) => ({ members: l.members, ratio: l.messagesRatio })))
  const bytes = spread(r.load.map((l) => ({ members: l.members, ratio: l.bytesRatio })))
  targets.push({
    id: 'load: messages',
    goal: `datagrams/member/s within ±${LOAD_TOLERANCE * 100}% of the ${smallest?.members ?? '–'}-member value (${num(smallest?.messagesPerMemberPerSecond ?? Number.NaN, 2)}) at every size`,
    actual: `ratios ${msgs.text}`,
    pass: msgs.worst !== undefined && r.load.every((l) => within(l.messagesRatio, LOAD_TOLERANCE)),
  })
  targets.push({
    id: 'load: bytes',
    goal: `UDP bytes/member/s within ±${LOAD_TOLERANCE * 100}% of the ${smallest?.members ?? '–'}-member value (${num(smallest?.bytesPerMemberPerSecond ?? Number.NaN, 0)} B) at every size`,
    actual: `ratios ${bytes.text}`,
    pass: bytes.worst !== undefined && r.load.every((l) => within(l.bytesRatio, LOAD_TOLERANCE)),
  })
  const steadyLargest = Math.max(...r.load.map((l) => l.largestDatagram))
  targets.push({
    id: 'load: datagram size',
    goal: `largest datagram ≤ ${MAX_DATAGRAM} B in every run`,
    actual: `${int(r.largestDatagramAllRuns)} B across all ${r.simulatedRuns} simulated runs (${int(steadyLargest)} B in steady state)`,
    pass: r.largestDatagramAllRuns > 0 && r.largestDatagramAllRuns <= MAX_DATAGRAM,
  })

  const s = r.speed
  targets.push({
    id: 'speed',
    goal: `${s.members} members, ${s.durationSeconds} s simulated (1 crash) in ≤ ${s.targetWallSeconds} s wall clock`,
    actual: `${num(s.wallSeconds, 1)} s (${num(s.speed, 1)}× real time)`,
    pass: s.wallSeconds <= s.targetWallSeconds,
  })

  const u = r.realUdp
  targets.push({
    id: 'real UDP',
    goal: `real UDP on loopback: every member marks a stopped one dead within ${DETECTION_TARGET_SECONDS} s`,
    actual: 'error' in u ? `not available (${u.error})` : `${sec(u.result.allAgreeSeconds)} s with ${u.result.members} members`,
    pass: !('error' in u) && u.result.allAgreeSeconds <= DETECTION_TARGET_SECONDS,
  })
  return targets
}

// ---- sections ---------------------------------------------------------------------------------

interface Section {
  readonly title: string
  readonly header: readonly string[]
  readonly rows: readonly (readonly string[])[]
  /** Leading columns that are names (left-aligned); the rest are numbers. */
  readonly labels: number
  readonly notes: readonly string[]
  /** Ids of the targets this section checks. */
  readonly targets: readonly string[]
}

function summaryRow(name: string, s: Summary): string[] {
  return [name, sec(s.p50), sec(s.p95), sec(s.p99), sec(s.max), `${s.undetected}`]
}

const UNDETECTED = 'undet.: not detected before the end of the run (counted as +∞ in the percentiles).'

function ordinal(n: number): string {
  const tens = n % 100
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')
  return `${n}${suffix}`
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** How nearest-rank percentiles read with `n` runs. */
function percentileNote(n: number): string {
  const rank = (p: number): number => Math.max(1, Math.ceil((p / 100) * n))
  const name = (k: number): string => (k === n ? 'the slowest' : `the ${ordinal(k)} fastest`)
  return `Percentiles are nearest-rank, not interpolated: with ${plural(n, 'run')} p50 is ${name(rank(50))}, p95 ${name(rank(95))}, p99 ${name(rank(99))}.`
}

function sections(r: SwimResults): Section[] {
  const c = r.crash
  const out: Section[] = [
    {
      title: `1. Crash detection: 1 crash among ${c.members} members, ${c.seeds} seeds, ${c.durationSeconds} s simulated each (seconds after the crash)`,
      header: ['measure', 'p50', 'p95', 'p99', 'max', 'undetected'],
      rows: [
        summaryRow('allAgree (every live member marks it dead)', c.allAgree),
        summaryRow('firstDead (first member marks it dead)', c.firstDead),
        summaryRow('firstSuspect (first member suspects it)', c.firstSuspect),
      ],
      labels: 1,
      notes: [percentileNote(c.seeds)],
      targets: ['crash'],
    },
    {
      title: `2. Flatness: the same crash at each cluster size (seconds; ratio = allAgree p50 ÷ allAgree p50 at ${c.members} members)`,
      header: ['members', 'seeds', 'allAgree p50', 'allAgree p99', 'firstDead p50', 'firstSuspect p50', 'p50 ratio', 'off', 'wall s'],
      rows: r.flatness.map((f) => [
        `${f.members}`,
        `${f.seeds}${f.skippedSeeds > 0 ? '*' : ''}`,
        sec(f.allAgree.p50),
        sec(f.allAgree.p99),
        sec(f.firstDead.p50),
        sec(f.firstSuspect.p50),
        times(f.ratioTo100),
        off(f.ratioTo100),
        num(f.wallSeconds, 1),
      ]),
      labels: 0,
      notes: [
        ...(r.flatness.some((f) => f.skippedSeeds > 0) ? [`* fewer seeds: the size ran over its ${r.plan.sizeBudgetSeconds} s wall-clock budget.`] : []),
        ...(r.flatness.some((f) => f.allAgree.undetected > 0) ? [UNDETECTED] : []),
        `${percentileNote(Math.max(...r.flatness.map((f) => f.seeds)))} Wall s: wall-clock seconds for all of the size's runs.`,
      ],
      targets: ['flatness'],
    },
    {
      title: `3. Join: 1 member joins ${r.join.members} members at ${r.join.joinAtSeconds} s, ${r.join.seeds} seeds (seconds after the join)`,
      header: ['measure', 'p50', 'p95', 'p99', 'max', 'undetected'],
      rows: [
        summaryRow('allAgree (every member knows the newcomer)', r.join.allAgree),
        summaryRow('knowsAll (the newcomer knows every member)', r.join.knowsAll),
      ],
      labels: 1,
      notes: [`Checked every ${CHECK_EVERY} ms of simulated time. ${percentileNote(r.join.seeds)}`],
      targets: ['join'],
    },
    {
      title: '4. False deaths: long runs with loss and event-loop stalls (sums over the seeds)',
      header: ['scenario', 'members', 'seeds', 's each', 'false deaths', 'false suspicions', 'stalls', 'stalled suspected', 'stalled declared dead'],
      rows: r.faults.map((f) => [
        f.name,
        `${f.members}`,
        `${f.seeds}`,
        `${f.durationSeconds}`,
        `${f.falseDeaths}`,
        `${f.falseSuspicions}`,
        f.stalls ? `${f.stallEvents}` : '–',
        f.stalls ? `${f.stalledSuspected}` : '–',
        f.stalls ? `${f.stalledDeclaredDead}` : '–',
      ]),
      labels: 1,
      notes: ['False suspicions: running members marked suspect by anyone (each observer counts), stalled members included.'],
      targets: r.faults.map((f) => `faults: ${f.name}`),
    },
    {
      title: `5. Load: steady state, no faults, ${r.load[0]?.durationSeconds ?? '–'} s simulated (per member per second; means over the seeds)`,
      header: ['members', 'seeds', 'datagrams', 'UDP bytes', 'TCP bytes', 'largest datagram', 'datagrams ratio', 'bytes ratio'],
      rows: r.load.map((l) => [
        `${l.members}`,
        `${l.seeds}`,
        num(l.messagesPerMemberPerSecond, 2),
        num(l.bytesPerMemberPerSecond, 1),
        num(l.streamBytesPerMemberPerSecond, 1),
        int(l.largestDatagram),
        `${times(l.messagesRatio)} (${off(l.messagesRatio)})`,
        `${times(l.bytesRatio)} (${off(l.bytesRatio)})`,
      ]),
      labels: 0,
      notes: [
        `Ratios are to the ${r.load[0]?.members ?? '–'}-member row. UDP bytes include the tag; TCP bytes are push-pull anti-entropy and TCP fallback pings.`,
        `Largest datagram across all ${r.simulatedRuns} simulated runs of this benchmark: ${int(r.largestDatagramAllRuns)} B (first seen in: ${r.largestDatagramRun}).`,
      ],
      targets: ['load: messages', 'load: bytes', 'load: datagram size'],
    },
    {
      title: '6. Simulator speed',
      header: ['members', 'simulated s', 'wall s', 'of which setup s', '× real time', 'crash allAgree s'],
      rows: [
        [
          `${r.speed.members}`,
          `${r.speed.durationSeconds}`,
          num(r.speed.wallSeconds, 1),
          num(r.speed.wallSeconds - r.speed.run.runWallSeconds, 1),
          num(r.speed.speed, 1),
          sec(r.speed.run.events.find((e) => e.kind === 'crash')?.allAgree ?? Number.POSITIVE_INFINITY),
        ],
      ],
      labels: 0,
      notes: [
        `Wall s: the whole runScenario call (building the converged cluster included). One process, one core, ${r.machine.cpuCount} noisy vCPUs (load average ${r.machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')} at start).`,
      ],
      targets: ['speed'],
    },
  ]
  const u = r.realUdp
  out.push({
    title: '7. Real UDP on loopback',
    header: ['members', 'allAgree s', 'firstDead s', 'firstSuspect s'],
    rows:
      'error' in u
        ? []
        : [
            [
              `${u.result.members}`,
              sec(u.result.allAgreeSeconds),
              sec(u.result.firstDeadSeconds ?? Number.NaN),
              sec(u.result.firstSuspectSeconds ?? Number.NaN),
            ],
          ],
    labels: 0,
    notes: 'error' in u ? [`real UDP: not available (${u.error})`] : (u.result.notes ?? []),
    targets: ['real UDP'],
  })
  return out
}

// ---- text -------------------------------------------------------------------------------------

/** Left-aligns the first `labels` columns (names), right-aligns the rest (numbers). */
function table(header: readonly string[], rows: readonly (readonly string[])[], labels: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    '  ' +
    cells
      .map((c, i) => (i < labels ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('   ')
      .trimEnd()
  return [line(header), '  ' + widths.map((w) => '─'.repeat(w)).join('   '), ...rows.map(line)]
}

function verdict(t: Target): string {
  return `${t.pass ? 'PASS' : 'MISS'}  ${t.goal}: ${t.actual}`
}

function heading(r: SwimResults): string[] {
  const m = r.machine
  return [
    `Shoal SWIM benchmark (${r.mode}), simulator, default settings: ${m.cpuCount} × ${m.cpuModel}, Node ${m.node}, ${m.platform}, commit ${m.commit}, ${r.date}`,
    `${r.simulatedRuns} simulated runs in ${num(r.totalWallSeconds, 0)} s wall clock`,
  ]
}

export function renderText(r: SwimResults, targets: readonly Target[]): string {
  const byId = new Map(targets.map((t) => [t.id, t]))
  const lines = heading(r)
  for (const s of sections(r)) {
    lines.push('', s.title)
    if (s.rows.length > 0) lines.push(...table(s.header, s.rows, s.labels))
    lines.push(...s.notes.map((n) => `  ${n}`))
    for (const id of s.targets) {
      const t = byId.get(id)
      if (t) lines.push(`  ${verdict(t)}`)
    }
  }
  const passed = targets.filter((t) => t.pass).length
  lines.push('', `Targets: ${passed} of ${targets.length} PASS`, ...targets.map((t) => `  ${verdict(t)}`))
  return lines.join('\n')
}

// ---- Markdown ---------------------------------------------------------------------------------

function mdEscape(s: string): string {
  return s.replaceAll('|', '\\|')
}

function mdTable(header: readonly string[], rows: readonly (readonly string[])[], labels: number): string[] {
  const row = (cells: readonly string[]): string => `| ${cells.map(mdEscape).join(' | ')} |`
  return [row(header), `|${header.map((_, i) => (i < labels ? '---' : '---:')).join('|')}|`, ...rows.map(row)]
}

export function renderMarkdown(r: SwimResults, targets: readonly Target[]): string {
  const byId = new Map(targets.map((t) => [t.id, t]))
  const lines = [
    `## SWIM failure detector (${r.date.slice(0, 10)}, commit ${r.machine.commit}, \`npm run bench:swim${r.mode === 'quick' ? ' -- --quick' : ''}\`)`,
    '',
  ]
  lines.push(
    `Simulator, default settings, ${r.simulatedRuns} simulated runs in ${num(r.totalWallSeconds, 0)} s wall clock on ${r.machine.cpuCount} × ${r.machine.cpuModel}, Node ${r.machine.node}.`,
  )
  lines.push('', '![Crash detection time against cluster size](swim-detection.svg)')
  for (const s of sections(r)) {
    lines.push('', `**${s.title}**`, '')
    if (s.rows.length > 0) lines.push(...mdTable(s.header, s.rows, s.labels), '')
    for (const n of s.notes) lines.push(`${n}  `)
    for (const id of s.targets) {
      const t = byId.get(id)
      if (t) lines.push(`**${t.pass ? 'PASS' : 'MISS'}** ${mdEscape(t.goal)}: ${mdEscape(t.actual)}  `)
    }
  }
  lines.push('', '| target | result | |', '|---|---|---|')
  for (const t of targets) lines.push(`| ${mdEscape(t.goal)} | ${mdEscape(t.actual)} | ${t.pass ? 'PASS' : '**MISS**'} |`)
  return lines.join('\n')
}
