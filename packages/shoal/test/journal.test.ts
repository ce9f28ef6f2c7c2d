/**
 * Event sourcing over the in-memory store: the conformance suite, replay, snapshot plus tail, a
 * corrupt snapshot, a conflict between two activations on two nodes, upcasting, an undecodable
 * event, a store outage, limits, and queries by tag (also live).
 */

import {
  ActorNotFoundError,
  ClusterSystem,
  distributed,
  EventSourcedActor,
  isNotDelivered,
  JournalConflictError,
  JournalDecodeError,
  JournalFailedError,
  JournalLimitError,
  type JournalSettings,
  JournalUnavailableError,
  journalPlugin,
  MemoryEventStore,
} from 'shoal'
import { eventStoreConformance, eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

eventStoreConformance('memory', () => new MemoryEventStore(), { describe, it, expect })

type Event = { type: 'Added'; n: number } | { type: 'Reset' }
interface State {
  total: number
  count: number
}

class Tally extends EventSourcedActor<State, Event> {
  constructor(readonly name: string) {
    super()
  }
  get persistenceId(): string {
    return `tally-${this.name}`
  }
  initialState(): State {
    return { total: 0, count: 0 }
  }
  applyEvent(s: State, e: Event): State {
    return e.type === 'Added' ? { total: s.total + e.n, count: s.count + 1 } : { total: 0, count: s.count + 1 }
  }
  override tagsFor(e: Event): readonly string[] {
    return e.type === 'Added' ? ['tally'] : []
  }
  @distributed async add(n: number): Promise<State> {
    await this.emit({ type: 'Added', n })
    return this.state
  }
  @distributed async addMany(ns: number[]): Promise<State> {
    await Promise.all(ns.map((n) => this.emit({ type: 'Added', n }))) // not awaited one by one: still ordered
    return this.state
  }
  @distributed async big(bytes: number): Promise<void> {
    await this.emit({ type: 'Added', n: 0, blob: 'x'.repeat(bytes) } as unknown as Event)
  }
  @distributed async read(): Promise<State & { seq: number }> {
    return { ...this.state, seq: this.lastSeq }
  }
}

const systems: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function start(settings: JournalSettings, extra: Parameters<typeof ClusterSystem.start>[0] = {}): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ port: 0, logLevel: 'silent', ...extra, plugins: [journalPlugin(settings)] })
  systems.push(s)
  return s
}

