import { runClusterSim } from './packages/shoal/src/sim/ClusterSimulator.ts'
const seed = Number(process.argv[2] ?? 1)
const faults = (process.argv[3] ?? 'none') as any
const t0 = performance.now()
const r = runClusterSim({ seed, faults, trace: process.argv[4] === 'trace' })
const ms = performance.now() - t0
const { trace, ...rest } = r
console.log(JSON.stringify({ ...rest, timings: rest.timings.length, wallMs: Math.round(ms) }, null, 1))
if (trace) console.log(trace.slice(0, 400).join('\n'))
