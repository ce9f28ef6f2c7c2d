/**
 * ControlRouter: the control lane of a node. Cluster services (SWIM's stream fallback, membership
 * gossip, the receptionist, lifecycle watch, clusterd) register one handler per control kind and
 * send control messages to nodes; the router frames them (`u8 kind | body`) and dispatches what
 * arrives. Control messages are written before any queued user traffic and between the fragments
 * of large user messages (see transport/Association.ts).
 * @module
 */
import type { Logger } from 'pino'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { ConfigError } from '../errors.ts'
import type { ControlChannel, ControlHandler, ControlTarget } from './ControlChannel.ts'

/** How the router sends a framed control message (remoting, over the transport's control lane). */
export type ControlSender = (to: ControlTarget, frame: Buffer) => void

export class ControlRouter implements ControlChannel {
  readonly #handlers = new Map<number, ControlHandler>()
  readonly #log: Logger
  readonly #send: ControlSender

  constructor(log: Logger, send: ControlSender) {
    this.#log = log
    this.#send = send
  }

  /**
   * Registers the handler of one control kind (0-255). Throws ConfigError for a kind out of range
   * or one that already has a handler.
   */
  onControl(kind: number, handler: ControlHandler): void {
    if (!Number.isInteger(kind) || kind < 0 || kind > 255) throw new ConfigError(`Control kind ${kind} is outside 0..255.`)
    if (this.#handlers.has(kind)) throw new ConfigError(`Control kind ${kind} already has a handler.`)
    this.#handlers.set(kind, handler)
  }

  /**
   * Sends a control message to a node (dialing if needed). Throws like a call would:
   * `NodeUnreachableError` during reconnect backoff, `SerializationError` above maxFrameSize.
   */
  sendControl(to: ControlTarget, kind: number, body: Uint8Array): void {
    const frame = Buffer.allocUnsafe(1 + body.length)
    frame[0] = kind
    frame.set(body, 1)
    this.#send(to, frame)
  }

  /** Dispatches a control frame that arrived from `from`. Throws for an empty frame (a protocol violation). */
  dispatch(from: ClusterNode, frame: Buffer): void {
    if (frame.length < 1) throw new Error('empty control frame')
    const handler = this.#handlers.get(frame[0]!)
    if (!handler) {
      this.#log.debug({ kind: frame[0] }, 'control message of unknown kind dropped')
      return
    }
    handler(from, frame.subarray(1))
  }
}
