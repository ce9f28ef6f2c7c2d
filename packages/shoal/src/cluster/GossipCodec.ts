/**
 * Membership gossip on the wire: a MessagePack array, validated field by field on receipt (the
 * sender is authenticated by the transport, but a bug or a different version must not corrupt
 * membership). Control-message kind 2.
 *
 * ```
 * [ 1 (version), fromUid, [[uid, name, host, port, status, upNumber, roles[]], …], [[uid, counter], …], [seenUid, …] ]
 * ```
 * @module
 */
import { Packr } from 'msgpackr'
import { isValidSystemName, isValidUid } from '../ClusterNode.ts'
import type { GossipState } from './Gossip.ts'
import { type Member, type MemberStatus, STATUS_RANK } from './Member.ts'

/** Control-message kind of membership gossip. */
export const GOSSIP_CONTROL_KIND = 2
const VERSION = 1
const MAX_MEMBERS = 10_000
const MAX_ROLES = 32
const ROLE = /^[A-Za-z0-9_.:-]{1,64}$/
const HOST = /^[A-Za-z0-9.:_%-]{1,253}$/

const packr = new Packr({ useRecords: false, moreTypes: false })

/** Gossip that does not decode or validate; dropped and logged. */
export class GossipDecodeError extends Error {}

/** Encodes a gossip state sent by `from`. */
export function encodeGossip(from: string, g: GossipState): Buffer {
  const members = [...g.members.values()].map((m) => [m.node.uid, m.node.endpoint.name, m.node.endpoint.host, m.node.endpoint.port, m.status, m.upNumber, [...m.roles]])
  return packr.pack([VERSION, from, members, [...g.version], [...g.seen]])
}

/** Decodes and validates gossip; throws GossipDecodeError, never anything else. */
export function decodeGossip(bytes: Buffer): { from: string; gossip: GossipState } {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (e) {
    throw new GossipDecodeError(`undecodable gossip: ${(e as Error).message}`)
  }
  if (!Array.isArray(raw) || raw.length !== 5) throw new GossipDecodeError('gossip is not a 5-element array')
  const [version, from, members, vector, seen] = raw as unknown[]
  if (version !== VERSION) throw new GossipDecodeError(`gossip version ${typeof version === 'number' ? version : typeof version}, this node speaks ${VERSION}`)
  const fromUid = uid(from)
  if (!Array.isArray(members) || members.length > MAX_MEMBERS) throw new GossipDecodeError('members must be an array of at most 10,000')
  const out = new Map<string, Member>()
  for (const m of members) {
    const member = decodeMember(m)
    out.set(member.node.uid, member)
  }
  if (!Array.isArray(vector) || vector.length > MAX_MEMBERS * 4) throw new GossipDecodeError('version vector must be an array')
  const v = new Map<string, number>()
  for (const e of vector) {
    if (!Array.isArray(e) || e.length !== 2 || !Number.isSafeInteger(e[1]) || (e[1] as number) < 0) throw new GossipDecodeError('bad version vector entry')
    v.set(uid(e[0]), e[1] as number)
  }
  if (!Array.isArray(seen) || seen.length > MAX_MEMBERS) throw new GossipDecodeError('seen must be an array')
  return { from: fromUid, gossip: { members: out, version: v, seen: new Set(seen.map(uid)) } }
}

function uid(x: unknown): string {
  if (typeof x !== 'string' || !isValidUid(x)) throw new GossipDecodeError('a uid must be 16 lower-case hex digits')
  return x
}

function decodeMember(m: unknown): Member {
  if (!Array.isArray(m) || m.length !== 7) throw new GossipDecodeError('a member must be a 7-element array')
  const [id, name, host, port, status, upNumber, roles] = m as unknown[]
  if (typeof name !== 'string' || !isValidSystemName(name)) throw new GossipDecodeError('bad system name')
  if (typeof host !== 'string' || !HOST.test(host)) throw new GossipDecodeError('bad host')
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) throw new GossipDecodeError('bad port')
  if (typeof status !== 'string' || !Object.hasOwn(STATUS_RANK, status)) throw new GossipDecodeError('bad status')
  if (!Number.isSafeInteger(upNumber) || (upNumber as number) < 0) throw new GossipDecodeError('bad up-number')
  if (!Array.isArray(roles) || roles.length > MAX_ROLES || !roles.every((r) => typeof r === 'string' && ROLE.test(r))) throw new GossipDecodeError('bad roles')
  return { node: { endpoint: { name, host, port: port as number }, uid: uid(id) }, status: status as MemberStatus, upNumber: upNumber as number, roles: roles as string[] }
}
