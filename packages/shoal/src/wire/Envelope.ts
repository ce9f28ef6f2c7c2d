/**
 * Envelope: the routing part of user messages, in a fixed binary layout, decoded on arrival. The
 * payload (arguments, result) stays opaque bytes until it reaches the target actor, so routing is
 * cheap and a payload the target cannot decode fails only that call, not the association.
 *
 * Layouts (integers big-endian; `str8`/`str16` = u8/u16 byte length + UTF-8; payload = the rest;
 * `[…]` = optional):
 * - Call:   `u32 callId | u32 incarnation | u32 timeoutMs | str8 nodeUid | str16 path | str8 method | [headers] | str8 chain | args`
 *   (`chain` may be empty: a call from outside any actor belongs to no chain)
 * - OneWay: `u32 incarnation | str8 nodeUid | str16 path | str8 method | [headers] | str8 chain | args`
 * - Reply:  `u32 callId | u8 status | payload` (status 1 ok, 0 failed, 2 refused before the method
 *   started; payload: the encoded result, or the encoded error)
 *
 * A hand-written layout because the envelope is on every message: it encodes and decodes several
 * times faster than a MessagePack array, and its validation is a handful of bounds checks.
 *
 * **Headers** (protocol 1.2): an optional string map for context that travels with a message, such
 * as W3C trace context (`traceparent`, `tracestate`):
 * `u8 0xFF | u8 count | count × (str8 key | str16 value)`, just before the chain, so its first byte
 * sits where a decoder otherwise reads the chain's length. A chain is at most 128 bytes, so 0xFF is
 * never a chain length: the marker needs no
 * new frame type and no flag in a field that is part of the cached target segment (the
 * {@link TargetCache} compares those bytes as they are), and a message without headers is byte for
 * byte what protocol 1.1 sent. Absent or empty headers cost zero bytes; on the hot path they cost
 * one property test when encoding and one byte comparison when decoding. Why not new frame types
 * (CallWithHeaders): the frame type is chosen by the caller apart from the envelope, and a header
 * block under the old type would be read as arguments; the in-band marker keeps the envelope
 * self-describing. Why not a flag bit in the uid length byte: that byte is in the cached segment.
 *
 * Limits ({@link HeaderLimits}), enforced on encode and decode: 1..16 entries (an empty block is not
 * canonical and is refused), keys of 1..64 bytes of lower-case RFC 9110 token characters
 * (letters a-z, digits and ! # $ % & ' * + - . ^ _ ` | ~: one spelling per key, as in HTTP/2 and gRPC metadata),
 * no duplicate key, values of 0..1024 bytes of well-formed UTF-8, and at most 4096 key and value
 * bytes in all. Decoded headers are a frozen object with a null prototype: a key such as
 * `__proto__` or `constructor` is an ordinary own property and pollutes nothing, and an absent key
 * reads as undefined (never an inherited member). Key order is not significant.
 *
 * A 1.1 peer refuses the 0xFF byte (an {@link EnvelopeError}: protocol violation, association
 * closed), so a sender must send headers only to a peer that negotiated minor ≥
 * {@link HEADERS_MIN_MINOR} (see `supportsHeaders` in `transport/Transport.ts`).
 *
 * Decoders throw only {@link EnvelopeError}, whatever the bytes.
 * @module
 */
import { getU16, getU32, putU16, putU32 } from './Bytes.ts'

/**
 * A header map: lower-case token keys to UTF-8 values (see the module comment for the limits).
 * Decoded maps have a null prototype and are frozen.
 */
export type EnvelopeHeaders = Readonly<Record<string, string>>

export interface CallEnvelope {
  readonly callId: number
  readonly uid: string
  readonly path: string
  readonly incarnation: number
  readonly method: string
  readonly chain: string
  readonly timeoutMs: number
  /** Headers sent with the call; undefined when none were sent. */
  readonly headers?: EnvelopeHeaders | undefined
  readonly args: Uint8Array
}

