/**
 * The observers of `EventStore.observeWrites`, shared by the stores that group appends: told of
 * each write transaction (its appends, events, refusals and time), synchronously and cheaply, so
 * that a journal can report batch sizes. An observer that throws is ignored: metrics never fail a
 * write.
 * @module
 */
import type { WriteBatch } from './EventStore.ts'

export class WriteObservers {
  readonly #observers = new Set<(batch: WriteBatch) => void>()

  /** Adds an observer; returns the function that removes it. */
  add(observer: (batch: WriteBatch) => void): () => void {
    this.#observers.add(observer)
    return () => this.#observers.delete(observer)
  }

  /** Whether anyone observes (a store skips counting otherwise). */
  get any(): boolean {
    return this.#observers.size > 0
  }

  /** Tells every observer of one write transaction. */
  notify(batch: WriteBatch): void {
    for (const o of this.#observers) {
      try {
        o(batch)
      } catch {
        // An observer is a metric: it must not fail the write it observes.
      }
    }
  }

  clear(): void {
    this.#observers.clear()
  }
}
