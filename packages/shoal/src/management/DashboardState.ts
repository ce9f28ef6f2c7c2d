/**
 * What `GET /dashboard/state` answers: this node's view of the cluster, read when asked (the page
 * asks every 2 s while it is visible, and nothing is sampled otherwise). Members with status,
 * reachability and who observes them unreachable, roles, age, the leader and the oldest; the
 * singletons this node hosts or proxies; its virtual-actor groups; its calls by outcome and the
 * remote-call latency histogram (cumulative: the page takes differences between two answers for
 * rates and the p99 of the interval); associations and refusals; memory.
 * @module
 */
import type { MetricValue } from 'prom-client'
import type { ClusterMember } from '../cluster/Member.ts'
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
  readonly node: string
  /** ms since the epoch when read (the page's clock for rates). */
  readonly at: number
  readonly leader: string | null
  readonly oldest: string | null
  readonly members: readonly DashboardMember[]
  readonly singletons: ReadonlyArray<{
    readonly name: string
    readonly host: string | null
    readonly here: boolean
    readonly leaseEpoch: number | null
    readonly held: number
  }>
  readonly virtual: ReadonlyArray<{
    readonly role: string
    readonly owned: number
    readonly open: number
    readonly active: number
    readonly held: number
    readonly tableVersion: number
  }> | null
  readonly actors: number
  /** Calls made from this node since start, by outcome. */
  readonly calls: Readonly<Record<string, number>>
  /** Remote-call latency since start: bucket upper bounds (s) and cumulative counts. */
  readonly latency: { readonly le: readonly number[]; readonly counts: readonly number[] }
  readonly associations: number
  readonly refused: Readonly<Record<string, number>>
  readonly memory: { readonly rss: number; readonly heapUsed: number }
}

const address = (m: ClusterMember): string => `${m.node.endpoint.host}:${m.node.endpoint.port}`

/** Reads the state of `system` now. */
export async function dashboardState(system: ClusterSystem): Promise<DashboardState> {
  const clustered = system.clustered
  const membership = clustered ? system.cluster.membership : undefined
  const members = (membership?.members ?? []).filter((m) => m.status !== 'removed')
  const oldest = members.filter((m) => m.status === 'up').sort((a, b) => a.upNumber - b.upNumber)[0]
  const registry = system.metrics.registry
  const values = async (name: string): Promise<MetricValue<string>[]> => ((await registry.getSingleMetric(name)?.get())?.values ?? []) as MetricValue<string>[]
  const byLabel = (vs: MetricValue<string>[], label: string): Record<string, number> =>
    Object.fromEntries(vs.map((v) => [String(v.labels[label]), v.value]).filter(([, n]) => (n as number) > 0))
  const duration = (await values('shoal_call_duration_seconds')).filter((v) => v.labels.target === 'remote' && String(v.labels.le ?? '') !== '')
  const buckets = duration.filter((v) => (v as { metricName?: string }).metricName === 'shoal_call_duration_seconds_bucket' && v.labels.le !== '+Inf')
  const memory = process.memoryUsage()
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
    singletons:
      facade<{ statuses(): { name: string; host: string | undefined; instance: unknown; leaseEpoch: number | undefined; held: number }[] }>(system, 'singleton')
        ?.statuses()
        .map((s) => ({ name: s.name, host: s.host ?? null, here: s.instance !== undefined, leaseEpoch: s.leaseEpoch ?? null, held: s.held })) ?? [],
    virtual:
      facade<{ status(): { groups: { role: string | undefined; owned: number; open: number; active: number; held: number; tableVersion: number }[] } }>(
        system,
        'virtual-actors',
      )
        ?.status()
        .groups.map((g) => ({ role: g.role ?? '', owned: g.owned, open: g.open, active: g.active, held: g.held, tableVersion: g.tableVersion })) ?? null,
    actors: system.actorCount,
    calls: byLabel(await values('shoal_calls_total'), 'outcome'),
    latency: { le: buckets.map((v) => Number(v.labels.le)), counts: buckets.map((v) => v.value) },
    associations: (await values('shoal_associations'))[0]?.value ?? 0,
    refused: byLabel(await values('shoal_refused_total'), 'reason'),
    memory: { rss: memory.rss, heapUsed: memory.heapUsed },
  }
}

function facade<F>(system: ClusterSystem, name: string): F | undefined {
  try {
    return system.plugin<F>(name)
  } catch {
    return undefined
  }
}
