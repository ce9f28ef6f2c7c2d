/**
 * SWIM members: who they are ({@link SwimNode}), what is believed about them ({@link SwimMemberState}),
 * and the order in which beliefs supersede each other.
 *
 * The order is memberlist's, not the Swift reference's: `alive(n) < suspect(n) < dead(n) < left(n) <
 * alive(n+1)`. Dead carries an incarnation and is not absorbing, so a member wrongly declared dead
 * (a stalled process, a healed partition) refutes it by raising its incarnation, where an absorbing
 * dead would tombstone a healthy process for good.
 * @module
 */

/** A SWIM peer address; a seed is known only by this. */
export interface SwimAddress {
  readonly host: string
  readonly port: number
}

/** One incarnation of a process at an address: `uid` is 16 lower-case hex digits, as a ClusterNode's. */
export interface SwimNode extends SwimAddress {
  readonly uid: string
}

/** `alive`, `suspect` (failed probes, may refute), `dead` (failed, not refuted in time), `left` (said goodbye). */
export type SwimStatus = 'alive' | 'suspect' | 'dead' | 'left'

/** What one node believes about a member. */
export interface SwimMemberState {
  readonly node: SwimNode
  readonly status: SwimStatus
  /** Raised only by the member itself, to refute suspicion or death. */
  readonly incarnation: number
  /** Opaque application metadata (roles, versions); at most `maxMetaBytes`. Carried by alive updates. */
  readonly meta: Uint8Array
}

/** A uid that matches any incarnation: a seed or a ping whose target's uid is not known yet. */
export const ANY_UID = '0000000000000000'

const RANK: Record<SwimStatus, number> = { alive: 0, suspect: 1, dead: 2, left: 3 }

/** True if `a` (status, incarnation) strictly supersedes `b`. */
export function supersedes(a: { status: SwimStatus; incarnation: number }, b: { status: SwimStatus; incarnation: number }): boolean {
  if (a.incarnation !== b.incarnation) return a.incarnation > b.incarnation
  return RANK[a.status] > RANK[b.status]
}

/** `host:port`, IPv6 bracketed. */
export function addressKey(a: SwimAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

/** `host:port#uid`: the key of a member (one incarnation of a process). */
export function nodeKey(n: SwimNode): string {
  return `${addressKey(n)}#${n.uid}`
}

/** Keys of node objects already seen (their fields are read-only): lookups that repeat skip the string building. */
const keys = new WeakMap<SwimNode, string>()

/** {@link nodeKey}, remembered per node object: for callers that ask about the same node objects often. */
export function cachedNodeKey(n: SwimNode): string {
  let key = keys.get(n)
  if (key === undefined) keys.set(n, (key = nodeKey(n)))
  return key
}

/** True for the statuses that still take part in probing and gossip. */
export function isLive(status: SwimStatus): boolean {
  return status === 'alive' || status === 'suspect'
}
