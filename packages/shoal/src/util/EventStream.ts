/**
 * Listeners plus async iteration over the same events: `subscribe` for callbacks, `iterate` for
 * `for await`. A listener that throws is reported and skipped, never breaks delivery to the
 * others. `close()` ends every iteration.
 * @module
 */
export class EventStream<T> {
  readonly #listeners = new Set<(event: T) => void>()
  readonly #onError: (error: unknown) => void
  #closed = false

  constructor(onError: (error: unknown) => void) {
    this.#onError = onError
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Calls `listener` with every event from now on; returns the unsubscribe function. */
  subscribe(listener: (event: T) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  emit(event: T): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event)
      } catch (e) {
        this.#onError(e)
      }
    }
  }

  /** Yields `first` (computed when iteration starts), then every event, until `close()` or `break`. */
  async *iterate(first: () => readonly T[]): AsyncIterableIterator<T> {
    const queue: T[] = [...first()]
    let wake = (): void => undefined
    const off = this.subscribe((e) => {
      queue.push(e)
      wake()
    })
    const onClose = (): void => wake()
    this.#closers.add(onClose)
    try {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!
        if (this.#closed) return
        await new Promise<void>((r) => (wake = r))
      }
    } finally {
      off()
      this.#closers.delete(onClose)
    }
  }

  /** Ends every iteration (after the events already queued) and drops the listeners. */
  close(): void {
    this.#closed = true
    this.#listeners.clear()
    for (const c of this.#closers) c()
  }

  readonly #closers = new Set<() => void>()
}
