/**
 * `npm run bench:handshake`: what opening an association costs.
 *
 * 1. Over TCP: a real `shoal node` process (with a cluster secret) accepts N connections from this
 *    process, each running the real client handshake ({@link ClientHandshake}) to `established`,
 *    then closing; C handshakes in flight at once. Prints connections/s (wall time of the N).
 * 2. In memory: the two handshake state machines talk to each other without sockets, one pair at a
 *    time: the CPU cost of the protocol alone (both sides, in this one process), handshakes/s.
 *
 * Options: `--n N` (default 2000), `--concurrency C` (default 4), `--quick` (N = 300).
 * Uses only APIs that exist on protocol 1.x and 2.x, so it runs on older commits unchanged.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { loadavg } from 'node:os'
import type { ClusterNode } from '../../../packages/shoal/src/actor/ClusterNode.ts'
import { NodeProcess } from '../../../packages/shoal/src/testkit/NodeProcess.ts'
import { FrameDecoder } from '../../../packages/shoal/src/wire/FrameDecoder.ts'
import { ClientHandshake, type HandshakeDirective, ServerHandshake } from '../../../packages/shoal/src/wire/Handshake.ts'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const N = process.argv.includes('--quick') ? 300 : arg('--n', 2000)
const CONCURRENCY = arg('--concurrency', 4)
/** 256 bits, hex: strong enough for every version's secret check. */
const SECRET = randomBytes(32).toString('hex')

function node(port: number): ClusterNode {
  return { endpoint: { name: 'bench', host: '127.0.0.1', port }, uid: randomBytes(8).toString('hex') }
}

/** One association over TCP: connect, handshake to established, close. */
function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    const decoder = new FrameDecoder({ maxFrameSize: 1024 * 1024 })
    let hs: ClientHandshake | undefined
    const apply = (ds: HandshakeDirective[]): void => {
      for (const d of ds) {
        if (d.type === 'send') socket.write(d.bytes)
        else {
          socket.destroy()
          if (d.type === 'established') resolve()
          else reject(new Error(`handshake failed: ${d.reason}`))
          return
        }
      }
    }
    socket.once('connect', () => {
      hs = new ClientHandshake({ self: node(socket.localPort ?? 1), secret: Buffer.from(SECRET), random: randomBytes }, { host: '127.0.0.1', port })
      apply(hs.start())
    })
    socket.on('data', (chunk: Buffer) => {
      for (const item of decoder.push(chunk)) apply(hs!.receive(item))
    })
    socket.once('error', reject)
  })
}

async function overTcp(): Promise<number> {
  const server = await NodeProcess.start('node', { args: ['--port', '0'], env: { SHOAL_SECRET: SECRET } })
  try {
    const port = Number(server.address.split(':').pop())
    for (let i = 0; i < 50; i++) await connectOnce(port) // warm-up
    let next = 0
    const started = performance.now()
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < N) {
          next++
          await connectOnce(port)
        }
      }),
    )
    return N / ((performance.now() - started) / 1000)
  } finally {
    await server.kill()
  }
}

/** Both state machines in this process, frames passed by hand until both are done. */
function inMemory(count: number): number {
  const secret = Buffer.from(SECRET)
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    const b = node(2)
    const client = new ClientHandshake({ self: node(1), secret, random: randomBytes }, { host: '127.0.0.1', port: 2 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const toServer = new FrameDecoder({ maxFrameSize: 1024 * 1024 })
    const toClient = new FrameDecoder({ maxFrameSize: 1024 * 1024 })
    let out = client.start()
    let established = 0
    for (let round = 0; round < 10 && out.length > 0; round++) {
      const back: HandshakeDirective[] = []
      for (const d of out) {
        if (d.type === 'send') for (const item of toServer.push(d.bytes)) back.push(...server.receive(item))
        else if (d.type === 'established') established++
        else throw new Error(d.reason)
      }
      out = []
      for (const d of back) {
        if (d.type === 'send') for (const item of toClient.push(d.bytes)) out.push(...client.receive(item))
        else if (d.type === 'established') established++
        else throw new Error(d.reason)
      }
    }
    if (established !== 2) throw new Error('in-memory handshake did not establish both sides')
  }
  return count / ((performance.now() - started) / 1000)
}

const load = loadavg().map((l) => l.toFixed(2))
inMemory(50) // warm-up
const memory = inMemory(Math.max(200, Math.floor(N / 4)))
const tcp = await overTcp()
console.log(`handshake benchmark: N=${N}, concurrency=${CONCURRENCY}, node ${process.version}, load average at start ${load.join(' ')}`)
console.log(`| over TCP (node process, connect + handshake + close) | ${tcp.toFixed(0)} connections/s |`)
console.log(`| in memory (both state machines, one process)         | ${memory.toFixed(0)} handshakes/s |`)
