/**
 * A binary min-heap of timed events, ordered by time and then by insertion: two events at the
 * same instant run in the order they were scheduled, which keeps simulations deterministic.
 * @module
 */
export interface Timed {
  readonly time: number
  seq: number
}

/** A min-heap of timed events; ties keep insertion order. */
export class EventQueue<T extends Timed> {
  readonly #heap: T[] = []
  #seq = 0

  get size(): number {
    return this.#heap.length
  }

  push(e: T): void {
    e.seq = this.#seq++
    const h = this.#heap
    // Sift up by moving parents down into the hole (no swaps: a destructuring swap allocates, and
    // this runs for every simulated datagram and timer).
    let i = h.length
    h.push(e)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = h[parent]!
      if (!before(e, p)) break
      h[i] = p
      i = parent
    }
    h[i] = e
  }

  peek(): T | undefined {
    return this.#heap[0]
  }

  pop(): T | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    const n = h.length
    if (n > 0 && last !== undefined) {
      // Sift the last element down from the root, moving smaller children up into the hole.
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && before(h[r]!, h[l]!) ? r : l
        const child = h[c]!
        if (!before(child, last)) break
        h[i] = child
        i = c
      }
      h[i] = last
    }
    return top
  }
}

function before(a: Timed, b: Timed): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
