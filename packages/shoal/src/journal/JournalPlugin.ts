/**
 * The journal plugin: event sourcing for a system (`system.journal`). It owns the event store, the
 * snapshot store and the event codec (types, versions, upcasters) that `EventSourcedActor`s use,
 * and offers the queries read models are built from: a stream by persistence id, events by tag in
 * the store's global order, and a live subscription by tag.
 *
 * ```ts
 * const system = await ClusterSystem.start({ plugins: [journalPlugin({ store: new MemoryEventStore() })] })
 * system.journal.registerEvent('MoveMade', { version: 2, upcasters: { 1: (e) => ({ ...e, player: e.by }) } })
 * for await (const e of system.journal.eventsByTag('game', 0)) project(e)
 * ```
 * @module
 */

import { ConfigError } from '../errors.ts'
import type { Plugin } from '../system/Plugin.ts'
import { EventCodec, type EventSchema, type JournalEventShape } from './EventCodec.ts'
import { checkName, type EventStore, MAX_PERSISTENCE_ID_LENGTH, MAX_TAG_LENGTH, type SnapshotStore, type StoredEvent } from './EventStore.ts'
import { JournalMetrics } from './JournalMetrics.ts'

/** `journalPlugin` settings. */
export interface JournalSettings {
  /** Where events go. Yours: the plugin does not close it (close it after `system.shutdown()`). */
  readonly store: EventStore
  /** Where snapshots go; `false` for none. Default: the store itself when it is also a SnapshotStore. */
  readonly snapshots?: SnapshotStore | false
  /**
   * Save a snapshot every this many events of an actor. Default 1000: replaying 1,000 events takes a
   * few milliseconds, while a snapshot is a write of the whole state.
   */
  readonly snapshotEvery?: number
  /** Largest encoded event, bytes; bigger emits are refused. Default 1 MiB. */
  readonly maxEventBytes?: number
  /** Largest encoded snapshot, bytes; bigger states are not snapshotted (replayed instead). Default 16 MiB. */
  readonly maxSnapshotBytes?: number
}

/** A stored event, decoded, as queries return it. */
export interface JournalEvent<E = JournalEventShape> {
  readonly persistenceId: string
  readonly seq: number
  readonly offset: number
  readonly timestamp: number
  readonly tags: readonly string[]
  readonly event: E
}

/** `system.journal`. */
export interface JournalFacade {
  readonly store: EventStore
  readonly snapshots: SnapshotStore | undefined
  /** @internal */
  readonly codec: EventCodec
  /** @internal */
  readonly metrics: JournalMetrics
  readonly settings: Required<Omit<JournalSettings, 'store' | 'snapshots'>>
  /** Declares event type `type`'s current version and upcasters (see EventCodec). */
  registerEvent(type: string, schema: EventSchema): void
  /** The events of one entity from `fromSeq` (default 1), decoded, in order; ends at the last. */
  eventsByPersistenceId<E = JournalEventShape>(persistenceId: string, fromSeq?: number): AsyncIterableIterator<JournalEvent<E>>
  /** Events with `tag` after `afterOffset` (default 0: all), in the store's global order; ends at the last. */
  eventsByTag<E = JournalEventShape>(tag: string, afterOffset?: number): AsyncIterableIterator<JournalEvent<E>>
  /**
   * Like `eventsByTag`, then every new event with `tag` as it is written, until `signal` aborts or
   * the system shuts down. Resume a projection from the last offset it processed.
   */
  liveByTag<E = JournalEventShape>(tag: string, afterOffset?: number, options?: { signal?: AbortSignal }): AsyncIterableIterator<JournalEvent<E>>
}

declare module '../system/ClusterSystem.ts' {
  interface ClusterSystem {
    /**
     * Event sourcing, with `journalPlugin({ store })` installed. Gotcha: on a system started without
     * it, reading `system.journal` throws a ConfigError saying how to install it.
     */
    readonly journal: JournalFacade
  }
}

const PAGE = 500

