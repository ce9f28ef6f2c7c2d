/**
 * The PostgreSQL event and snapshot store (client: `postgres` 3.4.9, a connection pool).
 *
 * - **Schema** created and migrated on open, in the schema of your choice (`shoal_events`,
 *   `shoal_snapshots`, `shoal_schema_version`); `UNIQUE (persistence_id, seq)` enforces the one
 *   rule of the journal; a GIN index on `tags` serves queries by tag.
 * - **Group commit.** The appends of one event-loop turn, and those that queue while a write is in
 *   flight, go together in one statement: `WITH lock …, ins AS (INSERT … SELECT FROM unnest(…))
 *   SELECT pg_notify(…)`, one round trip and its own transaction. Rows travel as one array per
 *   column, so the statement text never changes and is prepared once per connection (a multi-row
 *   `VALUES` list would be a new statement, parsed and planned anew, for every batch size; measured
 *   in docs/benchmarks.md). If any row hits an existing `(persistence_id, seq)`, the statement
 *   rolls back whole and the batch is written again carefully, each append in a savepoint: the
 *   conflicting ones fail with JournalConflictError, the others succeed; one append never fails
 *   another. Two appends of one key in the same batch: the first wins.
 * - **Gap-free offsets.** Writers take a transaction-level advisory lock, so global offsets
 *   commit in order: a reader following a tag by offset never skips an event that commits late
 *   (with concurrent writers, BIGSERIAL values otherwise commit out of order).
 * - **Live tags** by LISTEN/NOTIFY on one channel: `pg_notify` in the writing statement, so a
 *   notice is sent only on commit, to every process sharing the database.
 * - **Leases** ({@link LeaseStore}, `shoal_leases`, schema 2): expiry by the server's
 *   `clock_timestamp()`, in one upsert that only takes a free, expired or own lease.
 * - Only parameterized statements; the schema name is quoted as an identifier.
 * @module
 */
import postgres from 'postgres'
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

/** Options of {@link PostgresEventStore.open}. */
export interface PostgresOptions {
  /** Schema (namespace) of the tables; created if missing. Default `public`. */
  readonly schema?: string
  /** Pool size. Default 10. */
  readonly max?: number
  /** Passed on to the `postgres` client (ssl, timeouts…). */
  readonly client?: postgres.Options<Record<string, postgres.PostgresType>>
}

const SCHEMA_VERSION = 2
/** Advisory-lock key of the writers (an arbitrary 64-bit constant: "shoal" in ASCII). */
const WRITE_LOCK = 0x73686f616c
const CHANNEL = 'shoal_events'
const UNIQUE_VIOLATION = '23505'
/** Type OIDs of the column arrays' elements. */
const TEXT = 25
const INT8 = 20
const INT4 = 23
const BYTEA = 17

type Sql = postgres.Sql<Record<string, never>>

interface Row {
  global_offset: string
  persistence_id: string
  seq: string
  type: string
  version: number
  payload: Buffer
  tags: string[]
  written_at: string
}

interface Pending {
  readonly events: readonly NewEvent[]
  resolve(): void
  reject(e: Error): void
}

/** PostgreSQL {@link EventStore}, {@link SnapshotStore} and {@link LeaseStore}; see the module comment. */
export class PostgresEventStore implements EventStore, SnapshotStore, LeaseStore {
  readonly name: string
  readonly #sql: Sql
  readonly #schema: string
  readonly #tagWatchers = new TagWatchers()
  readonly #writes = new WriteObservers()
  #queue: Pending[] = []
  #writing = false
  #scheduled = false
  #closed = false
  /** The write loop, while it runs (close waits for it). */
  #draining: Promise<void> = Promise.resolve()
  /** Reads and snapshot writes in flight (close waits for them). */
  readonly #inflight = new Set<Promise<unknown>>()

  private constructor(name: string, sql: Sql, schema: string) {
    this.name = name
    this.#sql = sql
    this.#schema = schema
  }

