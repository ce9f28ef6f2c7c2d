import { ClusterSimulator } from './packages/shoal/src/sim/ClusterSimulator.ts'
const seed = Number(process.argv[2] ?? 2)
const cs = new ClusterSimulator({ seed, faults: 'dense', duration: Number(process.argv[3] ?? 600000) })
const counts: Record<string, number> = {}
const orig = cs.control.bind(cs)
;(cs as any).control = (from: any, to: any, size: number, deliver: any) => { const k = String(size < 40 ? size : 'gossip'); counts[k] = (counts[k] ?? 0) + 1; return orig(from, to, size, deliver) }
const t0 = performance.now()
const r = cs.run()
console.log(Math.round(performance.now() - t0), r.events, counts, cs.sim.traffic)
