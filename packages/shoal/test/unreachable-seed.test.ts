/**
 * A seed that is down: the dialing node says so in plain words, once (not a "handshake failed" line
 * per retry with an "undefined:undefined" peer), and once more when the seed becomes reachable.
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { ClusterSystem } from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './support/ports.ts'
import { LogCapture } from './support/rawPeer.ts'

/** A strong cluster secret of this file's own. */
const SECRET = randomBytes(32).toString('hex')

describe('a seed that is not reachable', () => {
  const systems: ClusterSystem[] = []
  afterEach(async () => {
    await Promise.all(systems.splice(0).map((s) => s.shutdown()))
  })

  it('is logged once with its address and the cause, every retry at debug only, and once when it becomes reachable', async () => {
    const port = await freePort()
    const seed = `127.0.0.1:${port}`
    const logs = new LogCapture()
    const node = await ClusterSystem.start({ name: 'n', port: 0, secret: SECRET, logger: pino({ level: 'debug' }, logs), cluster: { seeds: [seed] } })
    systems.push(node)

    const attempts = (): number => logs.find('dial failed', seed).length
    await expect.poll(attempts, { timeout: 15_000, interval: 50 }).toBeGreaterThanOrEqual(3)
    const notReachable = logs.lines.filter((l) => String(l.msg).includes('not reachable'))
    expect(notReachable.map((l) => l.msg)).toEqual([`seed ${seed} not reachable (connection refused); retrying`])
    expect(notReachable[0]).toMatchObject({ level: 40, endpoint: seed, reason: 'connection refused' })
    expect(logs.find('handshake failed')).toEqual([])
    expect(logs.lines.some((l) => Object.values(l).some((v) => typeof v === 'string' && v.includes('undefined:undefined')))).toBe(false)

    // The seed comes back knowing the node (as a restarted seed would): it joins the node's cluster.
    // (Started alone, it would form a cluster of its own, and of two clusters formed apart the
    // smaller, or on a tie the one with the higher address, yields: docs/cluster.md.)
    const seedNode = await ClusterSystem.start({
      name: 'seed',
      port,
      secret: SECRET,
      logLevel: 'silent',
      cluster: { seeds: [`127.0.0.1:${node.node.endpoint.port}`] },
    })
    systems.push(seedNode)
    const reachable = (): string[] => logs.lines.map((l) => String(l.msg)).filter((m) => m.startsWith(`seed ${seed} reachable after`))
    await expect.poll(() => reachable().length, { timeout: 15_000, interval: 50 }).toBe(1)
    expect(reachable()[0]).toMatch(new RegExp(`^seed ${seed.replaceAll('.', '\\.')} reachable after \\d+ failed attempts$`))
    await node.cluster.waitFor(seed, 'up')
    expect(logs.lines.filter((l) => String(l.msg).includes('not reachable'))).toHaveLength(1)
  })
})
