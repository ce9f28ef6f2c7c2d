/**
 * `@shoal/journal-sqlite`: the embedded event and snapshot store for Shoal's journal.
 *
 * ```ts
 * import { journalPlugin } from 'shoal'
 * import { SqliteEventStore } from '@shoal/journal-sqlite'
 * const store = SqliteEventStore.open('./data/shoal.db')
 * await ClusterSystem.start({ plugins: [journalPlugin({ store })] })
 * ```
 * @module
 */
export { SqliteEventStore, type SqliteOptions } from './SqliteEventStore.ts'