export interface OneWayEnvelope {
  readonly uid: string
  readonly path: string
  readonly incarnation: number
  readonly method: string
  readonly chain: string
  /** Headers sent with the message; undefined when none were sent. */
  readonly headers?: EnvelopeHeaders | undefined
  readonly args: Uint8Array
}

export interface ReplyEnvelope {
  readonly callId: number
  readonly ok: boolean
  /** Failed before the method started (status 2): the caller may retry safely. */
  readonly refused?: boolean
  readonly payload: Uint8Array
}

/** Field limits, checked on both encode and decode. */
export const EnvelopeLimits = { uid: 16, path: 1024, method: 255, chain: 128 } as const

/** Header map limits, checked on both encode and decode: entries, key bytes, value bytes, key and value bytes in all. */
export const HeaderLimits = { entries: 16, key: 64, value: 1024, total: 4096 } as const

/** The byte that announces a header block, in place of a chain length (which is 0..128). */
export const HEADERS_MARK = 0xff

/** The first protocol minor (of major 1) whose decoders accept headers. */
export const HEADERS_MIN_MINOR = 2

export class EnvelopeError extends Error {}

class Writer {
  readonly buf: Buffer
  pos = 0
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }
  u32(v: number): void {
    putU32(this.buf, this.pos, v)
    this.pos += 4
  }
  str(s: string, wide: boolean, max: number, what: string, min = 1): void {
    const start = this.pos + (wide ? 2 : 1)
    // Short ASCII strings (nearly all envelope fields) are copied by hand: Buffer#write and
    // Buffer.byteLength cross into C++ and cost more than the copy for these sizes.
    let n = s.length <= 64 ? writeAscii(this.buf, start, s) : -1
    if (n < 0) n = this.buf.write(s, start, 'utf8')
    if (n < min || n > max) throw new EnvelopeError(`${what} must be ${min}..${max} bytes (got ${n})`)
    if (wide) putU16(this.buf, this.pos, n)
    else this.buf[this.pos] = n
    this.pos = start + n
  }
  done(): Buffer {
    return this.buf.subarray(0, this.pos)
  }
}

class Reader {
  pos: number
  buf: Buffer
  /** Where the body ends in `buf` (the frame's end, not the buffer's). */
  end: number
  constructor(buf: Buffer, start: number, end: number) {
    this.buf = buf
    this.pos = start
    this.end = end
  }

  /** This reader, set to read `buf[start, end)` (the readers below reuse one: no object per message). */
  at(buf: Buffer, start: number, end: number): this {
    this.buf = buf
    this.pos = start
    this.end = end
    return this
  }
  u32(): number {
    if (this.pos + 4 > this.end) throw new EnvelopeError('truncated envelope')
    const v = getU32(this.buf, this.pos)
    this.pos += 4
    return v
  }
  str(wide: boolean, max: number, what: string, min = 1): string {
    const headerLength = wide ? 2 : 1
    if (this.pos + headerLength > this.end) throw new EnvelopeError('truncated envelope')
    const n = wide ? getU16(this.buf, this.pos) : this.buf[this.pos]!
    this.pos += headerLength
    if (n < min || n > max) throw new EnvelopeError(`${what} of ${n} bytes is outside ${min}..${max}`)
    if (this.pos + n > this.end) throw new EnvelopeError('truncated envelope')
    // The empty chain (a message from outside any actor) is the common case: no native call for it.
    if (n === 0) return ''
    const s = ascii(this.buf, this.pos, this.pos + n) ?? this.buf.toString('utf8', this.pos, this.pos + n)
    this.pos += n
    return s
  }
  rest(): Buffer {
    return this.buf.subarray(this.pos, this.end)
  }
}

/** Writes `s` at `pos` if it is all ASCII and returns its length, else -1 (nothing usable written). */
function writeAscii(buf: Buffer, pos: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) return -1
    buf[pos + i] = c
  }
  return s.length
}

