/**
 * `shoal sim --cluster`: runs the deterministic cluster simulator (membership, downing, the
 * singleton and its lease, virtual actors' shard placement and hand-over, over SWIM) for one seed or a sweep of seeds, checks the invariants at
 * every step, and prints what it found.
 * @module
 */
import { parseArgs } from 'node:util'
import { ConfigError } from '../errors.ts'
import { type ClusterSimOptions, runClusterSim } from '../sim/ClusterSimulator.ts'
import { FAULT_MIXES, type FaultMix } from '../sim/Faults.ts'
import { shrinkViolation } from '../sim/Shrink.ts'
import { runSweep, type SweepReport } from '../sim/Sweep.ts'

/** The owner leases' ttl with `--virtual-lease`: the plugin's default. */
const VIRTUAL_LEASE_TTL = 8000

/** Help text of `shoal sim --cluster`. */
export const SIM_CLUSTER_USAGE = `Usage: shoal sim --cluster [options]

Simulates whole Shoal nodes (SWIM, membership and downing, a singleton with its lease, virtual
actors' shard placement and hand-over, clients calling both) on a virtual clock under a seeded fault schedule, checking the invariants after every event. The same
seed gives the same run; a violation names the seed that replays it.

  --seed N            run this one seed and print its report (with --trace, every decision)
  --seeds N           run a sweep of N seeds (from --first, default 1) over worker threads
  --workers N         worker threads for a sweep (default: the machine's cores)
  --nodes N           nodes (default 5)
  --duration S        simulated seconds per seed (default 600)
  --faults MIX        ${FAULT_MIXES.join(', ')} (default dense)
  --gap S             mean seconds between faults (default 15)
  --skew F            clock-rate skew between nodes, a fraction (default 0.01: each clock runs 0.99-1.01x)
  --downing NAME      downing strategy, as cluster.downing takes it (default keep-majority)
  --no-lease          the singleton runs without a lease
  --no-singleton      no singleton
  --no-virtual        no virtual actors
  --virtual-lease     virtual actors under owner leases (ttl 8 s), as virtualActorsPlugin({ lease })
  --roles             the singleton only on nodes 0-2, virtual actors only on nodes 1 and up
  --shards N          virtual actors' shards (default 64)
  --trace             with --seed: print the trace of decisions
  --shrink            with --seed: find the fewest of its faults that still break the same
                      invariant, and print that run's trace (it replays with --only-faults)
  --only-faults LIST  keep only these faults of the seed's schedule (indices, as #N in reports)
  --json              print the report as JSON
Exit code 1 if an invariant was violated.
`

