/**
 * Stream links: the reliable request/response path SWIM uses for push-pull state exchange and
 * for the TCP fallback ping. {@link TcpStreamLink} listens on its own TCP port (a standalone
 * member); `ControlStreamLink` rides the cluster system's authenticated transport.
 *
 * Framing on TCP: `length:u32 body`, one request and one reply per connection. Bodies are sealed
 * SWIM messages (see Codec); the link only moves bytes and enforces size, time and concurrency
 * limits.
 * @module
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { SwimAddress } from './Member.ts'

/** Answers one request body; `undefined` closes without a reply. May throw (the peer sees a close). */
export type StreamHandler = (body: Buffer) => Buffer | undefined

export interface StreamLink {
  /** Sends `body` to `to` and resolves with the reply; rejects on error, close or timeout. */
  request(to: SwimAddress, body: Buffer, timeoutMs: number): Promise<Buffer>
  /** Sets the handler of inbound requests. */
  serve(handler: StreamHandler): void
  close(): Promise<void>
}

export interface TcpStreamLinkOptions {
  /** Largest request or reply accepted, bytes. Default 16 MiB. */
  readonly maxBytes?: number
  /** Concurrent inbound connections; more are closed at once. Default 128 (memberlist). */
  readonly maxInbound?: number
  /** An inbound connection must deliver its request within this. Default 10 s. */
  readonly readTimeout?: number
}

/** SWIM's own TCP listener, for members that run without a cluster system. */
export class TcpStreamLink implements StreamLink {
  readonly #server: Server
  readonly #maxBytes: number
  readonly #maxInbound: number
  readonly #readTimeout: number
  readonly #sockets = new Set<Socket>()
  #handler: StreamHandler = () => undefined
  /** Requests refused or failed, by reason (the member exports these as metrics). */
  readonly refused = new Map<string, number>()

  private constructor(server: Server, o: TcpStreamLinkOptions) {
    this.#server = server
    this.#maxBytes = o.maxBytes ?? 16 * 1024 * 1024
    this.#maxInbound = o.maxInbound ?? 128
    this.#readTimeout = o.readTimeout ?? 10_000
    server.on('connection', (s) => this.#accept(s))
  }

  /** Listens on `host:port`; resolves once bound. */
  static listen(host: string, port: number, o: TcpStreamLinkOptions = {}): Promise<TcpStreamLink> {
    const server = createServer()
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve(new TcpStreamLink(server, o))
      })
    })
  }

  get port(): number {
    const a = this.#server.address()
    return typeof a === 'object' && a ? a.port : 0
  }

  serve(handler: StreamHandler): void {
    this.#handler = handler
  }

  request(to: SwimAddress, body: Buffer, timeoutMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: to.host, port: to.port })
      this.#sockets.add(socket)
      const timer = setTimeout(() => socket.destroy(new Error(`no reply from ${to.host}:${to.port} within ${timeoutMs} ms`)), timeoutMs)
      socket.once('close', () => {
        clearTimeout(timer)
        this.#sockets.delete(socket)
        reject(new Error(`stream to ${to.host}:${to.port} closed without a reply`))
      })
      socket.on('error', (e) => reject(e))
      socket.on('connect', () => socket.write(frame(body)))
      readFrame(socket, this.#maxBytes, (reply) => {
        resolve(reply)
        socket.end()
      })
    })
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(socket: Socket): void {
    if (this.#sockets.size >= this.#maxInbound) {
      this.#count('too-many-connections')
      socket.destroy()
      return
    }
    this.#sockets.add(socket)
    socket.setTimeout(this.#readTimeout, () => {
      this.#count('timeout')
      socket.destroy()
    })
    socket.on('error', () => socket.destroy())
    socket.once('close', () => this.#sockets.delete(socket))
    const ok = readFrame(socket, this.#maxBytes, (body) => {
      let reply: Buffer | undefined
      try {
        reply = this.#handler(body)
      } catch {
        this.#count('handler')
      }
      if (reply) socket.end(frame(reply))
      else socket.destroy()
    })
    ok.onOversize = () => this.#count('oversized')
  }

  #count(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1)
  }
}

function frame(body: Buffer): Buffer {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(body.length, 0)
  return Buffer.concat([head, body])
}

/** Reads one length-prefixed frame; destroys the socket if it announces more than `max` bytes. */
function readFrame(socket: Socket, max: number, done: (body: Buffer) => void): { onOversize?: () => void } {
  const state: { onOversize?: () => void } = {}
  const chunks: Buffer[] = []
  let have = 0
  let need = -1
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk)
    have += chunk.length
    if (need < 0 && have >= 4) {
      need = Buffer.concat(chunks).readUInt32BE(0)
      if (need > max) {
        state.onOversize?.()
        socket.destroy()
        return
      }
    }
    if (need >= 0 && have >= 4 + need) {
      socket.off('data', onData)
      done(Buffer.concat(chunks).subarray(4, 4 + need))
    }
  }
  socket.on('data', onData)
  return state
}
