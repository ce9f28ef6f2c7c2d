/**
 * `npm run chaos:partitions -- --runs N [--bridge-runs M] [--seed S] [--json FILE]`: repeats the
 * partition scenarios of test/support/partitions.ts against five real processes in network
 * namespaces (root, iproute2, nftables), with varied timings and singleton hosts, and reports per
 * run and in total: overlapping singleton instances, exit codes, how soon bridge partitions were
 * resolved and how soon calls worked after each heal. Exits 1 if any target is missed.
 *
 * Flapping runs (`--runs`, default 10) cycle the singleton's host through all five positions and
 * draw cut and up times from 1 to 8 s (seeded: `--seed`, printed, replays the same schedule); every
 * fifth run is a 2 s / 2 s flap, which must down nobody. Bridge runs (`--bridge-runs`, default 2)
 * put the host on either side or on the bridging node.
 *
 * Every node's log lines of a run that misses a target stay under `--logs` (default
 * `.chaos-partitions/`). Ctrl-C removes the lab in use.
 *
 * Targets (issue 20): 0 overlapping instances; every node the cluster stopped exits 1; bridge
 * partitions resolved within 15 s; after a heal, calls of the nodes still up succeed within 5 s; a
 * 2 s / 2 s flap downs nobody.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { seededRandom } from '../../src/sim/Random.ts'
import { NetnsLab, netnsAvailable, nftAvailable } from '../support/netns.ts'
import { bridgeScenario, describeResult, flapScenario, type ScenarioResult } from '../support/partitions.ts'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    'bridge-runs': { type: 'string', default: '2' },
    seed: { type: 'string' },
    duration: { type: 'string', default: '24' },
    json: { type: 'string' },
    logs: { type: 'string', default: '.chaos-partitions' },
  },
})
const runs = Number(values.runs)
const bridgeRuns = Number(values['bridge-runs'])
const durationMs = Number(values.duration) * 1000
const seed = values.seed === undefined ? (Date.now() % 2 ** 31) >>> 0 : Number(values.seed)

for (const check of [netnsAvailable, nftAvailable]) {
  const ok = await check()
  if (!ok.ok) {
    console.error(`chaos:partitions needs network namespaces and nftables: ${ok.why}`)
    process.exit(2)
  }
}

const rnd = seededRandom(seed)
const between = (lo: number, hi: number): number => Math.round(lo + (hi - lo) * rnd())

interface Row {
  readonly run: string
  readonly result: ScenarioResult
  readonly misses: string[]
}
const rows: Row[] = []
const started = Date.now()
const say = (line: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)}s] ${line}`)
say(`seed ${seed}: ${runs} flapping runs, ${bridgeRuns} bridge runs, ${durationMs / 1000} s of fault each`)

/** The lab of the run in progress, removed on Ctrl-C or SIGTERM too (namespaces outlive processes). */
let current: NetnsLab | undefined
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`${sig}: removing the lab and stopping`)
    void (current?.destroy() ?? Promise.resolve()).finally(() => process.exit(130))
  })
}

const logDirOf = (n: number, name: string): string => join(values.logs!, `${String(n).padStart(3, '0')}-${name.replace(/[^a-z0-9]+/gi, '-')}`)

/** Runs one scenario in a fresh lab, writing its logs under --logs (kept only if it misses a target). */
async function inLab(name: string, run: (lab: NetnsLab, logDir: string) => Promise<ScenarioResult>): Promise<ScenarioResult> {
  current = await NetnsLab.create(5)
  try {
    return await run(current, logDirOf(rows.length + 1, name))
  } finally {
    await current.destroy()
    current = undefined
  }
}

function judge(name: string, r: ScenarioResult, extra: string[]): void {
  const misses = [...extra]
  if (r.overlaps.length > 0) misses.push(`${r.overlaps.length} overlapping instances`)
  for (const e of r.exits) if (e.code !== 1) misses.push(`${e.node} exited ${e.code}`)
  for (const o of r.okAfterHeal)
    if (o.ms === undefined || o.ms > 5000) misses.push(`${o.node} calls ok ${o.ms === undefined ? 'never' : `${o.ms} ms`} after heal`)
  rows.push({ run: name, result: r, misses })
  const logDir = logDirOf(rows.length, name)
  if (misses.length === 0) rmSync(logDir, { recursive: true, force: true })
  say(`${name}: ${misses.length === 0 ? 'ok' : `MISS: ${misses.join('; ')} (logs in ${logDir})`}\n${describeResult(r).replace(/^/gm, '    ')}`)
}

for (let k = 0; k < runs; k++) {
  const gentle = k % 5 === 4
  const cutMs = gentle ? 2000 : between(1000, 8000)
  const upMs = gentle ? 2000 : between(1000, 8000)
  const host = k % 5
  const name = `flap ${k + 1}/${runs} cut ${cutMs} up ${upMs} host ${host}`
  const r = await inLab(name, (lab, logDir) => flapScenario(lab, { host, cutMs, upMs, durationMs, say, logDir }))
  judge(name, r, gentle && r.downed.length > 0 ? [`a 2 s / 2 s flap downed ${r.downed.join(', ')}`] : [])
}
for (let k = 0; k < bridgeRuns; k++) {
  const host = [0, 3, 2][k % 3]!
  const name = `bridge ${k + 1}/${bridgeRuns} host ${host}`
  const r = await inLab(name, (lab, logDir) => bridgeScenario(lab, { host, durationMs, say, logDir }))
  judge(name, r, r.resolvedMs === undefined || r.resolvedMs > 15_000 ? [`resolved ${r.resolvedMs ?? 'never'}`] : [])
}

const flaps = rows.filter((r) => r.run.startsWith('flap'))
const bridges = rows.filter((r) => r.run.startsWith('bridge'))
const overlaps = rows.reduce((n, r) => n + r.result.overlaps.length, 0)
const exits = rows.flatMap((r) => r.result.exits.map((e) => e.code))
const heal = rows.flatMap((r) => r.result.okAfterHeal.map((o) => o.ms ?? Number.POSITIVE_INFINITY)).sort((a, b) => a - b)
const resolved = bridges.map((r) => r.result.resolvedMs ?? Number.POSITIVE_INFINITY)
console.log(`
| runs | overlapping instances | exits (code 1 / other) | bridge resolved in (max) | calls ok after heal (median / max) | runs missing a target |
|---|---|---|---|---|---|
| ${flaps.length} flapping + ${bridges.length} bridge | ${overlaps} | ${exits.filter((c) => c === 1).length} / ${exits.filter((c) => c !== 1).length} | ${resolved.length ? `${(Math.max(...resolved) / 1000).toFixed(1)} s` : '-'} | ${heal.length ? `${(heal[Math.floor(heal.length / 2)]! / 1000).toFixed(1)} s / ${(heal.at(-1)! / 1000).toFixed(1)} s` : '-'} | ${rows.filter((r) => r.misses.length > 0).length} |
seed ${seed}; ${((Date.now() - started) / 60_000).toFixed(1)} min`)
if (values.json) writeFileSync(values.json, JSON.stringify({ seed, rows: rows.map((r) => ({ run: r.run, misses: r.misses, ...r.result })) }, null, 2))
process.exit(rows.some((r) => r.misses.length > 0) ? 1 : 0)
