/**
 * Mutual TLS between nodes, with a throwaway PKI made by the openssl CLI: calls work between nodes
 * whose certificates chain to the trusted CA, and every other combination (certificate from another
 * CA, no certificate, plain TCP either way, server certificate for another host) cannot call, while
 * the server keeps serving its good peer.
 *
 * No cluster secret anywhere (loopback), so TLS is the only gate being tested.
 */
import { pino } from 'pino'
import { type ActorRef, ClusterSystem, type ClusterSystemSettings, DistributedActor, ErrorCode, NodeUnreachableError, type TlsSettings } from 'shoal'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { type Ca, createTestPki, type NodeCert, type TestPki } from './support/certs.ts'
import { counterValue, LogCapture } from './support/rawPeer.ts'

class Greeter extends DistributedActor {
  static distributed = ['greet']
  greet(name: string): string {
    return `hello ${name}`
  }
}

const POLL = { timeout: 20_000, interval: 20 } as const

/** The call fails because no association could be made (TLS refused on one side or the other). */
async function expectUnreachable(call: Promise<unknown>): Promise<void> {
  await expect(call).rejects.toBeInstanceOf(NodeUnreachableError)
  await expect(call).rejects.toMatchObject({ code: ErrorCode.NodeUnreachable })
}

describe('mutual TLS between nodes', () => {
  let pki: TestPki
  let ca: Ca
  let otherCa: Ca
  let serverCert: NodeCert
  let clientCert: NodeCert
  let rogueCert: NodeCert
  const serverLogs = new LogCapture()
  let server: ClusterSystem
  let greeter: ActorRef<Greeter>
  let goodClient: ClusterSystem
  /** Systems started by one test, shut down after it. */
  const extra: ClusterSystem[] = []
  let healthChecks = 0

  const start = async (name: string, settings: ClusterSystemSettings = {}): Promise<ClusterSystem> => {
    const system = await ClusterSystem.start({ name, port: 0, secret: '', callTimeout: 20_000, ...settings })
    extra.push(system)
    return system
  }
  const tlsWith = (cert: NodeCert, ...trusted: Ca[]): TlsSettings => ({ key: cert.key, cert: cert.cert, ca: trusted.map((c) => c.cert) })
  const refusedTls = (): Promise<number> => counterValue(server, 'shoal_refused_total', { reason: 'handshake' })

  beforeAll(async () => {
    pki = await createTestPki()
    ca = await pki.ca('cluster_ca')
    otherCa = await pki.ca('other_ca')
    serverCert = await pki.node(ca, 'server')
    clientCert = await pki.node(ca, 'client')
    rogueCert = await pki.node(otherCa, 'rogue')
    server = await ClusterSystem.start({ name: 'server', port: 0, secret: '', tls: tlsWith(serverCert, ca), logger: pino({ level: 'debug' }, serverLogs) })
    greeter = server.spawn(Greeter)
    goodClient = await ClusterSystem.start({ name: 'client', port: 0, secret: '', callTimeout: 20_000, tls: tlsWith(clientCert, ca) })
  })

  afterEach(async () => {
    for (const s of extra.splice(0)) await s.shutdown()
    // The server still serves its good peer.
    expect(server.running).toBe(true)
    const n = `peer ${++healthChecks}`
    await expect(goodClient.resolve(Greeter, greeter.id).greet(n)).resolves.toBe(`hello ${n}`)
  })

  afterAll(async () => {
    await goodClient?.shutdown()
    await server?.shutdown()
    await pki?.cleanup()
  })

  test('a remote call works over mutual TLS, with nothing refused', async () => {
    const before = await refusedTls()
    const ref = goodClient.resolve(Greeter, greeter.id)
    await expect(ref.greet('tls')).resolves.toBe('hello tls')
    // Both directions of the association: the server calls an actor on the client.
    const back = goodClient.spawn(Greeter)
    await expect(server.resolve(Greeter, back.id).greet('back')).resolves.toBe('hello back')
    expect(await refusedTls()).toBe(before)
    expect(serverLogs.find('refused a TLS connection')).toHaveLength(0)
  })

  test('a node whose certificate is signed by another CA (trusting only that CA) cannot call', async () => {
    const rogue = await start('rogue', { tls: tlsWith(rogueCert, otherCa) })
    const call = rogue.resolve(Greeter, greeter.id).greet('rogue')
    await expectUnreachable(call)
  })

  test('a node whose certificate is signed by another CA is refused by the server even if it trusts the server', async () => {
    const before = await refusedTls()
    const rogue = await start('rogue', { tls: tlsWith(rogueCert, ca, otherCa) })
    const call = rogue.resolve(Greeter, greeter.id).greet('rogue')
    await expectUnreachable(call)
    // The refusal is the server's: its TLS layer rejected the client certificate.
    await expect.poll(refusedTls, POLL).toBeGreaterThan(before)
    expect(serverLogs.find('refused a TLS connection').length).toBeGreaterThan(0)
  })

  test('a node without a certificate cannot call', async () => {
    const before = await refusedTls()
    const anonymous = await start('anonymous', { tls: { ca: [ca.cert] } })
    const call = anonymous.resolve(Greeter, greeter.id).greet('anonymous')
    await expectUnreachable(call)
    await expect.poll(refusedTls, POLL).toBeGreaterThan(before)
  })

  test('a plain-TCP node cannot call a TLS node', async () => {
    const before = await refusedTls()
    const plain = await start('plain')
    const call = plain.resolve(Greeter, greeter.id).greet('plain')
    await expectUnreachable(call)
    await expect.poll(refusedTls, POLL).toBeGreaterThan(before)
    expect(serverLogs.find('refused a TLS connection').length).toBeGreaterThan(0)
  })

  test('a TLS node cannot call a plain-TCP node, which refuses the TLS bytes as not Shoal', async () => {
    const plainLogs = new LogCapture()
    const plain = await start('plain', { logger: pino({ level: 'debug' }, plainLogs) })
    const plainGreeter = plain.spawn(Greeter)
    const call = goodClient.resolve(Greeter, plainGreeter.id).greet('over tls')
    await expectUnreachable(call)
    await expect.poll(() => counterValue(plain, 'shoal_refused_total', { reason: 'handshake' }), POLL).toBe(1)
    expect(plainLogs.find('handshake failed', 'bad magic bytes')).toHaveLength(1)
  })

  test('a server certificate that does not name the endpoint host is refused, unless verifyHost is false', async () => {
    const elsewhereCert = await pki.node(ca, 'elsewhere', { san: 'DNS:elsewhere.invalid' })
    const elsewhere = await start('elsewhere', { tls: tlsWith(elsewhereCert, ca) })
    const target = elsewhere.spawn(Greeter)

    const strict = await start('strict', { tls: tlsWith(clientCert, ca) })
    const call = strict.resolve(Greeter, target.id).greet('strict')
    await expect(call).rejects.toBeInstanceOf(NodeUnreachableError)
    await expect(call).rejects.toMatchObject({ code: ErrorCode.NodeUnreachable, message: expect.stringContaining("does not match certificate's altnames") })

    const lenient = await start('lenient', { tls: { ...tlsWith(clientCert, ca), verifyHost: false } })
    await expect(lenient.resolve(Greeter, target.id).greet('lenient')).resolves.toBe('hello lenient')
  })
})
