/**
 * Micro-costs of things on the per-call path, in ns per operation, for reading a profile against:
 * clock reads, promise creation with and without AsyncLocalStorage active, `als.run`, Map traffic
 * on a pending-call table, histogram recording (Shoal's bucket search vs prom-client's labelled
 * `observe`), and a no-op diagnostics_channel tracing subscriber.
 *
 * `node --conditions=source --import tsx bench/src/profile/micro.ts` (about 10 s). Each figure is
 * the best of five runs of a tight loop: a lower bound, without the cache misses of a real call.
 * The promise figures come first in the process, before AsyncLocalStorage is ever enabled.
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { tracingChannel } from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'

let sink = 0

/** Best of `runs` runs, in ns per op; `body` performs `n` ops and returns something to keep. */
function measure(name: string, n: number, body: (n: number) => number): number {
  let best = Number.POSITIVE_INFINITY
  for (let run = 0; run < 6; run++) {
    const t0 = process.hrtime.bigint()
    sink += body(n)
    const ns = Number(process.hrtime.bigint() - t0) / n
    if (run > 0) best = Math.min(best, ns) // the first run warms up
  }
  console.log(`${name.padEnd(64)} ${best.toFixed(1).padStart(8)} ns`)
  return best
}

async function measureAsync(name: string, n: number, body: (n: number) => Promise<number>): Promise<number> {
  let best = Number.POSITIVE_INFINITY
  for (let run = 0; run < 6; run++) {
    const t0 = process.hrtime.bigint()
    sink += await body(n)
    const ns = Number(process.hrtime.bigint() - t0) / n
    if (run > 0) best = Math.min(best, ns)
  }
  console.log(`${name.padEnd(64)} ${best.toFixed(1).padStart(8)} ns`)
  return best
}

/** n promises made, resolved and awaited in batches of 100 (as a call's promises are). */
async function promises(n: number): Promise<number> {
  let total = 0
  const batch = new Array<Promise<number>>(100)
  for (let i = 0; i < n; i += 100) {
    for (let j = 0; j < 100; j++) batch[j] = new Promise<number>((resolve) => resolve(j))
    for (const p of batch) total += await p
  }
  return total
}

/** An async function awaiting a resolved value: two promises and a resumption, as an actor method. */
async function asyncFns(n: number): Promise<number> {
  const f = async (x: number): Promise<number> => x
  let total = 0
  for (let i = 0; i < n; i++) total += await f(i)
  return total
}

async function main(): Promise<void> {
  console.log(`Node ${process.version}; ns per operation, best of 5 runs\n`)
  const N = 2_000_000
  measure('performance.now()', N, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) x += performance.now()
    return x
  })
  measure('Date.now()', N, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) x += Date.now()
    return x
  })
  measure('process.hrtime.bigint()', N, (n) => {
    let x = 0n
    for (let i = 0; i < n; i++) x += process.hrtime.bigint()
    return Number(x & 1n)
  })

  const pending = new Map<number, object>()
  const entry = {}
  measure('Map<number>: set + get + delete (pending-call table, 100 live)', N, (n) => {
    for (let i = 0; i < 100; i++) pending.set(i, entry)
    let x = 0
    for (let i = 100; i < n + 100; i++) {
      pending.set(i, entry)
      if (pending.get(i - 50)) x++
      pending.delete(i - 100)
    }
    pending.clear()
    return x
  })
  const strings = new Map<string, object>([
    ['echo', entry],
    ['count', entry],
    ['hit', entry],
  ])
  measure('Map<string>.get (method lookup)', N, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) if (strings.get(i & 1 ? 'echo' : 'hit')) x++
    return x
  })

  const bounds = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  const counts = new Float64Array(bounds.length + 1)
  let sum = 0
  measure('Shoal CallHistogram series record (0.4 ms, 5th bucket)', N, (n) => {
    for (let i = 0; i < n; i++) {
      const v = 0.0004 + (i & 7) * 1e-6
      let b = 0
      while (b < bounds.length && v > bounds[b]!) b++
      counts[b]!++
      sum += v
    }
    return counts[4]! + sum
  })
  // prom-client is Shoal's dependency (hoisted to the root node_modules); the bench does not call it per call.
  const prom = await import('prom-client')
  const registry = new prom.Registry()
  const histogram = new prom.Histogram({ name: 'h', help: 'h', labelNames: ['target'], buckets: bounds, registers: [registry] })
  measure("prom-client Histogram.observe({ target: 'remote' }, v)", N / 4, (n) => {
    for (let i = 0; i < n; i++) histogram.observe({ target: 'remote' }, 0.0004)
    return 0
  })
  const child = histogram.labels('remote')
  measure("prom-client histogram.labels('remote').observe(v) (bound child)", N / 4, (n) => {
    for (let i = 0; i < n; i++) child.observe(0.0004)
    return 0
  })

  const channel = tracingChannel<object, object>('bench.micro')
  const ctx = {}
  const fn = (): number => 1
  measure('tracingChannel.traceSync, no subscribers', N, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) x += channel.traceSync(fn, ctx)
    return x
  })
  measure('tracingChannel.start.hasSubscribers check, no subscribers', N, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) if (!channel.start.hasSubscribers) x++
    return x
  })

  const before = await measureAsync('new Promise + resolve + await (ALS never enabled)', N / 4, promises)
  const asyncBefore = await measureAsync('async fn call + await (ALS never enabled)', N / 4, asyncFns)

  const noop = (): void => {}
  channel.subscribe({ start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop })
  measure('tracingChannel.traceSync, no-op subscribers on all five events', N / 4, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) x += channel.traceSync(fn, ctx)
    return x
  })
  await measureAsync('tracingChannel.tracePromise(async fn), no-op subscribers', N / 8, async (n) => {
    const f = async (): Promise<number> => 1
    let x = 0
    for (let i = 0; i < n; i++) x += await channel.tracePromise(f, ctx)
    return x
  })

  const als = new AsyncLocalStorage<{ chain: string }>()
  const store = { chain: '' }
  const invoke = (f: (a: number) => number, a: number): number => f(a)
  const id = (a: number): number => a
  measure('als.run(store, fn, arg) (enables ALS on first use)', N, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) x += als.run(store, invoke, id, i)
    return x
  })
  measure('als.getStore() outside any run', N, (n) => {
    let x = 0
    for (let i = 0; i < n; i++) if (als.getStore() === undefined) x++
    return x
  })
  const after = await measureAsync('new Promise + resolve + await (ALS enabled: promise hooks)', N / 4, promises)
  const asyncAfter = await measureAsync('async fn call + await (ALS enabled)', N / 4, asyncFns)
  await measureAsync('async fn call + await inside als.run (ALS enabled, store set)', N / 4, (n) => als.run(store, asyncFns, n))
  console.log(
    `\nAsyncLocalStorage active adds ${(after - before).toFixed(1)} ns per promise and ${(asyncAfter - asyncBefore).toFixed(1)} ns per async call + await`,
  )
  if (sink === 42) console.log('')
}

await main()
