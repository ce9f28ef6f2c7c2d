/**
 * Inbound work bounded in bytes (docs/transport.md, "Inbound work and read pausing"): each inbound
 * call or one-way message holds its frame bytes from delivery until it settles, on every path, and
 * a connection stops reading while its peer is over `maxInboundBytes`.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ClusterSystem, type ClusterSystemSettings, OverloadedError } from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'
import { InboundBudget } from '../src/transport/InboundBudget.ts'
import { Fast, Slow } from './fixtures/inbound.ts'

const systems: ClusterSystem[] = []
const children: ChildProcess[] = []

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function start(name: string, settings: Partial<ClusterSystemSettings> = {}): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ name, host: '127.0.0.1', port: 0, logLevel: 'silent', ...settings })
  systems.push(s)
  return s
}

async function metric(s: ClusterSystem, name: string): Promise<number> {
  const all = await s.metrics.registry.getMetricsAsJSON()
  return all.find((m) => m.name === name)?.values.reduce((a, v) => a + v.value, 0) ?? 0
}

async function until(check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

const settled = (p: Promise<unknown>) =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  )

describe('InboundBudget', () => {
  it('pauses above the limit, resumes at half, releases once, and forgets everything when closed', () => {
    const log: string[] = []
    const b = new InboundBudget(100, { pause: () => log.push('pause'), resume: () => log.push('resume'), paused: () => log.push('paused') })
    const c1 = b.take(60)
    const c2 = b.take(60)
    expect(log).toEqual(['paused', 'pause'])
    expect(b.bytes).toBe(120)
    const c3 = b.take(10)
    expect(log).toEqual(['paused', 'pause'])
    c1.release()
    c1.release()
    expect(b.bytes).toBe(70)
    expect(b.isPaused).toBe(true)
    c2.release()
    expect(b.bytes).toBe(10)
    expect(log).toEqual(['paused', 'pause', 'resume'])
    b.close()
    c3.release()
    expect(b.bytes).toBe(0)
    b.take(1000).release()
    expect(b.bytes).toBe(0)
    expect(log).toEqual(['paused', 'pause', 'resume'])
  })
})

describe('inbound bytes are given back on every path', () => {
  const KiB = 1024
  const data = (n: number) => new Uint8Array(n).fill(7)

  async function pair(receiver: Partial<ClusterSystemSettings> = {}) {
    const a = await start('a', { maxInboundBytes: 64 * KiB, ...receiver })
    const b = await start('b')
    const slow = b.resolve(Slow, a.spawn(Slow).id)
    return { a, b, slow }
  }

  it('success: a peer over the budget is paused, then resumed, and every call is served', async () => {
    const { a, slow } = await pair()
    const results = await Promise.all(Array.from({ length: 8 }, () => slow.take(data(40 * KiB), 5)))
    expect(results.at(-1)).toBe(8 * 40 * KiB)
    expect(await metric(a, 'shoal_inbound_paused_total')).toBeGreaterThan(0)
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) === 0)
  })

  it('a method that throws', async () => {
    const { a, slow } = await pair()
    const results = await Promise.all(Array.from({ length: 6 }, () => settled(slow.fail(data(40 * KiB)))))
    expect(results.every((r) => !r.ok)).toBe(true)
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) === 0)
  })

  it('calls the mailbox refuses, and one-way messages', async () => {
    const { a, slow } = await pair({ maxMailbox: 1 })
    for (let i = 0; i < 4; i++) slow.tell('take', data(20 * KiB), 5)
    const results = await Promise.all(Array.from({ length: 6 }, () => settled(slow.take(data(20 * KiB), 20))))
    expect(results.some((r) => !r.ok && r.e instanceof OverloadedError)).toBe(true)
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) === 0)
    // Nothing is stuck: the peer is still served.
    expect(await slow.take(data(1), 0)).toBeGreaterThan(0)
  })

  it('calls whose caller timed out', async () => {
    const { a, slow } = await pair()
    const results = await Promise.all(Array.from({ length: 4 }, () => settled(slow.withTimeout(30).take(data(40 * KiB), 100))))
    expect(results.every((r) => !r.ok)).toBe(true)
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) === 0)
    expect(await slow.take(data(1), 0)).toBeGreaterThan(0)
  })

  it('calls queued when the actor stops', async () => {
    const { a, b } = await pair()
    const onA = a.spawn(Slow)
    const slow = b.resolve(Slow, onA.id)
    const calls = Array.from({ length: 4 }, () => settled(slow.take(data(10 * KiB), 200)))
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) >= 40 * KiB)
    await a.stop(onA)
    const results = await Promise.all(calls)
    expect(results.filter((r) => !r.ok).length).toBeGreaterThanOrEqual(3)
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) === 0)
  })

  it('a lost connection: its budget is dropped, and the next connection starts from zero', async () => {
    const { a, b, slow } = await pair()
    const id = slow.id
    const calls = Array.from({ length: 4 }, () => settled(slow.take(data(40 * KiB), 300)))
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) > 64 * KiB)
    await b.shutdown()
    await Promise.all(calls)
    expect(await metric(a, 'shoal_inbound_bytes')).toBe(0)
    await new Promise((r) => setTimeout(r, 400)) // the turns finish and give back to the closed budget
    const c = await start('c')
    const again = c.resolve(Slow, id)
    const results = await Promise.all(Array.from({ length: 4 }, () => again.take(data(40 * KiB), 5)))
    expect(results).toHaveLength(4)
    await until(async () => (await metric(a, 'shoal_inbound_bytes')) === 0)
  })
})

const fixture = fileURLToPath(new URL('./fixtures/inbound-node.ts', import.meta.url))

async function startFlooded(maxInbound: number | undefined): Promise<{ slow: string; fast: string }> {
  const child = spawn(process.execPath, ['--expose-gc', '--conditions=source', '--import', 'tsx', fixture], {
    env: { ...process.env, ...(maxInbound === undefined ? {} : { MAX_INBOUND: String(maxInbound) }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.push(child)
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`flooded node exited with ${code}`)))
  })
  return JSON.parse(line) as { slow: string; fast: string }
}

describe('a peer flooding large calls at a slow actor', () => {
  it('is slowed by TCP backpressure while the receiver stays bounded and serves another peer promptly', { timeout: 60_000 }, async () => {
    const MiB = 1024 * 1024
    const ids = await startFlooded(process.env.SHOAL_FLOOD_MAX_INBOUND ? Number(process.env.SHOAL_FLOOD_MAX_INBOUND) : undefined)
    const flooder = await start('flooder', { maxOutboundBytes: 8 * MiB })
    const other = await start('other')
    const slow = flooder.resolve(Slow, ids.slow).withTimeout(120_000)
    const fast = other.resolve(Fast, ids.fast)
    const before = await fast.memory()

    const payload = new Uint8Array(256 * 1024).fill(1)
    let sent = 0
    let overloaded = 0
    const outcomes: Promise<unknown>[] = []
    const latencies: number[] = []
    let peak = before.live
    const floodFor = 4000
    const end = Date.now() + floodFor
    const pinger = (async () => {
      while (Date.now() < end) {
        const t = performance.now()
        await fast.ping()
        latencies.push(performance.now() - t)
        const m = await fast.memory()
        peak = Math.max(peak, m.live)
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    while (Date.now() < end) {
      // About 250 MiB/s offered; the slow actor takes 12.5 MiB/s (one 256 KiB call per 20 ms).
      for (let i = 0; i < 4; i++) {
        const p = slow.take(payload, 20)
        sent++
        outcomes.push(
          p.catch((e: unknown) => {
            if (e instanceof OverloadedError) overloaded++
          }),
        )
      }
      await new Promise((r) => setTimeout(r, 4))
    }
    await pinger
    const after = await fast.memory()
    const offered = (sent * payload.length) / MiB
    const grown = (peak - before.live) / MiB
    console.log(
      `flood: offered ${offered.toFixed(0)} MiB in ${sent} calls, ${overloaded} OverloadedError at the sender; receiver live bytes grew at most ${grown.toFixed(1)} MiB (rss ${(after.rss / MiB).toFixed(0)} MiB), paused ${after.paused} times; other peer's ping: max ${Math.max(...latencies).toFixed(0)} ms over ${latencies.length}`,
    )
    expect(offered).toBeGreaterThan(200)
    // The sender felt it: its own lane filled because the receiver stopped reading.
    expect(overloaded).toBeGreaterThan(0)
    expect(after.paused).toBeGreaterThan(0)
    // Budget 8 MiB + frames read before the pause + socket buffers: far below what was offered.
    expect(grown).toBeLessThan(64)
    expect(Math.max(...latencies)).toBeLessThan(1000)
    for (const c of children.splice(0)) c.kill('SIGKILL')
    await Promise.all(outcomes)
  })
})
