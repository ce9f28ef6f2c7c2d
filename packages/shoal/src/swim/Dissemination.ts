/**
 * The dissemination queue: updates waiting to be piggybacked on outgoing messages.
 *
 * memberlist's design rather than the Swift reference's (which re-enqueues every member on every
 * change and caps by entry count): only the change is queued, a newer update about a member
 * replaces the older one, the least-sent updates go first (newest first among equals), each is
 * sent at most `limit` times, and messages are filled up to a byte budget. The queue itself is
 * bounded in bytes: when full, the most-sent updates are dropped first (anti-entropy repairs
 * what gossip loses).
 * @module
 */
import { type Update, updateSize } from './Codec.ts'

interface Entry {
  readonly key: string
  readonly update: Update
  readonly size: number
  readonly order: number
  transmits: number
}

/** The byte-bounded queue of updates waiting to be piggybacked (see the module comment). */
export class Dissemination {
  readonly #entries = new Map<string, Entry>()
  readonly #maxBytes: number
  #bytes = 0
  #order = 0
  #sorted: Entry[] | undefined
  /** Updates dropped because the queue was over its byte bound. */
  dropped = 0

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  get length(): number {
    return this.#entries.size
  }

  get bytes(): number {
    return this.#bytes
  }

  /** Queues `update` under `key` (a member key), replacing an older update about the same member. */
  enqueue(key: string, update: Update): void {
    this.#remove(key)
    const entry: Entry = { key, update, size: updateSize(update), order: this.#order++, transmits: 0 }
    this.#entries.set(key, entry)
    this.#bytes += entry.size
    this.#sorted = undefined
    if (this.#bytes > this.#maxBytes) this.#shed()
  }

  /** The queued update about a member, if any. */
  peek(key: string): Update | undefined {
    return this.#entries.get(key)?.update
  }

  /**
   * Takes updates that fit in `budget` bytes (at most `maxCount`), counting one transmission each
   * and retiring those sent `limit` times. `skip` excludes one member key (already in the message).
   */
  take(budget: number, limit: number, maxCount: number, skip?: string): Update[] {
    if (this.#entries.size === 0) return []
    const sorted = (this.#sorted ??= [...this.#entries.values()].sort(byPriority))
    const out: Update[] = []
    for (const e of sorted) {
      if (out.length >= maxCount || budget < 20) break
      if (e.size > budget || e.key === skip) continue
      budget -= e.size
      out.push(e.update)
      if (++e.transmits >= limit) {
        this.#remove(e.key)
      }
    }
    // Transmit counts changed: re-sort lazily next time.
    this.#sorted = undefined
    return out
  }

  #remove(key: string): void {
    const old = this.#entries.get(key)
    if (!old) return
    this.#entries.delete(key)
    this.#bytes -= old.size
    this.#sorted = undefined
  }

  /** Drops down to 90% of the bound, so a burst of enqueues sorts the queue once, not each time. */
  #shed(): void {
    const target = this.#maxBytes * 0.9
    const byMostSent = [...this.#entries.values()].sort((a, b) => b.transmits - a.transmits || a.order - b.order)
    for (const e of byMostSent) {
      if (this.#bytes <= target) break
      this.#remove(e.key)
      this.dropped++
    }
  }
}

function byPriority(a: Entry, b: Entry): number {
  return a.transmits - b.transmits || b.order - a.order
}