describe('event-sourced actors', () => {
  it('persists then applies, in order, and recovers the same state in a new activation', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store })
    const t = a.spawn(Tally, 'x')
    await t.add(1)
    expect(await t.addMany([2, 3, 4, 5])).toEqual({ total: 15, count: 5 })
    expect((await store.read('tally-x', 1)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
    await a.stop(t)
    const again = a.spawn(Tally, 'x')
    expect(await again.read()).toEqual({ total: 15, count: 5, seq: 5 })
  })

  it('recovers from the latest snapshot plus the tail, and from a full replay when the snapshot is corrupt', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store, snapshotEvery: 10 })
    const t = a.spawn(Tally, 's')
    for (let i = 1; i <= 25; i++) await t.add(i)
    await eventually(async () => expect((await store.loadSnapshot('tally-s'))?.seq).toBe(20))
    await a.stop(t)
    // Recovery reads only events after the snapshot.
    const reads: number[] = []
    const read = store.read.bind(store)
    store.read = (pid, from, o) => (reads.push(from), read(pid, from, o))
    expect(await a.spawn(Tally, 's').read()).toEqual({ total: 325, count: 25, seq: 25 })
    expect(reads).toEqual([21])
    // A corrupt snapshot: full replay, same state.
    await store.saveSnapshot({ persistenceId: 'tally-s', seq: 30, payload: Uint8Array.of(0xc1, 0xff), timestamp: 0 })
    reads.length = 0
    expect(await a.spawn(Tally, 's').read()).toEqual({ total: 325, count: 25, seq: 25 })
    expect(reads).toEqual([1])
  })

  it('two activations of one entity on two nodes: the second writer gets a conflict, stops, and nothing diverges', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store })
    const b = await start({ store })
    const onA = a.spawn(Tally, 'dup')
    const onB = b.spawn(Tally, 'dup')
    await onA.read()
    await onB.read() // both recovered at seq 0
    expect((await onA.add(1)).total).toBe(1)
    const err = await onB.add(100).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JournalConflictError)
    await expect(onB.read()).rejects.toMatchObject({ code: 'SHOAL_ACTOR_NOT_FOUND' }) // it stopped
    expect((await store.read('tally-dup', 1)).length).toBe(1)
    expect((await b.spawn(Tally, 'dup').read()).total).toBe(1) // the truth, recovered
  })

  it('upcasts old event versions on replay; an undecodable event is an error naming where, never skipped', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store })
    // Version 1 of Added had `amount`, version 2 has `n`.
    const v1 = a.serialization.encode({ type: 'Added', amount: 7 })
    await store.append([{ persistenceId: 'tally-old', seq: 1, type: 'Added', version: 1, payload: v1, tags: [] }])
    a.journal.registerEvent('Added', { version: 2, upcasters: { 1: (old) => ({ type: 'Added', n: old.amount }) } })
    expect((await a.spawn(Tally, 'old').read()).total).toBe(7)
    // Written by newer code, and bytes that do not decode.
    await store.append([{ persistenceId: 'tally-new', seq: 1, type: 'Added', version: 3, payload: v1, tags: [] }])
    await store.append([{ persistenceId: 'tally-bad', seq: 1, type: 'Added', version: 2, payload: Uint8Array.of(0xc1), tags: [] }])
    const errors: unknown[] = []
    a.log.error = ((o: { err?: unknown }) => void errors.push(o?.err)) as typeof a.log.error
    // The call waiting for recovery is told why: the actor failed to start, the store's error as the cause.
    const refused = (await Promise.all(
      ['new', 'bad'].map((name) =>
        a
          .spawn(Tally, name)
          .read()
          .catch((e: unknown) => e),
      ),
    )) as Error[]
    for (const e of refused) {
      expect(e).toBeInstanceOf(ActorNotFoundError)
      expect(e.cause).toBeInstanceOf(JournalDecodeError)
      expect(isNotDelivered(e)).toBe(true)
    }
    expect(refused[0]!.message).toMatch(/failed to start: .*event 1 of "tally-new".*newer code.*SHOAL_JOURNAL_DECODE/)
    expect(refused[1]!.message).toMatch(/event 1 of "tally-bad"/)
    const decode = errors.filter((e) => e instanceof JournalDecodeError) as JournalDecodeError[]
    expect(decode.map((e) => e.message)).toEqual([expect.stringMatching(/event 1 of "tally-new".*newer code/), expect.stringMatching(/event 1 of "tally-bad"/)])
    await expect(a.journal.eventsByPersistenceId('tally-bad').next()).rejects.toBeInstanceOf(JournalDecodeError)
  })

  it('a store outage rejects emits with a clear error; a new activation recovers once it is back', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store })
    const t = a.spawn(Tally, 'out')
    await t.add(5)
    store.setAvailable(false)
    await expect(t.add(1)).rejects.toBeInstanceOf(JournalUnavailableError)
    // Recovery during the outage: the first call says the store is down, not that the actor is missing.
    const during = (await a
      .spawn(Tally, 'out')
      .read()
      .catch((e: unknown) => e)) as Error
    expect(during).toBeInstanceOf(ActorNotFoundError)
    expect(during.cause).toBeInstanceOf(JournalUnavailableError)
    expect(during.message).toMatch(/Actor .*failed to start: .*SHOAL_JOURNAL_UNAVAILABLE/)
    store.setAvailable(true)
    const again = a.spawn(Tally, 'out')
    expect(await again.read()).toEqual({ total: 5, count: 1, seq: 1 })
    expect((await again.add(2)).total).toBe(7)
  })

  it('refuses an event above maxEventBytes, writing nothing, and goes on', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store, maxEventBytes: 1000 })
    const t = a.spawn(Tally, 'lim')
    await expect(t.big(2000)).rejects.toBeInstanceOf(JournalLimitError)
    expect((await t.add(1)).total).toBe(1)
    expect(await store.highestSeq('tally-lim')).toBe(1)
  })

  it('queries by tag in global order, and a live subscription sees new events', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store })
    const x = a.spawn(Tally, 'qx')
    const y = a.spawn(Tally, 'qy')
    await x.add(1)
    await y.add(2)
    await x.add(3)
    const all = []
    for await (const e of a.journal.eventsByTag<Event>('tally')) all.push(`${e.persistenceId}:${(e.event as { n: number }).n}`)
    expect(all).toEqual(['tally-qx:1', 'tally-qy:2', 'tally-qx:3'])
    const stop = new AbortController()
    const seen: number[] = []
    const live = (async () => {
      for await (const e of a.journal.liveByTag<Event>('tally', 0, { signal: stop.signal })) seen.push((e.event as { n: number }).n)
    })()
    await eventually(() => expect(seen).toEqual([1, 2, 3]))
    await y.add(4)
    await eventually(() => expect(seen).toEqual([1, 2, 3, 4]))
    stop.abort()
    await live
    const stream = []
    for await (const e of a.journal.eventsByPersistenceId('tally-qx', 2)) stream.push(e.seq)
    expect(stream).toEqual([2])
  })

  it('an actor that emits after a failed write gets JournalFailedError', async () => {
    const store = new MemoryEventStore()
    const a = await start({ store })
    class Eager extends Tally {
      @distributed async twoThenFail(): Promise<unknown[]> {
        store.setAvailable(false)
        const first = this.emit({ type: 'Added', n: 1 }).catch((e: unknown) => e)
        const second = this.emit({ type: 'Added', n: 2 }).catch((e: unknown) => e)
        const out = await Promise.all([first, second])
        store.setAvailable(true)
        return out
      }
    }
    const [first, second] = await a.spawn(Eager, 'eager').twoThenFail()
    expect(first).toBeInstanceOf(JournalUnavailableError)
    expect(second).toBeInstanceOf(JournalFailedError)
    expect(await store.highestSeq('tally-eager')).toBe(0)
  })
})
