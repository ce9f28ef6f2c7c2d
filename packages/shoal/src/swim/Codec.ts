/**
 * The SWIM wire format: compact binary, versioned, authenticated. Pure functions, no sockets.
 *
 * ```
 * datagram  = version:u8 type:u8 body tag:16      (tag = HMAC-SHA256(key, version..body), truncated)
 * node      = hostLen:u8 host:utf8 port:u16 uid:8
 * update    = status:u8 node incarnation:u32 (alive: metaLen:u16 meta | otherwise: by:8)
 * updates   = count:u8 update*
 * ping      = seq:u32 from:node targetUid:8 updates
 * pingReq   = seq:u32 from:node target:node updates
 * ack, nack = seq:u32 from:node updates
 * gossip    = from:node updates
 * pushPull  = from:node join:u8 count:u32 update*        (stream only)
 * ```
 * Every decoder path checks lengths before reading and throws {@link SwimCodecError} with a short
 * reason; the shell drops the datagram and counts the reason. Nothing is trusted before the tag
 * verifies.
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { isValidHost } from '../actor/ClusterNode.ts'
import { ControlDecodeError } from '../control/ControlCodec.ts'
import type { SwimNode, SwimStatus } from './SwimNode.ts'

/** The protocol version byte every datagram starts with; other versions are dropped and counted. */
export const SWIM_VERSION = 1
/** Bytes of the truncated HMAC-SHA256 tag at the end of every datagram and stream message. */
export const TAG_BYTES = 16
/** Largest metadata carried by an alive update, as in memberlist. */
export const MAX_META_BYTES = 512

/** Message type codes on the wire (datagrams 1–5, stream-only push-pull 16–17). */
export const enum MessageType {
  Ping = 1,
  PingReq = 2,
  Ack = 3,
  Nack = 4,
  Gossip = 5,
  PushPull = 16,
  PushPullReply = 17,
}

/** One piece of gossip: a belief about a member. `by` names the accuser of a suspicion or death. */
export interface Update {
  readonly status: SwimStatus
  readonly node: SwimNode
  readonly incarnation: number
  /** Alive updates only. */
  readonly meta?: Uint8Array
  /** Suspect and dead updates: uid of the member that raised it (counts independent confirmations). */
  readonly by?: string
}

/** A datagram, decoded: the four SWIM messages plus a bare gossip carrier. */
export type Message =
  | { readonly type: 'ping'; readonly seq: number; readonly from: SwimNode; readonly targetUid: string; readonly updates: readonly Update[] }
  | { readonly type: 'pingReq'; readonly seq: number; readonly from: SwimNode; readonly target: SwimNode; readonly updates: readonly Update[] }
  | { readonly type: 'ack' | 'nack'; readonly seq: number; readonly from: SwimNode; readonly updates: readonly Update[] }
  | { readonly type: 'gossip'; readonly from: SwimNode; readonly updates: readonly Update[] }

/** Full-state exchange over a stream (join and anti-entropy). */
export interface PushPull {
  readonly type: 'pushPull' | 'pushPullReply'
  readonly from: SwimNode
  readonly join: boolean
  readonly members: readonly Update[]
}

/** A datagram or stream message that failed to decode or authenticate. `reason` is a metric label. */
export class SwimCodecError extends ControlDecodeError {
  readonly reason: string
  constructor(reason: string, detail: string) {
    super(`${reason}: ${detail}`)
    this.reason = reason
  }
}

const STATUS_CODE: Record<SwimStatus, number> = { alive: 0, suspect: 1, dead: 2, left: 3 }
const STATUS_OF: readonly SwimStatus[] = ['alive', 'suspect', 'dead', 'left']
const TYPE_CODE = { ping: MessageType.Ping, pingReq: MessageType.PingReq, ack: MessageType.Ack, nack: MessageType.Nack, gossip: MessageType.Gossip } as const

// ── sizes ────────────────────────────────────────────────────────────────────

/** Encoded size of a node address, bytes. */
export function nodeSize(n: SwimNode): number {
  return 1 + Buffer.byteLength(n.host) + 2 + 8
}

/** Encoded size of one update, bytes (what the dissemination budget counts). */
export function updateSize(u: Update): number {
  return 1 + nodeSize(u.node) + 4 + (u.status === 'alive' ? 2 + (u.meta?.length ?? 0) : 8)
}

