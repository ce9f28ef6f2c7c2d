/**
 * Membership gossip on the wire: a MessagePack array, validated field by field on receipt (the
 * sender is authenticated by the transport, but a bug or a different version must not corrupt
 * membership). Control-message kind `ControlKind.Gossip`.
 *
 * ```
 * [ 1 (version), fromUid, [[uid, name, host, port, status, upNumber, roles[]], …], [[uid, counter], …], [seenUid, …] ]
 * ```
 * @module
 */
import { ControlDecodeError, ControlReader, controlPackr } from '../control/ControlCodec.ts'
import type { GossipState } from './Gossip.ts'
import { type Member, type MembershipStatus, STATUS_RANK } from './Member.ts'

const VERSION = 1
const MAX_MEMBERS = 10_000
const MAX_ROLES = 32
const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/

/** Gossip that does not decode or validate; dropped and logged. */
export class GossipDecodeError extends ControlDecodeError {}

const read: ControlReader = new ControlReader('gossip', VERSION, GossipDecodeError)

/** Encodes a gossip state sent by `from`. */
export function encodeGossip(from: string, g: GossipState): Buffer {
  const members = [...g.members.values()].map((m) => [
    m.node.uid,
    m.node.endpoint.name,
    m.node.endpoint.host,
    m.node.endpoint.port,
    m.status,
    m.upNumber,
    [...m.roles],
  ])
  return controlPackr.pack([VERSION, from, members, [...g.version], [...g.seen]])
}

/** Decodes and validates gossip; throws GossipDecodeError, never anything else. */
export function decodeGossip(bytes: Buffer): { from: string; gossip: GossipState } {
  const raw = read.open(bytes)
  if (raw.length !== 5) read.fail('gossip is not a 5-element array')
  const [, from, members, vector, seen] = raw
  const fromUid = read.readUid(from)
  const out = new Map<string, Member>()
  for (const m of read.readArray(members, MAX_MEMBERS, 'members')) {
    const member = decodeMember(m)
    out.set(member.node.uid, member)
  }
  const v = new Map<string, number>()
  for (const e of read.readArray(vector, MAX_MEMBERS * 4, 'the version vector')) {
    if (!Array.isArray(e) || e.length !== 2) read.fail('a version vector entry is [uid, counter]')
    const counter = read.readSeq(e[1], 0, 'a version counter')
    v.set(read.readUid(e[0]), counter)
  }
  return { from: fromUid, gossip: { members: out, version: v, seen: new Set(read.readArray(seen, MAX_MEMBERS, 'seen').map((x) => read.readUid(x))) } }
}

function decodeMember(m: unknown): Member {
  if (!Array.isArray(m) || m.length !== 7) read.fail('a member must be a 7-element array')
  const [id, name, host, port, status, upNumber, roles] = m as unknown[]
  const node = read.readNode(id, name, host, port)
  if (typeof status !== 'string' || !Object.hasOwn(STATUS_RANK, status)) read.fail('bad status')
  const up = read.readSeq(upNumber, 0, 'an up-number')
  if (!Array.isArray(roles) || roles.length > MAX_ROLES || !roles.every((r) => typeof r === 'string' && ROLE.test(r))) read.fail('bad roles')
  return { node, status: status as MembershipStatus, upNumber: up, roles: roles as string[] }
}
