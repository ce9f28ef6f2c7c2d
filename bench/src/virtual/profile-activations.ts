/**
 * Profiles first-call activations on one node (the bench:virtual scenario), for finding costs:
 * `node --cpu-prof --cpu-prof-dir=DIR --conditions=source --import tsx bench/src/virtual/profile-activations.ts [seconds]`
 * then `analyze` the profile. Prints activations/s and CPU µs per activation.
 */

import { ClusterSystem, DistributedActor, distributed, virtualActorsPlugin } from 'shoal'
import { closedLoop } from '../harness.ts'

class Tiny extends DistributedActor {
  constructor(readonly key: string) {
    super()
  }
  @distributed async ping(): Promise<number> {
    return 1
  }
}

const seconds = Number(process.argv[2] ?? 5)
const s = await ClusterSystem.start({
  host: '127.0.0.1',
  port: 0,
  logLevel: 'error',
  plugins: [virtualActorsPlugin()],
  cluster: { seeds: [], selfJoinAfter: 200 },
})
s.virtualActors.host(Tiny, (id) => new Tiny(id))
while (!(s.virtualActors.status().groups[0]?.open === 1024)) await new Promise((r) => setTimeout(r, 50))
let next = 0
const cpu0 = process.cpuUsage()
const r = await closedLoop(() => s.virtualActors.get(Tiny, `id-${next++}`).ping(), undefined, 100, { warmupMs: 500, durationMs: seconds * 1000 })
const cpu = process.cpuUsage(cpu0)
console.log(`${Math.round(r.callsPerSec)} activations/s; ${((cpu.user + cpu.system) / next).toFixed(1)} µs CPU each (warm-up included)`)
process.exit(0)
