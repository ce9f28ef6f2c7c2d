/**
 * The price of a no-op `shoal.call` subscriber, A/B in one process: two systems (caller and host,
 * over loopback TCP), remote calls to one actor at `inFlight`, in windows alternating between no
 * subscriber and no-op handlers on all five events (subscribed and unsubscribed between windows),
 * so both see the same JIT and machine phase:
 * `node --import tsx bench/src/profile/ab-tracing.ts [inFlight] [rounds] [seconds]` (after `npm run build`).
 * Prints each round's calls/s and CPU per call (both sides together), and the median ratio. A fifth
 * argument, `traced` or `plain`, makes every window that kind (to profile one side).
 */
import { tracingChannel } from 'node:diagnostics_channel'
import { ClusterSystem, DistributedActor, distributed } from 'shoal'
import { closedLoop } from '../harness.ts'

class Echo extends DistributedActor {
  @distributed async echo(arg: unknown): Promise<unknown> {
    return arg
  }
}

const inFlight = Number(process.argv[2] ?? 100)
const rounds = Number(process.argv[3] ?? 8)
const seconds = Number(process.argv[4] ?? 1.5)
/** `traced` or `plain`: every window of that kind (for profiling one side of the comparison). */
const only = process.argv[5]
const settings = { host: '127.0.0.1', port: 0, logLevel: 'error' as const }
const host = await ClusterSystem.start(settings)
const caller = await ClusterSystem.start(settings)
const ref = caller.resolve(Echo, host.spawn(Echo).id)
const payload = { id: 42, name: 'payload', tags: ['a', 'b'] }
await ref.echo(payload)

const noop = (): void => {}
const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop }
const channel = tracingChannel('shoal.call')
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function window(traced: boolean): Promise<{ rate: number; cpu: number }> {
  if (traced) channel.subscribe(handlers)
  try {
    let n = 0
    const cpu0 = process.cpuUsage()
    const r = await closedLoop(() => (n++, ref.echo(payload)), undefined, inFlight, { warmupMs: 300, durationMs: seconds * 1000 })
    const cpu = process.cpuUsage(cpu0)
    return { rate: r.callsPerSec, cpu: (cpu.user + cpu.system) / n }
  } finally {
    if (traced) channel.unsubscribe(handlers)
  }
}

const ratios: number[] = []
const extra: number[] = []
for (let round = 0; round < rounds; round++) {
  const first = round % 2 === 0
  const a = await window(only === undefined ? !first : only === 'traced')
  const b = await window(only === undefined ? first : only === 'traced')
  const [plain, traced] = first ? [a, b] : [b, a]
  ratios.push(traced.rate / plain.rate)
  extra.push(traced.cpu - plain.cpu)
  console.log(
    `round ${round + 1}: plain ${Math.round(plain.rate)}/s ${plain.cpu.toFixed(2)} µs, traced ${Math.round(traced.rate)}/s ${traced.cpu.toFixed(2)} µs; traced ÷ plain ${(traced.rate / plain.rate).toFixed(3)}`,
  )
}
console.log(
  `median traced ÷ plain at ${inFlight} in flight: ${median(ratios).toFixed(3)}; median extra CPU per call (both sides) ${median(extra).toFixed(3)} µs`,
)
await caller.shutdown()
await host.shutdown()
process.exit(0)
