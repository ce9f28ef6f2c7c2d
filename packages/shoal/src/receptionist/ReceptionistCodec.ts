/**
 * Receptionist replication on the wire: MessagePack arrays, validated field by field. Control-
 * message kind `ControlKind.Receptionist`.
 *
 * ```
 * digest:   [1 (version), 0, reply 0|1, [[owner uid, seq], …]]
 * ops:      [1, 1, owner, [[seq, 1 add | 0 remove, key, local actor], …]]
 * snapshot: [1, 2, owner, seq, part, parts, [[key, local actor], …]]
 * owner = [uid, system name, host, port]; local actor = "path#incarnation" on the owner's node
 * ```
 * Actors travel relative to their owner, which keeps messages small and means a node can only
 * ever register its own actors: the receiver rebuilds the full id from the owner.
 * @module
 */
import { ActorId, MAX_INCARNATION } from '../actor/ActorId.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { ControlDecodeError, ControlReader, controlPackr } from '../control/ControlCodec.ts'
import type { Delta, Op, Registration } from './Registrations.ts'

const VERSION = 1
const MAX_ITEMS = 4096
const MAX_OWNERS = 10_000
/** Parts of one owner's snapshot: with maxBatch 256, a million registrations. */
const MAX_PARTS = 4096
/** Longest reception key, in UTF-16 code units. */
export const MAX_KEY_LENGTH = 256
const LOCAL = /^(\/[^#]{1,1024})#(\d{1,10})$/

/** A message that does not decode or validate; dropped and logged. */
export class ReceptionistDecodeError extends ControlDecodeError {}

const read: ControlReader = new ControlReader('receptionist message', VERSION, ReceptionistDecodeError)

/** What arrives on the receptionist's control kind. */
export type ReceptionistMessage =
  | { readonly kind: 'digest'; readonly reply: boolean; readonly digest: Map<string, number> }
  | { readonly kind: 'delta'; readonly owner: ClusterNode; readonly delta: Delta }

/** Encodes a digest (`reply`: answering one, so the peer does not answer again). */
export function encodeDigest(digest: ReadonlyMap<string, number>, reply: boolean): Buffer {
  return controlPackr.pack([VERSION, 0, reply ? 1 : 0, [...digest]])
}

/** Encodes a delta about `owner`; its actors must be actors of `owner` (full id strings). */
export function encodeDelta(owner: ClusterNode, d: Delta): Buffer {
  const prefix = ActorId.nodePrefix(owner).length
  const o = [owner.uid, owner.endpoint.name, owner.endpoint.host, owner.endpoint.port]
  if (d.kind === 'ops') return controlPackr.pack([VERSION, 1, o, d.ops.map((op) => [op.seq, op.kind === 'add' ? 1 : 0, op.key, op.actor.slice(prefix)])])
  return controlPackr.pack([VERSION, 2, o, d.seq, d.part, d.parts, d.entries.map((e) => [e.key, e.actor.slice(prefix)])])
}

/** Decodes and validates a message; throws ReceptionistDecodeError, never anything else. */
export function decodeReceptionist(bytes: Buffer): ReceptionistMessage {
  const raw = read.open(bytes)
  if (raw[1] === 0 && raw.length === 4) return { kind: 'digest', reply: raw[2] === 1, digest: decodeDigest(raw[3]) }
  if (raw[1] === 1 && raw.length === 4) {
    const owner = decodeOwner(raw[2])
    const prefix = ActorId.nodePrefix(owner)
    const ops = items(raw[3]).map((x): Op => {
      if (!Array.isArray(x) || x.length !== 4 || (x[1] !== 0 && x[1] !== 1)) read.fail('an op is [seq, 0|1, key, actor]')
      return { seq: read.readSeq(x[0], 1), kind: x[1] === 1 ? 'add' : 'remove', key: key(x[2]), actor: prefix + local(x[3]) }
    })
    return { kind: 'delta', owner, delta: { owner: owner.uid, kind: 'ops', ops } }
  }
  if (raw[1] === 2 && raw.length === 7) {
    const owner = decodeOwner(raw[2])
    const prefix = ActorId.nodePrefix(owner)
    const parts = read.readSeq(raw[5], 1, 'a part count')
    if (parts > MAX_PARTS) read.fail(`a snapshot has at most ${MAX_PARTS} parts`)
    const part = read.readSeq(raw[4], 0, 'a part number')
    if (part >= parts) read.fail('snapshot part out of range')
    const entries = items(raw[6]).map((x): Registration => {
      if (!Array.isArray(x) || x.length !== 2) read.fail('an entry is [key, actor]')
      return { key: key(x[0]), actor: prefix + local(x[1]) }
    })
    return { kind: 'delta', owner, delta: { owner: owner.uid, kind: 'snapshot', seq: read.readSeq(raw[3]), part, parts, entries } }
  }
  read.fail('unknown receptionist message')
}

/** Whether `k` can be a reception key: 1..256 characters, no control characters. */
export function isValidKey(k: unknown): k is string {
  // eslint-disable-next-line no-control-regex
  return typeof k === 'string' && k.length > 0 && k.length <= MAX_KEY_LENGTH && !/[\u0000-\u001f\u007f]/.test(k) && !LONE_SURROGATE.test(k)
}

/** Half of a UTF-16 pair without its other half: not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

function decodeDigest(x: unknown): Map<string, number> {
  const out = new Map<string, number>()
  for (const e of read.readArray(x, MAX_OWNERS, 'a digest')) {
    if (!Array.isArray(e) || e.length !== 2) read.fail('a digest entry is [uid, seq]')
    out.set(read.readUid(e[0]), read.readSeq(e[1]))
  }
  return out
}

function decodeOwner(x: unknown): ClusterNode {
  if (!Array.isArray(x) || x.length !== 4) read.fail('an owner is [uid, name, host, port]')
  const [uid, name, host, port] = x as unknown[]
  return read.readNode(uid, name, host, port)
}

function items(x: unknown): unknown[] {
  return read.readArray(x, MAX_ITEMS, 'a delta')
}

function key(x: unknown): string {
  if (!isValidKey(x)) read.fail('a key is 1..256 characters without control characters')
  return x
}

function local(x: unknown): string {
  const m = typeof x === 'string' ? LOCAL.exec(x) : null
  if (!m || !ActorId.isValidPath(m[1]!) || Number(m[2]) > MAX_INCARNATION) read.fail('bad actor path#incarnation')
  return x as string
}