/** Runs `shoal sim --cluster`; resolves with the exit code (1 if any invariant was violated). */
export async function simClusterCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      cluster: { type: 'boolean', default: true },
      seed: { type: 'string' },
      seeds: { type: 'string' },
      first: { type: 'string', default: '1' },
      workers: { type: 'string' },
      nodes: { type: 'string', default: '5' },
      duration: { type: 'string', default: '600' },
      faults: { type: 'string', default: 'dense' },
      gap: { type: 'string', default: '15' },
      skew: { type: 'string', default: '0.01' },
      downing: { type: 'string', default: 'keep-majority' },
      'no-lease': { type: 'boolean', default: false },
      'no-singleton': { type: 'boolean', default: false },
      'no-virtual': { type: 'boolean', default: false },
      'virtual-lease': { type: 'boolean', default: false },
      roles: { type: 'boolean', default: false },
      shards: { type: 'string', default: '64' },
      trace: { type: 'boolean', default: false },
      shrink: { type: 'boolean', default: false },
      'only-faults': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    out(SIM_CLUSTER_USAGE)
    return 0
  }
  if (!(FAULT_MIXES as readonly string[]).includes(values.faults))
    throw new ConfigError(`--faults must be one of ${FAULT_MIXES.join(', ')}, got "${values.faults}".`)
  const nodes = whole(values.nodes, 'nodes', 3)
  const duration = whole(values.duration, 'duration', 30) * 1000
  const common = {
    nodes,
    duration,
    quiet: Math.min(120_000, duration / 3),
    faults: values.faults as FaultMix,
    meanGap: whole(values.gap, 'gap', 1) * 1000,
    skew: fraction(values.skew, 'skew', 0.5),
    downing: values.downing,
    singleton: values['no-singleton'] ? (false as const) : values['no-lease'] ? { leaseTtl: undefined } : {},
    shards: values['no-virtual']
      ? (false as const)
      : { shards: whole(values.shards, 'shards', 1), ...(values['virtual-lease'] ? { leaseTtl: VIRTUAL_LEASE_TTL } : {}) },
    roles: values.roles,
  }
  if (values.seed !== undefined && values.seeds !== undefined) throw new ConfigError('Give --seed (one run) or --seeds (a sweep), not both.')
  if (values.shrink && values.seeds !== undefined) throw new ConfigError('--shrink works on one seed: give --seed N (a sweep prints the seeds that failed).')
  const onlyFaults = values['only-faults'] === undefined ? undefined : faultList(values['only-faults'])
  if (values.shrink) return shrink({ ...common, seed: whole(values.seed ?? '1', 'seed', 0), onlyFaults }, values, out)
  if (values.seeds === undefined) {
    const r = runClusterSim({ ...common, seed: whole(values.seed ?? '1', 'seed', 0), trace: values.trace, onlyFaults })
    if (values.json) out(`${JSON.stringify(r, null, 2)}\n`)
    else {
      if (r.trace) out(`${r.trace.join('\n')}\n\n`)
      out(`seed ${r.seed}: ${nodes} nodes, ${r.durationSeconds} s, ${r.faults.length} faults, ${r.events} events\n`)
      for (const f of r.faults) out(`  ${f}\n`)
      out(`checks ${JSON.stringify(r.checks)}\n`)
      out(
        r.violations.length === 0
          ? 'no invariant violated\n'
          : r.violations.map((v) => `VIOLATION ${v.invariant} at ${(v.at / 1000).toFixed(3)} s: ${v.detail}\n`).join(''),
      )
      out(`replay: shoal sim --cluster --seed ${r.seed} --trace${flags(values)}${onlyFaults ? ` --only-faults ${onlyFaults.join(',')}` : ''}\n`)
      if (r.violations.length > 0 && !onlyFaults) out(`shrink: shoal sim --cluster --seed ${r.seed} --shrink${flags(values)}\n`)
    }
    return r.violations.length === 0 ? 0 : 1
  }
  const seeds = whole(values.seeds, 'seeds', 1)
  const tty = process.stderr.isTTY === true
  const every = Math.max(1, Math.floor(seeds / 20))
  const report = await runSweep({
    ...common,
    stopOnViolation: true,
    seeds,
    first: whole(values.first, 'first', 0),
    workers: values.workers === undefined ? undefined : whole(values.workers, 'workers', 1),
    progress: (done, total, failed) => {
      if (done % every !== 0 && done !== total) return
      process.stderr.write(`${tty ? '\r' : ''}${done}/${total} seeds, ${failed} with a violation${tty && done !== total ? '' : '\n'}`)
    },
  })
  out(values.json ? `${JSON.stringify(report, null, 2)}\n` : sweepSummary(report, flags(values)))
  return report.failedSeeds.length === 0 ? 0 : 1
}

