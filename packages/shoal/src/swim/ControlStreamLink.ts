/**
 * SWIM's stream link over a cluster system's transport: push-pull and the TCP fallback ping ride
 * the control lane of the authenticated (HMAC handshake or mutual TLS) associations the system
 * already keeps, instead of a second TCP listener.
 *
 * Control body: `flags:u8 (0 request, 1 reply) id:u32 payload`.
 * @module
 */
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { type ControlChannel, controlTarget } from '../control/ControlChannel.ts'
import { ControlKind } from '../control/ControlKind.ts'
import type { StreamHandler, StreamLink } from './StreamLink.ts'
import type { SwimAddress } from './SwimNode.ts'

interface Waiter {
  resolve(b: Buffer): void
  reject(e: Error): void
  timer: NodeJS.Timeout
}

/** A request/response link over the control lane of a cluster system (one control kind per link). */
export class ControlStreamLink implements StreamLink {
  readonly #channel: ControlChannel
  readonly #kind: number
  readonly #pending = new Map<number, Waiter>()
  #handler: StreamHandler = () => undefined
  #ids = 0
  #closed = false
  /** Replies that could not be sent (too large, or the peer unreachable). */
  unsent = 0

  /** `kind`: the control-message kind this link owns (SWIM's by default; clusterd uses another). */
  constructor(channel: ControlChannel, kind: number = ControlKind.Swim) {
    this.#channel = channel
    this.#kind = kind
    channel.onControl(kind, (from, body) => this.#onControl(from, body))
  }

  serve(handler: StreamHandler): void {
    this.#handler = handler
  }

  request(to: SwimAddress, body: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new Error('stream link closed'))
    const id = (this.#ids = (this.#ids + 1) >>> 0)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`no reply from ${to.host}:${to.port} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve, reject, timer })
      try {
        this.#channel.sendControl(to, this.#kind, envelope(0, id, body))
      } catch (e) {
        clearTimeout(timer)
        this.#pending.delete(id)
        reject(e as Error)
      }
    })
  }

  close(): Promise<void> {
    this.#closed = true
    for (const w of this.#pending.values()) {
      clearTimeout(w.timer)
      w.reject(new Error('stream link closed'))
    }
    this.#pending.clear()
    return Promise.resolve()
  }

  #onControl(from: ClusterNode, body: Buffer): void {
    if (body.length < 5 || this.#closed) return
    const flags = body[0]
    const id = body.readUInt32BE(1)
    const payload = body.subarray(5)
    if (flags === 1) {
      const w = this.#pending.get(id)
      if (!w) return
      this.#pending.delete(id)
      clearTimeout(w.timer)
      w.resolve(payload)
      return
    }
    const reply = this.#handler(payload)
    if (!reply) return
    try {
      this.#channel.sendControl(controlTarget(from), this.#kind, envelope(1, id, reply))
    } catch {
      // Too large for a frame, or the peer is in backoff: the requester times out, as on a lost
      // stream. Throwing here would close the whole association (and fail actor calls on it).
      this.unsent++
    }
  }
}

function envelope(flags: number, id: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + payload.length)
  b[0] = flags
  b.writeUInt32BE(id, 1)
  payload.copy(b, 5)
  return b
}
