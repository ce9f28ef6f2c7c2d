/** A FIFO queue with O(1) push and shift (Array#shift is O(n) on long arrays). */
export class Deque<T> {
  #items: (T | undefined)[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    if (this.#head === this.#items.length) {
      // Emptied (the usual case for a lane after a flush): reuse the array from its start.
      this.#items.length = 0
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const out = this.#items.slice(this.#head) as T[]
    this.#items = []
    this.#head = 0
    return out
  }
}
