/**
 * Cluster members: a node (endpoint and uid), a status that only moves forward, an up-number
 * (age: assigned by the leader when the member becomes up) and roles. Reachability is separate:
 * it comes from failure detection and may flip back and forth.
 * @module
 */
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { endpointKey } from '../actor/ClusterNode.ts'

/**
 * `joining` (asked to join) → `up` (full member, set by the leader) → `leaving` (asked to leave)
 * → `exiting` (its plugins handed over) → `down` (declared gone) → `removed` (forgotten, set by the
 * leader once everyone has seen it). Statuses never move backwards; `down` may follow any of the
 * first four.
 */
export type MembershipStatus = 'joining' | 'up' | 'leaving' | 'exiting' | 'down' | 'removed'

/** Whether this node can currently reach a member (from SWIM); may flip back and forth. */
export type Reachability = 'reachable' | 'unreachable'

/** The forward order of statuses. */
export const STATUS_RANK: Readonly<Record<MembershipStatus, number>> = { joining: 0, up: 1, leaving: 2, exiting: 3, down: 4, removed: 5 }

/** A member as replicated by membership gossip. */
export interface Member {
  readonly node: ClusterNode
  readonly status: MembershipStatus
  /** Age: 1 for the first member ever up, 2 for the next…; 0 until up. Lower is older. */
  readonly upNumber: number
  readonly roles: readonly string[]
}

/** A member as seen from one node: with its reachability from there. */
export interface ClusterMember extends Member {
  readonly reachability: Reachability
  /**
   * Members (`name@host:port#uid`) whose heartbeats to this one stalled: direct unreachability,
   * which SWIM's indirect probes can hide (a bridge partition). Absent when nobody observes it.
   */
  readonly observedBy?: readonly string[]
}

/** The later of two statuses. */
export function laterStatus(a: MembershipStatus, b: MembershipStatus): MembershipStatus {
  return STATUS_RANK[a] >= STATUS_RANK[b] ? a : b
}

/** Address order: host, then port as a number. The leader is the lowest. */
export function compareAddress(a: ClusterNode, b: ClusterNode): number {
  const ha = a.endpoint.host
  const hb = b.endpoint.host
  if (ha !== hb) return ha < hb ? -1 : 1
  return a.endpoint.port - b.endpoint.port || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0)
}

/** `host:port`, the form used by the CLI and the management endpoint. */
export function memberAddress(m: { node: ClusterNode }): string {
  return endpointKey(m.node.endpoint)
}

/** Statuses that count as members of the cluster for quorum decisions. */
export function isActive(status: MembershipStatus): boolean {
  return status === 'up' || status === 'leaving'
}

/** Statuses that still take part (must see gossip for convergence). */
export function isPresent(status: MembershipStatus): boolean {
  return STATUS_RANK[status] < STATUS_RANK.down
}