/**
 * Envelope strings are short and almost always ASCII (uids, paths, method names, chains), for which
 * latin1 decoding equals UTF-8 and is markedly cheaper; checking the bytes first costs little.
 */
function ascii(buf: Buffer, start: number, end: number): string | undefined {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return undefined
  return buf.toString('latin1', start, end)
}

// Upper bound of the UTF-8 size of a string: 3 bytes per UTF-16 unit.
const room = (...parts: string[]): number => parts.reduce((n, s) => n + 2 + s.length * 3, 0)

/** The part calls and one-way messages share: who is addressed, which method, which chain, headers. */
type Target = Pick<OneWayEnvelope, 'uid' | 'path' | 'method' | 'chain' | 'headers'>

/** How many targets a {@link TargetCache} remembers by default (per connection). */
export const TARGET_CACHE_SIZE = 1024

/** One remembered target of a {@link TargetCache}: its bytes, its decoded fields, what the reader attached. */
export class CachedTarget<R> {
  /** What the reader attached to this target (remoting: the local actor and method it resolved to). */
  resolved: R | undefined = undefined
  constructor(
    /** The target's bytes (a copy), viewed for the word-at-a-time comparison ({@link sameBytes}). */
    readonly view: DataView,
    readonly uid: string,
    readonly path: string,
    readonly method: string,
  ) {}
}

/**
 * Remembers the targets (node uid, path, method) one connection's envelopes address, up to
 * `capacity` of them, keyed by a hash of their bytes: a call to an actor method seen before costs
 * a hash and a byte comparison instead of three string decodes, and keeps what the reader
 * attached to it (remoting: the resolved actor), however many other actors were called between.
 *
 * Details: a hash collision or a full cache costs only a miss (the bytes are always compared; a
 * full cache starts over), so a peer sending many distinct targets gets the uncached decoding,
 * never a wrong target.
 */
export class TargetCache<R = unknown> {
  /** The entry of the target read last (found or just made); undefined after one that failed to decode. */
  current: CachedTarget<R> | undefined = undefined
  readonly capacity: number
  readonly #entries = new Map<number, CachedTarget<R>>()

  constructor(capacity = TARGET_CACHE_SIZE) {
    this.capacity = capacity
  }

  get size(): number {
    return this.#entries.size
  }

  /** @internal The entry for `hash` whose bytes are `buf[start, end)`, if remembered. */
  find(hash: number, buf: Buffer, start: number, end: number): CachedTarget<R> | undefined {
    const e = this.#entries.get(hash)
    return e !== undefined && e.view.byteLength === end - start && sameBytes(buf, start, e.view) ? e : undefined
  }

  /** @internal Remembers a target just decoded from `buf[start, end)`. */
  add(hash: number, buf: Buffer, start: number, end: number, uid: string, path: string, method: string): CachedTarget<R> {
    const bytes = Buffer.from(buf.subarray(start, end))
    const e = new CachedTarget<R>(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), uid, path, method)
    if (this.#entries.size >= this.capacity && !this.#entries.has(hash)) this.#entries.clear()
    this.#entries.set(hash, e)
    return e
  }
}

/** The last input buffer's memory as a DataView: one per socket read, not one per message. */
let inputView: DataView | undefined

/** `buf`'s memory as a DataView (index it at `buf.byteOffset + i`), made once per input buffer. */
function viewOf(buf: Buffer): DataView {
  if (inputView === undefined || inputView.buffer !== buf.buffer) inputView = new DataView(buf.buffer)
  return inputView
}

/**
 * Whether `buf` holds `expected` at `start`: four bytes at a time through DataViews, about three
 * times faster than a byte loop (or Buffer#compare's native call) for a 40-byte target.
 */
function sameBytes(buf: Buffer, start: number, expected: DataView): boolean {
  const v = viewOf(buf)
  const at = buf.byteOffset + start
  const n = expected.byteLength
  let i = 0
  for (; i + 4 <= n; i += 4) if (v.getUint32(at + i) !== expected.getUint32(i)) return false
  for (; i < n; i++) if (v.getUint8(at + i) !== expected.getUint8(i)) return false
  return true
}

