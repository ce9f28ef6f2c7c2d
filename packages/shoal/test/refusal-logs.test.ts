import { randomBytes } from 'node:crypto'
/**
 * Refused connections and failed handshakes are logged once per source and reason per window, then
 * as a count, while `shoal_refused_total` counts every one; the peer's address is read when the
 * connection is accepted (a socket closed during the handshake no longer has one).
 */
import { connect } from 'node:net'
import { pino } from 'pino'
import { ClusterSystem } from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'
import { LogCapture } from './support/rawPeer.ts'

/** A cluster secret strong enough to start with (≥ 128 bits). */
const SECRET = randomBytes(32).toString('hex')

/** Connects to `port`, writes `garbage` (if any), closes; resolves once closed. */
function cycle(port: number, garbage?: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      if (garbage) s.write(garbage)
      s.end()
    })
    s.on('error', () => undefined)
    s.on('close', () => resolve())
  })
}

async function refusedHandshakes(system: ClusterSystem): Promise<number> {
  const m = await system.metrics.registry.getSingleMetric('shoal_refused_total')?.get()
  return m?.values.find((v) => v.labels.reason === 'handshake')?.value ?? 0
}

describe('refused connections in the log', () => {
  const systems: ClusterSystem[] = []
  afterEach(async () => {
    await Promise.all(systems.splice(0).map((s) => s.shutdown()))
  })

  it('1,000 garbage connect/close cycles: a few lines naming the source with counts that add up, every one in shoal_refused_total', async () => {
    const logs = new LogCapture()
    const node = await ClusterSystem.start({ name: 'n', port: 0, secret: SECRET, logger: pino({ level: 'info' }, logs), cluster: {} })
    systems.push(node)
    const port = node.node.endpoint.port
    const n = 1_000
    // Half send garbage, half close before saying anything (closed during the handshake).
    for (let i = 0; i < n; i += 2) await Promise.all([cycle(port, Buffer.from('GET / HTTP/1.1\r\n\r\n')), cycle(port)])
    await expect.poll(() => refusedHandshakes(node), { timeout: 20_000, interval: 50 }).toBe(n)
    await node.shutdown() // logs the counts of the window still open

    const refusals = logs.lines.filter((l) => l.msg === 'handshake failed' || String(l.msg).startsWith('handshake failed:'))
    // One line per reason when first seen, one count line per reason per window (10 s).
    expect(refusals.length).toBeGreaterThanOrEqual(2)
    expect(refusals.length).toBeLessThanOrEqual(8)
    const firsts = refusals.filter((l) => l.msg === 'handshake failed')
    const counts = refusals.filter((l) => l.msg !== 'handshake failed')
    for (const l of firsts) expect(l).toMatchObject({ level: 40, peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/), refusedBy: 'this node' })
    for (const l of counts) {
      expect(l).toMatchObject({ level: 40, source: '127.0.0.1', count: expect.any(Number) })
      expect(String(l.msg)).toMatch(/^handshake failed: \d+ more from 127\.0\.0\.1 in \d+ s \(.+\)$/)
    }
    expect(firsts.length + counts.reduce((sum, l) => sum + (l.count as number), 0)).toBe(n)
    expect(logs.lines.some((l) => JSON.stringify(l).includes('undefined:undefined'))).toBe(false)
  })

  it('a connection closed during the handshake is logged with the address it came from', async () => {
    const logs = new LogCapture()
    const node = await ClusterSystem.start({ name: 'n', port: 0, secret: SECRET, logger: pino({ level: 'info' }, logs), cluster: {} })
    systems.push(node)
    await cycle(node.node.endpoint.port)
    await expect.poll(() => logs.find('handshake failed').length, { timeout: 10_000, interval: 20 }).toBe(1)
    expect(logs.find('handshake failed')[0]).toMatchObject({ peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) })
  })
})
