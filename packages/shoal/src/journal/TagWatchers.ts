/**
 * The listeners of `EventStore.watchTag`, shared by the stores: per tag, called (as microtasks,
 * so a slow listener never holds up a write) when events with that tag may have been written.
 * @module
 */
export class TagWatchers {
  readonly #byTag = new Map<string, Set<() => void>>()

  /** Adds a listener for `tag`; returns the function that removes it. */
  watch(tag: string, listener: () => void): () => void {
    let set = this.#byTag.get(tag)
    if (!set) this.#byTag.set(tag, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.#byTag.get(tag) === set) this.#byTag.delete(tag)
    }
  }

  /** Tells the listeners of each of `tags`. */
  notify(tags: Iterable<string>): void {
    for (const t of tags) for (const l of this.#byTag.get(t) ?? []) queueMicrotask(l)
  }

  clear(): void {
    this.#byTag.clear()
  }
}
