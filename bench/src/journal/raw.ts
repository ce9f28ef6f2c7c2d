/**
 * The raw baselines of bench:journal: what a good hand-written application would do to append
 * events to the same tables, with no framework. Each writer appends one row at a time and awaits
 * it; rows of concurrent writers are grouped:
 *
 * - **SQLite** (better-sqlite3, WAL, `synchronous = NORMAL`, as the store): rows written in the same
 *   event-loop turn go in one transaction (`setImmediate`), a prepared `INSERT` per row.
 * - **PostgreSQL** (`postgres` client, pool of 10, as the store): rows that queue while an
 *   `INSERT` is in flight go together in the next one, one multi-row parameterized `INSERT`
 *   (autocommit: one statement, one round trip), with up to `inFlight` such statements running at
 *   once on the pool's connections. `perRow` is the naive version: each writer's own one-row
 *   `INSERT`, up to the pool size at once.
 *
 * Rows are those the framework writes: persistence id, seq, type, version, the event encoded with
 * msgpackr (as Shoal's serialization does: `useRecords: false`), tags (none) and the write time.
 * @module
 */
import Database from 'better-sqlite3'
import { Packr } from 'msgpackr'
import postgres from 'postgres'
import { EVENT } from './actor.ts'
import { type Fresh, PG_POOL, PG_URL } from './stores.ts'

const packr = new Packr({ useRecords: false })

/** Appends rows; `transactions` counts the statements or transactions that carried them. */
export interface RawWriter {
  readonly description: string
  write(persistenceId: string, seq: number): Promise<void>
  readonly stats: { transactions: number; rows: number }
  close(): Promise<void>
}

interface Queued {
  readonly persistenceId: string
  readonly seq: number
  resolve(): void
  reject(e: unknown): void
}

