/**
 * Fresh stores for bench:journal: every measurement gets an empty database of its own (a new SQLite
 * file in a temporary directory, a new PostgreSQL schema), created by the store's own migration so
 * that the raw baselines write to exactly the tables the framework writes to. Everything is
 * removed at the end of the run.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PostgresEventStore } from '@shoal/journal-postgres'
import { SqliteEventStore } from '@shoal/journal-sqlite'
import postgres from 'postgres'
import { type EventStore, MemoryEventStore, type SnapshotStore } from 'shoal'

export type StoreKind = 'memory' | 'sqlite' | 'postgres'

/** The PostgreSQL server; trust auth, a schema per measurement. */
export const PG_URL = process.env.SHOAL_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
/** Pool size of the PostgreSQL store (its default) and of the raw baseline's client. */
export const PG_POOL = 10

/** A fresh database: where it lives, for the raw baselines. */
export interface Fresh {
  readonly kind: StoreKind
  /** SQLite: the file. */
  readonly path?: string
  /** PostgreSQL: the schema. */
  readonly schema?: string
}

export class Stores {
  readonly #dir = mkdtempSync(join(tmpdir(), 'shoal-bench-journal-'))
  readonly #schemas: string[] = []
  #files = 0

  /** Is the PostgreSQL server there? (Probed once.) */
  async postgresReachable(): Promise<string | undefined> {
    const probe = postgres(PG_URL, { max: 1, connect_timeout: 3, onnotice: () => undefined })
    try {
      const [row] = await probe<{ version: string }[]>`SELECT version()`
      return row?.version
    } catch {
      return undefined
    } finally {
      await probe.end({ timeout: 1 })
    }
  }

  /** A new empty database of `kind`, with the journal's tables created by the store's migration. */
  async fresh(kind: StoreKind): Promise<Fresh> {
    if (kind === 'memory') return { kind }
    if (kind === 'sqlite') {
      const path = join(this.#dir, `bench-${++this.#files}.db`)
      await SqliteEventStore.open(path).close()
      return { kind, path }
    }
    const schema = `shoal_bench_${randomBytes(6).toString('hex')}`
    this.#schemas.push(schema)
    await (await PostgresEventStore.open(PG_URL, { schema, max: 1 })).close()
    return { kind, schema }
  }

  /** The framework's store on a fresh database (store defaults: SQLite WAL + synchronous NORMAL, PostgreSQL pool of 10). */
  async open(db: Fresh): Promise<EventStore & SnapshotStore> {
    if (db.kind === 'memory') return new MemoryEventStore()
    if (db.kind === 'sqlite') return SqliteEventStore.open(db.path!)
    return PostgresEventStore.open(PG_URL, { schema: db.schema!, max: PG_POOL })
  }

  /** Drops every schema and deletes the temporary directory. */
  async cleanUp(): Promise<void> {
    if (this.#schemas.length > 0) {
      const sql = postgres(PG_URL, { max: 1, onnotice: () => undefined })
      try {
        for (const s of this.#schemas) await sql`DROP SCHEMA IF EXISTS ${sql(s)} CASCADE`
      } finally {
        await sql.end({ timeout: 5 })
      }
    }
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
