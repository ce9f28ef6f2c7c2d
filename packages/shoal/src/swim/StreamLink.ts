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
import type { SwimAddress } from './SwimNode.ts'

/** Answers one request body; `undefined` closes without a reply. May throw (the peer sees a close). */
export type StreamHandler = (body: Buffer) => Buffer | undefined

/** A reliable request/response path to a peer, for push-pull and TCP pings. The member owns and closes it. */
export interface StreamLink {
  /** Sends `body` to `to` and resolves with the reply; rejects on error, close or timeout. */
  request(to: SwimAddress, body: Buffer, timeoutMs: number): Promise<Buffer>
  /** Sets the handler of inbound requests. */
  serve(handler: StreamHandler): void
  close(): Promise<void>
}

/** Limits of the own TCP stream link. */
export interface TcpStreamLinkOptions {
  /** Largest request or reply accepted, bytes. Default 16 MiB. */
  readonly maxBytes?: number
  /** Concurrent inbound connections; more are closed at once. Default 128 (memberlist). */
  readonly maxInbound?: number
  /** An inbound connection must deliver its whole request within this (a deadline, not idle time). Default 10 s. */
  readonly readTimeout?: number
  /** Bytes buffered across all inbound requests not yet authenticated. Default 64 MiB. */
  readonly maxBuffered?: number
}

/** SWIM's own TCP listener, for members that run without a cluster system. */
export class TcpStreamLink implements StreamLink {
  readonly #server: Server
  readonly #maxBytes: number
  readonly #maxInbound: number
  readonly #readTimeout: number
  readonly #maxBuffered: number
  readonly #inbound = new Set<Socket>()
  readonly #outbound = new Set<Socket>()
  #buffered = 0
  #handler: StreamHandler = () => undefined
  /** Requests refused or failed, by reason (the member exports these as metrics). */
  readonly refused = new Map<string, number>()

  private constructor(server: Server, o: TcpStreamLinkOptions) {
    this.#server = server
    this.#maxBytes = o.maxBytes ?? 16 * 1024 * 1024
    this.#maxInbound = o.maxInbound ?? 128
    this.#readTimeout = o.readTimeout ?? 10_000
    this.#maxBuffered = o.maxBuffered ?? 64 * 1024 * 1024
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
      this.#outbound.add(socket)
      const timer = setTimeout(() => socket.destroy(new Error(`no reply from ${to.host}:${to.port} within ${timeoutMs} ms`)), timeoutMs)
      socket.once('close', () => {
        clearTimeout(timer)
        this.#outbound.delete(socket)
        reject(new Error(`stream to ${to.host}:${to.port} closed without a reply`))
      })
      socket.on('error', (e) => reject(e))
      socket.on('connect', () => socket.write(frame(body)))
      readFrame(socket, this.#maxBytes, undefined, (reply) => {
        resolve(reply)
        socket.end()
      })
    })
  }

  async close(): Promise<void> {
    for (const s of [...this.#inbound, ...this.#outbound]) s.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(socket: Socket): void {
    if (this.#inbound.size >= this.#maxInbound) {
      this.#count('too-many-connections')
      socket.destroy()
      return
    }
    this.#inbound.add(socket)
    // A deadline for the whole request: a trickle of bytes does not keep a slot forever.
    const deadline = setTimeout(() => {
      this.#count('timeout')
      socket.destroy()
    }, this.#readTimeout)
    let held = 0
    const budget: Budget = {
      take: (n) => {
        if (this.#buffered + n > this.#maxBuffered) return false
        this.#buffered += n
        held += n
        return true
      },
    }
    socket.on('error', () => socket.destroy())
    socket.once('close', () => {
      clearTimeout(deadline)
      this.#buffered -= held
      this.#inbound.delete(socket)
    })
    const ok = readFrame(socket, this.#maxBytes, budget, (body) => {
      clearTimeout(deadline)
      this.#buffered -= held
      held = 0
      let reply: Buffer | undefined
      try {
        reply = this.#handler(body)
      } catch {
        this.#count('handler')
      }
      if (reply) socket.end(frame(reply))
      else socket.destroy()
    })
    ok.onRefused = (reason) => this.#count(reason)
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

interface Budget {
  /** Accounts `n` more buffered bytes; false when over the shared bound. */
  take(n: number): boolean
}

/**
 * Reads one length-prefixed frame; destroys the socket if it announces more than `max` bytes or
 * the shared `budget` of buffered bytes runs out.
 */
function readFrame(socket: Socket, max: number, budget: Budget | undefined, done: (body: Buffer) => void): { onRefused?: (reason: string) => void } {
  const state: { onRefused?: (reason: string) => void } = {}
  const chunks: Buffer[] = []
  let have = 0
  let need = -1
  const refuse = (reason: string): void => {
    state.onRefused?.(reason)
    socket.destroy()
  }
  const onData = (chunk: Buffer): void => {
    if (budget && !budget.take(chunk.length)) return refuse('buffer-full')
    chunks.push(chunk)
    have += chunk.length
    if (need < 0 && have >= 4) {
      need = Buffer.concat(chunks).readUInt32BE(0)
      if (need > max) return refuse('oversized')
    }
    if (need >= 0 && have >= 4 + need) {
      socket.off('data', onData)
      done(Buffer.concat(chunks).subarray(4, 4 + need))
    }
  }
  socket.on('data', onData)
  return state
}
