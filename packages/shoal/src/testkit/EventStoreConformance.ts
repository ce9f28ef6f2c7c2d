/**
 * The conformance suite every event store must pass (in-memory, SQLite, PostgreSQL, yours). It is
 * test-framework neutral: pass vitest's (or another's) `describe`, `it` and `expect`.
 *
 * ```ts
 * import { describe, it, expect } from 'vitest'
 * eventStoreConformance('sqlite', () => SqliteEventStore.open(':memory:'), { describe, it, expect })
 * ```
 * @module
 */
import { JournalConflictError } from '../errors.ts'
import type { EventStore, NewEvent, SnapshotStore } from '../journal/EventStore.ts'

/** The parts of a test framework the suite uses. */
export interface ConformanceFramework {
  describe(name: string, body: () => void): void
  it(name: string, body: () => Promise<void>, timeout?: number): void
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  expect: (value: unknown) => any
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Builds events of one stream, numbered from `from`. */
export function events(persistenceId: string, from: number, count: number, tags: readonly string[] = []): NewEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    persistenceId,
    seq: from + i,
    type: 'Happened',
    version: 1,
    payload: bytes(`${persistenceId}#${from + i}`),
    tags,
  }))
}

/**
 * Registers the suite: `open` makes a fresh, empty store for each test (closed at its end).
 * Snapshot tests run when the store is also a SnapshotStore.
 */
