/**
 * System messages of lifecycle watch on the wire: MessagePack arrays, validated field by field
 * (the peer is authenticated by the transport, but a bug or another version must not corrupt
 * watch state or crash the node). Control-message kind `ControlKind.Watch`.
 *
 * ```
 * batch: [1 (version), 0, first seq, [message, …]]
 * ack:   [1, 1, cumulative seq]
 * message: [0 watch | 1 unwatch, path, incarnation] | [2 terminated, path, incarnation, 0 stopped | 1 not-found]
 * ```
 * The actor of a message is on the receiving node (watch, unwatch) or the sending node (terminated).
 * @module
 */
import { ControlDecodeError, ControlReader, controlPackr } from '../control/ControlCodec.ts'
import type { Batch } from './SystemChannel.ts'

const VERSION = 1
const MAX_MESSAGES = 4096

import type { TerminationReason } from '../actor/Termination.ts'

export type { TerminationReason }

/** One system message. */
export type SystemMessage =
  | { readonly type: 'watch' | 'unwatch'; readonly path: string; readonly incarnation: number }
  | { readonly type: 'terminated'; readonly path: string; readonly incarnation: number; readonly reason: 'stopped' | 'not-found' }

/** What arrives on the watch control kind. */
export type WatchFrame = { readonly kind: 'batch'; readonly batch: Batch<SystemMessage> } | { readonly kind: 'ack'; readonly seq: number }

/** A frame that does not decode or validate; dropped and logged. */
export class WatchDecodeError extends ControlDecodeError {}

const read: ControlReader = new ControlReader('watch frame', VERSION, WatchDecodeError)

const TYPES = ['watch', 'unwatch', 'terminated'] as const
const REASONS = ['stopped', 'not-found'] as const

/** Encodes a batch of system messages. */
export function encodeBatch(b: Batch<SystemMessage>): Buffer {
  const messages = b.messages.map((m) =>
    m.type === 'terminated' ? [2, m.path, m.incarnation, REASONS.indexOf(m.reason)] : [TYPES.indexOf(m.type), m.path, m.incarnation],
  )
  return controlPackr.pack([VERSION, 0, b.first, messages])
}

/** Encodes a cumulative ack. */
export function encodeAck(seq: number): Buffer {
  return controlPackr.pack([VERSION, 1, seq])
}

/** Decodes and validates a frame; throws WatchDecodeError, never anything else. */
export function decodeWatchFrame(bytes: Buffer): WatchFrame {
  const raw = read.open(bytes)
  if (raw[1] === 1 && raw.length === 3) return { kind: 'ack', seq: read.readSeq(raw[2]) }
  if (raw[1] !== 0 || raw.length !== 4) read.fail('unknown watch frame')
  const messages: unknown = raw[3]
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_MESSAGES) read.fail(`a batch holds 1..${MAX_MESSAGES} messages`)
  return { kind: 'batch', batch: { first: read.readSeq(raw[2]), messages: messages.map(decodeMessage) } }
}

function decodeMessage(m: unknown): SystemMessage {
  if (!Array.isArray(m) || m.length < 3 || m.length > 4) read.fail('a system message is a 3- or 4-element array')
  const [type, path, incarnation, reason] = m as unknown[]
  const p = read.readActorPath(path)
  const inc = read.readIncarnation(incarnation)
  if ((type === 0 || type === 1) && m.length === 3) return { type: TYPES[type], path: p, incarnation: inc }
  if (type === 2 && m.length === 4 && (reason === 0 || reason === 1)) return { type: 'terminated', path: p, incarnation: inc, reason: REASONS[reason] }
  read.fail('unknown system message')
}
