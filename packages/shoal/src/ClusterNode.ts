/**
 * Node identity: an {@link Endpoint} (where a node listens) and a {@link ClusterNode}
 * (one incarnation of a process at that endpoint, told apart by a random `uid`).
 *
 * A process restarted on the same host and port gets a new uid and is therefore a
 * different node: calls addressed to the old incarnation never reach the new one.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'

/** Where a node listens. Equality is host and port; the system name is informational. */
export interface Endpoint {
  readonly name: string
  readonly host: string
  readonly port: number
}

/** One incarnation of a node: its endpoint plus a random 64-bit uid (16 lower-case hex digits). */
export interface ClusterNode {
  readonly endpoint: Endpoint
  readonly uid: string
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/
const UID = /^[0-9a-f]{16}$/

/** A fresh random node uid. */
export function newNodeUid(): string {
  return randomBytes(8).toString('hex')
}

/** Letters, digits, `_ . -`, 1 to 64 characters. */
export function isValidSystemName(name: string): boolean {
  return NAME.test(name)
}

export function isValidUid(uid: string): boolean {
  return UID.test(uid)
}

/** `host:port` with IPv6 hosts bracketed; the key under which associations are kept. */
export function endpointKey(e: { host: string; port: number }): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`
}

/** `name@host:port`. */
export function formatEndpoint(e: Endpoint): string {
  return `${e.name}@${endpointKey(e)}`
}

/** `name@host:port#uid`, for logs and error messages. */
export function formatNode(n: ClusterNode): string {
  return `${formatEndpoint(n.endpoint)}#${n.uid}`
}
