/**
 * EventSourcedActor: an actor whose state is the fold of its events. It never changes state
 * directly; it emits events, which are persisted and then applied, and on start it recovers its
 * state from the journal (latest snapshot, then the events after it) before serving any call.
 *
 * ```ts
 * type State = { board: string[]; turn: 'fish' | 'rodent' }
 * type Event = { type: 'MoveMade'; cell: number; by: 'fish' | 'rodent' }
 *
 * class GameSession extends EventSourcedActor<State, Event> {
 *   constructor(readonly gameId: string) { super() }
 *   readonly persistenceId = `game-${this.gameId}`
 *   initialState(): State { return { board: Array(9).fill(''), turn: 'fish' } }
 *   applyEvent(s: State, e: Event): State { … return next }
 *   @distributed async move(cell: number, by: 'fish' | 'rodent') {
 *     if (this.state.board[cell]) throw new IllegalMove(cell)
 *     await this.emit({ type: 'MoveMade', cell, by })
 *     return this.state
 *   }
 * }
 * ```
 *
 * Gotchas: override `onRecovered` (not `onStart`) for work after recovery; if you override
 * `onStart`, call `await super.onStart()` first. `applyEvent` must be pure and must not throw: it
 * runs again on every recovery. After a failed or ambiguous write the actor stops (its in-memory
 * state may differ from the journal); the next activation recovers the truth.
 * @module
 */
import { DistributedActor } from '../actor/DistributedActor.ts'
import { ConfigError, JournalFailedError, JournalLimitError } from '../errors.ts'
import { outcomeOf } from '../observability/CallTracing.ts'
import { type EmitTraceContext, emitTracing, emitTracingActive } from '../observability/Channels.ts'
import type { JournalEventShape } from './EventCodec.ts'
import { checkName, MAX_PERSISTENCE_ID_LENGTH, MAX_TAG_LENGTH, MAX_TAGS, type NewEvent } from './EventStore.ts'
import type { JournalFacade } from './JournalPlugin.ts'

const PAGE = 1000

/** Base class of event-sourced actors; see the module comment. */
export abstract class EventSourcedActor<S, E extends JournalEventShape> extends DistributedActor {
  /** The entity's stream name: unique per entity, stable across restarts and nodes. */
  abstract readonly persistenceId: string
  /** The state before any event. */
  abstract initialState(): S
  /** The state after `event`: pure, deterministic, never throws. */
  abstract applyEvent(state: S, event: E): S
  /** Tags for an event (read models query by tag). Default: none. */
  tagsFor?(event: E): readonly string[]
  /** Runs once recovery has finished, before the first call. */
  onRecovered?(): void | Promise<void>

  #state: S | undefined
  #seq = 0
  #snapshotSeq = 0
  #recovered = false
  #failed: Error | undefined
  #writes: Promise<unknown> = Promise.resolve()