/** SQLite: a transaction per event-loop turn, a prepared INSERT per row. */
export function sqliteRaw(db: Fresh): RawWriter {
  const sqlite = new Database(db.path!)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.pragma('busy_timeout = 5000')
  const insert = sqlite.prepare('INSERT INTO events (persistence_id, seq, type, version, payload, tags, written_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
  const stats = { transactions: 0, rows: 0 }
  let queue: Queued[] = []
  const writeAll = sqlite.transaction((batch: readonly Queued[]) => {
    const now = Date.now()
    for (const q of batch) insert.run(q.persistenceId, q.seq, EVENT.type, 1, packr.pack(EVENT), '[]', now)
  })
  const flush = (): void => {
    const batch = queue
    queue = []
    void settle(batch, stats, async () => writeAll(batch))
  }
  return {
    description: 'better-sqlite3, WAL, synchronous NORMAL; rows of one event-loop turn in one transaction, a prepared INSERT per row',
    stats,
    write: (persistenceId, seq) =>
      new Promise((resolve, reject) => {
        if (queue.length === 0) setImmediate(flush)
        queue.push({ persistenceId, seq, resolve, reject })
      }),
    close: async () => {
      sqlite.close()
    },
  }
}

const COLUMNS = ['persistence_id', 'seq', 'type', 'version', 'payload', 'tags', 'written_at'] as const

/** Writes a batch, then answers every writer in it and counts it (or fails them all). */
async function settle(batch: readonly Queued[], stats: { transactions: number; rows: number }, write: () => Promise<unknown>): Promise<void> {
  try {
    await write()
  } catch (e) {
    for (const q of batch) q.reject(e)
    return
  }
  stats.transactions++
  stats.rows += batch.length
  for (const q of batch) q.resolve()
}

/**
 * How a PostgreSQL batch is written: `values`, a multi-row `INSERT … VALUES (…), (…)` (7 parameters
 * a row, so a new statement text, prepared anew, for each batch size); `unnest`, one array per
 * column, `INSERT … SELECT * FROM unnest($1::text[], …)` (7 parameters whatever the size, one
 * prepared statement: what the store does).
 */
export type PgForm = 'values' | 'unnest'

/** PostgreSQL: INSERTs of what queued, up to `inFlight` at once on a pool of 10. */
export function postgresRaw(db: Fresh, inFlight: number, form: PgForm = 'values'): RawWriter {
  const sql = postgres(PG_URL, { max: PG_POOL, onnotice: () => undefined })
  const table = sql(db.schema!)
  const stats = { transactions: 0, rows: 0 }
  let queue: Queued[] = []
  let running = 0
  const insertValues = async (batch: readonly Queued[]): Promise<void> => {
    const now = Date.now()
    const rows = batch.map((q) => ({
      persistence_id: q.persistenceId,
      seq: q.seq,
      type: EVENT.type,
      version: 1,
      payload: packr.pack(EVENT),
      tags: sql.array([] as string[]),
      written_at: now,
    }))
    await sql`INSERT INTO ${table}.shoal_events ${sql(rows, ...COLUMNS)}`
  }
  // The client learns the array types on its first query; sql.array needs them.
  let ready: Promise<unknown> | undefined
  const insertUnnest = async (batch: readonly Queued[]): Promise<void> => {
    await (ready ??= sql`SELECT 1`)
    await sql`INSERT INTO ${table}.shoal_events (persistence_id, seq, type, version, payload, tags, written_at)
      SELECT u.p, u.s, u.t, u.v, u.b, u.g::text[], ${Date.now()} FROM unnest(${sql.array(
        batch.map((q) => q.persistenceId),
        25,
      )}::text[], ${sql.array(
        batch.map((q) => q.seq),
        20,
      )}::bigint[],
        ${sql.array(
          batch.map(() => EVENT.type),
          25,
        )}::text[], ${sql.array(
          batch.map(() => 1),
          23,
        )}::int[], ${sql.array(
          batch.map(() => packr.pack(EVENT)),
          17,
        )}::bytea[],
        ${sql.array(
          batch.map(() => '{}'),
          25,
        )}::text[]) AS u(p, s, t, v, b, g)`
  }
  const insert = (batch: readonly Queued[]): Promise<void> => settle(batch, stats, () => (form === 'values' ? insertValues(batch) : insertUnnest(batch)))
  const pump = (): void => {
    while (running < inFlight && queue.length > 0) {
      const batch = queue
      queue = []
      running++
      void insert(batch).finally(() => {
        running--
        pump()
      })
    }
  }
  return {
    description: `postgres 3.4.9, pool of ${PG_POOL}; rows that queue while an INSERT runs go in the next ${form === 'values' ? 'multi-row parameterized INSERT … VALUES' : 'INSERT … SELECT FROM unnest(column arrays)'} (autocommit), ${inFlight === 1 ? 'one' : `up to ${inFlight}`} in flight`,
    stats,
    write: (persistenceId, seq) =>
      new Promise((resolve, reject) => {
        queue.push({ persistenceId, seq, resolve, reject })
        pump()
      }),
    close: () => sql.end({ timeout: 5 }),
  }
}

/** PostgreSQL, naive: each writer's own one-row INSERT (autocommit) on a pool of 10. */
export function postgresPerRow(db: Fresh): RawWriter {
  const sql = postgres(PG_URL, { max: PG_POOL, onnotice: () => undefined })
  const table = sql(db.schema!)
  const stats = { transactions: 0, rows: 0 }
  return {
    description: `postgres 3.4.9, pool of ${PG_POOL}; every row its own INSERT (autocommit), up to ${PG_POOL} at once`,
    stats,
    write: async (persistenceId, seq) => {
      await sql`INSERT INTO ${table}.shoal_events (persistence_id, seq, type, version, payload, tags, written_at)
        VALUES (${persistenceId}, ${seq}, ${EVENT.type}, 1, ${packr.pack(EVENT)}, ${sql.array([] as string[])}, ${Date.now()})`
      stats.transactions++
      stats.rows++
    },
    close: () => sql.end({ timeout: 5 }),
  }
}
