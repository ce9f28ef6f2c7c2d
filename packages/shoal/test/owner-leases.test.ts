/**
 * OwnerLeases against a memory store on a given clock: a removed member's lease counts as expired
 * only once the store says so (free, expired, or held by someone else), never while its owner
 * still holds it, and is then kept so that its owner never takes it back; a store that cannot
 * answer proves nothing.
 */
import { pino } from 'pino'
import { MemoryLeaseStore } from 'shoal'
import { describe, expect, it } from 'vitest'
import { OwnerLeases, ownerLeaseName } from '../src/virtual/OwnerLeases.ts'

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 10))

function leases(store: MemoryLeaseStore, expired: string[]): OwnerLeases {
  return new OwnerLeases({ store, ttl: 1000, self: 'me', log: pino({ level: 'silent' }), onLost: () => {}, onExpired: (uid) => expired.push(uid) })
}

describe('OwnerLeases', () => {
  it('finds a removed member expired only once its lease ran out in the store', async () => {
    let now = 0
    const store = new MemoryLeaseStore(() => now)
    await store.acquireLease(ownerLeaseName('frozen'), 'frozen', 1000)
    const expired: string[] = []
    const l = leases(store, expired)
    l.probe(['frozen'])
    await settle()
    expect(expired).toEqual([])
    expect(l.expired('frozen')).toBe(false)
    now = 1001
    l.probe(['frozen'])
    await settle()
    expect(expired).toEqual(['frozen'])
    expect(l.expired('frozen')).toBe(true)
    // Taken for good: the frozen owner, woken, cannot take it back (found by the cluster simulator:
    // it took a new epoch and served the shards it still believed open, beside their new owner).
    expect(await store.leaseHolder(ownerLeaseName('frozen'))).toBe('me')
    expect(await store.acquireLease(ownerLeaseName('frozen'), 'frozen', 1000)).toBeUndefined()
    now = 1001 + 3_600_000
    expect(await store.acquireLease(ownerLeaseName('frozen'), 'frozen', 1000)).toBeUndefined()
  })

  it('a member that never held a lease is expired at once; one held by another prober is too', async () => {
    const store = new MemoryLeaseStore(() => 0)
    await store.acquireLease(ownerLeaseName('gone'), 'another-node', 1000)
    const expired: string[] = []
    const l = leases(store, expired)
    l.probe(['never', 'gone'])
    await settle()
    expect(expired.sort()).toEqual(['gone', 'never'])
  })

  it('a store that cannot answer proves nothing', async () => {
    const store = new MemoryLeaseStore(() => 0)
    store.setAvailable(false)
    const expired: string[] = []
    const l = leases(store, expired)
    l.probe(['x'])
    await settle()
    expect(expired).toEqual([])
    store.setAvailable(true)
    l.probe(['x'])
    await settle()
    expect(expired).toEqual(['x'])
  })

  it("holds this node's own lease and reports its epoch", async () => {
    const store = new MemoryLeaseStore()
    const l = leases(store, [])
    expect(l.valid()).toBe(false)
    l.ensureHeld()
    await settle()
    expect(l.valid()).toBe(true)
    expect(l.epoch).toBe(1)
    expect(await store.leaseHolder(ownerLeaseName('me'))).toBe('me')
    await l.stop()
    expect(await store.leaseHolder(ownerLeaseName('me'))).toBeUndefined()
  })
})
