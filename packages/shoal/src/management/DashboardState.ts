/**
 * What `GET /dashboard/state` answers: the cluster as this node sees it, read when asked (the page
 * asks every 2 s while it is visible, and nothing is sampled otherwise). Members with status,
 * reachability and who observes them unreachable, roles, age, the leader and the oldest; and each
 * reachable member's own {@link NodeStatus} (actors by type, calls by outcome and latency, the
 * methods it served, singletons, virtual-actor shards and ids, associations, refusals, memory),
 * asked over the call path. Counters are cumulative: the page takes differences between two
 * answers for rates and the p99 of the interval.
 * @module
 */
import type { ClusterMember } from '../cluster/Member.ts'
import { type NodeStatus, readNodeStatuses } from '../observability/NodeStatus.ts'
import type { ClusterSystem } from '../system/ClusterSystem.ts'

export interface DashboardMember {
  readonly node: string
  readonly name: string
  readonly status: string
  readonly reachability: string
  readonly observedBy: readonly string[]
  readonly roles: readonly string[]
  readonly upNumber: number
}

export interface DashboardState {
  /** The node that answered (whose view of membership this is). */
  readonly node: string
  /** ms since the epoch when read (the page's clock for rates). */
  readonly at: number
  readonly leader: string | null
  readonly oldest: string | null
  readonly members: readonly DashboardMember[]
  /**
   * Every member's own report (this node's read directly, the others' over the call path, within
   * 1.5 s each), members order; a member that is unreachable, or did not answer, gives `error`.
   */
  readonly nodes: ReadonlyArray<NodeStatus | { readonly node: string; readonly name: string; readonly error: string }>
}

const address = (m: ClusterMember): string => `${m.node.endpoint.host}:${m.node.endpoint.port}`

/** Reads the state of the cluster as `system` sees it now, with every reachable member's status. */
export async function dashboardState(system: ClusterSystem): Promise<DashboardState> {
  const membership = system.clustered ? system.cluster.membership : undefined
  const members = (membership?.members ?? []).filter((m) => m.status !== 'removed')
  const oldest = members.filter((m) => m.status === 'up').sort((a, b) => a.upNumber - b.upNumber)[0]
  const asked = members.filter((m) => m.status !== 'down' && m.reachability === 'reachable').map((m) => m.node)
  const statuses = await readNodeStatuses(system, () => system.nodeStatus(), asked.length ? asked : [system.node])
  const byNode = new Map(statuses.map((st) => [st.node, st]))
  const nodes = members.length
    ? members.map((m) => byNode.get(address(m)) ?? { node: address(m), name: m.node.endpoint.name, error: m.status === 'down' ? 'down' : 'unreachable' })
    : statuses
  return {
    node: system.node.endpoint.name,
    at: Date.now(),
    leader: membership?.leader ? address(membership.leader) : null,
    oldest: oldest ? address(oldest) : null,
    members: members.map((m) => ({
      node: address(m),
      name: m.node.endpoint.name,
      status: m.status,
      reachability: m.reachability,
      observedBy: m.observedBy ?? [],
      roles: m.roles,
      upNumber: m.upNumber,
    })),
    nodes,
  }
}