export function eventStoreConformance(name: string, open: () => Promise<EventStore> | EventStore, { describe, it, expect }: ConformanceFramework): void {
  const withStore = (body: (s: EventStore) => Promise<void>) => async () => {
    const store = await open()
    try {
      await body(store)
    } finally {
      await store.close()
    }
  }

  describe(`event store conformance: ${name}`, () => {
    it(
      'appends and reads back exactly, in order, with paging',
      withStore(async (s) => {
        await s.append(events('a', 1, 3, ['t']))
        await s.append(events('a', 4, 2))
        const all = await s.read('a', 1)
        expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
        expect(Buffer.from(all[2]!.payload).toString()).toBe('a#3')
        expect(all[0]).toMatchObject({ persistenceId: 'a', type: 'Happened', version: 1, tags: ['t'] })
        expect(all[4]!.tags).toEqual([])
        expect(typeof all[0]!.timestamp).toBe('number')
        expect((await s.read('a', 2, { toSeq: 3 })).map((e) => e.seq)).toEqual([2, 3])
        expect((await s.read('a', 2, { limit: 2 })).map((e) => e.seq)).toEqual([2, 3])
        expect(await s.highestSeq('a')).toBe(5)
        expect(await s.highestSeq('nobody')).toBe(0)
        expect(await s.read('nobody', 1)).toEqual([])
      }),
    )

    it(
      'refuses a used (persistence id, seq) and writes nothing of that batch',
      withStore(async (s) => {
        await s.append(events('a', 1, 2))
        const err = await s.append([...events('a', 3, 1), ...events('a', 2, 1)]).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(JournalConflictError)
        expect(await s.highestSeq('a')).toBe(2)
        expect((await s.read('a', 1)).map((e) => Buffer.from(e.payload).toString())).toEqual(['a#1', 'a#2'])
      }),
    )

    it(
      'concurrent writers of one seq: exactly one wins; of different streams: all land',
      withStore(async (s) => {
        const same = await Promise.allSettled(Array.from({ length: 8 }, () => s.append(events('race', 1, 1))))
        expect(same.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        for (const r of same) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(JournalConflictError)
        await Promise.all(Array.from({ length: 50 }, (_, i) => s.append(events(`p${i}`, 1, 2, ['many']))))
        expect(await s.eventsByTag('many', 0, 1000)).toHaveLength(100)
      }),
    )

    it(
      'orders events by tag with strictly increasing offsets; afterOffset is exclusive',
      withStore(async (s) => {
        await s.append(events('x', 1, 2, ['game']))
        await s.append(events('y', 1, 1, ['game', 'other']))
        await s.append(events('x', 3, 1))
        await s.append(events('z', 1, 1, ['game']))
        const tagged = await s.eventsByTag('game', 0)
        expect(tagged.map((e) => `${e.persistenceId}${e.seq}`)).toEqual(['x1', 'x2', 'y1', 'z1'])
        for (let i = 1; i < tagged.length; i++) expect(tagged[i]!.offset).toBeGreaterThan(tagged[i - 1]!.offset)
        expect((await s.eventsByTag('game', tagged[1]!.offset)).map((e) => `${e.persistenceId}${e.seq}`)).toEqual(['y1', 'z1'])
        expect(await s.eventsByTag('game', 0, 2)).toHaveLength(2)
        expect((await s.eventsByTag('other', 0)).map((e) => e.persistenceId)).toEqual(['y'])
      }),
    )

    it(
      'tells tag watchers about new events',
      withStore(async (s) => {
        let calls = 0
        const off = s.watchTag('w', () => calls++)
        await s.append(events('a', 1, 1, ['w']))
        await waitUntil(() => calls > 0)
        off()
      }),
    )

    it(
      'refuses whole an append that holds one sequence number twice',
      withStore(async (s) => {
        const twice = [...events('dup', 1, 2), ...events('dup', 2, 1)]
        await expect(s.append(twice)).rejects.toBeInstanceOf(JournalConflictError)
        expect(await s.highestSeq('dup')).toBe(0)
        await s.append(events('dup', 1, 2))
        expect((await s.read('dup', 1)).map((e) => e.seq)).toEqual([1, 2])
      }),
    )

    it('close() drains: appends handed in before it are written and answered; later calls are refused', async () => {
      const s = await open()
      const handedIn = Array.from({ length: 20 }, (_, i) => s.append(events(`drain-${i}`, 1, 1)))
      await s.close()
      expect((await Promise.allSettled(handedIn)).map((r) => r.status)).toEqual(handedIn.map(() => 'fulfilled'))
      await expect(s.append(events('late', 1, 1))).rejects.toMatchObject({ code: 'SHOAL_JOURNAL_UNAVAILABLE' })
      await expect(s.read('drain-0', 1)).rejects.toMatchObject({ code: 'SHOAL_JOURNAL_UNAVAILABLE' })
    })

    it(
      'stores hostile persistence ids, tags and payloads exactly',
      withStore(async (s) => {
        const ids = [`o'brien"; DROP TABLE events; --`, '🐟 fish ☃', 'x'.repeat(512), '%_\\', 'line\nbreak', '$1 ? :name']
        const payload = Uint8Array.from({ length: 256 }, (_, i) => i)
        // Array syntax, the NULL keyword, quotes, backslashes and padding are all just text in a tag.
        const tags = ["tag'--", '{a,"b"}', 'NULL', ' pad ', 'c\\"d', '']
        for (const id of ids) {
          await s.append([{ persistenceId: id, seq: 1, type: 'T\'"', version: 3, payload, tags: [id.slice(0, 256), ...tags] }])
          const [e] = await s.read(id, 1)
          expect(e!.persistenceId).toBe(id)
          expect(e!.type).toBe('T\'"')
          expect(e!.version).toBe(3)
          expect(Buffer.from(e!.payload).equals(Buffer.from(payload))).toBe(true)
          expect(e!.tags).toEqual([id.slice(0, 256), ...tags])
        }
        expect((await s.eventsByTag("tag'--", 0)).map((e) => e.persistenceId)).toEqual(ids)
        expect(await s.read(`o'brien%`, 1)).toEqual([])
      }),
    )

    it(
      'keeps the latest snapshot',
      withStore(async (s) => {
        if (!isSnapshotStore(s)) return
        expect(await s.loadSnapshot('a')).toBeUndefined()
        await s.saveSnapshot({ persistenceId: 'a', seq: 10, payload: bytes('ten'), timestamp: 1 })
        await s.saveSnapshot({ persistenceId: 'a', seq: 20, payload: bytes('twenty'), timestamp: 2 })
        await s.saveSnapshot({ persistenceId: 'a', seq: 15, payload: bytes('late'), timestamp: 3 })
        const snap = await s.loadSnapshot('a')
        expect(snap?.seq).toBe(20)
        expect(Buffer.from(snap!.payload).toString()).toBe('twenty')
      }),
    )
  })
}

function isSnapshotStore(s: unknown): s is SnapshotStore {
  return typeof (s as SnapshotStore).saveSnapshot === 'function'
}

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}
