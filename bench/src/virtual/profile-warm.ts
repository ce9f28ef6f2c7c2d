/**
 * Profiles warm calls to 1,000 virtual actors or to 1,000 plain actors on another node (two systems
 * in one process, as bench:virtual), for comparing their costs:
 * `node --cpu-prof --cpu-prof-dir=DIR --import tsx bench/src/virtual/profile-warm.ts virtual|plain [inFlight] [seconds]`
 * (after `npm run build`). Prints calls/s and CPU µs per call (both sides).
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

const mode = process.argv[2] === 'plain' ? 'plain' : 'virtual'
const inFlight = Number(process.argv[3] ?? 10)
const seconds = Number(process.argv[4] ?? 4)
const settings = (seeds: string[]) => ({
  host: '127.0.0.1',
  port: 0,
  logLevel: 'error' as const,
  plugins: [virtualActorsPlugin()],
  cluster: { seeds, selfJoinAfter: 200 },
})
const host = await ClusterSystem.start(settings([]))
host.virtualActors.host(Tiny, (id) => new Tiny(id))
const caller = await ClusterSystem.start(settings([`127.0.0.1:${host.node.endpoint.port}`]))
await caller.cluster.joined()
for (;;) {
  const ok = [host, caller].every(
    (s) =>
      (s.virtualActors.status().groups[0]?.tableVersion ?? 0) > 0 && s.virtualActors.status().groups[0]?.open === s.virtualActors.status().groups[0]?.owned,
  )
  if (ok) break
  await new Promise((r) => setTimeout(r, 50))
}
const ids = Array.from({ length: 1000 }, (_, i) => `warm-${i}`)
const refs =
  mode === 'virtual' ? ids.map((id) => caller.virtualActors.get(Tiny, id)) : ids.map((id) => caller.resolve(Tiny, host.spawn(Tiny, `plain-${id}`).id))
await Promise.all(refs.map((r) => r.ping()))
let i = 0
const cpu0 = process.cpuUsage()
const r = await closedLoop(() => refs[i++ % refs.length]!.ping(), undefined, inFlight, { warmupMs: 500, durationMs: seconds * 1000 })
const cpu = process.cpuUsage(cpu0)
console.log(`${mode}: ${Math.round(r.callsPerSec)} calls/s at ${inFlight} in flight; ${((cpu.user + cpu.system) / i).toFixed(1)} µs CPU per call (both sides)`)
process.exit(0)
