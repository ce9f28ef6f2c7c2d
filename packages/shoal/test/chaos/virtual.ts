/**
 * `npm run chaos:virtual -- --minutes M [--round-minutes R] [--seed S] [--json FILE] [--logs DIR] [--keep-logs]`:
 * virtual-actor chaos rounds (test/support/virtualChaos.ts) for M minutes in all: five real
 * processes in network namespaces calling 40 ids under seeded faults (partitions of random shape,
 * one-way loss, flapping links, kill -9, SIGSTOP, graceful leaves, restarts on the same address),
 * each round checked offline (test/support/virtualChecker.ts): no id active twice, no call served
 * outside its activation, and every id served everywhere again after the final heal.
 *
 * Each round is a fresh cluster with its own seed (`--seed` gives the first; a round's seed, printed,
 * replays its fault schedule). Logs of a round with a violation (of every round, with `--keep-logs`) stay under `--logs` (default
 * `.chaos-virtual/`). Exits 1 if any round has a violation or did not recover. Needs root, iproute2
 * and nftables.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { NetnsLab, netnsAvailable, nftAvailable } from '../support/netns.ts'
import { describeVirtualRound, type VirtualChaosResult, virtualChaosRound } from '../support/virtualChaos.ts'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'round-minutes': { type: 'string', default: '3' },
    seed: { type: 'string' },
    json: { type: 'string' },
    logs: { type: 'string', default: '.chaos-virtual' },
    'keep-logs': { type: 'boolean', default: false },
  },
})
const totalMs = Number(values.minutes) * 60_000
const roundMs = Number(values['round-minutes']) * 60_000
const firstSeed = values.seed === undefined ? (Date.now() % 2 ** 31) >>> 0 : Number(values.seed)

for (const check of [netnsAvailable, nftAvailable]) {
  const ok = await check()
  if (!ok.ok) {
    console.error(`chaos:virtual needs network namespaces and nftables: ${ok.why}`)
    process.exit(2)
  }
}

const started = Date.now()
const say = (line: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)}s] ${line}`)
say(`first seed ${firstSeed}: rounds of ${roundMs / 60_000} min of faults for ${totalMs / 60_000} min`)

let current: NetnsLab | undefined
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`${sig}: removing the lab and stopping`)
    void (current?.destroy() ?? Promise.resolve()).finally(() => process.exit(130))
  })
}

const rounds: VirtualChaosResult[] = []
for (let k = 0; Date.now() - started < totalMs; k++) {
  const seed = (firstSeed + k * 7919) >>> 0
  const logDir = join(values.logs!, `round-${String(k + 1).padStart(3, '0')}-seed-${seed}`)
  const left = totalMs - (Date.now() - started)
  say(`round ${k + 1}, seed ${seed}`)
  current = await NetnsLab.create(5)
  let r: VirtualChaosResult
  try {
    r = await virtualChaosRound(current, { seed, durationMs: Math.max(30_000, Math.min(roundMs, left - 30_000)), say: (l) => say(`  ${l}`), logDir })
  } finally {
    await current.destroy()
    current = undefined
  }
  rounds.push(r)
  const bad = r.check.violations.length > 0 || r.recoveredMs === undefined
  if (!bad && !values['keep-logs']) rmSync(logDir, { recursive: true, force: true })
  say(`round ${k + 1}: ${bad ? `VIOLATION (logs in ${logDir})` : 'ok'}\n${describeVirtualRound(r).replace(/^/gm, '    ')}`)
}

const sum = (f: (r: VirtualChaosResult) => number): number => rounds.reduce((n, r) => n + f(r), 0)
const recovered = rounds.map((r) => r.recoveredMs ?? Number.POSITIVE_INFINITY)
console.log(`
| rounds | faults | incarnations | activations | calls ok / failed | violations | recovered after heal (max) |
|---|---|---|---|---|---|---|
| ${rounds.length} | ${sum((r) => r.faults.length)} | ${sum((r) => r.incarnations)} | ${sum((r) => r.check.activations.length)} | ${sum((r) => r.check.calls.ok)} / ${sum((r) => r.check.calls.failed)} | ${sum((r) => r.check.violations.length)} | ${(Math.max(...recovered) / 1000).toFixed(1)} s |
first seed ${firstSeed}; ${((Date.now() - started) / 60_000).toFixed(1)} min`)
if (values.json)
  writeFileSync(
    values.json,
    JSON.stringify(
      rounds.map((r) => ({
        seed: r.seed,
        faults: r.faults,
        incarnations: r.incarnations,
        recoveredMs: r.recoveredMs,
        calls: r.check.calls,
        violations: r.check.violations,
      })),
      null,
      2,
    ),
  )
process.exit(rounds.some((r) => r.check.violations.length > 0 || r.recoveredMs === undefined) ? 1 : 0)
