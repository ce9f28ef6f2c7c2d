import { runClusterSim } from './packages/shoal/src/sim/ClusterSimulator.ts'
const seed = Number(process.argv[2]); const until = Number(process.argv[3] ?? 600)
const r = runClusterSim({ seed, faults: 'dense', trace: true, duration: until * 1000, quiet: 0 })
console.log(r.faults.join('\n'))
console.log(r.trace!.filter((l) => !/n\d'* singleton|heartbeats to member|answered again|observe|no member observes/.test(l) || /VIOL/.test(l)).join('\n'))
