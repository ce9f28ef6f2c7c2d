/**
 * The storage contract of event sourcing: an append-only journal of events per persistence id,
 * ordered globally by an offset for read models, plus snapshots. Implementations: the in-memory
 * `MemoryEventStore` here, SQLite (`@shoal/journal-sqlite`) and PostgreSQL
 * (`@shoal/journal-postgres`); one conformance suite (`shoal/testkit`'s `eventStoreConformance`)
 * runs against each. The interface leaves room for others (a MongoDB store, say).
 *
 * The one rule every store must keep: `(persistenceId, seq)` is unique. A second write at a used
 * sequence number fails with `JournalConflictError` and writes nothing of its batch, so two
 * activations of one entity anywhere in the cluster can never interleave their histories.
 * @module
 */
import { JournalLimitError } from '../errors.ts'

/** An event as the actor writes it (payload already encoded). */
export interface NewEvent {
  readonly persistenceId: string
  /** 1, 2, 3… per persistence id, without gaps. */
  readonly seq: number
  /** The event's type name (its `type` field) and schema version, for upcasting on replay. */
  readonly type: string
  readonly version: number
  readonly payload: Uint8Array
  readonly tags: readonly string[]
}

/** An event as stored: with its write time and global offset. */
export interface StoredEvent extends NewEvent {
  /** Position in the store's global order (strictly increasing by commit; may have gaps). */
  readonly offset: number
  /** ms since the epoch, when it was written. */
  readonly timestamp: number
}

/** A snapshot of an actor's state after event `seq`. */
export interface StoredSnapshot {
  readonly persistenceId: string
  readonly seq: number
  readonly payload: Uint8Array
  readonly timestamp: number
}

/** Reading a page of a stream. */
export interface ReadOptions {
  /** Last sequence number to read (inclusive). Default: all. */
  readonly toSeq?: number
  /** Most events to return. Default 1000. */
  readonly limit?: number
}

/** An append-only event journal; see the module comment. */
export interface EventStore {
  /** For logs and errors (`memory`, `sqlite:./data/shoal.db`, `postgres://…`). */
  readonly name: string
  /**
   * Appends events atomically: all or none. Rejects with `JournalConflictError` if any
   * `(persistenceId, seq)` is taken, `JournalUnavailableError` if the store cannot be reached.
   * After a rejection other than a conflict the outcome is unknown (the write may have landed).
   */
  append(events: readonly NewEvent[]): Promise<void>
  /** Events of one stream with `seq ≥ fromSeq`, in order, at most `limit`. */
  read(persistenceId: string, fromSeq: number, options?: ReadOptions): Promise<StoredEvent[]>
  /** Highest sequence number written for the stream (0 if none). */
  highestSeq(persistenceId: string): Promise<number>
  /** Events carrying `tag` with `offset > afterOffset`, in offset order, at most `limit` (default 1000). */
  eventsByTag(tag: string, afterOffset: number, limit?: number): Promise<StoredEvent[]>
  /**
   * Calls `listener` when events with `tag` may have been written (by this process or, for shared
   * stores, any other); returns the unsubscribe function. Hints only: readers re-query.
   */
  watchTag(tag: string, listener: () => void): () => void
  /**
   * Optional, for stores that group appends into one transaction (SQLite, PostgreSQL): calls
   * `observer` after each write transaction with its size and time (the journal's batch-size
   * metrics). Returns the function that removes the observer.
   */
  observeWrites?(observer: (batch: WriteBatch) => void): () => void
  /**
   * Drains, then releases connections and files: appends already handed in are written and
   * answered; every later call rejects with JournalUnavailableError.
   */
  close(): Promise<void>
}

/** One write transaction of a store that groups appends (group commit). */
export interface WriteBatch {
  /** Appends (one per `emit`) in the transaction. */
  readonly appends: number
  /** Events they carried. */
  readonly events: number
  /** Appends refused as conflicts (another activation wrote first). */
  readonly conflicts: number
  /** Time the transaction took, s. */
  readonly seconds: number
}

/** Where snapshots live (often the same database as the events). */
export interface SnapshotStore {
  /** Saves a snapshot, replacing older ones of the stream. */
  saveSnapshot(s: StoredSnapshot): Promise<void>
  /** The latest snapshot of the stream, if any. */
  loadSnapshot(persistenceId: string): Promise<StoredSnapshot | undefined>
}

/** Longest persistence id, in UTF-16 code units. */
export const MAX_PERSISTENCE_ID_LENGTH = 512
/** Longest tag. */
export const MAX_TAG_LENGTH = 256
/** Most tags on one event. */
export const MAX_TAGS = 32

/** Half of a UTF-16 pair without its other half: not storable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Checks a persistence id or tag: any text (quotes, SQL, emoji are stored exactly) of bounded
 * length, except what no store can keep exactly: NUL (PostgreSQL text refuses it) and unpaired
 * surrogates (not UTF-8). Throws JournalLimitError naming the problem.
 */
export function checkName(what: 'persistence id' | 'tag', value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new JournalLimitError(
      `A ${what} must be a string of 1..${max} characters (got ${typeof value === 'string' ? `${value.length} characters` : typeof value}).`,
    )
  }
  if (value.includes('\u0000')) throw new JournalLimitError(`A ${what} cannot contain NUL characters: ${JSON.stringify(value.slice(0, 80))}.`)
  if (LONE_SURROGATE.test(value))
    throw new JournalLimitError(
      `A ${what} must be well-formed Unicode (it has an unpaired surrogate, which UTF-8 cannot store): ${JSON.stringify(value.slice(0, 80))}.`,
    )
  return value
}
