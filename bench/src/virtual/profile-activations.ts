/**
 * Profiles first-call activations (the bench:virtual scenarios), for finding their costs:
 * `node --cpu-prof --cpu-prof-dir=DIR --import tsx bench/src/virtual/profile-activations.ts [local|remote] [seconds]`
 * (after `npm run build`), then read the profile with bench/src/profile/analyze.ts. `local`: one
 * node activates its own ids; `remote`: a caller that hosts nothing activates ids on another node
 * (both systems in this process). Prints activations/s and CPU µs per activation.
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

const remote = process.argv[2] === 'remote'
const seconds = Number(process.argv[3] ?? 4)
const settings = (seeds: string[]) => ({
  host: '127.0.0.1',
  port: 0,
  logLevel: 'error' as const,
  plugins: [virtualActorsPlugin()],
  cluster: { seeds, selfJoinAfter: 200 },
})
const host = await ClusterSystem.start(settings([]))
host.virtualActors.host(Tiny, (id) => new Tiny(id))
const caller = remote ? await ClusterSystem.start(settings([`127.0.0.1:${host.node.endpoint.port}`])) : host
if (remote) await caller.cluster.joined()
const ready = (s: ClusterSystem): boolean => {
  const g = s.virtualActors.status().groups[0]
  return g !== undefined && g.tableVersion > 0 && g.open === g.owned
}
while (!(ready(host) && ready(caller))) await new Promise((r) => setTimeout(r, 50))
let next = 0
const cpu0 = process.cpuUsage()
const r = await closedLoop(() => caller.virtualActors.get(Tiny, `id-${next++}`).ping(), undefined, 100, { warmupMs: 500, durationMs: seconds * 1000 })
const cpu = process.cpuUsage(cpu0)
console.log(
  `${remote ? 'remote' : 'local'}: ${Math.round(r.callsPerSec)} activations/s; ${((cpu.user + cpu.system) / next).toFixed(1)} µs CPU each (both sides, warm-up included)`,
)
process.exit(0)
