/**
 * The conformance suite every lease store must pass (memory, SQLite, PostgreSQL, yours);
 * test-framework neutral like {@link eventStoreConformance}.
 *
 * ```ts
 * leaseStoreConformance('sqlite', () => SqliteEventStore.open(':memory:'), { describe, it, expect })
 * ```
 * @module
 */
import type { LeaseStore } from '../lease/Lease.ts'
import type { ConformanceFramework } from './EventStoreConformance.ts'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Registers the suite: `open` makes a fresh store for each test; `close` (optional) releases it. */
export function leaseStoreConformance(
  name: string,
  open: () => Promise<LeaseStore> | LeaseStore,
  { describe, it, expect }: ConformanceFramework,
  close?: (s: LeaseStore) => Promise<void>,
): void {
  const withStore = (body: (s: LeaseStore) => Promise<void>) => async () => {
    const store = await open()
    try {
      await body(store)
    } finally {
      await close?.(store)
    }
  }

  describe(`lease store conformance: ${name}`, () => {
    it(
      'one owner at a time; the holder renews; release frees it at once',
      withStore(async (s) => {
        expect(await s.leaseHolder('lobby')).toBeUndefined()
        expect(await s.acquireLease('lobby', 'node-a', 60_000)).toBeGreaterThan(0)
        expect(await s.acquireLease('lobby', 'node-b', 60_000)).toBeUndefined()
        expect(await s.acquireLease('lobby', 'node-a', 60_000)).toBeGreaterThan(0) // renewal
        expect(await s.leaseHolder('lobby')).toBe('node-a')
        await s.releaseLease('lobby', 'node-b') // not the holder: nothing happens
        expect(await s.leaseHolder('lobby')).toBe('node-a')
        await s.releaseLease('lobby', 'node-a')
        expect(await s.leaseHolder('lobby')).toBeUndefined()
        expect(await s.acquireLease('lobby', 'node-b', 60_000)).toBeGreaterThan(0)
        // Leases are independent by name.
        expect(await s.acquireLease('scheduler', 'node-a', 60_000)).toBeGreaterThan(0)
      }),
    )

    it(
      'the epoch (fencing token) grows when the lease changes hands, never on renewal',
      withStore(async (s) => {
        const first = (await s.acquireLease('e', 'node-a', 60_000))!
        expect(await s.acquireLease('e', 'node-a', 60_000)).toBe(first)
        await s.releaseLease('e', 'node-a')
        const second = (await s.acquireLease('e', 'node-b', 60_000))!
        expect(second).toBeGreaterThan(first)
        await s.releaseLease('e', 'node-b')
        // Even the first owner again: a new holding, a new epoch.
        expect(await s.acquireLease('e', 'node-a', 60_000)).toBeGreaterThan(second)
      }),
    )

    it(
      'an expired lease goes to the next owner with a higher epoch; the old owner cannot renew it',
      withStore(async (s) => {
        const old = (await s.acquireLease('l', 'node-a', 1000))!
        expect(await s.acquireLease('l', 'node-b', 60_000)).toBeUndefined()
        await sleep(1300)
        expect(await s.leaseHolder('l')).toBeUndefined()
        expect(await s.acquireLease('l', 'node-b', 60_000)).toBeGreaterThan(old)
        expect(await s.acquireLease('l', 'node-a', 60_000)).toBeUndefined()
        expect(await s.leaseHolder('l')).toBe('node-b')
      }),
    )

    it(
      'concurrent acquirers: exactly one wins',
      withStore(async (s) => {
        const owners = Array.from({ length: 20 }, (_, i) => `node-${i}`)
        const won = await Promise.all(owners.map((o) => s.acquireLease('contended', o, 60_000)))
        expect(won.filter((e) => e !== undefined)).toHaveLength(1)
        expect(await s.leaseHolder('contended')).toBe(owners[won.findIndex((e) => e !== undefined)])
      }),
    )

    it(
      'refuses an empty owner (it marks a released lease)',
      withStore(async (s) => {
        await expect(s.acquireLease('x', '', 60_000)).rejects.toThrow(/must not be empty/)
      }),
    )

    it(
      'stores hostile names and owners exactly',
      withStore(async (s) => {
        const name = `o'brien"; DROP TABLE leases; -- 🐟 ${'x'.repeat(200)}`
        expect(await s.acquireLease(name, "owner'--", 60_000)).toBeGreaterThan(0)
        expect(await s.leaseHolder(name)).toBe("owner'--")
        expect(await s.leaseHolder(`o'brien%`)).toBeUndefined()
      }),
    )
  })
}