/** The journal plugin; publishes `system.journal`. */
export function journalPlugin(settings: JournalSettings): Plugin<JournalFacade> {
  if (!settings?.store) throw new ConfigError('journalPlugin needs a store: journalPlugin({ store: new MemoryEventStore() }) or a SQLite/PostgreSQL store.')
  const closers = new Set<() => void>()
  return {
    name: 'journal',
    facade: 'journal',
    start({ system }) {
      const positive = (v: number | undefined, d: number, what: string): number => {
        const n = v ?? d
        if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`journal ${what} must be a positive whole number (got ${v}).`)
        return n
      }
      const resolved = {
        snapshotEvery: positive(settings.snapshotEvery, 1000, 'snapshotEvery'),
        maxEventBytes: positive(settings.maxEventBytes, 1024 * 1024, 'maxEventBytes'),
        maxSnapshotBytes: positive(settings.maxSnapshotBytes, 16 * 1024 * 1024, 'maxSnapshotBytes'),
      }
      const store = settings.store
      const snapshots = settings.snapshots === false ? undefined : (settings.snapshots ?? (isSnapshotStore(store) ? store : undefined))
      const codec = new EventCodec(system.serialization, resolved.maxEventBytes)
      const decode = <E>(e: StoredEvent): JournalEvent<E> => ({
        persistenceId: e.persistenceId,
        seq: e.seq,
        offset: e.offset,
        timestamp: e.timestamp,
        tags: e.tags,
        event: codec.decode(e) as E,
      })
      const metrics = new JournalMetrics(system.metrics.registry)
      const unobserve = store.observeWrites?.((b) => metrics.batch(b))
      if (unobserve) closers.add(unobserve)
      return {
        store,
        snapshots,
        codec,
        metrics,
        settings: resolved,
        registerEvent: (type, schema) => codec.register(type, schema),
        async *eventsByPersistenceId<E>(persistenceId: string, fromSeq = 1) {
          checkName('persistence id', persistenceId, MAX_PERSISTENCE_ID_LENGTH)
          for (let from = fromSeq; ; ) {
            const page = await store.read(persistenceId, from, { limit: PAGE })
            for (const e of page) yield decode<E>(e)
            if (page.length < PAGE) return
            from = page[page.length - 1]!.seq + 1
          }
        },
        async *eventsByTag<E>(tag: string, afterOffset = 0) {
          checkName('tag', tag, MAX_TAG_LENGTH)
          for (let after = afterOffset; ; ) {
            const page = await store.eventsByTag(tag, after, PAGE)
            for (const e of page) yield decode<E>(e)
            if (page.length < PAGE) return
            after = page[page.length - 1]!.offset
          }
        },
        liveByTag<E>(tag: string, afterOffset = 0, options: { signal?: AbortSignal } = {}) {
          checkName('tag', tag, MAX_TAG_LENGTH)
          return live<E>(store, tag, afterOffset, options.signal, decode, closers)
        },
      }
    },
    stop() {
      for (const c of [...closers]) c()
    },
  }
}

async function* live<E>(
  store: EventStore,
  tag: string,
  afterOffset: number,
  signal: AbortSignal | undefined,
  decode: (e: StoredEvent) => JournalEvent<E>,
  closers: Set<() => void>,
): AsyncIterableIterator<JournalEvent<E>> {
  let after = afterOffset
  let dirty = true
  let wake = (): void => undefined
  let ended = signal?.aborted === true
  const poke = (): void => {
    dirty = true
    wake()
  }
  const end = (): void => {
    ended = true
    wake()
  }
  const off = store.watchTag(tag, poke)
  // A notification can be lost (a reconnecting LISTEN): look again now and then regardless.
  const timer = setInterval(poke, 1000)
  timer.unref()
  signal?.addEventListener('abort', end)
  closers.add(end)
  try {
    while (!ended) {
      if (!dirty) await new Promise<void>((r) => (wake = r))
      if (ended) return
      dirty = false
      for (;;) {
        const page = await store.eventsByTag(tag, after, PAGE)
        for (const e of page) {
          after = e.offset
          yield decode(e)
          if (ended) return
        }
        if (page.length < PAGE) break
      }
    }
  } finally {
    off()
    clearInterval(timer)
    signal?.removeEventListener('abort', end)
    closers.delete(end)
  }
}

function isSnapshotStore(x: unknown): x is SnapshotStore {
  return typeof (x as SnapshotStore).saveSnapshot === 'function' && typeof (x as SnapshotStore).loadSnapshot === 'function'
}
