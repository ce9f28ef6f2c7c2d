/**
 * IdTable: values keyed by a uint32 id that mostly increases (call ids), in a ring of slots
 * (`id & mask`) with a Map for the ids that collide.
 *
 * Why not a Map: a Map whose entries come and go all the time (a pending call lives about a
 * millisecond) reallocates its hash table every few hundred operations, and V8 links each retired
 * table to its successor. Once one retired table has been promoted to the old generation, that
 * link keeps the next one alive through the following scavenge, and with it every pending call it
 * held: a chain of garbage promoted table after table until the next full collection. The ring is
 * one array that stays put; a slot is cleared when its entry leaves.
 *
 * Entries live in the ring while at most half of it is in use (it doubles up to `maxSlots`);
 * an id whose slot is taken by another id (a call much older than the ones around it) goes to the
 * overflow Map, which stays small.
 * @module
 */

const MIN_SLOTS = 64

export class IdTable<T> {
  #slots: (T | undefined)[]
  #keys: Uint32Array
  #mask: number
  #inRing = 0
  readonly #overflow = new Map<number, T>()
  readonly #maxSlots: number

  /** `maxSlots` (a power of two) bounds the ring; beyond it, colliding ids use the overflow Map. */
  constructor(initialSlots = 256, maxSlots = 65_536) {
    const n = powerOfTwo(Math.max(MIN_SLOTS, initialSlots))
    this.#slots = new Array<T | undefined>(n).fill(undefined)
    this.#keys = new Uint32Array(n)
    this.#mask = n - 1
    this.#maxSlots = powerOfTwo(Math.max(n, maxSlots))
  }

  /** Number of entries. */
  get size(): number {
    return this.#inRing + this.#overflow.size
  }

  get(id: number): T | undefined {
    const i = id & this.#mask
    const v = this.#slots[i]
    if (v !== undefined && this.#keys[i] === id >>> 0) return v
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id >>> 0)
  }

  /** Adds or replaces the entry for `id`; `value` must not be undefined. */
  set(id: number, value: T): void {
    const key = id >>> 0
    const i = key & this.#mask
    const v = this.#slots[i]
    if (v === undefined || this.#keys[i] === key) {
      if (v === undefined) {
        this.#inRing++
        if (this.#overflow.size !== 0) this.#overflow.delete(key)
      }
      this.#slots[i] = value
      this.#keys[i] = key
      return
    }
    if ((this.#inRing + 1) * 2 > this.#slots.length && this.#slots.length < this.#maxSlots) {
      this.#grow()
      this.set(key, value)
      return
    }
    this.#overflow.set(key, value)
  }

  /** Removes the entry for `id`; true if there was one. */
  delete(id: number): boolean {
    const key = id >>> 0
    const i = key & this.#mask
    if (this.#slots[i] !== undefined && this.#keys[i] === key) {
      this.#slots[i] = undefined
      this.#inRing--
      return true
    }
    return this.#overflow.size !== 0 && this.#overflow.delete(key)
  }

  /** A snapshot of the values (safe to delete from the table while iterating it). */
  values(): T[] {
    const out: T[] = []
    for (const v of this.#slots) if (v !== undefined) out.push(v)
    for (const v of this.#overflow.values()) out.push(v)
    return out
  }

  #grow(): void {
    const slots = this.#slots
    const keys = this.#keys
    const n = slots.length * 2
    this.#slots = new Array<T | undefined>(n).fill(undefined)
    this.#keys = new Uint32Array(n)
    this.#mask = n - 1
    this.#inRing = 0
    for (let i = 0; i < slots.length; i++) {
      const v = slots[i]
      if (v !== undefined) this.set(keys[i]!, v)
    }
  }
}

function powerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n))
}
