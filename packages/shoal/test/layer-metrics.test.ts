/**
 * Every layer's metrics, read the way Prometheus reads them (the management endpoint's /metrics):
 * membership (members by status and reachability, leader, convergence, leader changes, downing
 * decisions), the journal (appends by outcome and latency, recoveries), virtual actors (shards,
 * activations, held calls, table version) and Node's process metrics, with values that match what
 * happened.
 */
import { ClusterSystem, DistributedActor, distributed, EventSourcedActor, journalPlugin, MemoryEventStore, virtualActorsPlugin } from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { ManagementServer } from '../src/management/ManagementServer.ts'

class Counter extends EventSourcedActor<{ n: number }, { type: 'added'; by: number }> {
  constructor(readonly counterId: string) {
    super()
  }
  get persistenceId(): string {
    return `counter-${this.counterId}`
  }
  initialState(): { n: number } {
    return { n: 0 }
  }
  applyEvent(s: { n: number }, e: { type: 'added'; by: number }): { n: number } {
    return { n: s.n + e.by }
  }
  @distributed async add(by: number): Promise<number> {
    await this.emit({ type: 'added', by })
    return this.state.n
  }
  @distributed async done(): Promise<void> {
    this.deactivateOnIdle()
  }
}

class Echo extends DistributedActor {
  constructor(readonly echoId: string) {
    super()
  }
  @distributed async echo(x: number): Promise<number> {
    return x
  }
}

const systems: ClusterSystem[] = []
const servers: ManagementServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function node(store: MemoryEventStore, seed?: ClusterSystem): Promise<{ system: ClusterSystem; metrics: () => Promise<string> }> {
  const system = await ClusterSystem.start({
    port: 0,
    logLevel: 'silent',
    plugins: [virtualActorsPlugin(), journalPlugin({ store })],
    cluster: { selfJoinAfter: 200, seeds: seed ? [`127.0.0.1:${seed.node.endpoint.port}`] : [] },
  })
  systems.push(system)
  system.virtualActors.host(Counter, (id) => new Counter(id))
  system.virtualActors.host(Echo, (id) => new Echo(id))
  const server = await ManagementServer.start(system, { port: 0 })
  servers.push(server)
  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text()
  return { system, metrics }
}

/** The value of the one sample of `name` whose labels include every `labels` pair. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

describe('metrics of every layer', () => {
  it('membership, journal, virtual actors and the process, as /metrics serves them', async () => {
    const store = new MemoryEventStore()
    const a = await node(store)
    const b = await node(store, a.system)
    await eventually(
      async () => {
        for (const n of [a, b]) {
          const text = await n.metrics()
          expect(sample(text, 'shoal_cluster_members', { status: 'up', reachability: 'reachable' })).toBe(2)
          expect(sample(text, 'shoal_cluster_converged')).toBe(1)
          expect(sample(text, 'shoal_virtual_shards', { state: 'open' })).toBe(sample(text, 'shoal_virtual_shards', { state: 'owned' }))
        }
        // Both hold the same, final table (each alone can look settled while the other still holds an
        // older one, and balancing goes in rounds), and it held for a second: a later table would
        // move shards, and the activations on them, while the counts below are read.
        const [va, vb] = [await a.metrics(), await b.metrics()]
        expect(sample(va, 'shoal_virtual_table_version')).toBe(sample(vb, 'shoal_virtual_table_version'))
        const [oa, ob] = [sample(va, 'shoal_virtual_shards', { state: 'owned' })!, sample(vb, 'shoal_virtual_shards', { state: 'owned' })!]
        expect(oa + ob).toBe(1024)
        // Balancing moves shards in rounds (a capped number per table): wait for the fair shares.
        expect(Math.abs(oa - ob)).toBeLessThanOrEqual(1)
        await new Promise((r) => setTimeout(r, 1000))
        expect(sample(await a.metrics(), 'shoal_virtual_table_version')).toBe(sample(va, 'shoal_virtual_table_version'))
      },
      { timeoutMs: 15_000 },
    )
    const [ta, tb] = [await a.metrics(), await b.metrics()]
    // Membership: one leader, both see the same; each saw the leader change at least once.
    expect(sample(ta, 'shoal_cluster_leader')! + sample(tb, 'shoal_cluster_leader')!).toBe(1)
    expect(sample(ta, 'shoal_cluster_leader_changes_total')).toBeGreaterThanOrEqual(1)
    expect(sample(ta, 'shoal_cluster_members', { status: 'down', reachability: 'unreachable' })).toBe(0)
    expect(sample(ta, 'shoal_cluster_downing_decisions_total', { kind: 'strategy' })).toBe(0)
    // Virtual actors: every shard owned by one of the two.
    expect(sample(ta, 'shoal_virtual_shards', { state: 'owned' })! + sample(tb, 'shoal_virtual_shards', { state: 'owned' })!).toBe(1024)

    // Ten ids, three adds each: 30 appends; the ids are active where they live.
    const ids = Array.from({ length: 10 }, (_, i) => `c${i}`)
    for (const id of ids) for (let k = 0; k < 3; k++) await a.system.virtualActors.get(Counter, id).add(1)
    const after = [await a.metrics(), await b.metrics()]
    const total = (name: string, labels: Record<string, string> = {}): number => after.reduce((n, t) => n + (sample(t, name, labels) ?? 0), 0)
    expect(total('shoal_journal_appends_total', { outcome: 'ok' })).toBe(30)
    expect(total('shoal_journal_append_seconds_count')).toBe(30)
    expect(total('shoal_virtual_activations')).toBe(10)
    expect(total('shoal_virtual_activations_total')).toBe(10)
    expect(total('shoal_journal_recoveries_total')).toBe(10)
    expect(total('shoal_journal_recovery_events_sum')).toBe(0)

    // Passivate one and use it again: a recovery that replays its three events.
    const c0 = a.system.virtualActors.get(Counter, 'c0')
    await c0.done()
    await eventually(async () => {
      const t = [await a.metrics(), await b.metrics()]
      expect(t.reduce((n, x) => n + (sample(x, 'shoal_virtual_deactivations_total') ?? 0), 0)).toBe(1)
    })
    expect(await c0.add(1)).toBe(4)
    const last = [await a.metrics(), await b.metrics()]
    expect(last.reduce((n, t) => n + (sample(t, 'shoal_journal_recovery_events_sum') ?? 0), 0)).toBe(3)
    expect(last.reduce((n, t) => n + (sample(t, 'shoal_journal_recoveries_total') ?? 0), 0)).toBe(11)

    // Node's own: event-loop lag, heap, GC, CPU.
    for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'process_cpu_seconds_total', 'process_resident_memory_bytes'])
      expect(sample(last[0]!, name), name).toBeGreaterThanOrEqual(0)
    expect(last[0]).toMatch(/^nodejs_gc_duration_seconds_bucket/m)
  })

  it('a conflicting append is counted by its code', async () => {
    const store = new MemoryEventStore()
    const a = await node(store)
    await a.system.virtualActors.get(Counter, 'x').add(1)
    // Another writer takes the next sequence number behind the activation's back.
    await store.append([{ persistenceId: 'counter-x', seq: 2, type: 'added', version: 1, payload: new Uint8Array(), tags: [] }])
    await expect(a.system.virtualActors.get(Counter, 'x').add(1)).rejects.toThrow()
    expect(sample(await a.metrics(), 'shoal_journal_appends_total', { outcome: 'SHOAL_JOURNAL_CONFLICT' })).toBe(1)
  })
})
