/**
 * Membership metrics of one node, read from its cluster on scrape: members by status and
 * reachability as this node sees them, whether it leads, whether its view has converged, leader
 * changes and downing decisions. Nothing is counted on the hot path.
 * @module
 */
import { Gauge, type Registry } from 'prom-client'
import { counterReading } from '../observability/Metrics.ts'
import type { Cluster } from './Cluster.ts'
import type { MembershipStatus, Reachability } from './Member.ts'

const STATUSES: readonly MembershipStatus[] = ['joining', 'up', 'leaving', 'exiting', 'down']
const REACHABILITY: readonly Reachability[] = ['reachable', 'unreachable']

/** Registers the cluster's metrics in `registry` (the system's). */
export function registerClusterMetrics(cluster: Cluster, registry: Registry): void {
  const registers = [registry]
  new Gauge({
    name: 'shoal_cluster_members',
    help: 'Members as this node sees them, by membership status and reachability (removed members are not counted)',
    labelNames: ['status', 'reachability'],
    registers,
    collect() {
      const counts = new Map<string, number>()
      for (const m of cluster.membership.members) counts.set(`${m.status}/${m.reachability}`, (counts.get(`${m.status}/${m.reachability}`) ?? 0) + 1)
      // Every combination, zeros included, so a panel shows 0 rather than no data.
      for (const status of STATUSES) for (const reachability of REACHABILITY) this.set({ status, reachability }, counts.get(`${status}/${reachability}`) ?? 0)
    },
  })
  new Gauge({
    name: 'shoal_cluster_leader',
    help: 'Whether this node is the leader it sees (1) or not (0)',
    registers,
    collect() {
      const { self, leader } = cluster.membership
      this.set(leader?.node.uid === self.node.uid ? 1 : 0)
    },
  })
  new Gauge({
    name: 'shoal_cluster_converged',
    help: 'Whether every member reachable from here has seen this node’s current membership (1); the leader acts only then',
    registers,
    collect() {
      this.set(cluster.converged ? 1 : 0)
    },
  })
  counterReading({ name: 'shoal_cluster_leader_changes_total', help: 'Times the leader this node sees changed', registers }, () => [
    [{}, cluster.stats.leaderChanges],
  ])
  counterReading(
    {
      name: 'shoal_cluster_downing_decisions_total',
      help: 'Downing decisions this node took and applied, by kind (strategy: the downing strategy; indirect: indirectly connected members)',
      labelNames: ['kind'],
      registers,
    },
    () => {
      const d = cluster.stats.downingDecisions
      return [
        [{ kind: 'strategy' }, d.strategy],
        [{ kind: 'indirect' }, d.indirect],
      ]
    },
  )
  counterReading({ name: 'shoal_cluster_members_downed_total', help: 'Members this node marked down by its downing decisions', registers }, () => [
    [{}, cluster.stats.membersDowned],
  ])
}