/** The sweep as a few tables. */
export function sweepSummary(r: SweepReport, replayFlags = ''): string {
  const lines = [
    `${r.seeds} seeds × ${r.nodes} nodes × ${r.simulatedSecondsPerSeed} s (${r.faults} faults) in ${r.wallSeconds.toFixed(1)} s on ${r.workers} workers`,
    `${r.faultsInjected} faults, ${r.downs} nodes downed, ${r.restarts} restarts, ${(r.events / 1e6).toFixed(1)} M events`,
    `checks: ${Object.entries(r.checks)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  ]
  if (r.singleton) lines.push(`singleton: ${r.singleton.activations} activations, ${r.singleton.served} calls served, ${r.singleton.refused} refused`)
  if (r.shards)
    lines.push(
      `virtual actors: ${r.shards.activations} activations, ${r.shards.issued} calls issued, ${r.shards.served} served, ${r.shards.failed} failed after 10 s`,
    )
  lines.push(
    '',
    'fault        decided (from its start)             converged (from its end)',
    '             p50 / p90 / p99 / max (s)            p50 / p90 / p99 / max (s)',
  )
  const d = (x: SweepReport['convergedAfterQuiet']): string =>
    `${[x.p50, x.p90, x.p99, x.max].map((v) => (v === null ? '—' : v.toFixed(1))).join(' / ')}${x.missing ? ` (${x.missing} none)` : ''}`
  for (const [kind, t] of Object.entries(r.timings)) lines.push(`${kind.padEnd(12)} ${d(t.decided).padEnd(36)} ${d(t.converged)}`)
  for (const [kind, f] of Object.entries(r.failover)) lines.push(`singleton host ${kind}: new instance after ${d(f)}`)
  for (const [kind, f] of Object.entries(r.shardFailover)) lines.push(`shard owner ${kind}: its shards open elsewhere after ${d(f)}`)
  lines.push(`after the last fault, converged: ${d(r.convergedAfterQuiet)}`, '')
  if (r.violations.length === 0) lines.push('0 invariant violations')
  else {
    lines.push(`${r.violations.length} violations in ${r.failedSeeds.length} seeds:`)
    for (const v of r.violations.slice(0, 20)) lines.push(`  seed ${v.seed} ${v.invariant} at ${v.atSeconds.toFixed(3)} s: ${v.detail.slice(0, 240)}`)
    lines.push(`replay one: shoal sim --cluster --seed ${r.failedSeeds[0]} --trace${replayFlags}`)
    lines.push(`or shrink it to the faults that matter: shoal sim --cluster --seed ${r.failedSeeds[0]} --shrink${replayFlags}`)
  }
  return `${lines.join('\n')}\n`
}

function flags(v: {
  nodes: string
  duration: string
  faults: string
  gap: string
  skew: string
  downing: string
  shards: string
  'no-lease': boolean
  'no-singleton': boolean
  'no-virtual': boolean
  'virtual-lease': boolean
  roles: boolean
}): string {
  const out: string[] = []
  if (v.nodes !== '5') out.push(`--nodes ${v.nodes}`)
  if (v.duration !== '600') out.push(`--duration ${v.duration}`)
  if (v.faults !== 'dense') out.push(`--faults ${v.faults}`)
  if (v.gap !== '15') out.push(`--gap ${v.gap}`)
  if (v.skew !== '0.01') out.push(`--skew ${v.skew}`)
  if (v.downing !== 'keep-majority') out.push(`--downing ${v.downing}`)
  if (v['no-lease']) out.push('--no-lease')
  if (v['no-singleton']) out.push('--no-singleton')
  if (v['no-virtual']) out.push('--no-virtual')
  if (v['virtual-lease']) out.push('--virtual-lease')
  if (v.roles) out.push('--roles')
  if (v.shards !== '64') out.push(`--shards ${v.shards}`)
  return out.length === 0 ? '' : ` ${out.join(' ')}`
}

/** `--shrink`: the fewest faults that still break the invariant, with that run's trace. */
function shrink(options: ClusterSimOptions, values: Parameters<typeof flags>[0] & { json: boolean }, out: (s: string) => void): number {
  const tty = process.stderr.isTTY === true
  const r = shrinkViolation(options, undefined, (kept, runs) => {
    if (tty) process.stderr.write(`\rshrinking: try ${runs}, ${kept} faults`)
  })
  if (tty) process.stderr.write('\n')
  if (!r) {
    out(`seed ${options.seed}: no invariant violated, nothing to shrink\n`)
    return 0
  }
  if (values.json) {
    out(`${JSON.stringify(r, null, 2)}\n`)
    return 1
  }
  out(`${r.report.trace!.join('\n')}\n\n`)
  out(`seed ${r.seed}: ${r.invariant} with ${r.onlyFaults.length} of the ${r.originalFaults} faults before it (${r.runs} runs):\n`)
  for (const f of r.report.faults) out(`  ${f}\n`)
  for (const v of r.report.violations) out(`VIOLATION ${v.invariant} at ${(v.at / 1000).toFixed(3)} s: ${v.detail}\n`)
  out(`replay: shoal sim --cluster --seed ${r.seed} --only-faults ${r.onlyFaults.join(',') || 'none'} --trace${flags(values)}\n`)
  return 1
}

/** `--only-faults 3,7,12` (or `none`). */
function faultList(v: string): number[] {
  if (v === 'none') return []
  const out = v.split(',').map((x) => Number(x.trim()))
  if (out.some((n) => !Number.isInteger(n) || n < 0)) throw new ConfigError(`--only-faults takes fault indices like 3,7,12 (or none), got "${v}".`)
  return out
}

function fraction(v: string, name: string, max: number): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0 || n > max) throw new ConfigError(`--${name} must be a number from 0 to ${max}, got "${v}".`)
  return n
}

function whole(v: string, name: string, min: number): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--${name} must be a whole number ≥ ${min}, got "${v}".`)
  return n
}
