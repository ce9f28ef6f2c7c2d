/**
 * ActorId: the address of one actor incarnation anywhere in a cluster.
 *
 * `shoal://<system>@<host>:<port>/<node uid>/<path>#<incarnation>`, for example
 * `shoal://sea_1@127.0.0.1:2550/3f9a0c1d2e4b5a69/user/Island-1#2894023311`. The host is one
 * {@link isValidHost} accepts, IPv6 in brackets: `shoal://sea@[fe80::1%eth0]:2550/…`.
 *
 * `toString()` and {@link ActorId.parse} round-trip, so ids can travel out of band
 * (a database row, a URL, a log line) and be resolved later with `system.resolve`.
 *
 * @module
 */
import { ConfigError } from '../errors.ts'
import { type ClusterNode, endpointKey, isValidHost, isValidSystemName, isValidUid } from './ClusterNode.ts'

const SLASH = 0x2f
const MAX_SEGMENT = 128
/** 1 for the characters a path segment may hold: letters, digits and _ . $ ~ -. */
const SEGMENT_CHAR = new Uint8Array(128)
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$~-') SEGMENT_CHAR[c.charCodeAt(0)] = 1
/** Hosts are checked by isValidHost; here only: an IPv6 host in brackets, any other without. */
const ID = /^shoal:\/\/([A-Za-z0-9_.-]{1,64})@(\[[^[\]]{1,253}\]|[^[\]:/]{1,253}):(\d{1,5})\/([0-9a-f]{16})(\/[^#]{1,1024})#(\d{1,10})$/

/** Largest actor incarnation (a random uint32). Incarnation 0 marks a well-known actor. */
export const MAX_INCARNATION = 0xffffffff

export class ActorId {
  /** The node incarnation hosting the actor. */
  readonly node: ClusterNode
  /** Slash-separated path, e.g. `/user/Island-1`. Unique per node among live actors. */
  readonly path: string
  /** Random per spawn, so a new actor at a reused path is not confused with a stopped one; 0 = well-known. */
  readonly incarnation: number
  #text: string | undefined

  constructor(node: ClusterNode, path: string, incarnation: number) {
    if (!ActorId.isValidPath(path))
      throw new ConfigError(`Invalid actor path ${JSON.stringify(path)}: use /segment/segment with letters, digits and _ . $ ~ -.`)
    if (!Number.isInteger(incarnation) || incarnation < 0 || incarnation > MAX_INCARNATION) {
      throw new ConfigError(`Invalid actor incarnation ${incarnation}: expected an integer 0..${MAX_INCARNATION}.`)
    }
    this.node = node
    this.path = path
    this.incarnation = incarnation
  }

  static isValidPath(path: string): boolean {
    if (typeof path !== 'string' || path.length < 2 || path.length > 1024 || path.charCodeAt(0) !== SLASH) return false
    // One pass over the characters (every id made checks its path: no split, no regex per segment).
    let segment = 0
    for (let i = 1; i < path.length; i++) {
      const c = path.charCodeAt(i)
      if (c === SLASH) {
        if (segment === 0) return false
        segment = 0
      } else if (c < 128 && SEGMENT_CHAR[c] === 1 && ++segment <= MAX_SEGMENT) continue
      else return false
    }
    return segment > 0
  }

  /** Parses the output of {@link ActorId.toString}; throws a `ConfigError` naming what is wrong. */
  static parse(text: string): ActorId {
    const m = typeof text === 'string' ? ID.exec(text) : null
    if (!m)
      throw new ConfigError(`Not an actor id: ${JSON.stringify(String(text).slice(0, 200))}. Expected shoal://name@host:port/<16 hex uid>/path#incarnation.`)
    const [, name, rawHost, port, uid, path, inc] = m as unknown as [string, string, string, string, string, string, string]
    const bracketed = rawHost.startsWith('[')
    const host = bracketed ? rawHost.slice(1, -1) : rawHost
    // As endpointKey prints them: brackets exactly around IPv6 hosts, so the text round-trips.
    if (!isValidHost(host) || bracketed !== host.includes(':'))
      throw new ConfigError(`Actor id ${text} has an invalid host ${JSON.stringify(rawHost)}: a host name, an IPv4 address, or an IPv6 address in brackets.`)
    const portNumber = Number(port)
    if (portNumber < 1 || portNumber > 65535) throw new ConfigError(`Actor id ${text} has port ${port}, outside 1..65535.`)
    if (!isValidSystemName(name) || !isValidUid(uid)) throw new ConfigError(`Actor id ${text} has an invalid system name or uid.`)
    return new ActorId({ endpoint: { name, host, port: portNumber }, uid }, path, Number(inc))
  }

  /** Same node incarnation, path and actor incarnation (the system name is ignored, as for endpoints). */
  equals(other: ActorId): boolean {
    return (
      this.incarnation === other.incarnation &&
      this.path === other.path &&
      this.node.uid === other.node.uid &&
      this.node.endpoint.port === other.node.endpoint.port &&
      this.node.endpoint.host === other.node.endpoint.host
    )
  }

  toString(): string {
    return (this.#text ??= `${ActorId.nodePrefix(this.node)}${this.path}#${this.incarnation}`)
  }

  /** The part of `toString()` every actor of `node` shares: `shoal://name@host:port/uid`. */
  static nodePrefix(node: ClusterNode): string {
    return `shoal://${node.endpoint.name}@${endpointKey(node.endpoint)}/${node.uid}`
  }

  toJSON(): string {
    return this.toString()
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `ActorId(${this.toString()})`
  }
}