/**
 * Where {@link readTarget} leaves what it read: decoders copy the fields out at once (decoding is
 * synchronous), so reading a target allocates nothing of its own.
 */
const target: { -readonly [K in keyof Target]: Target[K] } = { uid: '', path: '', method: '', chain: '', headers: undefined }

function readTarget(r: Reader, cache: TargetCache | undefined): void {
  const start = r.pos
  const end = cache === undefined ? -1 : targetEnd(r.buf, start, r.end)
  const last = cache?.current
  if (cache !== undefined) cache.current = undefined
  if (end >= 0) {
    // The target of the message before first (a stream of calls to one actor), then by hash.
    const sameAsLast = last !== undefined && last.view.byteLength === end - start && sameBytes(r.buf, start, last.view)
    const hash = sameAsLast ? 0 : hashBytes(r.buf, start, end)
    const hit = sameAsLast ? last : cache!.find(hash, r.buf, start, end)
    if (hit !== undefined) {
      r.pos = end
      cache!.current = hit
      target.uid = hit.uid
      target.path = hit.path
      target.method = hit.method
    } else {
      readAddress(r)
      cache!.current = cache!.add(hash, r.buf, start, end, target.uid, target.path, target.method)
    }
  } else readAddress(r)
  target.headers = r.pos < r.end && r.buf[r.pos] === HEADERS_MARK ? readHeaders(r) : undefined
  target.chain = r.str(false, EnvelopeLimits.chain, 'chain', 0)
}

/** Decodes and checks the node uid, path and method into {@link target}. */
function readAddress(r: Reader): void {
  target.uid = r.str(false, EnvelopeLimits.uid, 'node uid')
  target.path = r.str(true, EnvelopeLimits.path, 'path')
  target.method = r.str(false, EnvelopeLimits.method, 'method')
}

/**
 * Where the target (str8 uid, str16 path, str8 method) starting at `start` ends, from its three
 * length fields alone, or -1 if it runs past `end` (the string readers then say what is wrong).
 */
function targetEnd(buf: Buffer, start: number, end: number): number {
  let p = start
  if (p >= end) return -1
  p += 1 + buf[p]!
  if (p + 2 > end) return -1
  p += 2 + getU16(buf, p)
  if (p >= end) return -1
  p += 1 + buf[p]!
  return p > end ? -1 : p
}

/** A 32-bit hash of `buf[start, end)`, four bytes at a time (a multiply-xor mix; not for adversaries: a collision only costs a miss). */
function hashBytes(buf: Buffer, start: number, end: number): number {
  const v = viewOf(buf)
  let i = buf.byteOffset + start
  const stop = buf.byteOffset + end
  let h = (end - start) | 0
  for (; i + 4 <= stop; i += 4) h = Math.imul(h ^ v.getUint32(i), 0x9e3779b1)
  for (; i < stop; i++) h = Math.imul(h ^ v.getUint8(i), 0x9e3779b1)
  return h ^ (h >>> 16)
}

/**
 * The constant part of a target, `str8 nodeUid | str16 path | str8 method`, encoded once per ref and
 * method and reused by {@link encodeCallHeadWith}.
 */
export function encodeTargetSegment(e: Pick<CallEnvelope, 'uid' | 'path' | 'method'>): Buffer {
  const w = new Writer(room(e.uid, e.path, e.method))
  w.str(e.uid, false, EnvelopeLimits.uid, 'node uid')
  w.str(e.path, true, EnvelopeLimits.path, 'path')
  w.str(e.method, false, EnvelopeLimits.method, 'method')
  return Buffer.from(w.done())
}

/**
 * A Call header from a cached target segment: one exact allocation per call. Non-empty `headers`
 * add a header block; send them only to a peer that supports them (see the module comment).
 */
