/**
 * Warm calls to 1,000 virtual actors against 1,000 plain actors on another node (two systems in
 * one process), alternated in short windows in one process so both see the same JIT and machine
 * phase: `node --import tsx bench/src/virtual/ab-warm.ts [inFlight] [rounds] [seconds] [virtual|plain]`
 * (after `npm run build`). Prints each round's calls/s and CPU per call (both sides), and the median
 * ratio. A fourth argument makes every window that kind, to profile one side alone
 * (`node --cpu-prof --import tsx … 100 2 4 virtual`; the ratio line then means nothing).
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

const inFlight = Number(process.argv[2] ?? 100)
const rounds = Number(process.argv[3] ?? 6)
const seconds = Number(process.argv[4] ?? 1.5)
/** `virtual` or `plain`: every window of that kind. */
const only = process.argv[5] as 'virtual' | 'plain' | undefined
const settings = (seeds: string[]) => ({
  host: '127.0.0.1',
  port: 0,
  logLevel: (process.env.LOG_LEVEL ?? 'error') as 'error',
  plugins: [virtualActorsPlugin()],
  cluster: { seeds, selfJoinAfter: 200 },
})
const host = await ClusterSystem.start(settings([]))
host.virtualActors.host(Tiny, (id) => new Tiny(id))
const caller = await ClusterSystem.start(settings([`127.0.0.1:${host.node.endpoint.port}`]))
await caller.cluster.joined()
for (;;) {
  const g = [host, caller].map((s) => s.virtualActors.status().groups[0])
  if (g.every((x) => (x?.tableVersion ?? 0) > 0 && x?.open === x?.owned)) break
  await new Promise((r) => setTimeout(r, 50))
}
const ids = Array.from({ length: 1000 }, (_, i) => `warm-${i}`)
const refs = {
  virtual: ids.map((id) => caller.virtualActors.get(Tiny, id)),
  plain: ids.map((id) => caller.resolve(Tiny, host.spawn(Tiny, `plain-${id}`).id)),
}
await Promise.all([...refs.virtual, ...refs.plain].map((r) => r.ping()))
const ratios: number[] = []
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
for (let round = 0; round < rounds; round++) {
  const rate: Record<string, number> = {}
  const order = only !== undefined ? ([only, only] as const) : round % 2 === 0 ? (['plain', 'virtual'] as const) : (['virtual', 'plain'] as const)
  const line: string[] = []
  for (const mode of order) {
    const list = refs[mode]
    let i = 0
    const cpu0 = process.cpuUsage()
    const r = await closedLoop(() => list[i++ % list.length]!.ping(), undefined, inFlight, { warmupMs: 300, durationMs: seconds * 1000 })
    const cpu = process.cpuUsage(cpu0)
    rate[mode] = r.callsPerSec
    line.push(`${mode} ${Math.round(r.callsPerSec)}/s ${((cpu.user + cpu.system) / i).toFixed(2)} µs`)
  }
  ratios.push(rate.virtual! / rate.plain!)
  console.log(`round ${round + 1}: ${line.join(', ')}; virtual ÷ plain ${(rate.virtual! / rate.plain!).toFixed(3)}`)
}
console.log(`median virtual ÷ plain at ${inFlight} in flight: ${median(ratios).toFixed(3)}`)
process.exit(0)
