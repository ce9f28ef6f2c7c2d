/**
 * Virtual actors' control messages (control kind `ControlKind.VirtualActors`), MessagePack arrays
 * validated field by field:
 *
 * ```
 * hosts:    [ 1, 0, [[type, role | null], …] (, ready) ]  the types this node hosts; ready: false
 *                                                         while it may not be given shards yet
 * table:    [ 1, 1, role | null, version, by, [uid, …], [ownerIndex | -1, …] ]
 * released: [ 1, 2, role | null, version, by (, [drainingShard, …]) ]
 * ```
 * A hosts message without `ready` is ready (the form nodes without link readiness send and read;
 * a ready node still sends it so, and such a node drops, with a warning, a not-ready one).
 * A release without the sixth element has nothing left draining (the form nodes without per-shard
 * releases send and read).
 * A table lists each owner uid once and gives, per shard, its index in that list (-1: no owner).
 * @module
 */
import { ControlDecodeError, ControlReader, controlPackr } from '../control/ControlCodec.ts'
import type { ShardTable, TableKey } from './ShardTable.ts'

const VERSION = 1
const HOSTS = 0
const TABLE = 1
const RELEASED = 2
const MAX_TYPES = 1024
const MAX_SHARDS = 65_536
const MAX_OWNERS = 10_000
const NAME = /^[A-Za-z0-9_.$:-]{1,128}$/

/** A virtual-actor control message that does not decode or validate; dropped and logged. */
export class VirtualDecodeError extends ControlDecodeError {}

const read: ControlReader = new ControlReader('virtual-actor message', VERSION, VirtualDecodeError)

/** A decoded message. `role` is undefined for types hosted without a role. */
export type VirtualMessage =
  | {
      readonly kind: 'hosts'
      readonly types: ReadonlyArray<{ readonly type: string; readonly role: string | undefined }>
      /** Whether the sender may be given shards yet (see `Placement.readyToHost`). */
      readonly ready: boolean
    }
  | { readonly kind: 'table'; readonly role: string | undefined; readonly table: ShardTable }
  | { readonly kind: 'released'; readonly role: string | undefined; readonly table: TableKey; readonly draining: readonly number[] }

export function encodeHosts(types: ReadonlyArray<{ type: string; role: string | undefined }>, ready = true): Buffer {
  const head = [VERSION, HOSTS, types.map((t) => [t.type, t.role ?? null])]
  return controlPackr.pack(ready ? head : [...head, false])
}

export function encodeTable(role: string | undefined, t: ShardTable): Buffer {
  const uids = [...new Set(t.owners.filter((o): o is string => o !== undefined))]
  const index = new Map(uids.map((u, i) => [u, i]))
  return controlPackr.pack([VERSION, TABLE, role ?? null, t.version, t.by, uids, t.owners.map((o) => (o === undefined ? -1 : index.get(o)!))])
}

export function encodeReleased(role: string | undefined, t: TableKey, draining: Iterable<number>): Buffer {
  const head = [VERSION, RELEASED, role ?? null, t.version, t.by]
  const shards = [...draining]
  return controlPackr.pack(shards.length === 0 ? head : [...head, shards])
}

function readName(x: unknown, what: string): string {
  if (typeof x !== 'string' || !NAME.test(x)) read.fail(`bad ${what}`)
  return x
}

function readRole(x: unknown): string | undefined {
  return x === null ? undefined : readName(x, 'role')
}

function readShard(x: unknown): number {
  if (!Number.isInteger(x) || (x as number) < 0 || (x as number) >= MAX_SHARDS) read.fail('a shard number is out of range')
  return x as number
}

function readBy(x: unknown): string {
  if (x === '') return ''
  return read.readUid(x)
}

/** Decodes a message; throws VirtualDecodeError, never anything else. */
export function decodeVirtual(bytes: Buffer): VirtualMessage {
  const raw = read.open(bytes)
  switch (raw[1]) {
    case HOSTS: {
      if (raw.length !== 3 && raw.length !== 4) read.fail('a hosts message is a 3- or 4-element array')
      if (raw.length === 4 && typeof raw[3] !== 'boolean') read.fail('a hosts message says whether it is ready with true or false')
      const types = read.readArray(raw[2], MAX_TYPES, 'types').map((e) => {
        if (!Array.isArray(e) || e.length !== 2) read.fail('a hosted type is [type, role]')
        return { type: readName(e[0], 'type'), role: readRole(e[1]) }
      })
      return { kind: 'hosts', types, ready: raw.length === 3 || raw[3] === true }
    }
    case TABLE: {
      if (raw.length !== 7) read.fail('a table is a 7-element array')
      const uids = read.readArray(raw[5], MAX_OWNERS, 'owners').map((u) => read.readUid(u))
      const owners = read.readArray(raw[6], MAX_SHARDS, 'shards').map((i) => {
        if (i === -1) return undefined
        if (!Number.isInteger(i) || (i as number) < 0 || (i as number) >= uids.length) read.fail('a shard owner index is out of range')
        return uids[i as number]
      })
      if (owners.length === 0) read.fail('a table has no shards')
      return { kind: 'table', role: readRole(raw[2]), table: { version: read.readSeq(raw[3], 1, 'a table version'), by: readBy(raw[4]), owners } }
    }
    case RELEASED: {
      if (raw.length !== 5 && raw.length !== 6) read.fail('a release is a 5- or 6-element array')
      const draining = raw.length === 5 ? [] : read.readArray(raw[5], MAX_SHARDS, 'draining shards').map(readShard)
      return { kind: 'released', role: readRole(raw[2]), table: { version: read.readSeq(raw[3], 0, 'a table version'), by: readBy(raw[4]) }, draining }
    }
    default:
      return read.fail('unknown virtual-actor message')
  }
}
