/**
 * The embedded event and snapshot store: one SQLite file through better-sqlite3, in WAL mode.
 *
 * - **Schema**, created and migrated on open (`PRAGMA user_version`): `events` (global offset as an
 *   AUTOINCREMENT key, never reused; `UNIQUE (persistence_id, seq)`), `event_tags` (tag → offset,
 *   for queries by tag), `snapshots` (latest per persistence id), `leases` (schema 2).
 * - **Leases** ({@link LeaseStore}) for the processes sharing the file (one machine): expiry by
 *   SQLite's clock, `unixepoch('subsec')`, in one upsert that only takes a free, expired or own lease.
 * - **Group commit.** better-sqlite3 is synchronous; appends made in the same event-loop turn are
 *   written in one transaction, each in its own savepoint, so a conflict fails only its own batch
 *   while the others commit together.
 * - **Durability.** WAL with `synchronous = NORMAL`: a commit survives a process crash; a power
 *   loss may lose the last transactions (`synchronous: 'full'` for that).
 * - Only parameterized statements, prepared once.
 * @module
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import {
  ConfigError,
  type EventStore,
  JournalConflictError,
  JournalUnavailableError,
  type LeaseStore,
  type NewEvent,
  type ReadOptions,
  type SnapshotStore,
  type StoredEvent,
  type StoredSnapshot,
  TagWatchers,
  type WriteBatch,
  WriteObservers,
} from 'shoal'

/** Options of {@link SqliteEventStore.open}. */
export interface SqliteOptions {
  /** `normal` (default: survives process crashes) or `full` (also power loss, slower). */
  readonly synchronous?: 'normal' | 'full'
  /** How long a write waits for another process's lock, ms. Default 5000. */
  readonly busyTimeout?: number
}