  /** The current state (after every event persisted so far). */
  get state(): S {
    if (!this.#recovered)
      throw new ConfigError(`${this.constructor.name}.state was read before recovery: if you override onStart, call await super.onStart() first.`)
    return this.#state as S
  }

  /** Sequence number of the last event persisted (0 before any). */
  get lastSeq(): number {
    return this.#seq
  }

  /** Recovers from the journal: latest snapshot (a corrupt one is ignored), then the events after it. */
  override async onStart(): Promise<void> {
    const journal = this.#journal()
    const started = performance.now()
    const pid = checkName('persistence id', this.persistenceId, MAX_PERSISTENCE_ID_LENGTH)
    let state = this.initialState()
    let seq = 0
    if (journal.snapshots) {
      try {
        const snap = await journal.snapshots.loadSnapshot(pid)
        if (snap) {
          state = journal.codec.decodeState(snap.payload, pid, snap.seq) as S
          seq = snap.seq
        }
      } catch (err) {
        this.log.warn({ err, persistenceId: pid }, 'snapshot unusable: replaying every event instead')
        state = this.initialState()
        seq = 0
      }
    }
    this.#snapshotSeq = seq
    let replayed = 0
    for (;;) {
      const page = await journal.store.read(pid, seq + 1, { limit: PAGE })
      for (const stored of page) {
        state = this.applyEvent(state, journal.codec.decode(stored) as E)
        seq = stored.seq
      }
      replayed += page.length
      if (page.length < PAGE) break
    }
    this.#state = state
    this.#seq = seq
    this.#assigned = seq
    this.#recovered = true
    journal.metrics.recovered((performance.now() - started) / 1000, replayed)
    await this.onRecovered?.()
  }

  /**
   * Persists `event`, then applies it; resolves once both are done. Emits are strictly ordered,
   * also when not awaited one by one. Rejects with JournalLimitError (too large, bad tag; nothing
   * written, the actor goes on), or with the store's error (JournalConflictError: another
   * activation wrote first; JournalUnavailableError), after which the actor stops and every later
   * emit fails with JournalFailedError.
   */
  protected emit(event: E, options: { tags?: readonly string[] } = {}): Promise<void> {
    if (!this.#recovered)
      return Promise.reject(new ConfigError(`${this.constructor.name} emitted before recovery: if you override onStart, call await super.onStart() first.`))
    if (this.#failed) return Promise.reject(this.#brokenError())
    const journal = this.#journal()
    let record: NewEvent
    try {
      record = this.#record(journal, event, options.tags)
    } catch (err) {
      return Promise.reject(err as Error)
    }
    this.#assigned = record.seq
    const write = this.#writes.then(async () => {
      if (this.#failed) throw this.#brokenError()
      const started = performance.now()
      try {
        await journal.store.append([record])
      } catch (err) {
        journal.metrics.appended((performance.now() - started) / 1000, outcomeOf(err))
        this.#fail(err as Error)
        throw err
      }
      journal.metrics.appended((performance.now() - started) / 1000, 'ok')
      this.#seq = record.seq
      this.#state = this.applyEvent(this.#state as S, event)
      this.#maybeSnapshot(journal)
    })
    this.#writes = write.catch(() => undefined)
    return emitTracingActive() ? emitTracing.tracePromise(() => write, this.#emitTrace(record, event)) : write
  }

  /** The `shoal.emit` context of one emit (only while someone listens). */
  #emitTrace(record: NewEvent, event: E): EmitTraceContext {
    const type = (event as { type?: unknown } | null)?.type
    return {
      self: this.id.node,
      actorType: this.constructor.name,
      persistenceId: record.persistenceId,
      events: 1,
      types: [typeof type === 'string' ? type : 'event'],
    }
  }

  /** The last sequence number taken by an emit (persisted or still on its way). */
  #assigned = 0

  /** Encodes and checks an event; everything that can fail without the store fails here, before a number is taken. */
  #record(journal: JournalFacade, event: E, extraTags: readonly string[] | undefined): NewEvent {
    const encoded = journal.codec.encode(event)
    const tags = [...new Set([...(extraTags ?? []), ...(this.tagsFor?.(event) ?? [])])]
    if (tags.length > MAX_TAGS) throw new JournalLimitError(`An event may carry at most ${MAX_TAGS} tags (got ${tags.length}).`)
    for (const t of tags) checkName('tag', t, MAX_TAG_LENGTH)
    return { persistenceId: this.persistenceId, seq: this.#assigned + 1, ...encoded, tags }
  }

  #fail(err: Error): void {
    if (this.#failed) return
    this.#failed = err
    this.log.error(
      { err, persistenceId: this.persistenceId, seq: this.#seq },
      'a journal write failed: stopping, so that the next activation recovers from the journal',
    )
    this.stop()
  }

  #brokenError(): JournalFailedError {
    return new JournalFailedError(
      `${this.persistenceId}: an earlier write failed (${this.#failed?.message}); this activation stops and the next one recovers from the journal.`,
    )
  }

  #maybeSnapshot(journal: JournalFacade): void {
    const snapshots = journal.snapshots
    if (!snapshots || this.#seq - this.#snapshotSeq < journal.settings.snapshotEvery) return
    const seq = this.#seq
    this.#snapshotSeq = seq
    let payload: Uint8Array
    try {
      payload = journal.codec.encodeState(this.#state, journal.settings.maxSnapshotBytes)
    } catch (err) {
      this.log.warn({ err, persistenceId: this.persistenceId, seq }, 'state not snapshotted (recovery replays events instead)')
      return
    }
    snapshots.saveSnapshot({ persistenceId: this.persistenceId, seq, payload, timestamp: Date.now() }).catch((err: unknown) => {
      this.log.warn({ err, persistenceId: this.persistenceId, seq }, 'snapshot not saved (recovery replays events instead)')
    })
  }

  #journal(): JournalFacade {
    let journal: JournalFacade | undefined
    try {
      journal = (this.system as { journal?: JournalFacade }).journal
    } catch {
      // system.journal throws a ConfigError without the plugin; this one names the actor.
    }
    if (!journal) throw new ConfigError(`${this.constructor.name} is event-sourced: start the system with plugins: [journalPlugin({ store })].`)
    return journal
  }
}
