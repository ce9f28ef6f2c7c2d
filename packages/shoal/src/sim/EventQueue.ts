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
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(h[i]!, h[parent]!)) break
      ;[h[i], h[parent]] = [h[parent]!, h[i]!]
      i = parent
    }
  }

  peek(): T | undefined {
    return this.#heap[0]
  }

  pop(): T | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l]!, h[m]!)) m = l
        if (r < h.length && before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top
  }
}

function before(a: Timed, b: Timed): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
