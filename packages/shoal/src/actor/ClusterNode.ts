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
import { isIPv6 } from 'node:net'
import { ConfigError } from '../errors.ts'

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
/** Longest host, in characters (a DNS name in text form, RFC 1035). */
export const MAX_HOST_LENGTH = 253
const HOST_NAME = /^[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?$/
const ZONE = /^[A-Za-z0-9_.-]{1,64}$/

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

/**
 * Whether `host` can be a node's host: the one rule for endpoints, actor ids, the handshake, refs
 * in payloads and every control message. At most 253 characters, and one of:
 * - a host name: dot-separated labels of 1-63 letters, digits, `_` and `-`, optionally ending in a
 *   dot. `_` is legal in DNS and /etc/hosts (`my_host`) though not in RFC 952 host names, so it
 *   is accepted. IPv4 addresses are such names.
 * - an IPv6 address, unbracketed, optionally with a zone: `fe80::1%eth0` (zone: 1-64 letters,
 *   digits, `_ . -`).
 * Never brackets, a port, whitespace, `/ @ # [ ]` or non-ASCII (use the punycode form).
 */
export function isValidHost(host: unknown): host is string {
  if (typeof host !== 'string' || host.length === 0 || host.length > MAX_HOST_LENGTH) return false
  if (!host.includes(':')) return HOST_NAME.test(host)
  const zone = host.indexOf('%')
  if (zone < 0) return isIPv6(host)
  return isIPv6(host.slice(0, zone)) && ZONE.test(host.slice(zone + 1))
}

/** The host forms a node may bind and advertise, for error messages. */
export const NODE_HOST_FORMS =
  'an IPv4 address, an IPv6 address without brackets or zone, or a host name (dot-separated labels of letters, digits, _ and -; at most 253 characters)'

/**
 * Throws a `ConfigError` naming `host` and the accepted forms unless a node may bind and advertise
 * it: {@link isValidHost}, without an IPv6 zone. `what` names the setting (`--host`, `SWIM host`).
 * A zone (`fe80::1%eth0`) names an interface of this machine only: other nodes could not dial it
 * with it, so it is refused here, at start; received addresses with a zone are still parsed.
 */
export function checkNodeHost(host: unknown, what = 'Host'): asserts host is string {
  if (!isValidHost(host)) throw new ConfigError(`${what} ${JSON.stringify(host)} is not a host a node can use: use ${NODE_HOST_FORMS}.`)
  const zone = host.indexOf('%')
  if (zone >= 0) {
    throw new ConfigError(
      `${what} ${JSON.stringify(host)} has an IPv6 zone (${host.slice(zone)}), which names an interface of this machine only, so other nodes could not reach it at that address: use ${NODE_HOST_FORMS}.`,
    )
  }
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