export function encodeCallHeadWith(segment: Buffer, e: Pick<CallEnvelope, 'callId' | 'incarnation' | 'timeoutMs' | 'chain' | 'headers'>): Buffer {
  const chainBytes = chainLength(e.chain)
  const block = e.headers === undefined ? undefined : encodeHeaders(e.headers)
  const extra = block === undefined ? 0 : block.length
  const head = Buffer.allocUnsafe(13 + segment.length + extra + chainBytes)
  putU32(head, 0, e.callId)
  putU32(head, 4, e.incarnation)
  putU32(head, 8, e.timeoutMs)
  head.set(segment, 12)
  if (block !== undefined) head.set(block, 12 + segment.length)
  writeChain(head, 12 + segment.length + extra, e.chain, chainBytes)
  return head
}

/** UTF-8 length of a chain id, checked against its limit. Chains we mint are ASCII. */
function chainLength(chain: string): number {
  const n = chain.length <= EnvelopeLimits.chain && isAscii(chain) ? chain.length : Buffer.byteLength(chain)
  if (n > EnvelopeLimits.chain) throw new EnvelopeError(`chain must be 0..${EnvelopeLimits.chain} bytes (got ${n})`)
  return n
}

function writeChain(buf: Buffer, pos: number, chain: string, n: number): void {
  buf[pos] = n
  if (n === chain.length) writeAscii(buf, pos + 1, chain)
  else buf.write(chain, pos + 1, 'utf8')
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false
  return true
}

/** The header of a Call body: everything before the argument bytes. */
export function encodeCallHead(e: Omit<CallEnvelope, 'args'>): Buffer {
  return encodeCallHeadWith(encodeTargetSegment(e), e)
}

/** A OneWay header from a cached target segment; `headers` as for {@link encodeCallHeadWith}. */
export function encodeOneWayHeadWith(segment: Buffer, e: Pick<OneWayEnvelope, 'incarnation' | 'chain' | 'headers'>): Buffer {
  const chainBytes = chainLength(e.chain)
  const block = e.headers === undefined ? undefined : encodeHeaders(e.headers)
  const extra = block === undefined ? 0 : block.length
  const head = Buffer.allocUnsafe(5 + segment.length + extra + chainBytes)
  putU32(head, 0, e.incarnation)
  head.set(segment, 4)
  if (block !== undefined) head.set(block, 4 + segment.length)
  writeChain(head, 4 + segment.length + extra, e.chain, chainBytes)
  return head
}

/** The header of a OneWay body: everything before the argument bytes. */
export function encodeOneWayHead(e: Omit<OneWayEnvelope, 'args'>): Buffer {
  return encodeOneWayHeadWith(encodeTargetSegment(e), e)
}

/** The header of a Reply body: everything before the payload. */
export function encodeReplyHead(e: Omit<ReplyEnvelope, 'payload'>): Buffer {
  const head = Buffer.allocUnsafe(5)
  putU32(head, 0, e.callId)
  head[4] = e.ok ? 1 : e.refused ? 2 : 0
  return head
}

export function encodeCall(e: CallEnvelope): Buffer {
  return Buffer.concat([encodeCallHead(e), e.args])
}

export function encodeOneWay(e: OneWayEnvelope): Buffer {
  return Buffer.concat([encodeOneWayHead(e), e.args])
}

export function encodeReply(e: ReplyEnvelope): Buffer {
  return Buffer.concat([encodeReplyHead(e), e.payload])
}

/**
 * A Call body as the call engine reads it: the envelope, with the payload left in `buf` from
 * `argsAt` to `end` (no view of it per message; see `Serialization.decodeFrom`).
 */
export interface ReadCall extends Omit<CallEnvelope, 'args'> {
  readonly buf: Buffer
  readonly argsAt: number
  readonly end: number
}

/** A OneWay body as the call engine reads it (see {@link ReadCall}). */
export interface ReadOneWay extends Omit<OneWayEnvelope, 'args'> {
  readonly buf: Buffer
  readonly argsAt: number
  readonly end: number
}

