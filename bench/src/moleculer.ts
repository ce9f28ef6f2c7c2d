/**
 * Moleculer 0.14 with its TCP transporter: one ServiceBroker per process, an `echo` service on the
 * server, `broker.call('echo.echo', arg)` on the client. UDP discovery is off; the client finds the
 * server through a static URL, and the server learns the client from its gossip hello.
 * @module
 */
import { createServer } from 'node:net'
import { type BrokerOptions, type Context, ServiceBroker } from 'moleculer'
import type { Payload } from './harness.ts'
import type { RemoteClient, RemotePeer, Server } from './protocol.ts'

const SERVER_NODE = 'bench-server'

/** A free loopback port: the server needs a known port so the client's static URL can name it. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => resolve(port))
    })
  })
}

function brokerOptions(nodeID: string, tcp: Record<string, unknown>): BrokerOptions {
  return {
    nodeID,
    logger: false,
    // The bench child handles signals itself and closes the broker.
    skipProcessEventRegistration: true,
    transporter: { type: 'TCP', options: { udpDiscovery: false, useHostname: false, ...tcp } },
  }
}

async function serve(): Promise<Server> {
  const port = await freePort()
  const broker = new ServiceBroker(brokerOptions(SERVER_NODE, { port }))
  broker.createService({
    name: 'echo',
    actions: { echo: (ctx: Context<Payload>) => ctx.params },
  })
  await broker.start()
  return { info: { port }, close: () => broker.stop() }
}

async function connect(info: unknown): Promise<RemoteClient> {
  const port = (info as { port?: unknown } | null)?.port
  if (typeof port !== 'number') throw new Error(`moleculer: bad server info ${JSON.stringify(info)}`)
  const broker = new ServiceBroker(brokerOptions('bench-client', { urls: [`127.0.0.1:${port}/${SERVER_NODE}`] }))
  await broker.start()
  await broker.waitForServices(['echo'], 15_000)
  return {
    call: (arg: Payload) => broker.call('echo.echo', arg),
    close: () => broker.stop(),
  }
}

export const remote: RemotePeer = { serve, connect }
