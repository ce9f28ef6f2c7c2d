/**
 * The cluster singleton across in-process nodes over real TCP: one instance reached from every
 * node, graceful hand-over without a failed call, buffering, allocation timeout, roles, and a
 * system without cluster membership.
 */

import {
  type ActorRef,
  ClusterSystem,
  DistributedActor,
  distributed,
  isNotDelivered,
  MemoryLeaseStore,
  type SingletonSettings,
  SingletonUnavailableError,
  singletonPlugin,
} from 'shoal'
import { servicesOf } from 'shoal/internal'
import { eventually, startCluster, type TestNodes } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

/** Activations and passivations of every instance in this process, in order. */
const journal: string[] = []

class Counter extends DistributedActor {
  #count = 0
  #passivated = false
  override onStart(): void {
    journal.push(`start ${this.system.node.endpoint.name}`)
  }
  @distributed async next(): Promise<{ n: number; node: string; id: string }> {
    if (this.#passivated) journal.push(`late call ${this.system.node.endpoint.name}`) // its effect would be lost
    return { n: ++this.#count, node: this.system.node.endpoint.name, id: this.id.toString() }
  }
  @distributed async slow(ms: number): Promise<string> {
    await new Promise((r) => setTimeout(r, ms))
    return this.system.node.endpoint.name
  }
  override async onPassivate(): Promise<void> {
    await new Promise((r) => setTimeout(r, 50))
    journal.push(`passivate ${this.system.node.endpoint.name}`)
    this.#passivated = true
  }
}

let nodes: TestNodes | undefined
const extra: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(extra.splice(0).map((s) => s.shutdown()))
  await nodes?.shutdown()
  nodes = undefined
  journal.length = 0 // after the shutdowns, whose passivations it records
})

async function cluster(
  n: number,
  settings: SingletonSettings = {},
  downing = 'keep-majority',
): Promise<{ systems: ClusterSystem[]; refs: ActorRef<Counter>[] }> {
  nodes = await startCluster(n, { plugins: [singletonPlugin(settings)], cluster: { downing } })
  const systems = nodes.systems
  const refs = systems.map((s) => s.singleton.host('counter', (sys) => sys.spawn(Counter)))
  return { systems, refs }
}

