/**
 * Connection: one TCP (or TLS) socket, from preamble through handshake to frames.
 *
 * A thin shell: bytes go through the pure {@link FrameDecoder} and handshake machines, and the
 * results go to callbacks. A protocol violation closes this connection only, with the reason.
 * @module
 */

import type { Socket } from 'node:net'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { encodeFrame, FrameType } from '../wire/Frame.ts'
import { type DecodedItem, FrameDecoder, FrameDecoderError, type FrameSink } from '../wire/FrameDecoder.ts'
import type { ClientHandshake, HandshakeDirective, ServerHandshake } from '../wire/Handshake.ts'
import type { Association } from './Association.ts'
import { InboundBudget } from './InboundBudget.ts'

/** Largest frame accepted before the handshake completes. */
export const HANDSHAKE_MAX_FRAME = 8 * 1024

export interface ConnectionEvents {
  established(conn: Connection, peer: ClusterNode): void
  handshakeFailed(conn: Connection, reason: string, byPeer: boolean): void
  /** A frame after the handshake; its body is `buf[start, end)` (see FrameSink). */
  frame(conn: Connection, type: number, buf: Buffer, start: number, end: number): void
  /** An established peer broke the framing (oversized or empty frame, a second preamble). */
  violation(conn: Connection, reason: string): void
  /** The socket closed (after `established` or not); `reason` says why when we know. */
  closed(conn: Connection, reason: string | undefined): void
  bytesIn(n: number): void
  /** Reading paused: the peer's unfinished inbound work exceeds `maxInboundBytes`. */
  inboundPaused(conn: Connection): void
}

export class Connection {
  readonly socket: Socket
  /** Who dialed: 'self' for outbound connections, 'peer' for inbound ones. */
  readonly initiator: 'self' | 'peer'
  #decoder: FrameDecoder
  #handshake: ClientHandshake | ServerHandshake
  #events: ConnectionEvents
  #state: 'handshaking' | 'open' | 'closed' = 'handshaking'
  #closeReason: string | undefined
  #timer: NodeJS.Timeout | undefined
  peer: ClusterNode | undefined
  /** The negotiated protocol minor (the lower of both sides'), once established; 0 before. */
  protocolMinor = 0
  /** The association this connection serves once established (set by the transport). */
  association: Association | undefined = undefined
  #reassembly: Buffer[] = []
  #reassemblyBytes = 0
  /**
   * Inbound calls and one-way messages delivered from this connection and not finished yet, in
   * frame bytes; reading pauses above the budget (see InboundBudget).
   */
  readonly inbound: InboundBudget