/** Bytes of a datagram without its updates (count byte and tag included). */
export function baseSize(m: Message): number {
  const head = 2 + 1 + TAG_BYTES
  switch (m.type) {
    case 'ping':
      return head + 4 + nodeSize(m.from) + 8
    case 'pingReq':
      return head + 4 + nodeSize(m.from) + nodeSize(m.target)
    case 'ack':
    case 'nack':
      return head + 4 + nodeSize(m.from)
    case 'gossip':
      return head + nodeSize(m.from)
  }
}

/** Most updates one datagram can list (the count is a byte). */
export const MAX_UPDATES = 255

// ── writer ───────────────────────────────────────────────────────────────────

class Writer {
  readonly buf: Buffer
  off = 0
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }
  u8(v: number): void {
    this.buf[this.off++] = v
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.off)
    this.off += 2
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v >>> 0, this.off)
    this.off += 4
  }
  uid(uid: string): void {
    this.off += this.buf.write(uid, this.off, 8, 'hex')
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.off)
    this.off += b.length
  }
  node(n: SwimNode): void {
    const len = this.buf.write(n.host, this.off + 1, 'utf8')
    this.buf[this.off] = len
    this.off += 1 + len
    this.u16(n.port)
    this.uid(n.uid)
  }
  update(u: Update): void {
    this.u8(STATUS_CODE[u.status])
    this.node(u.node)
    this.u32(u.incarnation)
    if (u.status === 'alive') {
      const meta = u.meta ?? EMPTY
      this.u16(meta.length)
      this.bytes(meta)
    } else {
      this.uid(u.by ?? '0000000000000000')
    }
  }
}

const EMPTY = new Uint8Array(0)

/** Bytes of a datagram body as {@link encodeMessage} writes it (without the tag). */
export function messageSize(m: Message): number {
  let size = baseSize(m) - TAG_BYTES
  for (const u of m.updates) size += updateSize(u)
  return size
}

/** Encodes a datagram body (without the tag: {@link seal} appends it). */
export function encodeMessage(m: Message): Buffer {
  const w = new Writer(messageSize(m))
  w.u8(SWIM_VERSION)
  w.u8(TYPE_CODE[m.type])
  if (m.type !== 'gossip') w.u32(m.seq)
  w.node(m.from)
  if (m.type === 'ping') w.uid(m.targetUid)
  else if (m.type === 'pingReq') w.node(m.target)
  w.u8(m.updates.length)
  for (const u of m.updates) w.update(u)
  return w.buf
}

/** Encodes a push-pull (full state) message body; `seal` adds the tag. */
export function encodePushPull(p: PushPull): Buffer {
  let size = 2 + nodeSize(p.from) + 1 + 4
  for (const u of p.members) size += updateSize(u)
  const w = new Writer(size)
  w.u8(SWIM_VERSION)
  w.u8(p.type === 'pushPull' ? MessageType.PushPull : MessageType.PushPullReply)
  w.node(p.from)
  w.u8(p.join ? 1 : 0)
  w.u32(p.members.length)
  for (const u of p.members) w.update(u)
  return w.buf
}

// ── reader ───────────────────────────────────────────────────────────────────

class Reader {
  off = 0
  readonly buf: Buffer
  readonly end: number
  constructor(buf: Buffer, end: number) {
    this.buf = buf
    this.end = end
  }
  need(n: number): void {
    if (this.off + n > this.end) throw new SwimCodecError('truncated', `needs ${n} bytes at offset ${this.off} of ${this.end}`)
  }
  u8(): number {
    this.need(1)
    return this.buf[this.off++]!
  }
  u16(): number {
    this.need(2)
    const v = this.buf.readUInt16BE(this.off)
    this.off += 2
    return v
  }
  u32(): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.off)
    this.off += 4
    return v
  }
  uid(): string {
    this.need(8)
    const v = this.buf.toString('hex', this.off, this.off + 8)
    this.off += 8
    return v
  }
  node(): SwimNode {
    const len = this.u8()
    this.need(len)
    const host = this.buf.toString('latin1', this.off, this.off + len)
    if (!isValidHost(host)) throw new SwimCodecError('bad-node', 'host is not a hostname or IP address')
    this.off += len
    const port = this.u16()
    if (port === 0) throw new SwimCodecError('bad-node', 'port 0')
    return { host, port, uid: this.uid() }
  }
  update(): Update {
    const code = this.u8()
    const status = STATUS_OF[code]
    if (status === undefined) throw new SwimCodecError('bad-update', `unknown status ${code}`)
    const node = this.node()
    const incarnation = this.u32()
    if (status === 'alive') {
      const len = this.u16()
      if (len > MAX_META_BYTES) throw new SwimCodecError('bad-update', `metadata of ${len} bytes exceeds ${MAX_META_BYTES}`)
      this.need(len)
      // No metadata (the usual case) is the one shared empty array, not a new buffer per update.
      const meta = len === 0 ? EMPTY : Uint8Array.prototype.slice.call(this.buf, this.off, this.off + len)
      this.off += len
      return { status, node, incarnation, meta }
    }
    return { status, node, incarnation, by: this.uid() }
  }
  updates(max: number, wide = false): Update[] {
    const count = wide ? this.u32() : this.u8()
    if (count > max) throw new SwimCodecError('bad-update', `${count} updates exceed ${max}`)
    const out: Update[] = []
    for (let i = 0; i < count; i++) out.push(this.update())
    return out
  }
  done(): void {
    if (this.off !== this.end) throw new SwimCodecError('trailing-bytes', `${this.end - this.off} bytes after the message`)
  }
}

