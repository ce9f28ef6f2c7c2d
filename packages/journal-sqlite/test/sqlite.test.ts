/**
 * The SQLite store: the shared conformance suite (in memory and on a file), group commit, data
 * kept across reopening the file, and an event-sourced actor recovering from it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { ClusterSystem, distributed, EventSourcedActor, JournalConflictError, journalPlugin, type WriteBatch } from 'shoal'
import { conformanceEvents, eventStoreConformance, leaseStoreConformance } from 'shoal/testkit'
import { afterAll, describe, expect, it } from 'vitest'
import { SqliteEventStore } from '../src/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'shoal-sqlite-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let files = 0

eventStoreConformance('sqlite (memory)', () => SqliteEventStore.open(':memory:'), { describe, it, expect })
eventStoreConformance('sqlite (file, WAL)', () => SqliteEventStore.open(join(dir, `c${++files}.db`)), { describe, it, expect })
leaseStoreConformance(
  'sqlite (file, WAL)',
  () => SqliteEventStore.open(join(dir, `l${++files}.db`)),
  { describe, it, expect },
  (s) => (s as SqliteEventStore).close(),
)

describe('SQLite leases', () => {
  it('two stores on one file (two processes of one machine) contend for a lease: one holds it', async () => {
    const path = join(dir, `shared${++files}.db`)
    const [a, b] = [SqliteEventStore.open(path), SqliteEventStore.open(path)]
    expect(await a.acquireLease('singleton/lobby', 'node-a', 60_000)).toBe(1)
    expect(await b.acquireLease('singleton/lobby', 'node-b', 60_000)).toBeUndefined()
    expect(await b.leaseHolder('singleton/lobby')).toBe('node-a')
    await a.releaseLease('singleton/lobby', 'node-a')
    expect(await b.acquireLease('singleton/lobby', 'node-b', 60_000)).toBe(2)
    await a.close()
    await b.close()
  })

  it('a file of schema 1 (before leases) is migrated on open, its events kept', async () => {
    const path = join(dir, `v1-${++files}.db`)
    const s = SqliteEventStore.open(path)
    await s.append(conformanceEvents('old', 1, 3))
    await s.close()
    const raw = new Database(path)
    raw.exec('DROP TABLE leases')
    raw.pragma('user_version = 1')
    raw.close()
    const again = SqliteEventStore.open(path)
    expect(await again.highestSeq('old')).toBe(3)
    expect(await again.acquireLease('l', 'me', 60_000)).toBe(1)
    await again.close()
  })
})

class Counter extends EventSourcedActor<number, { type: 'Inc'; by: number }> {
  readonly persistenceId = 'counter-1'
  initialState(): number {
    return 0
  }
  applyEvent(n: number, e: { type: 'Inc'; by: number }): number {
    return n + e.by
  }
  @distributed async inc(by: number): Promise<number> {
    await this.emit({ type: 'Inc', by })
    return this.state
  }
}

describe('SQLite store', () => {
  it('group commit: appends of one tick share a transaction; a conflict fails only its own batch', async () => {
    const s = SqliteEventStore.open(':memory:')
    await s.append(conformanceEvents('a', 1, 1))
    const batches: WriteBatch[] = []
    const unobserve = s.observeWrites((b) => batches.push(b))
    const results = await Promise.allSettled([
      s.append(conformanceEvents('b', 1, 2)),
      s.append(conformanceEvents('a', 1, 1)),
      s.append(conformanceEvents('c', 1, 1)),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(JournalConflictError)
    expect([await s.highestSeq('a'), await s.highestSeq('b'), await s.highestSeq('c')]).toEqual([1, 2, 1])
    // One transaction, observed: three appends, four events, one conflict.
    expect(batches).toEqual([{ appends: 3, events: 4, conflicts: 1, seconds: expect.any(Number) }])
    unobserve()
    await s.append(conformanceEvents('d', 1, 1))
    expect(batches).toHaveLength(1)
    await s.close()
  })

  it('keeps events and snapshots across closing and reopening the file; an actor recovers its state', async () => {
    const path = join(dir, 'actor.db')
    const first = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [journalPlugin({ store: SqliteEventStore.open(path), snapshotEvery: 5 })] })
    const c = first.spawn(Counter)
    for (let i = 1; i <= 12; i++) await c.inc(i)
    await first.shutdown()
    await first.journal.store.close()
    const store = SqliteEventStore.open(path)
    expect(await store.highestSeq('counter-1')).toBe(12)
    expect((await store.loadSnapshot('counter-1'))?.seq).toBe(10)
    const second = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [journalPlugin({ store })] })
    expect(await second.spawn(Counter).inc(0)).toBe(78)
    await second.shutdown()
    await store.close()
  })
})
