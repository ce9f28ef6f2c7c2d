/**
 * An event and snapshot store in memory: for tests, examples and as the fallback when no embedded
 * database is available. Keeps the same rules as the durable stores (unique `(persistenceId,
 * seq)`, atomic batches, global offsets, tag notifications) and passes the same conformance suite,
 * but loses everything when the process exits.
 * @module
 */
import { JournalConflictError, JournalUnavailableError } from '../errors.ts'
import type { EventStore, NewEvent, ReadOptions, SnapshotStore, StoredEvent, StoredSnapshot } from './EventStore.ts'
import { TagWatchers } from './TagWatchers.ts'

/** In-memory {@link EventStore} and {@link SnapshotStore}. */
export class MemoryEventStore implements EventStore, SnapshotStore {
  readonly name = 'memory'
  readonly #streams = new Map<string, StoredEvent[]>()
  readonly #seqs = new Map<string, Set<number>>()
  readonly #all: StoredEvent[] = []
  readonly #snapshots = new Map<string, StoredSnapshot>()
  readonly #tagWatchers = new TagWatchers()
  #offset = 0
  #down = false

  /** Simulates an outage (tests): while down, every operation rejects with JournalUnavailableError. */
  setAvailable(available: boolean): void {
    this.#down = !available
  }

  async append(events: readonly NewEvent[]): Promise<void> {
    this.#check()
    const seen = new Set<string>()
    for (const e of events) {
      const key = `${e.seq}:${e.persistenceId}`
      if (seen.has(key) || this.#seqs.get(e.persistenceId)?.has(e.seq)) {
        throw new JournalConflictError(`Event ${e.seq} of ${JSON.stringify(e.persistenceId)} already exists: another activation of this entity wrote it.`)
      }
      seen.add(key)
    }
    for (const e of events) {
      if (!this.#streams.has(e.persistenceId)) {
        this.#streams.set(e.persistenceId, [])
        this.#seqs.set(e.persistenceId, new Set())
      }
      this.#seqs.get(e.persistenceId)!.add(e.seq)
    }
    const now = Date.now()
    const tags = new Set<string>()
    for (const e of events) {
      const stored: StoredEvent = { ...e, payload: Uint8Array.from(e.payload), tags: [...e.tags], offset: ++this.#offset, timestamp: now }
      this.#streams.get(e.persistenceId)!.push(stored)
      this.#all.push(stored)
      for (const t of e.tags) tags.add(t)
    }
    this.#tagWatchers.notify(tags)
  }

  async read(persistenceId: string, fromSeq: number, options: ReadOptions = {}): Promise<StoredEvent[]> {
    this.#check()
    const to = options.toSeq ?? Number.MAX_SAFE_INTEGER
    const stream = (this.#streams.get(persistenceId) ?? []).filter((e) => e.seq >= fromSeq && e.seq <= to)
    return stream.sort((a, b) => a.seq - b.seq).slice(0, options.limit ?? 1000)
  }

  async highestSeq(persistenceId: string): Promise<number> {
    this.#check()
    let max = 0
    for (const seq of this.#seqs.get(persistenceId) ?? []) if (seq > max) max = seq
    return max
  }

  async eventsByTag(tag: string, afterOffset: number, limit = 1000): Promise<StoredEvent[]> {
    this.#check()
    const out: StoredEvent[] = []
    for (const e of this.#all) {
      if (e.offset > afterOffset && e.tags.includes(tag)) out.push(e)
      if (out.length >= limit) break
    }
    return out
  }

  watchTag(tag: string, listener: () => void): () => void {
    return this.#tagWatchers.watch(tag, listener)
  }

  async saveSnapshot(s: StoredSnapshot): Promise<void> {
    this.#check()
    const old = this.#snapshots.get(s.persistenceId)
    if (!old || old.seq <= s.seq) this.#snapshots.set(s.persistenceId, { ...s, payload: Uint8Array.from(s.payload) })
  }

  async loadSnapshot(persistenceId: string): Promise<StoredSnapshot | undefined> {
    this.#check()
    return this.#snapshots.get(persistenceId)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#tagWatchers.clear()
  }

  #closed = false

  #check(): void {
    if (this.#closed) throw new JournalUnavailableError(`The ${this.name} event store is closed.`)
    if (this.#down) throw new JournalUnavailableError(`The ${this.name} event store is unavailable.`)
  }
}
