/**
 * Shared load generators and statistics. Every peer runs through the same code, so differences in
 * the numbers come from the peers, not from the harness.
 * @module
 */
import { performance } from 'node:perf_hooks'

/** The argument of every call: about 100 bytes once encoded with msgpack (checked by run.ts). */
export interface Payload {
  readonly player: string
  readonly x: number
  readonly y: number
  readonly note: string
}

export function makePayload(): Payload {
  return { player: 'fish', x: 1, y: 2, note: 'a'.repeat(72) }
}

/** How long each scenario warms up and then measures. */
export interface Timing {
  readonly warmupMs: number
  readonly durationMs: number
}

export const FULL_TIMING: Timing = { warmupMs: 1000, durationMs: 2500 }
export const QUICK_TIMING: Timing = { warmupMs: 300, durationMs: 700 }

/** Throughput and latency of one closed-loop run. */
export interface LoadResult {
  readonly inFlight: number
  readonly calls: number
  readonly seconds: number
  readonly callsPerSec: number
  /** Latency percentiles in milliseconds (NaN where not measured). */
  readonly p50Ms: number
  readonly p99Ms: number
}

/** Growable store of latency samples; a typed array keeps them off the GC heap being measured. */
class Samples {
  #data = new Float64Array(1 << 16)
  #length = 0

  add(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2)
      bigger.set(this.#data)
      this.#data = bigger
    }
    this.#data[this.#length++] = value
  }

  sorted(): Float64Array {
    return this.#data.slice(0, this.#length).sort()
  }
}

/** Nearest-rank percentile of sorted values; NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/**
 * Closed loop: `inFlight` workers each issue a call as soon as their previous one completes.
 * Phases are decided by reading the clock after each call, not by timers, so a saturated event
 * loop cannot stretch them. Only calls that start and finish inside the measured window give
 * latency samples; every completion inside the window counts toward throughput.
 */
export async function closedLoop<A>(call: (arg: A) => Promise<unknown>, arg: A, inFlight: number, timing: Timing): Promise<LoadResult> {
  const start = performance.now()
  const measureFrom = start + timing.warmupMs
  const measureTo = measureFrom + timing.durationMs
  const samples = new Samples()
  let completed = 0

  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now()
      if (t0 >= measureTo) return
      await call(arg)
      const t1 = performance.now()
      if (t1 >= measureFrom && t1 < measureTo) {
        completed++
        if (t0 >= measureFrom) samples.add(t1 - t0)
      }
    }
  }

  await Promise.all(Array.from({ length: inFlight }, worker))
  const sorted = samples.sorted()
  const seconds = timing.durationMs / 1000
  return { inFlight, calls: completed, seconds, callsPerSec: completed / seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) }
}

/**
 * Batches: `batch` calls started together and awaited with Promise.all, over and over. Used for
 * in-process calls, whose promises settle in microtasks only: the clock is read between batches.
 */
export async function batchLoop<A>(call: (arg: A) => Promise<unknown>, arg: A, batch: number, timing: Timing): Promise<LoadResult> {
  const promises = new Array<Promise<unknown>>(batch)
  const runFor = async (ms: number): Promise<{ calls: number; seconds: number }> => {
    const t0 = performance.now()
    let calls = 0
    let now = t0
    while (now - t0 < ms) {
      for (let i = 0; i < batch; i++) promises[i] = call(arg)
      await Promise.all(promises)
      calls += batch
      now = performance.now()
    }
    return { calls, seconds: (now - t0) / 1000 }
  }
  await runFor(timing.warmupMs)
  const { calls, seconds } = await runFor(timing.durationMs)
  return { inFlight: batch, calls, seconds, callsPerSec: calls / seconds, p50Ms: Number.NaN, p99Ms: Number.NaN }
}

/**
 * Open loop: calls started at a fixed `rate` per second whatever the earlier ones are doing, as
 * requests from many independent clients arrive. Latency runs from when each call was due, not
 * from when the loop got round to it, so a stalled event loop shows in the figures (no
 * coordinated omission). Compares the latency of two kinds of call at the same load, which a
 * closed loop cannot: there, the slower kind also gets less throughput. `callsPerSec` is what
 * completed; a rate above capacity shows as completions below the rate and growing latency.
 */
export async function openLoop<A>(call: (arg: A) => Promise<unknown>, arg: A, rate: number, timing: Timing): Promise<LoadResult> {
  const start = performance.now()
  const measureFrom = start + timing.warmupMs
  const measureTo = measureFrom + timing.durationMs
  const samples = new Samples()
  const interval = 1000 / rate
  let issued = 0
  let completed = 0
  let outstanding = 0
  let failure: unknown
  const done = (due: number): void => {
    outstanding--
    const t1 = performance.now()
    if (due >= measureFrom && due < measureTo) {
      completed++
      samples.add(t1 - due)
    }
  }
  const issue = (due: number): void => {
    outstanding++
    call(arg).then(
      () => done(due),
      (e: unknown) => {
        outstanding--
        failure ??= e
      },
    )
  }
  for (let now = start; now < measureTo; now = performance.now()) {
    // Every call due by now starts now, stamped with when it was due.
    while (start + issued * interval <= now) issue(start + issued++ * interval)
    await new Promise((r) => setImmediate(r))
  }
  while (outstanding > 0) await new Promise((r) => setImmediate(r))
  if (failure !== undefined) throw failure
  const sorted = samples.sorted()
  const seconds = timing.durationMs / 1000
  return { inFlight: Number.NaN, calls: completed, seconds, callsPerSec: completed / seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) }
}

/** Result of a one-way run: messages sent without replies, then one call reading the count. */
export interface OneWayResult {
  readonly messages: number
  readonly seconds: number
  readonly messagesPerSec: number
}

/** What a peer offers for the one-way scenario. */
export interface OneWayTarget {
  send(arg: Payload): void
  /** Resolves with the number of one-way messages the server has counted so far. */
  count(): Promise<number>
}

/**
 * Sends `total` one-way messages in windows. After each window a count request goes out, and the
 * sender waits for the previous window's count before sending more: at most two windows are
 * queued anywhere, so no peer drops messages for lack of flow control, yet the pipe never drains.
 */
export async function oneWayRun(target: OneWayTarget, arg: Payload, total: number, window: number): Promise<OneWayResult> {
  const before = await target.count()
  const t0 = performance.now()
  let previous: Promise<number> | undefined
  for (let sent = 0; sent < total; sent += window) {
    const n = Math.min(window, total - sent)
    for (let i = 0; i < n; i++) target.send(arg)
    const current = target.count()
    if (previous) await previous
    previous = current
    // Let the transport flush before the next window (writes are coalesced per event-loop turn).
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  const after = previous ? await previous : before
  const seconds = (performance.now() - t0) / 1000
  if (after - before !== total) throw new Error(`one-way: server counted ${after - before} of ${total} messages`)
  return { messages: total, seconds, messagesPerSec: total / seconds }
}
