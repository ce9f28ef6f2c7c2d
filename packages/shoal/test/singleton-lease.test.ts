/**
 * The singleton's lease flow against a store that misbehaves: slow, silent, late, reordering. Each
 * case is one a review found broken (hangs, a dead singleton, two holders); they must now hold.
 */

import { ClusterSystem, DistributedActor, distributed, type LeaseStore, MemoryLeaseStore, singletonPlugin } from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

class Counter extends DistributedActor {
  static passivateMs = 0
  #n = 0
  @distributed async next(): Promise<number> {
    return ++this.#n
  }
  override async onPassivate(): Promise<void> {
    await sleep(Counter.passivateMs)
  }
}

class Failing extends DistributedActor {
  override onStart(): void {
    throw new Error('boom')
  }
  @distributed async next(): Promise<number> {
    return 1
  }
}

/** A memory store whose answers a test can delay, withhold or reorder. */
class Hooked implements LeaseStore {
  readonly name = 'hooked'
  readonly inner = new MemoryLeaseStore()
  acquires = 0
  releases = 0
  onAcquire: ((real: () => Promise<number | undefined>) => Promise<number | undefined>) | undefined
  onRelease: ((real: () => Promise<void>) => Promise<void>) | undefined
  acquireLease(name: string, owner: string, ttl: number): Promise<number | undefined> {
    this.acquires++
    const real = (): Promise<number | undefined> => this.inner.acquireLease(name, owner, ttl)
    return this.onAcquire ? this.onAcquire(real) : real()
  }
  releaseLease(name: string, owner: string): Promise<void> {
    this.releases++
    const real = (): Promise<void> => this.inner.releaseLease(name, owner)
    return this.onRelease ? this.onRelease(real) : real()
  }
  leaseHolder(name: string): Promise<string | undefined> {
    return this.inner.leaseHolder(name)
  }
}

const systems: ClusterSystem[] = []
afterEach(async () => {
  Counter.passivateMs = 0
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function solo(store: LeaseStore, ttl: number): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [singletonPlugin({ lease: { store, ttl } })] })
  systems.push(s)
  return s
}

const LEASE = 'singleton/counter'

describe('singleton lease against a misbehaving store', () => {
  it('shutdown while an acquire is in flight completes, and starts no instance', async () => {
    for (const heldElsewhere of [true, false]) {
      const store = new Hooked()
      if (heldElsewhere) await store.inner.acquireLease(LEASE, 'another-node', 60_000)
      store.onAcquire = async (real) => (await sleep(200), real())
      const s = await solo(store, 2000)
      s.singleton.host('counter', (sys) => sys.spawn(Counter))
      await sleep(20) // the acquire is in flight
      await Promise.race([s.shutdown(), sleep(5000).then(() => Promise.reject(new Error('shutdown hangs')))])
      expect(s.singleton.status('counter')).toMatchObject({ activations: 0, instance: undefined })
      if (!heldElsewhere) expect(await store.inner.leaseHolder(LEASE)).toBeUndefined() // granted late, then given back
    }
  })

  it('a renewal that never answers: the instance stops when its term runs out; once the store answers, a new one serves', async () => {
    const store = new Hooked()
    const s = await solo(store, 400)
    const ref = s.singleton.host('counter', (sys) => sys.spawn(Counter))
    expect(await ref.next()).toBe(1)
    store.onAcquire = () => new Promise(() => undefined) // a store that stopped answering
    await eventually(() => expect(s.singleton.status('counter')).toMatchObject({ instance: undefined, passivations: 1 }), { timeoutMs: 3000 })
    store.onAcquire = undefined
    expect(await ref.withTimeout(5000).next()).toBe(1) // a new instance
    expect(s.singleton.status('counter').activations).toBe(2)
  })

  it('a renewal granted late (same epoch) after the term ran out: the singleton serves again, not sealed for good', async () => {
    const store = new Hooked()
    const s = await solo(store, 2000)
    const ref = s.singleton.host('counter', (sys) => sys.spawn(Counter))
    expect(await ref.next()).toBe(1)
    let slowed = false
    store.onAcquire = async (real) => {
      const epoch = await real()
      if (!slowed) {
        slowed = true
        await sleep(1400) // reached the store at once, answered after the term (0.9 × 2000) ran out
      }
      return epoch
    }
    const until = performance.now() + 2600
    while (performance.now() < until) {
      await ref
        .withTimeout(300)
        .next()
        .catch(() => undefined)
      await sleep(20)
    }
    expect(await ref.withTimeout(5000).next()).toBeGreaterThan(0)
    expect(s.singleton.status('counter').leaseEpoch).toBeDefined()
  })

  it('a lost lease is released before it is taken again, even when the store would reorder them: never two holders', async () => {
    const store = new Hooked()
    const s = await solo(store, 1000)
    const ref = s.singleton.host('counter', (sys) => sys.spawn(Counter))
    expect(await ref.next()).toBe(1)
    let refused = false
    store.onAcquire = async (real) => {
      if (!refused) {
        refused = true
        return undefined // one renewal says another node holds it
      }
      return real()
    }
    store.onRelease = async (real) => (await sleep(30), real()) // a slower connection of the pool
    await eventually(() => expect(s.singleton.status('counter').activations).toBe(2))
    await eventually(() => expect(s.singleton.status('counter').leaseEpoch).toBeDefined())
    expect(await store.inner.leaseHolder(LEASE)).toBe(s.node.uid) // the store agrees with the running instance
    expect(await store.inner.acquireLease(LEASE, 'another-node', 60_000)).toBeUndefined()
  })

  it('the lease is kept (renewed) while onPassivate runs, so no other node takes it meanwhile', async () => {
    const store = new Hooked()
    const s = await solo(store, 400)
    const ref = s.singleton.host('counter', (sys) => sys.spawn(Counter))
    expect(await ref.next()).toBe(1)
    Counter.passivateMs = 1500
    const down = s.shutdown()
    await sleep(900)
    expect(await store.inner.acquireLease(LEASE, 'another-node', 60_000)).toBeUndefined()
    await down
    expect(await store.inner.leaseHolder(LEASE)).toBeUndefined() // released once the instance stopped
  })

  it('an instance whose onStart keeps failing does not churn the lease during its backoff', async () => {
    const store = new Hooked()
    const s = await solo(store, 8000)
    s.singleton.host('counter', (sys) => sys.spawn(Failing))
    await sleep(3000)
    // Starts back off (100 ms doubling: about 5 in 3 s), each with one acquire; without the backoff, one per 250 ms tick.
    expect(store.acquires).toBeLessThanOrEqual(7)
  })

  it('shutdown does not take the lease again after passivating', async () => {
    const store = new Hooked()
    const s = await solo(store, 4000)
    const ref = s.singleton.host('counter', (sys) => sys.spawn(Counter))
    expect(await ref.next()).toBe(1)
    const before = store.acquires
    await s.shutdown()
    expect(store.acquires).toBe(before)
    expect(store.releases).toBe(1)
    expect(await store.inner.leaseHolder(LEASE)).toBeUndefined()
  })
})
