/**
 * The journal's metrics on one system: appends by outcome and their latency (as the actor sees it:
 * from `emit` to the store's answer, group commit included), the store's write transactions (how
 * many appends each carried, and its time: stores that group appends), recoveries with their time
 * and size.
 * prom-client objects are touched once per emit and once per recovery, never per event replayed.
 * @module
 */
import { Counter, Histogram, type Registry } from 'prom-client'
import type { WriteBatch } from './EventStore.ts'

export class JournalMetrics {
  readonly #appends: Counter
  readonly #appendSeconds: Histogram
  readonly #recoveries: Counter
  readonly #recoverySeconds: Histogram
  readonly #recoveryEvents: Histogram
  readonly #batchAppends: Histogram
  readonly #batchSeconds: Histogram

  constructor(registry: Registry) {
    const registers = [registry]
    this.#appends = new Counter({
      name: 'shoal_journal_appends_total',
      help: 'Event appends (one per emit) by outcome: ok, or the error code (SHOAL_JOURNAL_CONFLICT: another activation wrote first)',
      labelNames: ['outcome'],
      registers,
    })
    this.#appends.inc({ outcome: 'ok' }, 0)
    this.#appendSeconds = new Histogram({
      name: 'shoal_journal_append_seconds',
      help: 'Time from emit to the store’s acknowledgement (queueing and group commit included)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    })
    this.#recoveries = new Counter({
      name: 'shoal_journal_recoveries_total',
      help: 'Event-sourced actors recovered (snapshot and events replayed) on this node',
      registers,
    })
    this.#recoverySeconds = new Histogram({
      name: 'shoal_journal_recovery_seconds',
      help: 'Time an event-sourced actor took to recover (snapshot load and replay)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    this.#recoveryEvents = new Histogram({
      name: 'shoal_journal_recovery_events',
      help: 'Events replayed by one recovery (after its snapshot)',
      buckets: [0, 1, 10, 100, 1000, 10_000, 100_000],
      registers,
    })
    this.#batchAppends = new Histogram({
      name: 'shoal_journal_batch_appends',
      help: 'Appends written in one store transaction (group commit): how well concurrent emits share a write (SQLite, PostgreSQL stores)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    })
    this.#batchSeconds = new Histogram({
      name: 'shoal_journal_batch_seconds',
      help: 'Time one store transaction took (its appends wait for it)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    })
  }

  /** One write transaction of the store (`EventStore.observeWrites`). */
  batch(b: WriteBatch): void {
    this.#batchAppends.observe(b.appends)
    this.#batchSeconds.observe(b.seconds)
  }

  /** One append settled after `seconds`, with `outcome` (`ok` or an error code). */
  appended(seconds: number, outcome: string): void {
    this.#appends.inc({ outcome })
    this.#appendSeconds.observe(seconds)
  }

  /** One recovery took `seconds` and replayed `events`. */
  recovered(seconds: number, events: number): void {
    this.#recoveries.inc()
    this.#recoverySeconds.observe(seconds)
    this.#recoveryEvents.observe(events)
  }
}