  constructor(
    socket: Socket,
    initiator: 'self' | 'peer',
    handshake: ClientHandshake | ServerHandshake,
    maxFrameSize: number,
    handshakeTimeoutMs: number,
    events: ConnectionEvents,
    maxInboundBytes = Number.POSITIVE_INFINITY,
  ) {
    this.socket = socket
    this.initiator = initiator
    this.#handshake = handshake
    this.#events = events
    this.#decoder = new FrameDecoder({ maxFrameSize })
    this.inbound = new InboundBudget(maxInboundBytes, {
      pause: () => socket.pause(),
      resume: () => {
        if (this.#state !== 'closed') socket.resume()
      },
      paused: () => events.inboundPaused(this),
    })
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 10_000)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', (err) => {
      this.#closeReason ??= err.message
    })
    socket.on('close', () => this.#onClose())
    this.#timer = setTimeout(() => this.fail(`handshake did not complete within ${handshakeTimeoutMs} ms`), handshakeTimeoutMs)
    this.#timer.unref()
  }

  get open(): boolean {
    return this.#state === 'open'
  }

  get closed(): boolean {
    return this.#state === 'closed'
  }

  /**
   * Feeds an incoming Fragment body; returns the reassembled inner frame when the last piece
   * arrives. Kept per connection: a message cut short by a lost connection is resent whole on the
   * next one. Throws on an empty fragment or a message larger than `maxFrameSize`.
   */
  reassemble(body: Buffer, maxFrameSize: number): { type: number; body: Buffer } | undefined {
    if (body.length < 2) throw new Error('empty fragment')
    const last = (body[0]! & 1) === 1
    const piece = body.subarray(1)
    this.#reassemblyBytes += piece.length
    if (this.#reassemblyBytes > maxFrameSize) throw new Error(`fragmented message exceeds maxFrameSize ${maxFrameSize}`)
    this.#reassembly.push(piece)
    if (!last) return undefined
    const inner = Buffer.concat(this.#reassembly, this.#reassemblyBytes)
    this.#reassembly = []
    this.#reassemblyBytes = 0
    return { type: inner[0]!, body: inner.subarray(1) }
  }

  /** Starts the client side of the handshake (outbound connections, once the socket connects). */
  startClient(): void {
    this.#apply((this.#handshake as ClientHandshake).start())
  }

  write(bytes: Buffer): boolean {
    return this.socket.write(bytes)
  }

  /** Ends the connection after pending writes, with a reason for the logs; destroys it if it lingers. */
  close(reason: string, goodbye?: string): void {
    if (this.#state === 'closed') return
    this.#closeReason ??= reason
    if (goodbye !== undefined && this.#state === 'open') this.socket.write(encodeFrame(FrameType.Goodbye, Buffer.from(goodbye)))
    this.#state = 'closed'
    this.socket.end()
    setTimeout(() => this.socket.destroy(), 2000).unref()
  }

  /** Closes at once for a protocol violation or handshake failure. */
  fail(reason: string): void {
    if (this.#state === 'closed') return
    this.#closeReason ??= reason
    if (this.#state === 'handshaking') {
      clearTimeout(this.#timer)
      this.#state = 'closed'
      this.#events.handshakeFailed(this, reason, false)
    }
    this.#state = 'closed'
    this.socket.destroy()
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'closed') return
    this.#events.bytesIn(chunk.length)
    try {
      this.#decoder.decode(chunk, this.#sink)
    } catch (e) {
      const reason = e instanceof FrameDecoderError ? e.message : `decoder error: ${(e as Error).message}`
      if (this.#state === 'open') this.#events.violation(this, reason)
      else this.fail(reason)
      return
    }
    // Handshake frames are small: a peer that has not proved itself may not make us buffer more.
    if (this.#state === 'handshaking' && this.#decoder.buffered > HANDSHAKE_MAX_FRAME) {
      this.fail(`handshake frame larger than ${HANDSHAKE_MAX_FRAME} bytes`)
    }
  }

  /** Where the decoder hands what it completes: the handshake until it is done, then the transport. */
  readonly #sink: FrameSink = {
    preamble: (major, minor) => {
      if (this.#state === 'handshaking') this.#handshaking({ kind: 'preamble', major, minor })
      else if (this.#state === 'open') this.#events.violation(this, 'unexpected second preamble')
    },
    frame: (type, buf, start, end) => {
      if (this.#state === 'open') this.#events.frame(this, type, buf, start, end)
      else if (this.#state === 'handshaking') this.#handshaking({ kind: 'frame', type, body: buf.subarray(start, end) })
    },
  }

  #handshaking(item: DecodedItem): void {
    let directives
    try {
      directives = this.#handshake.receive(item)
    } catch (e) {
      // A handshake machine must never throw; if it does, this peer loses its connection, not the node.
      this.fail(`handshake error: ${(e as Error).message}`)
      return
    }
    this.#apply(directives)
  }

  #apply(directives: HandshakeDirective[]): void {
    for (const d of directives) {
      if (d.type === 'send') this.socket.write(d.bytes)
      else if (d.type === 'established') {
        clearTimeout(this.#timer)
        this.#state = 'open'
        this.peer = d.peer
        this.protocolMinor = d.minor
        this.#events.established(this, d.peer)
      } else {
        clearTimeout(this.#timer)
        this.#state = 'closed'
        this.#closeReason ??= d.reason
        this.#events.handshakeFailed(this, d.reason, d.byPeer)
        // Let the Reject frame reach the peer before closing.
        this.socket.end()
        setTimeout(() => this.socket.destroy(), 1000).unref()
      }
    }
  }

  #onClose(): void {
    clearTimeout(this.#timer)
    this.inbound.close()
    const wasHandshaking = this.#state === 'handshaking'
    this.#state = 'closed'
    if (wasHandshaking) this.#events.handshakeFailed(this, this.#closeReason ?? 'connection closed during handshake', false)
    this.#events.closed(this, this.#closeReason)
  }
}
