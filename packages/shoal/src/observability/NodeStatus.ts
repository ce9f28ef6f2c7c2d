/**
 * NodeStatus: what one node reports about itself to a dashboard: its actors by type, calls by
 * outcome and their latency, the methods it served (while someone looks), virtual-actor shards and
 * active ids, singletons it hosts, associations, refusals, memory.
 *
 * Every system answers it at the well-known path {@link NODE_STATUS_PATH}, so the dashboard of any
 * node shows every node: it asks each up member (`readNodeStatuses`) over the ordinary call path,
 * authenticated like every call. Read only when asked: nothing is sampled between two reads, and
 * the per-method figures ({@link MethodStats}) are sampled only for `idleMs` after a read.
 * @module
 */
import type { MetricValue } from 'prom-client'
import { ActorId } from '../actor/ActorId.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { type ActorClassInfo, actorClassInfo, DistributedActor, distributed } from '../actor/DistributedActor.ts'
import type { Invocation, LocalTarget } from '../actor/Invocation.ts'
import type { SingletonFacade } from '../singleton/SingletonPlugin.ts'
import type { ClusterSystem } from '../system/ClusterSystem.ts'
import type { VirtualActorsFacade } from '../virtual/VirtualActorsPlugin.ts'
import type { MethodStats, MethodStatsSnapshot } from './MethodStats.ts'

/** Where every node answers {@link NodeStatusReader.read}. */
export const NODE_STATUS_PATH = '/system/node-status'

export interface NodeStatus {
  /** `host:port`, as membership lists it. */
  readonly node: string
  readonly name: string
  /** ms since the epoch when read (a reader's clock for rates). */
  readonly at: number
  readonly actors: { readonly total: number; readonly byType: Readonly<Record<string, number>> }
  /** Calls made from this node since start, by outcome. */
  readonly calls: Readonly<Record<string, number>>
  /** Remote-call latency since start: bucket upper bounds (s) and cumulative counts. */
  readonly latency: { readonly le: readonly number[]; readonly counts: readonly number[] }
  /** Calls this node served, per actor type and method, since `methods.since`. */
  readonly methods: MethodStatsSnapshot
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
  readonly associations: number
  readonly refused: Readonly<Record<string, number>>
  readonly memory: { readonly rss: number; readonly heapUsed: number }
}

/** What a node's status is read from (the system's own parts). */
export interface NodeStatusSources {
  readonly system: ClusterSystem
  actorsByType(): ReadonlyMap<string, number>
  readonly methods: MethodStats
}

/** Reads this node's status now (and keeps per-method counting on for a while). */
export async function readNodeStatus({ system, actorsByType, methods }: NodeStatusSources): Promise<NodeStatus> {
  methods.touch()
  const registry = system.metrics.registry
  const values = async (name: string): Promise<MetricValue<string>[]> => ((await registry.getSingleMetric(name)?.get())?.values ?? []) as MetricValue<string>[]
  const byLabel = (vs: MetricValue<string>[], label: string): Record<string, number> =>
    Object.fromEntries(vs.map((v) => [String(v.labels[label]), v.value]).filter(([, n]) => (n as number) > 0))
  const buckets = (await values('shoal_call_duration_seconds')).filter(
    (v) => v.labels.target === 'remote' && (v as { metricName?: string }).metricName === 'shoal_call_duration_seconds_bucket' && v.labels.le !== '+Inf',
  )
  const memory = process.memoryUsage()
  const { host, port, name } = system.node.endpoint
  const types = actorsByType()
  return {
    node: `${host}:${port}`,
    name,
    at: Date.now(),
    actors: { total: [...types.values()].reduce((a, b) => a + b, 0), byType: Object.fromEntries(types) },
    calls: byLabel(await values('shoal_calls_total'), 'outcome'),
    latency: { le: buckets.map((v) => Number(v.labels.le)), counts: buckets.map((v) => v.value) },
    methods: methods.snapshot(),
    singletons: singletons(system),
    virtual: virtualGroups(system),
    associations: (await values('shoal_associations'))[0]?.value ?? 0,
    refused: byLabel(await values('shoal_refused_total'), 'reason'),
    memory: { rss: memory.rss, heapUsed: memory.heapUsed },
  }
}

/**
 * The statuses of `nodes` (this one read directly, the others asked over the call path, each
 * within `timeoutMs`), in the order given; a node that does not answer is `{ node, error }`.
 */
export async function readNodeStatuses(
  system: ClusterSystem,
  local: () => Promise<NodeStatus>,
  nodes: readonly ClusterNode[],
  timeoutMs = 1500,
): Promise<Array<NodeStatus | { readonly node: string; readonly name: string; readonly error: string }>> {
  return Promise.all(
    nodes.map(async (n) => {
      if (n.uid === system.node.uid) return local()
      try {
        return await system
          .resolve(NodeStatusReader, new ActorId(n, NODE_STATUS_PATH, 0))
          .withTimeout(timeoutMs)
          .read()
      } catch (e) {
        return { node: `${n.endpoint.host}:${n.endpoint.port}`, name: n.endpoint.name, error: e instanceof Error ? e.message : String(e) }
      }
    }),
  )
}

/**
 * The interface of the node-status target, for typed refs (`system.resolve(NodeStatusReader, id)`).
 * Never instantiated: {@link NodeStatusTarget} serves it.
 */
export class NodeStatusReader extends DistributedActor {
  @distributed async read(): Promise<NodeStatus> {
    throw new Error('NodeStatusReader is served by the node-status target of each system; resolve it, do not spawn it.')
  }
}

/** The well-known target every system registers at {@link NODE_STATUS_PATH}. */
export class NodeStatusTarget implements LocalTarget {
  readonly alive = true
  readonly info: ActorClassInfo = actorClassInfo(NodeStatusReader)
  readonly #read: () => Promise<NodeStatus>

  constructor(read: () => Promise<NodeStatus>) {
    this.#read = read
  }

  deliver(inv: Invocation): void {
    // `read` is the one declared method: the call engine refused any other before this.
    this.#read().then(
      (status) => inv.succeed(status),
      (e: unknown) => inv.fail(e),
    )
  }
}

function singletons(system: ClusterSystem): NodeStatus['singletons'] {
  return (
    facade<SingletonFacade>(system, 'singleton')
      ?.statuses()
      .map((s) => ({ name: s.name, host: s.host ?? null, here: s.instance !== undefined, leaseEpoch: s.leaseEpoch ?? null, held: s.held })) ?? []
  )
}

function virtualGroups(system: ClusterSystem): NodeStatus['virtual'] {
  return (
    facade<VirtualActorsFacade>(system, 'virtual-actors')
      ?.status()
      .groups.map((g) => ({ role: g.role ?? '', owned: g.owned, open: g.open, active: g.active, held: g.held, tableVersion: g.tableVersion })) ?? null
  )
}

/** An installed plugin's facade, or undefined (plugins are optional: `system.plugin` throws for a missing one). */
function facade<F>(system: ClusterSystem, name: string): F | undefined {
  try {
    return system.plugin<F>(name)
  } catch {
    return undefined
  }
}
