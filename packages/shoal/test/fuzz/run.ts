/**
 * The long fuzzing run: `npm run fuzz -- --minutes N [--target NAME]` loops every target (or one)
 * with fresh seeds until time is up, then prints runs and runs/s per target and every failure with
 * its seed and path. Replay one: `npm run fuzz -- --target NAME --seed S --path P`.
 */
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { targets } from './targets.ts'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    target: { type: 'string' },
    seed: { type: 'string' },
    path: { type: 'string' },
    batch: { type: 'string', default: '1000' },
  },
})
const chosen = values.target ? targets.filter((t) => t.name.toLowerCase() === values.target!.toLowerCase()) : targets
if (chosen.length === 0) {
  console.error(`no target ${values.target}; targets: ${targets.map((t) => t.name).join(', ')}`)
  process.exit(2)
}

if (values.seed !== undefined) {
  const t = chosen[0]!
  const result = fc.check(t.property, { seed: Number(values.seed), path: values.path, numRuns: values.path ? 1 : Number(values.batch), endOnFailure: true })
  console.log(result.failed ? fc.defaultReportMessage(result) : `${t.name}: seed ${values.seed} passes`)
  process.exit(result.failed ? 1 : 0)
}

const deadline = Date.now() + Number(values.minutes) * 60_000
const batch = Number(values.batch)
const stats = new Map(chosen.map((t) => [t.name, { runs: 0, ms: 0, failures: [] as string[] }]))
const started = Date.now()
while (Date.now() < deadline) {
  for (const t of chosen) {
    if (Date.now() >= deadline) break
    const seed = (Math.random() * 2 ** 31) | 0
    const s = stats.get(t.name)!
    const t0 = performance.now()
    const result = fc.check(t.property, { seed, numRuns: batch, endOnFailure: true })
    s.ms += performance.now() - t0
    s.runs += result.numRuns
    if (result.failed) {
      const line = `${t.name} seed ${seed} path ${result.counterexamplePath}: ${String((result.errorInstance as Error | undefined)?.message ?? result.errorInstance)}`
      s.failures.push(line)
      console.log(`FAILURE ${line}\n  replay: npm run fuzz -- --target ${t.name} --seed ${seed} --path ${result.counterexamplePath}`)
    }
  }
}
let total = 0
let failures = 0
for (const [name, s] of stats) {
  total += s.runs
  failures += s.failures.length
  console.log(
    `${name.padEnd(16)} ${String(s.runs).padStart(10)} runs  ${((s.runs * 1000) / Math.max(1, s.ms)).toFixed(0).padStart(7)} runs/s  ${s.failures.length} failures`,
  )
}
console.log(`total ${total} runs in ${((Date.now() - started) / 1000).toFixed(0)} s, ${failures} failures`)
process.exit(failures > 0 ? 1 : 0)
