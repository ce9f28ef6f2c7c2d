/**
 * System messages of lifecycle watch on the wire: MessagePack arrays, validated field by field
 * (the peer is authenticated by the transport, but a bug or another version must not corrupt
 * watch state or crash the node). Control-message kind 5.
 *
 * ```
 * batch: [1 (version), 0, first seq, [message, …]]
 * ack:   [1, 1, cumulative seq]
 * message: [0 watch | 1 unwatch, path, incarnation] | [2 terminated, path, incarnation, 0 stopped | 1 not-found]
 * ```
 * The actor of a message is on the receiving node (watch, unwatch) or the sending node (terminated).
 * @module
 */
import { Packr } from 'msgpackr'
import { ActorId, MAX_INCARNATION } from '../ActorId.ts'
import type { Batch } from './SystemChannel.ts'

/** Control-message kind of lifecycle watch. */
export const WATCH_CONTROL_KIND = 5
const VERSION = 1
const MAX_MESSAGES = 4096

const packr = new Packr({ useRecords: false, moreTypes: false })

import type { TerminationReason } from '../actor/Termination.ts'

export type { TerminationReason }

/** One system message. */
export type SystemMessage =
  | { readonly type: 'watch' | 'unwatch'; readonly path: string; readonly incarnation: number }
  | { readonly type: 'terminated'; readonly path: string; readonly incarnation: number; readonly reason: 'stopped' | 'not-found' }

/** What arrives on the watch control kind. */
export type WatchFrame = { readonly kind: 'batch'; readonly batch: Batch<SystemMessage> } | { readonly kind: 'ack'; readonly seq: number }

/** A frame that does not decode or validate; dropped and logged. */
export class WatchDecodeError extends Error {}

const TYPES = ['watch', 'unwatch', 'terminated'] as const
const REASONS = ['stopped', 'not-found'] as const

/** Encodes a batch of system messages. */
export function encodeBatch(b: Batch<SystemMessage>): Buffer {
  const messages = b.messages.map((m) => (m.type === 'terminated' ? [2, m.path, m.incarnation, REASONS.indexOf(m.reason)] : [TYPES.indexOf(m.type), m.path, m.incarnation]))
  return packr.pack([VERSION, 0, b.first, messages])
}

/** Encodes a cumulative ack. */
export function encodeAck(seq: number): Buffer {
  return packr.pack([VERSION, 1, seq])
}

/** Decodes and validates a frame; throws WatchDecodeError, never anything else. */
export function decodeWatchFrame(bytes: Buffer): WatchFrame {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (e) {
    throw new WatchDecodeError(`undecodable watch frame: ${(e as Error).message}`)
  }
  if (!Array.isArray(raw) || raw[0] !== VERSION) throw new WatchDecodeError('not a version-1 watch frame')
  if (raw[1] === 1 && raw.length === 3) return { kind: 'ack', seq: seq(raw[2]) }
  if (raw[1] !== 0 || raw.length !== 4) throw new WatchDecodeError('unknown watch frame')
  const messages = raw[3] as unknown
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_MESSAGES) throw new WatchDecodeError(`a batch holds 1..${MAX_MESSAGES} messages`)
  return { kind: 'batch', batch: { first: seq(raw[2]), messages: messages.map(decodeMessage) } }
}

function seq(x: unknown): number {
  if (!Number.isSafeInteger(x) || (x as number) < 0) throw new WatchDecodeError('a sequence number must be a non-negative safe integer')
  return x as number
}

function decodeMessage(m: unknown): SystemMessage {
  if (!Array.isArray(m) || m.length < 3 || m.length > 4) throw new WatchDecodeError('a system message is a 3- or 4-element array')
  const [type, path, incarnation, reason] = m as unknown[]
  if (typeof path !== 'string' || !ActorId.isValidPath(path)) throw new WatchDecodeError('bad actor path')
  if (!Number.isInteger(incarnation) || (incarnation as number) < 0 || (incarnation as number) > MAX_INCARNATION) throw new WatchDecodeError('bad incarnation')
  const inc = incarnation as number
  if ((type === 0 || type === 1) && m.length === 3) return { type: TYPES[type], path, incarnation: inc }
  if (type === 2 && m.length === 4 && (reason === 0 || reason === 1)) return { type: 'terminated', path, incarnation: inc, reason: REASONS[reason] }
  throw new WatchDecodeError('unknown system message')
}
