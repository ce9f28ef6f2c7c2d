/**
 * Envelope: the routing part of user messages, decoded on arrival; the payload (arguments, result)
 * stays opaque bytes until it reaches the target actor, so routing is cheap and a payload the
 * target cannot decode fails only that call.
 *
 * Bodies are MessagePack arrays:
 * - Call:   `[callId, nodeUid, path, incarnation, method, chain, timeoutMs, args]`
 * - OneWay: `[nodeUid, path, incarnation, method, chain, args]`
 * - Reply:  `[callId, ok, payload]` (payload is the encoded result, or the encoded error)
 * @module
 */
import { Packr, Unpackr } from 'msgpackr'
import { scanMsgpack } from '../serialization/MsgpackScanner.ts'

export interface CallEnvelope {
  readonly callId: number
  readonly uid: string
  readonly path: string
  readonly incarnation: number
  readonly method: string
  readonly chain: string
  readonly timeoutMs: number
  readonly args: Uint8Array
}

export interface OneWayEnvelope {
  readonly uid: string
  readonly path: string
  readonly incarnation: number
  readonly method: string
  readonly chain: string
  readonly args: Uint8Array
}

export interface ReplyEnvelope {
  readonly callId: number
  readonly ok: boolean
  readonly payload: Uint8Array
}

const packr = new Packr({ useRecords: false } as never)
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true } as never)
const LIMITS = { maxDepth: 2, maxCollectionSize: 16, maxBigIntBytes: 0 }
const NO_EXTENSIONS = new Map()

export function encodeCall(e: CallEnvelope): Buffer {
  return packr.pack([e.callId, e.uid, e.path, e.incarnation, e.method, e.chain, e.timeoutMs, e.args])
}

export function encodeOneWay(e: OneWayEnvelope): Buffer {
  return packr.pack([e.uid, e.path, e.incarnation, e.method, e.chain, e.args])
}

export function encodeReply(e: ReplyEnvelope): Buffer {
  return packr.pack([e.callId, e.ok, e.payload])
}

function decodeArray(body: Uint8Array, length: number, what: string): unknown[] {
  const problem = scanMsgpack(body, LIMITS, NO_EXTENSIONS)
  if (problem) throw new Error(`malformed ${what} envelope: ${problem}`)
  const v: unknown = unpackr.unpack(body)
  if (!Array.isArray(v) || v.length !== length) throw new Error(`malformed ${what} envelope: expected an array of ${length}`)
  return v
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff
const isStr = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array

/** Decodes and validates a Call body; throws a plain Error describing the defect. */
export function decodeCall(body: Uint8Array): CallEnvelope {
  const [callId, uid, path, incarnation, method, chain, timeoutMs, args] = decodeArray(body, 8, 'call')
  if (!isU32(callId) || !isStr(uid, 16) || !isStr(path, 1024) || !isU32(incarnation) || !isStr(method, 256) || !isStr(chain, 128) || !isU32(timeoutMs) || !isBytes(args)) {
    throw new Error('malformed call envelope: a field has the wrong type or size')
  }
  return { callId, uid, path, incarnation, method, chain, timeoutMs, args }
}

export function decodeOneWay(body: Uint8Array): OneWayEnvelope {
  const [uid, path, incarnation, method, chain, args] = decodeArray(body, 6, 'one-way')
  if (!isStr(uid, 16) || !isStr(path, 1024) || !isU32(incarnation) || !isStr(method, 256) || !isStr(chain, 128) || !isBytes(args)) {
    throw new Error('malformed one-way envelope: a field has the wrong type or size')
  }
  return { uid, path, incarnation, method, chain, args }
}

export function decodeReply(body: Uint8Array): ReplyEnvelope {
  const [callId, ok, payload] = decodeArray(body, 3, 'reply')
  if (!isU32(callId) || typeof ok !== 'boolean' || !isBytes(payload)) throw new Error('malformed reply envelope: a field has the wrong type')
  return { callId, ok, payload }
}
