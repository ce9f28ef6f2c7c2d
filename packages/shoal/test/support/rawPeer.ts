/**
 * Test support: a raw Shoal peer on a bare node:net socket, for talking to a real node the way a
 * hostile (or buggy) peer would, plus helpers to observe a node's refusals (metrics, logs).
 *
 * The raw peer decodes everything the node sends with the real {@link FrameDecoder} and can run
 * the real {@link ClientHandshake}, or forge one step of it, then send arbitrary bytes or frames.
 * @module
 */
import { randomBytes } from 'node:crypto'
import net, { type Socket } from 'node:net'
import {
  ClientHandshake,
  type ClusterNode,
  type ClusterSystem,
  type DecodedItem,
  decodeReply,
  encodeCall,
  encodeFrame,
  FrameDecoder,
  FrameType,
  type ReplyEnvelope,
  Serialization,
} from 'shoal/internal'

/** How long a raw peer waits for the node before giving up (generous: the machine is shared). */
const WAIT_MS = 20_000

export type HandshakeOutcome = { readonly ok: true; readonly peer: ClusterNode } | { readonly ok: false; readonly reason: string; readonly byPeer: boolean }

export interface RawCall {
  readonly uid: string
  readonly path: string
  readonly incarnation: number
  readonly method: string
  /** Encoded arguments: MessagePack bytes (any bytes, for hostile cases). */
  readonly args: Uint8Array
  readonly callId?: number
  readonly timeoutMs?: number
  readonly chain?: string
}

export class RawPeer {
  readonly socket: Socket
  /** The node identity this peer claims in its Hello (unique port: the socket's own local port). */
  readonly node: ClusterNode
  /** Resolves when the socket has closed (from either side). */
  readonly closed: Promise<void>
  readonly #target: { readonly host: string; readonly port: number }
  readonly #decoder = new FrameDecoder({ maxFrameSize: 64 * 1024 * 1024 })
  readonly #items: DecodedItem[] = []
  #wake: (() => void) | undefined
  #isClosed = false
  #decodeError: Error | undefined
  #nextCallId = 0
  /** Every byte received from the node, in order. */
  received = Buffer.alloc(0)