/** The reader {@link readCall} and {@link readOneWay} reuse (decoding is synchronous and never nests). */
const reader = new Reader(Buffer.alloc(0), 0, 0)

/** Reads and validates the Call body `buf[start, end)`; throws {@link EnvelopeError} describing the defect. */
export function readCall(buf: Buffer, start: number, end: number, cache?: TargetCache): ReadCall {
  const r = reader.at(buf, start, end)
  const callId = r.u32()
  const incarnation = r.u32()
  const timeoutMs = r.u32()
  readTarget(r, cache)
  const t = target
  return { callId, incarnation, timeoutMs, uid: t.uid, path: t.path, method: t.method, chain: t.chain, headers: t.headers, buf, argsAt: r.pos, end }
}

/** Reads and validates the OneWay body `buf[start, end)`; throws {@link EnvelopeError} describing the defect. */
export function readOneWay(buf: Buffer, start: number, end: number, cache?: TargetCache): ReadOneWay {
  const r = reader.at(buf, start, end)
  const incarnation = r.u32()
  readTarget(r, cache)
  const t = target
  return { incarnation, uid: t.uid, path: t.path, method: t.method, chain: t.chain, headers: t.headers, buf, argsAt: r.pos, end }
}

/** Decodes and validates a Call body; throws {@link EnvelopeError} describing the defect. */
export function decodeCall(body: Buffer, cache?: TargetCache): CallEnvelope {
  const e = readCall(body, 0, body.length, cache)
  const { callId, incarnation, timeoutMs, uid, path, method, chain, headers } = e
  return { callId, incarnation, timeoutMs, uid, path, method, chain, headers, args: body.subarray(e.argsAt) }
}

export function decodeOneWay(body: Buffer, cache?: TargetCache): OneWayEnvelope {
  const e = readOneWay(body, 0, body.length, cache)
  const { incarnation, uid, path, method, chain, headers } = e
  return { incarnation, uid, path, method, chain, headers, args: body.subarray(e.argsAt) }
}

export function decodeReply(body: Buffer): ReplyEnvelope {
  const { callId, ok, refused } = readReply(body, 0, body.length)
  return { callId, ok, refused, payload: body.subarray(REPLY_PAYLOAD_AT) }
}

/** Where a Reply's payload starts in its body (after `start`, for a body inside a larger buffer). */
export const REPLY_PAYLOAD_AT = 5

/** Reads and validates the Reply body `buf[start, end)`, leaving the payload in it from `start +` {@link REPLY_PAYLOAD_AT} on. */
export function readReply(buf: Buffer, start: number, end: number): Omit<ReplyEnvelope, 'payload'> {
  if (end - start < 6) throw new EnvelopeError('truncated reply envelope')
  const status = buf[start + 4]!
  if (status > 2) throw new EnvelopeError(`reply status byte ${status} is not 0, 1 or 2`)
  return { callId: getU32(buf, start), ok: status === 1, refused: status === 2 }
}

// ── headers ──────────────────────────────────────────────────────────────────

/** Lower-case RFC 9110 token characters (tchar without A-Z), by byte. */
const KEY_CHAR = (() => {
  const t = new Uint8Array(128)
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = 1
  return t
})()

function isHeaderKey(key: string): boolean {
  if (key.length < 1 || key.length > HeaderLimits.key) return false
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c >= 128 || KEY_CHAR[c] !== 1) return false
  }
  return true
}

/**
 * Checks a header map against {@link HeaderLimits} and the key rules; throws {@link EnvelopeError}
 * naming the defect. For callers that want to validate headers before they reach the encoder.
 */
export function checkHeaders(headers: EnvelopeHeaders): void {
  encodeHeaders(headers)
}