const SCHEMA_VERSION = 2
/** SQLite's clock in whole milliseconds. */
const NOW_MS = "CAST(unixepoch('subsec') * 1000 AS INTEGER)"

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     global_offset INTEGER PRIMARY KEY AUTOINCREMENT,
     persistence_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     type TEXT NOT NULL,
     version INTEGER NOT NULL,
     payload BLOB NOT NULL,
     tags TEXT NOT NULL,
     written_at INTEGER NOT NULL,
     UNIQUE (persistence_id, seq)
   );
   CREATE TABLE event_tags (tag TEXT NOT NULL, global_offset INTEGER NOT NULL, PRIMARY KEY (tag, global_offset)) WITHOUT ROWID;
   CREATE TABLE snapshots (persistence_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, payload BLOB NOT NULL, written_at INTEGER NOT NULL) WITHOUT ROWID;`,
  `CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL, epoch INTEGER NOT NULL) WITHOUT ROWID;`,
]

interface Row {
  global_offset: number
  persistence_id: string
  seq: number
  type: string
  version: number
  payload: Buffer
  tags: string
  written_at: number
}

interface Pending {
  readonly events: readonly NewEvent[]
  resolve(): void
  reject(e: Error): void
}

/** SQLite {@link EventStore}, {@link SnapshotStore} and {@link LeaseStore}; see the module comment. */
export class SqliteEventStore implements EventStore, SnapshotStore, LeaseStore {
  readonly name: string
  readonly #db: Database.Database
  readonly #insert: Database.Statement
  readonly #insertTag: Database.Statement
  readonly #read: Database.Statement
  readonly #highest: Database.Statement
  readonly #byTag: Database.Statement
  readonly #saveSnapshot: Database.Statement
  readonly #loadSnapshot: Database.Statement
  readonly #acquireLease: Database.Statement
  readonly #releaseLease: Database.Statement
  readonly #leaseHolder: Database.Statement
  readonly #tagWatchers = new TagWatchers()
  readonly #writes = new WriteObservers()
  #queue: Pending[] = []
  #closed = false

  private constructor(path: string, db: Database.Database) {
    this.name = `sqlite:${path}`
    this.#db = db
    this.#insert = db.prepare('INSERT INTO events (persistence_id, seq, type, version, payload, tags, written_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    this.#insertTag = db.prepare('INSERT INTO event_tags (tag, global_offset) VALUES (?, ?)')
    this.#read = db.prepare('SELECT * FROM events WHERE persistence_id = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?')
    this.#highest = db.prepare('SELECT MAX(seq) AS seq FROM events WHERE persistence_id = ?').pluck()
    this.#byTag = db.prepare(
      'SELECT e.* FROM event_tags t JOIN events e ON e.global_offset = t.global_offset WHERE t.tag = ? AND t.global_offset > ? ORDER BY t.global_offset LIMIT ?',
    )
    this.#saveSnapshot = db.prepare(
      'INSERT INTO snapshots (persistence_id, seq, payload, written_at) VALUES (?, ?, ?, ?) ON CONFLICT (persistence_id) DO UPDATE SET seq = excluded.seq, payload = excluded.payload, written_at = excluded.written_at WHERE excluded.seq >= snapshots.seq',
    )
    this.#loadSnapshot = db.prepare('SELECT * FROM snapshots WHERE persistence_id = ?')
    this.#acquireLease = db
      .prepare(
        `INSERT INTO leases (name, owner, expires_at, epoch) VALUES (?, ?, ${NOW_MS} + ?, 1) ON CONFLICT (name) DO UPDATE SET
           epoch = CASE WHEN leases.owner = excluded.owner AND leases.expires_at > ${NOW_MS} THEN leases.epoch ELSE leases.epoch + 1 END,
           owner = excluded.owner, expires_at = excluded.expires_at
         WHERE leases.owner = excluded.owner OR leases.owner = '' OR leases.expires_at <= ${NOW_MS} RETURNING epoch`,
      )
      .pluck()
    // Released: no owner, the epoch kept (the next holder's is higher).
    this.#releaseLease = db.prepare("UPDATE leases SET owner = '', expires_at = 0 WHERE name = ? AND owner = ?")
    this.#leaseHolder = db.prepare(`SELECT owner FROM leases WHERE name = ? AND owner <> '' AND expires_at > ${NOW_MS}`).pluck()
  }

  /**
   * Opens (creating the file and its directory if needed) and migrates a store. `path` may be
   * `:memory:` for a private in-memory database.
   */
  static open(path: string, options: SqliteOptions = {}): SqliteEventStore {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    const db = new Database(path)
    try {
      db.pragma('journal_mode = WAL')
      db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeout ?? 5000))}`)
      migrate(db)
      return new SqliteEventStore(path, db)
    } catch (e) {
      db.close()
      throw e
    }
  }

  append(events: readonly NewEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new JournalUnavailableError(`The event store ${this.name} is closed.`))
    if (events.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush())
      this.#queue.push({ events, resolve, reject })
    })
  }

  async read(persistenceId: string, fromSeq: number, options: ReadOptions = {}): Promise<StoredEvent[]> {
    return this.#run(() => (this.#read.all(persistenceId, fromSeq, options.toSeq ?? Number.MAX_SAFE_INTEGER, options.limit ?? 1000) as Row[]).map(toEvent))
  }

  async highestSeq(persistenceId: string): Promise<number> {
    return this.#run(() => (this.#highest.get(persistenceId) as number | null) ?? 0)
  }

  async eventsByTag(tag: string, afterOffset: number, limit = 1000): Promise<StoredEvent[]> {
    return this.#run(() => (this.#byTag.all(tag, afterOffset, limit) as Row[]).map(toEvent))
  }

  watchTag(tag: string, listener: () => void): () => void {
    return this.#tagWatchers.watch(tag, listener)
  }

  async saveSnapshot(s: StoredSnapshot): Promise<void> {
    this.#run(() => this.#saveSnapshot.run(s.persistenceId, s.seq, Buffer.from(s.payload.buffer, s.payload.byteOffset, s.payload.byteLength), s.timestamp))
  }

  async loadSnapshot(persistenceId: string): Promise<StoredSnapshot | undefined> {
    const row = this.#run(
      () => this.#loadSnapshot.get(persistenceId) as { persistence_id: string; seq: number; payload: Buffer; written_at: number } | undefined,
    )
    return row && { persistenceId: row.persistence_id, seq: row.seq, payload: new Uint8Array(row.payload), timestamp: row.written_at }
  }

  async acquireLease(name: string, owner: string, ttlMs: number): Promise<number | undefined> {
    if (owner === '') throw new ConfigError('A lease owner must not be empty (empty marks a released lease).')
    return this.#run(() => this.#acquireLease.get(name, owner, Math.ceil(ttlMs)) as number | undefined)
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    return void this.#run(() => this.#releaseLease.run(name, owner))
  }

  async leaseHolder(name: string): Promise<string | undefined> {
    return this.#run(() => (this.#leaseHolder.get(name) as string | undefined) ?? undefined)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#flush()
    this.#closed = true
    this.#tagWatchers.clear()
    this.#writes.clear()
    this.#db.close()
  }

  /** See `EventStore.observeWrites`: each transaction's appends, events, conflicts and time. */
  observeWrites(observer: (batch: WriteBatch) => void): () => void {
    return this.#writes.add(observer)
  }

  #observed(batch: readonly { readonly events: readonly NewEvent[] }[], conflicts: number, started: number): void {
    let events = 0
    for (const p of batch) events += p.events.length
    this.#writes.notify({ appends: batch.length, events, conflicts, seconds: (performance.now() - started) / 1000 })
  }

  /** Writes every queued append in one transaction, each in a savepoint of its own. */
  #flush(): void {
    const batch = this.#queue
    this.#queue = []
    if (batch.length === 0) return
    const outcomes: (Error | undefined)[] = []
    const tags = new Set<string>()
    const started = this.#writes.any ? performance.now() : 0
    try {
      this.#db.transaction(() => {
        for (const p of batch) outcomes.push(this.#appendOne(p.events, tags))
      })()
    } catch (e) {
      const err = unavailable(this.name, e)
      for (const p of batch) p.reject(err)
      return
    }
    if (this.#writes.any) this.#observed(batch, outcomes.filter(Boolean).length, started)
    batch.forEach((p, i) => (outcomes[i] ? p.reject(outcomes[i]!) : p.resolve()))
    this.#tagWatchers.notify(tags)
  }

  #appendOne(events: readonly NewEvent[], tags: Set<string>): Error | undefined {
    this.#db.exec('SAVEPOINT append')
    const now = Date.now()
    const mine: string[] = []
    try {
      for (const e of events) {
        const offset = this.#insert.run(
          e.persistenceId,
          e.seq,
          e.type,
          e.version,
          Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength),
          JSON.stringify(e.tags),
          now,
        ).lastInsertRowid
        for (const t of new Set(e.tags)) {
          this.#insertTag.run(t, offset)
          mine.push(t)
        }
      }
      this.#db.exec('RELEASE append')
      for (const t of mine) tags.add(t)
      return undefined
    } catch (e) {
      this.#db.exec('ROLLBACK TO append')
      this.#db.exec('RELEASE append')
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const first = events[0]!
        return new JournalConflictError(
          `An event of ${JSON.stringify(first.persistenceId)} at sequence ${first.seq}..${first.seq + events.length - 1} already exists: another activation of this entity wrote it.`,
        )
      }
      throw e
    }
  }

  #run<T>(fn: () => T): T {
    if (this.#closed) throw new JournalUnavailableError(`The event store ${this.name} is closed.`)
    try {
      return fn()
    } catch (e) {
      throw unavailable(this.name, e)
    }
  }
}

function toEvent(r: Row): StoredEvent {
  return {
    persistenceId: r.persistence_id,
    seq: r.seq,
    type: r.type,
    version: r.version,
    payload: new Uint8Array(r.payload),
    tags: JSON.parse(r.tags) as string[],
    offset: r.global_offset,
    timestamp: r.written_at,
  }
}

function unavailable(name: string, e: unknown): Error {
  if (e instanceof JournalConflictError || e instanceof JournalUnavailableError) return e
  return new JournalUnavailableError(`The event store ${name} failed: ${(e as Error).message}`, { cause: e })
}

function migrate(db: Database.Database): void {
  // Read and write the version in one IMMEDIATE transaction: two processes opening a new file at
  // once must not both see version 0 and both create the tables.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number
    if (current > SCHEMA_VERSION)
      throw new JournalUnavailableError(`This SQLite journal has schema version ${current}, newer than this code (${SCHEMA_VERSION}): upgrade Shoal.`)
    for (let v = current; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!)
    if (current !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`)
  }).immediate()
}
