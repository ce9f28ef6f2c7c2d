/**
 * `shoal sim`: runs the deterministic SWIM simulator and prints what happened.
 * @module
 */
import { parseArgs } from 'node:util'
import { ConfigError } from '../errors.ts'
import { type PartitionSpec, runScenario, type ScenarioOptions, type StallSpec } from '../sim/Scenario.ts'

/** Help text of `shoal sim`. */
export const SIM_USAGE = `Usage: shoal sim [options]

Simulates a SWIM cluster on a virtual clock; the same seed gives the same run.

  --members N          members at the start (default 100)
  --duration S         simulated seconds (default 600)
  --seed N             random seed (default 1)
  --loss P             datagram loss probability, 0..1 (default 0)
  --delay MS           one-way latency (default 0.5), --jitter MS extra (default 0.2)
  --crash N            members killed at random times (default 0)
  --restart N          members killed and restarted with a new uid 2 s later
  --join N[@S]         members joining at once (at S seconds; default 30% of the run)
  --stall N:MS/EVERY   freeze N random members for MS ms every EVERY ms (e.g. 5:2000/20000)
  --partition AT:LEN[:F]  split at AT s for LEN s; F of the members on one side (default 0.5)
  --one-way A>B        drop everything member A sends to member B (repeatable)
  --bootstrap MODE     converged (default) or join (everyone joins through 3 seeds)
  --json               print the report as JSON (default: a summary)

With --cluster it simulates whole Shoal nodes instead (shoal sim --cluster --help).
`

/** Runs `shoal sim` and prints its report (JSON with `--json`). */
export function simCommand(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      members: { type: 'string', default: '100' },
      duration: { type: 'string', default: '600' },
      seed: { type: 'string', default: '1' },
      loss: { type: 'string', default: '0' },
      delay: { type: 'string', default: '0.5' },
      jitter: { type: 'string', default: '0.2' },
      crash: { type: 'string', default: '0' },
      restart: { type: 'string', default: '0' },
      join: { type: 'string' },
      stall: { type: 'string' },
      partition: { type: 'string' },
      'one-way': { type: 'string', multiple: true },
      bootstrap: { type: 'string', default: 'converged' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return out(SIM_USAGE)
  const members = int(values.members, 'members', 2)
  const duration = num(values.duration, 'duration', 1) * 1000
  const [joins, joinAt] = values.join === undefined ? [0, undefined] : parseJoin(values.join)
  if (values.bootstrap !== 'converged' && values.bootstrap !== 'join') throw new ConfigError('--bootstrap must be converged or join.')
  const options: ScenarioOptions = {
    members,
    duration,
    seed: int(values.seed, 'seed', 0),
    loss: prob(values.loss, 'loss'),
    delay: num(values.delay, 'delay', 0),
    jitter: num(values.jitter, 'jitter', 0),
    crashes: int(values.crash, 'crash', 0),
    restarts: int(values.restart, 'restart', 0),
    joins,
    joinAt,
    bootstrap: values.bootstrap,
    stalls: values.stall === undefined ? undefined : parseStall(values.stall),
    partition: values.partition === undefined ? undefined : parsePartition(values.partition),
    oneWay: (values['one-way'] ?? []).map((s) => parseLink(s, members)),
  }
  if ((options.crashes ?? 0) + (options.restarts ?? 0) > members - 3)
    throw new ConfigError('--crash plus --restart must leave the 3 seed members and at least one other.')
  const report = runScenario(options)
  if (values.json) return out(JSON.stringify(report, null, 2) + '\n')
  out(summary(report))
}

function summary(r: ReturnType<typeof runScenario>): string {
  const lines = [
    `${r.members} members, ${r.durationSeconds} s simulated in ${r.simulation.wallSeconds} s (${r.simulation.speed}× real time), seed ${r.seed}, loss ${r.loss}`,
  ]
  for (const e of r.events) {
    const parts = Object.entries(e)
      .filter(([k]) => k !== 'kind')
      .map(([k, v]) => `${k}=${v === null ? '—' : v}`)
    lines.push(`  ${e.kind.padEnd(9)} ${parts.join(' ')}`)
  }
  lines.push(`false suspicions ${r.falseSuspicions}, false deaths ${r.falseDeaths}, deaths across partitions ${r.partitionDeaths}`)
  const l = r.load
  lines.push(
    `load per member: ${l.messagesPerMemberPerSecond} datagrams/s, ${l.bytesPerMemberPerSecond} B/s (+${l.streamBytesPerMemberPerSecond} B/s TCP); largest datagram ${l.largestDatagram} B`,
  )
  lines.push(`trace ${r.simulation.traceHash}`)
  return lines.join('\n') + '\n'
}

function num(v: string, name: string, min: number): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n < min) throw new ConfigError(`--${name} must be a number ≥ ${min}, got "${v}".`)
  return n
}

function int(v: string, name: string, min: number): number {
  const n = num(v, name, min)
  if (!Number.isInteger(n)) throw new ConfigError(`--${name} must be a whole number, got "${v}".`)
  return n
}

function prob(v: string, name: string): number {
  const p = num(v, name, 0)
  if (p > 1) throw new ConfigError(`--${name} must be between 0 and 1, got "${v}".`)
  return p
}

function parseJoin(v: string): [number, number | undefined] {
  const [count, at] = v.split('@')
  return [int(count!, 'join', 1), at === undefined ? undefined : num(at, 'join time', 0) * 1000]
}

function parseStall(v: string): StallSpec {
  const m = /^(\d+):(\d+)\/(\d+)$/.exec(v)
  if (!m) throw new ConfigError(`--stall must look like COUNT:MS/EVERY_MS (e.g. 5:2000/20000), got "${v}".`)
  return { count: Number(m[1]), duration: Number(m[2]), every: Math.max(1, Number(m[3])) }
}

function parsePartition(v: string): PartitionSpec {
  const m = /^([\d.]+):([\d.]+)(?::([\d.]+))?$/.exec(v)
  if (!m) throw new ConfigError(`--partition must look like AT:LENGTH[:FRACTION] in seconds (e.g. 60:60:0.5), got "${v}".`)
  const fraction = m[3] === undefined ? 0.5 : Number(m[3])
  if (!(fraction > 0 && fraction < 1)) throw new ConfigError('--partition fraction must be between 0 and 1.')
  return { at: Number(m[1]) * 1000, duration: Number(m[2]) * 1000, fraction }
}

function parseLink(v: string, members: number): [number, number] {
  const m = /^(\d+)>(\d+)$/.exec(v)
  if (!m || Number(m[1]) >= members || Number(m[2]) >= members)
    throw new ConfigError(`--one-way must look like A>B with member indices below ${members}, got "${v}".`)
  return [Number(m[1]), Number(m[2])]
}
