/**
 * Two nodes whose cluster secrets do not agree: the refusal says precisely what is wrong (which node
 * has a secret and which has none, or that both have one and they differ) and what to do, and the
 * logs of both sides say the same true thing (neither names itself as the one lacking a secret).
 */
import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import { ClusterSystem, DistributedActor, ErrorCode, formatNode } from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'
import { LogCapture } from './support/rawPeer.ts'

class Echo extends DistributedActor {
  static distributed = ['echo']
  echo(v: string): string {
    return v
  }
}

/** Strong (256-bit) secrets, distinct: a node refuses a weak one at start. */
const ONE = randomBytes(32).toString('hex')
const OTHER = randomBytes(32).toString('hex')

const FIX = 'set the same cluster secret (SHOAL_SECRET, --secret-file, or the secret setting) on every node and clusterd'

describe('a cluster secret mismatch between two nodes', () => {
  const systems: ClusterSystem[] = []
  afterEach(async () => {
    await Promise.all(systems.splice(0).map((s) => s.shutdown()))
  })

  async function start(name: string, secret: string): Promise<{ system: ClusterSystem; logs: LogCapture }> {
    const logs = new LogCapture()
    const system = await ClusterSystem.start({ name, port: 0, secret, logger: pino({ level: 'debug' }, logs) })
    systems.push(system)
    return { system, logs }
  }

  it.each([
    {
      case: 'both have a secret, and they differ',
      dialerSecret: ONE,
      acceptorSecret: OTHER,
      reason: (d: string, a: string) => `cluster secrets differ: ${d} (dialing) and ${a} (accepting) both have a cluster secret, but not the same one: ${FIX}`,
    },
    {
      case: 'only the dialing node has a secret',
      dialerSecret: ONE,
      acceptorSecret: '',
      reason: (d: string, a: string) => `cluster secret missing: ${d} (dialing) has a cluster secret, ${a} (accepting) has none: ${FIX}`,
    },
    {
      case: 'only the accepting node has a secret',
      dialerSecret: '',
      acceptorSecret: ONE,
      reason: (d: string, a: string) => `cluster secret missing: ${a} (accepting) has a cluster secret, ${d} (dialing) has none: ${FIX}`,
    },
  ])('$case: the call fails saying so, and both sides log the same precise reason', async ({ dialerSecret, acceptorSecret, reason }) => {
    const acceptor = await start('acceptor', acceptorSecret)
    const dialer = await start('dialer', dialerSecret)
    const echo = acceptor.system.spawn(Echo)
    const expected = reason(formatNode(dialer.system.node), formatNode(acceptor.system.node))

    const call = dialer.system.resolve(Echo, echo.id).echo('hi')
    await expect(call).rejects.toMatchObject({ code: ErrorCode.NodeUnreachable, message: expect.stringContaining(expected) })

    // The acceptor refused (the dialer proves first, protocol 2); the dialer learns why from its Reject.
    const poll = { timeout: 5000, interval: 20 }
    await expect.poll(() => acceptor.logs.find('handshake failed').map((l) => [l.reason, l.refusedBy]), poll).toContainEqual([expected, 'this node'])
    await expect.poll(() => dialer.logs.find('handshake failed').map((l) => [l.reason, l.refusedBy]), poll).toContainEqual([expected, 'peer'])
  })
})

describe('a node whose secret differs from clusterd', () => {
  const systems: ClusterSystem[] = []
  afterEach(async () => {
    await Promise.all(systems.splice(0).map((s) => s.shutdown()))
  })

  it.each([
    { case: 'differ', nodeSecret: ONE, daemonSecret: OTHER },
    { case: 'only clusterd has one', nodeSecret: '', daemonSecret: OTHER },
    { case: 'only the node has one', nodeSecret: ONE, daemonSecret: '' },
  ])('the discovery warning says the secrets do not match ($case), not that clusterd is not running', async ({ nodeSecret, daemonSecret }) => {
    const daemon = await ClusterSystem.startClusterDaemon({ port: 0, secret: daemonSecret, logLevel: 'silent' })
    systems.push(daemon)
    const logs = new LogCapture()
    const node = await ClusterSystem.start({
      name: 'n',
      port: 0,
      secret: nodeSecret,
      logger: pino({ level: 'debug' }, logs),
      cluster: { clusterd: `127.0.0.1:${daemon.node.endpoint.port}` },
    })
    systems.push(node)
    const warnings = (): string[] => logs.find('discovery failed; retrying').map((l) => String(l.err))
    await expect.poll(() => warnings().length, { timeout: 10_000, interval: 50 }).toBeGreaterThan(0)
    expect(warnings()[0]).toContain('is running but refused this node because their cluster secrets do not match (cluster secret')
    expect(warnings()[0]).toContain('Start clusterd with the same SHOAL_SECRET (or --secret-file) as the nodes.')
    expect(warnings()[0]).not.toContain('start it with')
  })

  it('a clusterd that is not running: the warning still says to start it', async () => {
    const logs = new LogCapture()
    const node = await ClusterSystem.start({ name: 'n', port: 0, secret: ONE, logger: pino({ level: 'debug' }, logs), cluster: { clusterd: '127.0.0.1:1' } })
    systems.push(node)
    const warnings = (): string[] => logs.find('discovery failed; retrying').map((l) => String(l.err))
    await expect.poll(() => warnings().length, { timeout: 10_000, interval: 50 }).toBeGreaterThan(0)
    expect(warnings()[0]).toMatch(/^clusterd at 127\.0\.0\.1:1 did not answer \(.*ECONNREFUSED.*\): start it with `npx shoal clusterd`/)
  })
})