function header(r: Reader): number {
  const version = r.u8()
  if (version !== SWIM_VERSION) throw new SwimCodecError('version', `protocol version ${version}, this node speaks ${SWIM_VERSION}`)
  return r.u8()
}

/** Decodes a datagram body (tag already verified and excluded by `end`). */
export function decodeMessage(buf: Buffer, end = buf.length): Message {
  const r = new Reader(buf, end)
  const type = header(r)
  let m: Message
  switch (type) {
    case MessageType.Ping: {
      const seq = r.u32()
      const from = r.node()
      m = { type: 'ping', seq, from, targetUid: r.uid(), updates: r.updates(MAX_UPDATES) }
      break
    }
    case MessageType.PingReq: {
      const seq = r.u32()
      const from = r.node()
      m = { type: 'pingReq', seq, from, target: r.node(), updates: r.updates(MAX_UPDATES) }
      break
    }
    case MessageType.Ack:
    case MessageType.Nack: {
      const seq = r.u32()
      m = { type: type === MessageType.Ack ? 'ack' : 'nack', seq, from: r.node(), updates: r.updates(MAX_UPDATES) }
      break
    }
    case MessageType.Gossip:
      m = { type: 'gossip', from: r.node(), updates: r.updates(MAX_UPDATES) }
      break
    default:
      throw new SwimCodecError('unknown-type', `message type ${type}`)
  }
  r.done()
  return m
}

/** Decodes a push-pull stream message listing at most `maxMembers` members. */
export function decodePushPull(buf: Buffer, maxMembers: number, end = buf.length): PushPull {
  const r = new Reader(buf, end)
  const type = header(r)
  if (type !== MessageType.PushPull && type !== MessageType.PushPullReply) throw new SwimCodecError('unknown-type', `stream message type ${type}`)
  const from = r.node()
  const join = r.u8() === 1
  const members = r.updates(maxMembers, true)
  r.done()
  return { type: type === MessageType.PushPull ? 'pushPull' : 'pushPullReply', from, join, members }
}

// ── authentication ───────────────────────────────────────────────────────────

/**
 * The key that authenticates datagrams, derived from the cluster name and secret so the secret
 * itself is never used as-is. Without a secret the key is public: the tag then only detects
 * corruption and strays from clusters of another name, as a checksum would (non-loopback nodes
 * require a secret anyway).
 */
export function deriveKey(secret: Buffer | string | undefined, cluster = 'shoal'): Buffer {
  // The default cluster keeps the key of nodes from before cluster names, so they interoperate.
  // Other names are length-prefixed, so no (name, secret) pair can produce another pair's input.
  const context = cluster === 'shoal' ? 'shoal/swim/v1|' : `shoal/swim/v1#${cluster.length}:${cluster}|`
  return createHash('sha256')
    .update(context)
    .update(secret ?? '')
    .digest()
}

/** Appends the tag to a body. */
export function seal(key: Buffer, body: Buffer): Buffer {
  const tag = createHmac('sha256', key).update(body).digest()
  const out = Buffer.allocUnsafe(body.length + TAG_BYTES)
  body.copy(out, 0)
  tag.copy(out, body.length, 0, TAG_BYTES)
  return out
}

/** Verifies the tag; returns the length of the authenticated body or throws `SwimCodecError('auth')`. */
export function open(key: Buffer, packet: Buffer): number {
  if (packet.length < TAG_BYTES + 2) throw new SwimCodecError('truncated', `${packet.length} bytes is shorter than any message`)
  const end = packet.length - TAG_BYTES
  const expected = createHmac('sha256', key).update(packet.subarray(0, end)).digest().subarray(0, TAG_BYTES)
  if (!timingSafeEqual(expected, packet.subarray(end))) throw new SwimCodecError('auth', 'tag does not verify: wrong cluster secret, or corrupted')
  return end
}
