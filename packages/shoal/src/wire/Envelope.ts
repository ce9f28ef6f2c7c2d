/**
 * Envelope: the routing part of user messages, in a fixed binary layout, decoded on arrival. The
 * payload (arguments, result) stays opaque bytes until it reaches the target actor, so routing is
 * cheap and a payload the target cannot decode fails only that call, not the association.
 *
 * Layouts (integers big-endian; `str8`/`str16` = u8/u16 byte length + UTF-8; payload = the rest):
 * - Call:   `u32 callId | u32 incarnation | u32 timeoutMs | str8 nodeUid | str16 path | str8 method | str8 chain | args`
 *   (`chain` may be empty: a call from outside any actor belongs to no chain)
 * - OneWay: `u32 incarnation | str8 nodeUid | str16 path | str8 method | str8 chain | args`
 * - Reply:  `u32 callId | u8 status | payload` (status 1 ok, 0 failed, 2 refused before the method
 *   started; payload: the encoded result, or the encoded error)
 *
 * A hand-written layout because the envelope is on every message: it encodes and decodes several
 * times faster than a MessagePack array, and its validation is a handful of bounds checks.
 * @module
 */

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
  /** Failed before the method started (status 2): the caller may retry safely. */
  readonly refused?: boolean
  readonly payload: Uint8Array
}

/** Field limits, checked on both encode and decode. */
export const EnvelopeLimits = { uid: 16, path: 1024, method: 255, chain: 128 } as const

export class EnvelopeError extends Error {}

class Writer {
  readonly buf: Buffer
  pos = 0
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.pos)
    this.pos += 4
  }
  str(s: string, wide: boolean, max: number, what: string, min = 1): void {
    const start = this.pos + (wide ? 2 : 1)
    // Short ASCII strings (nearly all envelope fields) are copied by hand: Buffer#write and
    // Buffer.byteLength cross into C++ and cost more than the copy for these sizes.
    let n = s.length <= 64 ? writeAscii(this.buf, start, s) : -1
    if (n < 0) n = this.buf.write(s, start, 'utf8')
    if (n < min || n > max) throw new EnvelopeError(`${what} must be ${min}..${max} bytes (got ${n})`)
    if (wide) this.buf.writeUInt16BE(n, this.pos)
    else this.buf[this.pos] = n
    this.pos = start + n
  }
  done(): Buffer {
    return this.buf.subarray(0, this.pos)
  }
}

