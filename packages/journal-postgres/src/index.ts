/**
 * `@shoal/journal-postgres`: the PostgreSQL event and snapshot store for Shoal's journal.
 *
 * ```ts
 * import { journalPlugin } from 'shoal'
 * import { PostgresEventStore } from '@shoal/journal-postgres'
 * const store = await PostgresEventStore.open('postgres://shoal@db:5432/shoal')
 * await ClusterSystem.start({ plugins: [journalPlugin({ store })] })
 * ```
 * @module
 */
export { PostgresEventStore, type PostgresOptions } from './PostgresEventStore.ts'
