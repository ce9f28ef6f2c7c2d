import { runClusterSim } from './packages/shoal/src/sim/ClusterSimulator.ts'
const n = Number(process.argv[2] ?? 5)
const faults = (process.argv[3] ?? 'none') as any
for (let seed = 1; seed <= n; seed++) {
  const t0 = performance.now()
  const r = runClusterSim({ seed, faults })
  console.log(seed, Math.round(performance.now() - t0), 'ms', r.events, 'events', r.violations.map((v) => v.invariant + '@' + (v.at/1000).toFixed(1) + ' ' + v.detail.slice(0, 300)).join(' | '), 'conv', r.convergedAfterQuiet, 'downs', r.downs, JSON.stringify(r.singleton))
}
