/**
 * How a virtual actor is addressed: an `ActorId` on the reserved node {@link ANYWHERE}, path
 * `/virtual/<type>/<encoded id>`, incarnation 0. A ref to it addresses the id, not an activation:
 * on whichever node holds the ref, calls go to that node's virtual-actor router, which finds the
 * owner from the shard table. Such refs serialize and travel like any other.
 * @module
 */
import { ActorId } from '../actor/ActorId.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { ANYWHERE_UID } from '../actor/LocalActors.ts'
import { ConfigError } from '../errors.ts'

/** The reserved node of virtual actor ids: no node has this uid. */
export const ANYWHERE: ClusterNode = { endpoint: { name: 'virtual', host: 'virtual', port: 1 }, uid: ANYWHERE_UID }

/** Path prefix of every virtual actor id. */
export const VIRTUAL_PREFIX = '/virtual/'

/** Longest id, in characters. */
export const MAX_ID_LENGTH = 512

const PLAIN = /^[A-Za-z0-9_.$-]{1,128}$/
const TYPE = /^[A-Za-z0-9_.$-]{1,128}$/
/** Segment length of an encoded id (paths allow 128 per segment). */
const CHUNK = 120

/** Checks a virtual actor id: a non-empty string of at most 512 characters. */
export function checkVirtualId(type: string, id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH)
    throw new ConfigError(
      `A virtual actor id must be a non-empty string of at most ${MAX_ID_LENGTH} characters; got ${typeof id === 'string' ? `${id.length} characters` : typeof id} for type ${type}.`,
    )
}

/** Checks a virtual actor type name (it becomes a path segment). */
export function checkVirtualType(type: string): void {
  if (!TYPE.test(type)) throw new ConfigError(`Virtual actor type ${JSON.stringify(type)} must be 1-128 letters, digits or _ . $ -.`)
}

/** The path of (type, id): ids made of path-safe characters as they are, others base64url in segments after `~`. */
export function virtualPath(type: string, id: string): string {
  if (PLAIN.test(id)) return `${VIRTUAL_PREFIX}${type}/${id}`
  const b64 = Buffer.from(id, 'utf8').toString('base64url')
  const segments: string[] = []
  for (let i = 0; i < b64.length; i += CHUNK) segments.push(b64.slice(i, i + CHUNK))
  return `${VIRTUAL_PREFIX}${type}/~${segments.join('/')}`
}

/** The (type, id) of a virtual actor path, or undefined if it is not one. */
export function parseVirtualPath(path: string): { type: string; id: string } | undefined {
  if (!path.startsWith(VIRTUAL_PREFIX)) return undefined
  const rest = path.slice(VIRTUAL_PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) return undefined
  const type = rest.slice(0, slash)
  const encoded = rest.slice(slash + 1)
  if (!encoded.startsWith('~')) return PLAIN.test(encoded) ? { type, id: encoded } : undefined
  const id = Buffer.from(encoded.slice(1).replaceAll('/', ''), 'base64url').toString('utf8')
  return id.length > 0 && id.length <= MAX_ID_LENGTH ? { type, id } : undefined
}

/** The id of virtual actor (type, id). */
export function virtualActorId(type: string, id: string): ActorId {
  return new ActorId(ANYWHERE, virtualPath(type, id), 0)
}

/** True for the id of a virtual actor (on the reserved node). */
export function isVirtualActorId(id: ActorId): boolean {
  return id.node.uid === ANYWHERE.uid
}
