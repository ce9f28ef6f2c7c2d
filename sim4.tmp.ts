import { runClusterSim } from './packages/shoal/src/sim/ClusterSimulator.ts'
const from = Number(process.argv[2] ?? 1), to = Number(process.argv[3] ?? 40)
const faults = (process.argv[4] ?? 'dense') as any
let bad = 0; const t0 = performance.now()
for (let seed = from; seed <= to; seed++) {
  const r = runClusterSim({ seed, faults })
  if (r.violations.length) { bad++; console.log(seed, r.violations.map((v) => v.invariant + '@' + (v.at/1000).toFixed(1) + ' ' + v.detail.slice(0, 400)).join(' | ')) }
}
console.log('seeds', to - from + 1, 'bad', bad, 'ms/seed', Math.round((performance.now() - t0) / (to - from + 1)))
