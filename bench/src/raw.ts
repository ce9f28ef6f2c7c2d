/**
 * Raw baseline, the practical ceiling: node:net, 4-byte big-endian length prefix, msgpackr bodies,
 * a request id per frame, coalesced writes, TCP_NODELAY. No framework.
 *
 * Two flush modes, measured as two peers in the same run (the report takes the faster per scenario
 * point as "raw"): `raw-immediate` writes once per event-loop turn (setImmediate), `raw-microtask`
 * once per microtask checkpoint (queueMicrotask: the frames queued by one I/O callback and the
 * promise reactions it triggers go out before the next callback). Everything else is identical.
 *
 * Frame body: [kind, id, value]. Kinds: call (server echoes value in a reply with the same id),
 * reply, one-way (server counts it, no reply), count (server replies with the count).
 * @module
 */
import { createConnection, createServer, type Socket } from 'node:net'
import { Packr, Unpackr } from 'msgpackr'
import type { Payload } from './harness.ts'
import type { RawFlushMode, RemoteClient, RemotePeer, Server } from './protocol.ts'

const CALL = 0
const REPLY = 1
const ONE_WAY = 2
const COUNT = 3

type Frame = [kind: number, id: number, value: unknown]

/** When queued frames are written: once per event-loop turn, or once per microtask checkpoint. */
type FlushMode = RawFlushMode

/** Queues frames and writes them with one socket.write per flush. */
class Writer {
  readonly #packr = new Packr({ useRecords: false })
  readonly #schedule: (flush: () => void) => void
  #chunks: Buffer[] = []
  #scheduled = false

  constructor(
    readonly socket: Socket,
    mode: FlushMode,
  ) {
    this.#schedule = mode === 'immediate' ? setImmediate : queueMicrotask
  }

  send(frame: Frame): void {
    const body = this.#packr.pack(frame)
    const header = Buffer.allocUnsafe(4)
    header.writeUInt32BE(body.length, 0)
    this.#chunks.push(header, body)
    if (!this.#scheduled) {
      this.#scheduled = true
      this.#schedule(this.#flush)
    }
  }

  readonly #flush = (): void => {
    this.#scheduled = false
    const chunks = this.#chunks
    this.#chunks = []
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(chunks))
  }
}

/** Splits the byte stream into frames and decodes each one. */
class Reader {
  readonly #unpackr = new Unpackr({ useRecords: false })
  #pending: Buffer | undefined

  constructor(readonly onFrame: (frame: Frame) => void) {}

  push(chunk: Buffer): void {
    let buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk
    let offset = 0
    while (buf.length - offset >= 4) {
      const length = buf.readUInt32BE(offset)
      if (buf.length - offset - 4 < length) break
      const body = buf.subarray(offset + 4, offset + 4 + length)
      offset += 4 + length
      this.onFrame(this.#unpackr.unpack(body) as Frame)
    }
    buf = buf.subarray(offset)
    this.#pending = buf.length > 0 ? buf : undefined
  }
}

function serve(mode: FlushMode): Promise<Server> {
  let count = 0
  const sockets = new Set<Socket>()
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    const writer = new Writer(socket, mode)
    const reader = new Reader(([kind, id, value]) => {
      if (kind === CALL) writer.send([REPLY, id, value])
      else if (kind === ONE_WAY) count++
      else if (kind === COUNT) writer.send([REPLY, id, count])
    })
    socket.on('data', (chunk: Buffer) => reader.push(chunk))
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      resolve({
        info: { port },
        close: () => {
          for (const s of sockets) s.destroy()
          return new Promise<void>((done) => server.close(() => done()))
        },
      })
    })
  })
}

function portOf(info: unknown): number {
  const port = (info as { port?: unknown } | null)?.port
  if (typeof port !== 'number') throw new Error(`raw: bad server info ${JSON.stringify(info)}`)
  return port
}

async function connect(mode: FlushMode, info: unknown): Promise<RemoteClient> {
  const socket = createConnection({ port: portOf(info), host: '127.0.0.1', noDelay: true })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  const pending = new Map<number, (value: unknown) => void>()
  let nextId = 0
  const writer = new Writer(socket, mode)
  const reader = new Reader(([kind, id, value]) => {
    if (kind !== REPLY) return
    const resolve = pending.get(id)
    pending.delete(id)
    resolve?.(value)
  })
  socket.on('data', (chunk: Buffer) => reader.push(chunk))
  const request = (kind: number, value: unknown): Promise<unknown> =>
    new Promise((resolve) => {
      const id = (nextId = (nextId + 1) >>> 0)
      pending.set(id, resolve)
      writer.send([kind, id, value])
    })
  return {
    call: (arg: Payload) => request(CALL, arg),
    oneWay: {
      send: (arg: Payload) => writer.send([ONE_WAY, 0, arg]),
      count: async () => (await request(COUNT, null)) as number,
    },
    close: () => {
      socket.destroy()
      return Promise.resolve()
    },
  }
}

/** A raw peer flushing in `mode`. */
export function rawPeer(mode: FlushMode): RemotePeer {
  return { serve: () => serve(mode), connect: (info) => connect(mode, info) }
}