class Reader {
  pos = 0
  constructor(readonly buf: Buffer) {}
  u32(): number {
    if (this.pos + 4 > this.buf.length) throw new EnvelopeError('truncated envelope')
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }
  str(wide: boolean, max: number, what: string, min = 1): string {
    const headerLength = wide ? 2 : 1
    if (this.pos + headerLength > this.buf.length) throw new EnvelopeError('truncated envelope')
    const n = wide ? this.buf.readUInt16BE(this.pos) : this.buf[this.pos]!
    this.pos += headerLength
    if (n < min || n > max) throw new EnvelopeError(`${what} of ${n} bytes is outside ${min}..${max}`)
    if (this.pos + n > this.buf.length) throw new EnvelopeError('truncated envelope')
    const s = ascii(this.buf, this.pos, this.pos + n) ?? this.buf.toString('utf8', this.pos, this.pos + n)
    this.pos += n
    return s
  }
  rest(): Buffer {
    return this.buf.subarray(this.pos)
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

/** The part calls and one-way messages share: who is addressed, which method, which chain. */
type Target = Pick<OneWayEnvelope, 'uid' | 'path' | 'method' | 'chain'>

/**
 * Remembers the last decoded target (node uid, path, method) of one connection: a stream of calls
 * to the same actor method then costs one byte comparison instead of three string decodes.
 */
export class TargetCache {
  bytes: Buffer | undefined
  uid = ''
  path = ''
  method = ''
}

/** Compares a short range in JS: cheaper than Buffer#compare's native call at these sizes. */
function sameBytes(buf: Buffer, start: number, expected: Buffer): boolean {
  for (let i = 0; i < expected.length; i++) if (buf[start + i] !== expected[i]) return false
  return true
}

function readTarget(r: Reader, cache: TargetCache | undefined): Target {
  const start = r.pos
  if (cache?.bytes) {
    const end = start + cache.bytes.length
    if (end <= r.buf.length && sameBytes(r.buf, start, cache.bytes)) {
      r.pos = end
      return { uid: cache.uid, path: cache.path, method: cache.method, chain: r.str(false, EnvelopeLimits.chain, 'chain', 0) }
    }
  }
  const uid = r.str(false, EnvelopeLimits.uid, 'node uid')
  const path = r.str(true, EnvelopeLimits.path, 'path')
  const method = r.str(false, EnvelopeLimits.method, 'method')
  if (cache) {
    cache.bytes = Buffer.from(r.buf.subarray(start, r.pos))
    cache.uid = uid
    cache.path = path
    cache.method = method
  }
  const chain = r.str(false, EnvelopeLimits.chain, 'chain', 0)
  return { uid, path, method, chain }
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

/** A Call header from a cached target segment: one exact allocation per call. */
export function encodeCallHeadWith(segment: Buffer, e: Pick<CallEnvelope, 'callId' | 'incarnation' | 'timeoutMs' | 'chain'>): Buffer {
  const chainBytes = chainLength(e.chain)
  const head = Buffer.allocUnsafe(13 + segment.length + chainBytes)
  head.writeUInt32BE(e.callId >>> 0, 0)
  head.writeUInt32BE(e.incarnation >>> 0, 4)
  head.writeUInt32BE(e.timeoutMs >>> 0, 8)
  head.set(segment, 12)
  writeChain(head, 12 + segment.length, e.chain, chainBytes)
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

/** A OneWay header from a cached target segment. */
export function encodeOneWayHeadWith(segment: Buffer, e: Pick<OneWayEnvelope, 'incarnation' | 'chain'>): Buffer {
  const chainBytes = chainLength(e.chain)
  const head = Buffer.allocUnsafe(5 + segment.length + chainBytes)
  head.writeUInt32BE(e.incarnation >>> 0, 0)
  head.set(segment, 4)
  writeChain(head, 4 + segment.length, e.chain, chainBytes)
  return head
}

/** The header of a OneWay body: everything before the argument bytes. */
export function encodeOneWayHead(e: Omit<OneWayEnvelope, 'args'>): Buffer {
  return encodeOneWayHeadWith(encodeTargetSegment(e), e)
}

/** The header of a Reply body: everything before the payload. */
export function encodeReplyHead(e: Omit<ReplyEnvelope, 'payload'>): Buffer {
  const head = Buffer.allocUnsafe(5)
  head.writeUInt32BE(e.callId >>> 0, 0)
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

/** Decodes and validates a Call body; throws {@link EnvelopeError} describing the defect. */
export function decodeCall(body: Buffer, cache?: TargetCache): CallEnvelope {
  const r = new Reader(body)
  const callId = r.u32()
  const incarnation = r.u32()
  const timeoutMs = r.u32()
  const { uid, path, method, chain } = readTarget(r, cache)
  return { callId, incarnation, timeoutMs, uid, path, method, chain, args: r.rest() }
}

export function decodeOneWay(body: Buffer, cache?: TargetCache): OneWayEnvelope {
  const r = new Reader(body)
  const incarnation = r.u32()
  const { uid, path, method, chain } = readTarget(r, cache)
  return { incarnation, uid, path, method, chain, args: r.rest() }
}

export function decodeReply(body: Buffer): ReplyEnvelope {
  if (body.length < 6) throw new EnvelopeError('truncated reply envelope')
  const status = body[4]!
  if (status > 2) throw new EnvelopeError(`reply status byte ${status} is not 0, 1 or 2`)
  return { callId: body.readUInt32BE(0), ok: status === 1, refused: status === 2, payload: body.subarray(5) }
}