  private constructor(socket: Socket, target: { host: string; port: number }, as: ClusterNode | undefined) {
    this.socket = socket
    this.#target = target
    this.node = as ?? {
      endpoint: { name: 'raw_peer', host: '127.0.0.1', port: socket.localPort ?? 1 },
      uid: randomBytes(8).toString('hex'),
    }
    this.closed = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true
        this.#wake?.()
        resolve()
      })
    })
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk])
      try {
        this.#items.push(...this.#decoder.push(chunk))
      } catch (e) {
        // The node sent something that is not Shoal framing: surfaced by the next `next()`.
        this.#decodeError ??= e as Error
      }
      this.#wake?.()
    })
  }

  /**
   * Opens a TCP connection to a node. Nothing is sent yet. With `as`, the peer claims that node
   * identity (a second connection of the same node) instead of a fresh one.
   */
  static async connect(port: number, host = '127.0.0.1', as?: ClusterNode): Promise<RawPeer> {
    const socket = net.connect({ host, port, noDelay: true })
    // A node may reset the connection; that is an expected outcome here, observed through `closed`.
    socket.on('error', () => {})
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`raw peer: could not connect to ${host}:${port}`)), WAIT_MS)
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve()
      })
      socket.once('close', () => {
        clearTimeout(timer)
        reject(new Error(`raw peer: connection to ${host}:${port} closed before connecting`))
      })
    })
    return new RawPeer(socket, { host, port }, as)
  }

  get isClosed(): boolean {
    return this.#isClosed
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes)
  }

  sendFrame(type: number, body: Uint8Array): void {
    this.write(encodeFrame(type, body))
  }

  /** The next preamble or frame from the node, or undefined once the connection closed without one. */
  async next(): Promise<DecodedItem | undefined> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const item = this.#items.shift()
      if (item) return item
      if (this.#decodeError) throw new Error(`raw peer: the node sent bytes that are not Shoal framing: ${this.#decodeError.message}`)
      if (this.#isClosed) return undefined
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('raw peer: the node sent nothing and did not close the connection')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#wake = undefined
    }
  }

  /** Waits until the connection is closed (by the node: the tests never close it first). */
  async waitClosedByNode(): Promise<void> {
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, WAIT_MS, 'timeout').unref())
    if ((await Promise.race([this.closed, timeout])) === 'timeout') throw new Error('raw peer: the node did not close the connection')
  }

  /** Runs the real client handshake as {@link node}. */
  async handshake(options: { secret?: string; major?: number } = {}): Promise<HandshakeOutcome> {
    const hs = new ClientHandshake(
      { self: this.node, secret: options.secret === undefined ? undefined : Buffer.from(options.secret), random: randomBytes, major: options.major },
      this.#target,
    )
    let directives = hs.start()
    for (;;) {
      for (const d of directives) {
        if (d.type === 'send') this.write(d.bytes)
        else if (d.type === 'established') return { ok: true, peer: d.peer }
        else return { ok: false, reason: d.reason, byPeer: d.byPeer }
      }
      const item = await this.next()
      if (!item) return { ok: false, reason: 'connection closed during handshake', byPeer: false }
      directives = hs.receive(item)
    }
  }

  /** Runs the real handshake and throws unless it succeeds. */
  async establish(secret: string): Promise<ClusterNode> {
    const outcome = await this.handshake({ secret })
    if (!outcome.ok) throw new Error(`raw peer: handshake failed: ${outcome.reason}`)
    return outcome.peer
  }

  /**
   * A handshake as an attacker would run it, with `proofSecret` as its guess of the secret (none
   * when undefined: its Hello then says it has no secret). Protocol 2's dialer proves first, so
   * this is the real client handshake up to its Proof. Returns the node's answer after the
   * Challenge: its Accept or Reject frame (undefined if it just closed); a node that refuses the
   * Hello answers with the Reject right away.
   */
  async forgeProof(proofSecret: string | undefined): Promise<DecodedItem | undefined> {
    const hs = new ClientHandshake(
      { self: this.node, secret: proofSecret === undefined ? undefined : Buffer.from(proofSecret), random: randomBytes },
      this.#target,
    )
    for (const d of hs.start()) if (d.type === 'send') this.write(d.bytes)
    for (;;) {
      const item = await this.next()
      if (item?.kind !== 'frame' || item.type === FrameType.Challenge) {
        if (!item) return undefined
        for (const d of hs.receive(item)) if (d.type === 'send') this.write(d.bytes)
        continue
      }
      return item
    }
  }

  /** Sends a Call frame; returns its call id. */
  sendCall(call: RawCall): number {
    const callId = call.callId ?? ++this.#nextCallId
    const body = encodeCall({
      callId,
      uid: call.uid,
      path: call.path,
      incarnation: call.incarnation,
      method: call.method,
      chain: call.chain ?? `${this.node.uid}.${callId}`,
      timeoutMs: call.timeoutMs ?? 30_000,
      args: call.args,
    })
    this.sendFrame(FrameType.Call, body)
    return callId
  }

  /** Sends a Call frame and waits for the Reply with the same call id. */
  async call(call: RawCall): Promise<ReplyEnvelope> {
    const callId = this.sendCall(call)
    for (;;) {
      const item = await this.next()
      if (!item) throw new Error(`raw peer: connection closed before the reply to call ${callId}`)
      if (item.kind !== 'frame' || item.type !== FrameType.Reply) continue
      const reply = decodeReply(item.body)
      if (reply.callId === callId) return reply
    }
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** A codec like a node's, for building payloads and reading reply payloads (refs decode to null). */
export function codec(): Serialization {
  return new Serialization(() => null)
}

// ---- observing a node ----------------------------------------------------------------------

/** Sum of a counter's values on a system, optionally only those with the given label values. */
export async function counterValue(system: ClusterSystem, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const metric = system.metrics.registry.getSingleMetric(name)
  if (!metric) throw new Error(`no metric ${name}`)
  const { values } = await metric.get()
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((sum, v) => sum + v.value, 0)
}

export interface LogLine {
  readonly level: number
  readonly msg?: string
  readonly [key: string]: unknown
}

/** A pino destination that keeps every line in memory, parsed. */
export class LogCapture {
  readonly lines: LogLine[] = []
  write(line: string): void {
    for (const text of line.split('\n')) if (text.trim() !== '') this.lines.push(JSON.parse(text) as LogLine)
  }
  /** Lines logged with this message whose string fields contain every given fragment. */
  find(msg: string, ...fragments: string[]): LogLine[] {
    return this.lines.filter((l) => l.msg === msg && fragments.every((f) => Object.values(l).some((v) => typeof v === 'string' && v.includes(f))))
  }
}