  /** Connects, creates or migrates the schema, and starts listening for tag notices. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresEventStore> {
    const schema = options.schema ?? 'public'
    // Reconnect delay bounded to 2 s (the client's default grows to about 20 s, which makes
    // recovery after an outage time out rather than fail fast or succeed).
    const backoff = (attempt: number): number => Math.min(2, 0.05 * 2 ** attempt)
    const sql = postgres(url, { max: options.max ?? 10, onnotice: () => undefined, backoff, ...options.client }) as unknown as Sql
    const store = new PostgresEventStore(`postgres:${redact(url)}/${schema}`, sql, schema)
    try {
      await store.#migrate()
      await sql.listen(CHANNEL, (tag) => store.#tagWatchers.notify([tag]))
    } catch (e) {
      await sql.end({ timeout: 1 })
      throw unavailable(store.name, e)
    }
    return store
  }

  append(events: readonly NewEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new JournalUnavailableError(`The event store ${this.name} is closed.`))
    if (events.length === 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.#queue.push({ events, resolve, reject })
      // Wait for the rest of this event-loop turn: its appends (often one per actor) go together.
      if (!this.#writing && !this.#scheduled) {
        this.#scheduled = true
        setImmediate(() => {
          this.#scheduled = false
          if (!this.#writing) this.#draining = this.#drain()
        })
      }
    })
  }

  async read(persistenceId: string, fromSeq: number, options: ReadOptions = {}): Promise<StoredEvent[]> {
    const sql = this.#sql
    const rows = await this.#run(
      () =>
        sql<
          Row[]
        >`SELECT * FROM ${sql(this.#schema)}.shoal_events WHERE persistence_id = ${persistenceId} AND seq >= ${fromSeq} AND seq <= ${options.toSeq ?? Number.MAX_SAFE_INTEGER} ORDER BY seq LIMIT ${options.limit ?? 1000}`,
    )
    return rows.map(toEvent)
  }

  async highestSeq(persistenceId: string): Promise<number> {
    const sql = this.#sql
    const [row] = await this.#run(
      () => sql<{ max: string | null }[]>`SELECT MAX(seq) AS max FROM ${sql(this.#schema)}.shoal_events WHERE persistence_id = ${persistenceId}`,
    )
    return Number(row?.max ?? 0)
  }

  async eventsByTag(tag: string, afterOffset: number, limit = 1000): Promise<StoredEvent[]> {
    const sql = this.#sql
    const rows = await this.#run(
      () =>
        sql<
          Row[]
        >`SELECT * FROM ${sql(this.#schema)}.shoal_events WHERE tags @> ARRAY[${tag}]::text[] AND global_offset > ${afterOffset} ORDER BY global_offset LIMIT ${limit}`,
    )
    return rows.map(toEvent)
  }

  watchTag(tag: string, listener: () => void): () => void {
    return this.#tagWatchers.watch(tag, listener)
  }

  async saveSnapshot(s: StoredSnapshot): Promise<void> {
    const sql = this.#sql
    const t = sql(this.#schema)
    await this.#run(
      () => sql`INSERT INTO ${t}.shoal_snapshots (persistence_id, seq, payload, written_at) VALUES (${s.persistenceId}, ${s.seq}, ${Buffer.from(s.payload)}, ${s.timestamp})
        ON CONFLICT (persistence_id) DO UPDATE SET seq = excluded.seq, payload = excluded.payload, written_at = excluded.written_at WHERE excluded.seq >= ${t}.shoal_snapshots.seq`,
    )
  }

  async loadSnapshot(persistenceId: string): Promise<StoredSnapshot | undefined> {
    const sql = this.#sql
    const [row] = await this.#run(
      () =>
        sql<
          { persistence_id: string; seq: string; payload: Buffer; written_at: string }[]
        >`SELECT * FROM ${sql(this.#schema)}.shoal_snapshots WHERE persistence_id = ${persistenceId}`,
    )
    return row && { persistenceId: row.persistence_id, seq: Number(row.seq), payload: new Uint8Array(row.payload), timestamp: Number(row.written_at) }
  }

  async acquireLease(name: string, owner: string, ttlMs: number): Promise<number | undefined> {
    if (owner === '') throw new ConfigError('A lease owner must not be empty (empty marks a released lease).')
    const sql = this.#sql
    const t = sql(this.#schema)
    const [row] = await this.#run(
      () => sql<
        { epoch: string }[]
      >`INSERT INTO ${t}.shoal_leases AS l (name, owner, expires_at, epoch) VALUES (${name}, ${owner}, clock_timestamp() + ${Math.ceil(ttlMs)} * interval '1 millisecond', 1)
        ON CONFLICT (name) DO UPDATE SET
          epoch = CASE WHEN l.owner = excluded.owner AND l.expires_at > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END,
          owner = excluded.owner, expires_at = excluded.expires_at
        WHERE l.owner = excluded.owner OR l.owner = '' OR l.expires_at <= clock_timestamp() RETURNING epoch`,
    )
    return row && Number(row.epoch)
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    const sql = this.#sql
    // Released: no owner, the epoch kept (the next holder's is higher).
    await this.#run(() => sql`UPDATE ${sql(this.#schema)}.shoal_leases SET owner = '', expires_at = to_timestamp(0) WHERE name = ${name} AND owner = ${owner}`)
  }

  async leaseHolder(name: string): Promise<string | undefined> {
    const sql = this.#sql
    const [row] = await this.#run(
      () =>
        sql<{ owner: string }[]>`SELECT owner FROM ${sql(this.#schema)}.shoal_leases WHERE name = ${name} AND owner <> '' AND expires_at > clock_timestamp()`,
    )
    return row?.owner
  }

  /**
   * Drains, then disconnects: appends already handed in are written and answered, reads in flight
   * finish (for at most `drainTimeout`, 5 s), new calls are refused; then the pool closes at once.
   * (The client's own drain could wait its whole timeout on a connection that died mid-query,
   * which it leaves marked busy; waiting for this store's own operations instead avoids that.)
   */
  close(drainTimeout = 5000): Promise<void> {
    return (this.#closing ??= this.#close(drainTimeout))
  }

  #closing: Promise<void> | undefined

  async #close(drainTimeout: number): Promise<void> {
    this.#closed = true
    this.#tagWatchers.clear()
    let timer: NodeJS.Timeout | undefined
    await new Promise((r) => setImmediate(r)) // a write loop scheduled for this turn starts first
    const drained = Promise.allSettled([...this.#inflight, this.#draining])
    await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, drainTimeout)))])
    clearTimeout(timer)
    // Ending the pool also ends the LISTEN connection (an UNLISTEN first could wait forever on a
    // server that stopped answering).
    await this.#sql.end({ timeout: 0 })
  }

  /** See `EventStore.observeWrites`: each transaction's appends, events, conflicts and time. */
  observeWrites(observer: (batch: WriteBatch) => void): () => void {
    return this.#writes.add(observer)
  }

  // ── writing ─────────────────────────────────────────────────────────────────

  /** Writes queued appends, a transaction at a time; what queues meanwhile goes in the next. */
  async #drain(): Promise<void> {
    this.#writing = true
    try {
      while (this.#queue.length > 0) {
        // Let the writers just answered append again first: they join this batch instead of
        // forming a second cohort that alternates with the first (two half-full transactions).
        await new Promise((r) => setImmediate(r))
        const batch = this.#queue
        this.#queue = []
        let conflicts: Set<Pending>
        const started = performance.now()
        try {
          conflicts = await this.#write(batch)
        } catch (e) {
          const err = unavailable(this.name, e)
          for (const p of batch) p.reject(err)
          continue
        }
        if (this.#writes.any) {
          let events = 0
          for (const p of batch) events += p.events.length
          this.#writes.notify({ appends: batch.length, events, conflicts: conflicts.size, seconds: (performance.now() - started) / 1000 })
        }
        // This process's watchers hear at once; NOTIFY (sent on commit) tells the other processes.
        this.#tagWatchers.notify(new Set(batch.filter((p) => !conflicts.has(p)).flatMap((p) => p.events.flatMap((e) => e.tags))))
        for (const p of batch) {
          if (!conflicts.has(p)) p.resolve()
          else
            p.reject(
              new JournalConflictError(
                `An event of ${JSON.stringify(p.events[0]!.persistenceId)} at sequence ${p.events[0]!.seq}..${p.events[0]!.seq + p.events.length - 1} already exists: another activation of this entity wrote it.`,
              ),
            )
        }
      }
    } finally {
      this.#writing = false
    }
  }

  /** One transaction for the batch; returns the appends refused as conflicts. */
  async #write(batch: readonly Pending[]): Promise<Set<Pending>> {
    const conflicts = new Set<Pending>()
    // Two appends of one (persistence id, seq) in the same batch: the first wins; an append that
    // holds one key twice conflicts with itself.
    const keys = new Set<string>()
    for (const p of batch) {
      const mine = p.events.map((e) => `${e.seq}:${e.persistenceId}`)
      if (new Set(mine).size < mine.length || mine.some((k) => keys.has(k))) conflicts.add(p)
      else for (const k of mine) keys.add(k)
    }
    const clean = batch.filter((p) => !conflicts.has(p))
    if (clean.length === 0) return conflicts
    try {
      await this.#fastWrite(clean)
      return conflicts
    } catch (e) {
      if ((e as { code?: string }).code !== UNIQUE_VIOLATION) throw e
    }
    await this.#carefulWrite(clean, conflicts)
    return conflicts
  }

  /**
   * The common case: one statement, so one round trip and its own transaction (autocommit). It
   * takes the writers' lock before any row gets its offset (the rows are joined to the lock), inserts
   * every row from column arrays (a constant text, prepared once per connection, whatever the batch
   * size) and queues the notices. A unique violation rolls all of it back; the careful path then
   * sorts it out.
   */
  async #fastWrite(todo: readonly Pending[]): Promise<void> {
    const sql = this.#sql
    const c = columns(sql, todo)
    const tags = sql.array([...new Set(todo.flatMap((p) => p.events.flatMap((e) => e.tags)))])
    await sql`WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(${WRITE_LOCK})),
      ins AS (INSERT INTO ${sql(this.#schema)}.shoal_events (persistence_id, seq, type, version, payload, tags, written_at)
        SELECT u.p, u.s, u.t, u.v, u.b, u.g::text[], ${Date.now()} FROM lock,
          unnest(${c.ids}::text[], ${c.seqs}::bigint[], ${c.types}::text[], ${c.versions}::int[], ${c.payloads}::bytea[], ${c.tags}::text[]) AS u(p, s, t, v, b, g))
      SELECT pg_notify(${CHANNEL}, tag) FROM unnest(${tags}::text[]) AS tag`
  }

  /** Appends one by one in savepoints, so that the ones that conflict fail alone. */
  async #carefulWrite(batch: readonly Pending[], conflicts: Set<Pending>): Promise<void> {
    await this.#sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${WRITE_LOCK})`
      let todo = batch
      for (;;) {
        try {
          // A savepoint that is rolled back (by the throw) when some of its rows conflicted.
          await tx.savepoint(async (sp) => {
            const landed = new Set((await this.#insert(sp, todo)).map((r) => `${r.seq}:${r.persistence_id}`))
            const bad = todo.filter((p) => p.events.some((e) => !landed.has(`${e.seq}:${e.persistenceId}`)))
            if (bad.length > 0) throw new Conflicts(bad)
          })
          break
        } catch (e) {
          if (!(e instanceof Conflicts)) throw e
          for (const p of e.appends) conflicts.add(p)
          todo = todo.filter((p) => !conflicts.has(p))
          if (todo.length === 0) return
        }
      }
      const tags = new Set(todo.flatMap((p) => p.events.flatMap((e) => e.tags)))
      for (const tag of tags) await tx`SELECT pg_notify(${CHANNEL}, ${tag})`
    })
  }

  /** Inserts what does not conflict; returns the rows that landed. */
  async #insert(sql: postgres.TransactionSql<Record<string, never>>, todo: readonly Pending[]): Promise<{ persistence_id: string; seq: string }[]> {
    const c = columns(sql, todo)
    return await sql<
      { persistence_id: string; seq: string }[]
    >`INSERT INTO ${sql(this.#schema)}.shoal_events (persistence_id, seq, type, version, payload, tags, written_at)
      SELECT u.p, u.s, u.t, u.v, u.b, u.g::text[], ${Date.now()}
        FROM unnest(${c.ids}::text[], ${c.seqs}::bigint[], ${c.types}::text[], ${c.versions}::int[], ${c.payloads}::bytea[], ${c.tags}::text[]) AS u(p, s, t, v, b, g)
      ON CONFLICT (persistence_id, seq) DO NOTHING RETURNING persistence_id, seq`
  }

  async #migrate(): Promise<void> {
    const sql = this.#sql
    const s = sql(this.#schema)
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${WRITE_LOCK})`
      await tx`CREATE SCHEMA IF NOT EXISTS ${s}`
      await tx`CREATE TABLE IF NOT EXISTS ${s}.shoal_schema_version (version INT NOT NULL)`
      const [row] = await tx<{ version: number }[]>`SELECT version FROM ${s}.shoal_schema_version`
      const current = row?.version ?? 0
      if (current > SCHEMA_VERSION) throw new Error(`this database has journal schema ${current}, newer than this code (${SCHEMA_VERSION}): upgrade Shoal`)
      if (current < 1) {
        await tx`CREATE TABLE ${s}.shoal_events (
          global_offset BIGSERIAL PRIMARY KEY,
          persistence_id TEXT NOT NULL,
          seq BIGINT NOT NULL,
          type TEXT NOT NULL,
          version INT NOT NULL,
          payload BYTEA NOT NULL,
          tags TEXT[] NOT NULL,
          written_at BIGINT NOT NULL,
          UNIQUE (persistence_id, seq))`
        await tx`CREATE INDEX shoal_events_tags ON ${s}.shoal_events USING GIN (tags)`
        await tx`CREATE TABLE ${s}.shoal_snapshots (persistence_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, payload BYTEA NOT NULL, written_at BIGINT NOT NULL)`
      }
      if (current < 2)
        await tx`CREATE TABLE ${s}.shoal_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, epoch BIGINT NOT NULL)`
      if (current !== SCHEMA_VERSION) {
        await tx`DELETE FROM ${s}.shoal_schema_version`
        await tx`INSERT INTO ${s}.shoal_schema_version VALUES (${SCHEMA_VERSION})`
      }
    })
  }

  async #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new JournalUnavailableError(`The event store ${this.name} is closed.`)
    const op = fn()
    this.#inflight.add(op)
    try {
      return await op
    } catch (e) {
      throw unavailable(this.name, e)
    } finally {
      this.#inflight.delete(op)
    }
  }
}

/** Thrown inside a savepoint to roll it back: these appends hit existing (persistence id, seq). */
class Conflicts extends Error {
  constructor(readonly appends: readonly Pending[]) {
    super('conflicts')
  }
}

/** The batch as one array per column (bind parameters whose number does not grow with the batch). */
function columns(sql: Sql | postgres.TransactionSql<Record<string, never>>, todo: readonly Pending[]) {
  const events = todo.flatMap((p) => p.events)
  return {
    ids: sql.array(
      events.map((e) => e.persistenceId),
      TEXT,
    ),
    seqs: sql.array(
      events.map((e) => e.seq),
      INT8,
    ),
    types: sql.array(
      events.map((e) => e.type),
      TEXT,
    ),
    versions: sql.array(
      events.map((e) => e.version),
      INT4,
    ),
    payloads: sql.array(
      events.map((e) => Buffer.from(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength)),
      BYTEA,
    ),
    // Tags differ in number per row, so each row's travel as one array literal, cast on the server.
    tags: sql.array(
      events.map((e) => arrayLiteral(e.tags)),
      TEXT,
    ),
  }
}

/** A PostgreSQL array literal of `xs`: every element quoted, so any text round-trips exactly. */
function arrayLiteral(xs: readonly string[]): string {
  return `{${xs.map((x) => `"${x.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`).join(',')}}`
}

function toEvent(r: Row): StoredEvent {
  return {
    persistenceId: r.persistence_id,
    seq: Number(r.seq),
    type: r.type,
    version: r.version,
    payload: new Uint8Array(r.payload),
    tags: r.tags,
    offset: Number(r.global_offset),
    timestamp: Number(r.written_at),
  }
}

function unavailable(name: string, e: unknown): Error {
  if (e instanceof JournalConflictError || e instanceof JournalUnavailableError) return e
  return new JournalUnavailableError(`The event store ${name} failed: ${(e as Error).message}`, { cause: e })
}

/** The URL without its password, for names and logs. */
function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return `${u.host}${u.pathname}`
  } catch {
    return 'postgres'
  }
}