/** The header block of a non-empty map (marker included), or undefined for an empty one. */
function encodeHeaders(headers: EnvelopeHeaders): Buffer | undefined {
  if (typeof headers !== 'object' || headers === null) throw new EnvelopeError('headers must be an object of strings')
  const keys = Object.keys(headers)
  if (keys.length === 0) return undefined
  if (keys.length > HeaderLimits.entries) throw new EnvelopeError(`at most ${HeaderLimits.entries} headers (got ${keys.length})`)
  const values: Buffer[] = []
  let total = 0
  for (const key of keys) {
    if (!isHeaderKey(key)) throw new EnvelopeError(`header key ${JSON.stringify(key.slice(0, 80))} must be 1..${HeaderLimits.key} lower-case token characters`)
    const value: unknown = headers[key]
    if (typeof value !== 'string') throw new EnvelopeError(`header ${key} must be a string (got ${typeof value})`)
    const bytes = Buffer.from(value, 'utf8')
    if (bytes.length > HeaderLimits.value) throw new EnvelopeError(`header ${key} must be 0..${HeaderLimits.value} bytes (got ${bytes.length})`)
    total += key.length + bytes.length
    values.push(bytes)
  }
  if (total > HeaderLimits.total) throw new EnvelopeError(`headers must total at most ${HeaderLimits.total} key and value bytes (got ${total})`)
  const block = Buffer.allocUnsafe(2 + 3 * keys.length + total)
  block[0] = HEADERS_MARK
  block[1] = keys.length
  let pos = 2
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    const value = values[i]!
    block[pos] = key.length
    writeAscii(block, pos + 1, key)
    pos += 1 + key.length
    block.writeUInt16BE(value.length, pos)
    block.set(value, pos + 2)
    pos += 2 + value.length
  }
  return block
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Reads a header block at `r.pos` (which holds {@link HEADERS_MARK}); refuses anything the encoder would not write. */
function readHeaders(r: Reader): EnvelopeHeaders {
  const buf = r.buf
  const end = r.end
  let pos = r.pos + 1
  if (pos >= end) throw new EnvelopeError('truncated envelope')
  const count = buf[pos++]!
  if (count < 1 || count > HeaderLimits.entries) throw new EnvelopeError(`header count ${count} is outside 1..${HeaderLimits.entries}`)
  const out = Object.create(null) as Record<string, string>
  let total = 0
  for (let i = 0; i < count; i++) {
    if (pos >= end) throw new EnvelopeError('truncated envelope')
    const keyLength = buf[pos++]!
    if (keyLength < 1 || keyLength > HeaderLimits.key) throw new EnvelopeError(`header key of ${keyLength} bytes is outside 1..${HeaderLimits.key}`)
    if (pos + keyLength > end) throw new EnvelopeError('truncated envelope')
    for (let j = pos; j < pos + keyLength; j++) {
      const c = buf[j]!
      if (c >= 128 || KEY_CHAR[c] !== 1) throw new EnvelopeError(`header key byte 0x${c.toString(16).padStart(2, '0')} is not a lower-case token character`)
    }
    const key = buf.toString('latin1', pos, pos + keyLength)
    pos += keyLength
    if (pos + 2 > end) throw new EnvelopeError('truncated envelope')
    const valueLength = buf.readUInt16BE(pos)
    pos += 2
    if (valueLength > HeaderLimits.value) throw new EnvelopeError(`header ${key} of ${valueLength} bytes is over ${HeaderLimits.value}`)
    total += keyLength + valueLength
    if (total > HeaderLimits.total) throw new EnvelopeError(`headers of over ${HeaderLimits.total} key and value bytes`)
    if (pos + valueLength > end) throw new EnvelopeError('truncated envelope')
    if (out[key] !== undefined) throw new EnvelopeError(`duplicate header ${key}`)
    out[key] = utf8(buf, pos, pos + valueLength, key)
    pos += valueLength
  }
  r.pos = pos
  return Object.freeze(out)
}

function utf8(buf: Buffer, start: number, end: number, key: string): string {
  const s = ascii(buf, start, end)
  if (s !== undefined) return s
  try {
    return strictUtf8.decode(buf.subarray(start, end))
  } catch {
    throw new EnvelopeError(`header ${key} is not well-formed UTF-8`)
  }
}