describe('cluster singleton', () => {
  it('calls from every node reach the same instance, on the oldest member', async () => {
    const { systems, refs } = await cluster(3)
    const results = await Promise.all(refs.flatMap((r) => [r.next(), r.next()]))
    expect(new Set(results.map((r) => r.id)).size).toBe(1)
    expect(results.map((r) => r.n).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6])
    const oldest = [...systems[0]!.cluster.membership.members].sort((a, b) => a.upNumber - b.upNumber)[0]!
    expect(results[0]!.node).toBe(oldest.node.endpoint.name)
    expect(journal.filter((j) => j.startsWith('start'))).toHaveLength(1)
    for (const s of systems) expect(s.singleton.status('counter').host).toBe(`${oldest.node.endpoint.host}:${oldest.node.endpoint.port}`)
    const hosting = await Promise.all(
      systems.map(async (s) => /shoal_singleton_hosting\{[^}]*name="counter"[^}]*\} 1/.test(await s.metrics.registry.metrics())),
    )
    expect(hosting.filter(Boolean)).toHaveLength(1)
    // A younger node joining does not move it.
    const late = await ClusterSystem.start({
      name: 'late',
      port: 0,
      logLevel: 'silent',
      plugins: [singletonPlugin()],
      cluster: { seeds: [`127.0.0.1:${systems[0]!.node.endpoint.port}`] },
    })
    extra.push(late)
    const fromLate = late.singleton.proxy(Counter, 'counter')
    expect((await fromLate.next()).id).toBe(results[0]!.id)
  })

  it('the host leaves gracefully: hand-over after onPassivate, without a single failed call', async () => {
    const { systems, refs } = await cluster(3)
    const first = await refs[0]!.next()
    const host = systems.find((s) => s.node.endpoint.name === first.node)!
    const others = systems.filter((s) => s !== host)
    const otherRefs = others.map((s) => s.singleton.proxy(Counter, 'counter'))
    // Calls keep flowing from the other nodes during the whole leave.
    let stop = false
    const outcomes: { ok: boolean; node?: string; err?: unknown }[] = []
    const load = otherRefs.map(async (r) => {
      while (!stop) {
        await r.next().then(
          (v) => outcomes.push({ ok: true, node: v.node }),
          (err: unknown) => outcomes.push({ ok: false, err }),
        )
        await new Promise((r) => setImmediate(r)) // a call failing at once must not starve the event loop
      }
    })
    const inFlight = otherRefs[0]!.slow(200) // running on the old instance when the leave starts
    await new Promise((r) => setTimeout(r, 100))
    await host.cluster.leave()
    expect(await inFlight).toBe(host.node.endpoint.name)
    await eventually(() => expect(outcomes.filter((o) => o.ok && o.node !== host.node.endpoint.name).length).toBeGreaterThan(20))
    stop = true
    await Promise.all(load)
    expect(outcomes.filter((o) => !o.ok)).toEqual([])
    // The old instance passivated before the new one started.
    const events = journal.filter((j) => j.startsWith('start') || j.startsWith('passivate'))
    expect(events.slice(0, 3)).toEqual([`start ${host.node.endpoint.name}`, `passivate ${host.node.endpoint.name}`, expect.stringMatching(/^start /)])
    // Sealed at passivation: no call ran on the old instance after onPassivate saved its state.
    expect(journal.filter((j) => j.startsWith('late call'))).toEqual([])
    const next = await otherRefs[1]!.next()
    expect(next.node).not.toBe(host.node.endpoint.name)
  })

  it('a host downed by an operator: calls wait and are served by the successor after the margin', async () => {
    const { systems, refs } = await cluster(3, { downMargin: 800 }, 'none')
    const first = await refs[0]!.next()
    const host = systems.find((s) => s.node.endpoint.name === first.node)!
    const other = systems.find((s) => s !== host)!
    const downedAt = Date.now()
    other.cluster.down(host.node)
    const proxy = other.singleton.proxy(Counter, 'counter')
    const after = await proxy.next()
    expect(after.node).not.toBe(host.node.endpoint.name)
    expect(after.n).toBe(1) // a new instance: no state survives (event-source it to keep state)
    // The successor waited out the margin: the downed side gets that long to stop its instance.
    expect(Date.now() - downedAt).toBeGreaterThanOrEqual(750)
  })

  it('calls wait while no member can host, then fail with SingletonUnavailableError after the allocation timeout; a full buffer fails the oldest', async () => {
    nodes = await startCluster(2, { plugins: [singletonPlugin({ allocationTimeout: 400, bufferSize: 2 })] })
    const [a] = nodes.systems as [ClusterSystem]
    const ref = a.singleton.proxy(Counter, 'counter', { role: 'nobody-has-it' })
    const calls = [ref.next(), ref.next(), ref.next()].map((p) => p.catch((e: unknown) => e))
    const [first, second, third] = await Promise.all(calls)
    for (const e of [first, second, third]) {
      expect(e).toBeInstanceOf(SingletonUnavailableError)
      expect((e as SingletonUnavailableError).notDelivered).toBe(true)
    }
    expect((first as Error).message).toMatch(/bufferSize/)
    expect((second as Error).message).toMatch(/allocationTimeout.*role "nobody-has-it"/)
    expect(a.singleton.status('counter')).toMatchObject({ allocation: 'wait', reason: 'no-candidate', held: 0 })
  })

  it('only members with the role host it; a proxy-only node reaches it', async () => {
    nodes = await startCluster(3, { plugins: [singletonPlugin()], cluster: {} })
    const [a, b, c] = nodes.systems as [ClusterSystem, ClusterSystem, ClusterSystem]
    // No node has the role: calls are held.
    const held = c.singleton.proxy(Counter, 'counter', { role: 'lobby' }).next()
    const withRole = await ClusterSystem.start({
      name: 'lobby-host',
      port: 0,
      logLevel: 'silent',
      plugins: [singletonPlugin()],
      cluster: { roles: ['lobby'], seeds: [`127.0.0.1:${a.node.endpoint.port}`] },
    })
    extra.push(withRole)
    withRole.singleton.host('counter', (s) => s.spawn(Counter), { role: 'lobby' })
    expect((await held).node).toBe('lobby-host')
    expect((await b.singleton.proxy(Counter, 'counter', { role: 'lobby' }).next()).node).toBe('lobby-host')
  })

  it('an instance whose onStart fails is restarted with a backoff, without starving the node', async () => {
    let starts = 0
    class Broken extends DistributedActor {
      override onStart(): void {
        starts++
        throw new Error('no database')
      }
    }
    const solo = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [singletonPlugin({ allocationTimeout: 300 })] })
    extra.push(solo)
    const ref = solo.singleton.host('broken', (s) => s.spawn(Broken))
    await expect((ref as unknown as { any(): Promise<void> }).any()).rejects.toBeInstanceOf(SingletonUnavailableError)
    const before = starts
    await new Promise((r) => setTimeout(r, 1000)) // a timer that fires: the loop yields
    expect(starts - before).toBeGreaterThan(0)
    expect(starts).toBeLessThan(15) // 100 ms doubling: a handful per second, not thousands
  })

  it('runs locally on a system without cluster membership', async () => {
    const solo = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [singletonPlugin()] })
    extra.push(solo)
    const ref = solo.singleton.host('counter', (s) => s.spawn(Counter))
    expect(await ref.next()).toMatchObject({ n: 1 })
    await solo.shutdown()
    expect(journal).toEqual([`start ${solo.node.endpoint.name}`, `passivate ${solo.node.endpoint.name}`])
  })

  describe('with a lease', () => {
    it('starts only once its node holds the lease; a lease held elsewhere keeps calls waiting until it is released', async () => {
      const store = new MemoryLeaseStore()
      expect(await store.acquireLease('singleton/counter', 'another-node', 60_000)).toBe(1)
      const solo = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [singletonPlugin({ lease: { store, ttl: 2000 } })] })
      extra.push(solo)
      const ref = solo.singleton.host('counter', (s) => s.spawn(Counter))
      let answered = false
      const call = ref.next().finally(() => (answered = true))
      await new Promise((r) => setTimeout(r, 800)) // several acquire attempts (every ttl / 4)
      expect(answered).toBe(false)
      expect(solo.singleton.status('counter')).toMatchObject({ activations: 0, held: 1 })
      await store.releaseLease('singleton/counter', 'another-node')
      expect(await call).toMatchObject({ n: 1 })
      expect(await store.leaseHolder('singleton/counter')).toBe(solo.node.uid)
      expect(solo.singleton.status('counter').leaseEpoch).toBe(2) // the fencing token: a new holder, a higher epoch
      expect(await solo.metrics.registry.metrics()).toMatch(/shoal_singleton_lease_epoch\{name="counter"[^}]*\} 2/)
      await solo.shutdown()
      expect(await store.leaseHolder('singleton/counter')).toBeUndefined() // released after passivation
    })

    it('a lease that cannot be renewed stops the instance and its calls wait; once the store is back a new instance serves them', async () => {
      const store = new MemoryLeaseStore()
      const solo = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [singletonPlugin({ lease: { store, ttl: 600 } })] })
      extra.push(solo)
      const ref = solo.singleton.host('counter', (s) => s.spawn(Counter))
      expect(await ref.next()).toMatchObject({ n: 1 })
      const firstEpoch = solo.singleton.status('counter').leaseEpoch!
      store.setAvailable(false)
      await eventually(() => expect(solo.singleton.status('counter')).toMatchObject({ instance: undefined, passivations: 1 }), { timeoutMs: 5000 })
      let answered = false
      const waiting = ref.next().finally(() => (answered = true))
      await new Promise((r) => setTimeout(r, 300))
      expect(answered).toBe(false)
      store.setAvailable(true)
      expect(await waiting).toMatchObject({ n: 1 }) // a new instance
      expect(solo.singleton.status('counter').activations).toBe(2)
      expect(solo.singleton.status('counter').leaseEpoch).toBeGreaterThan(firstEpoch)
    })

    it('a guarded actor refuses every call from the moment its guard says no, as not delivered', async () => {
      const solo = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
      extra.push(solo)
      const ref = solo.spawn(Counter)
      let lapsed = false
      expect(servicesOf(solo).actors.guard(ref.id, () => (lapsed ? 'its lease lapsed' : undefined))).toBe(true)
      expect(await ref.next()).toMatchObject({ n: 1 })
      const slow = ref.slow(100) // running when the guard turns: it finishes
      const queued = ref.next() // queued behind it while valid, started after: refused
      lapsed = true
      expect(await slow).toBe(solo.node.endpoint.name)
      const refused = await queued.catch((e: unknown) => e)
      expect(isNotDelivered(refused)).toBe(true)
      expect((refused as Error).message).toMatch(/takes no calls: its lease lapsed/)
      await expect(ref.next()).rejects.toMatchObject({ code: 'SHOAL_ACTOR_NOT_FOUND' })
    })
  })
})
