/**
 * DeadlineQueue: call timeouts without a timer per call.
 *
 * Entries are grouped by timeout length; within a group, insertion order is deadline order, so
 * each group needs one timer, armed for its oldest entry. Adding and removing are O(1).
 * @module
 */

export interface Deadline {
  /** Absolute expiry on the queue's clock (ms). */
  deadline: number
  expire(): void
}

class Group {
  readonly entries = new Set<Deadline>()
  timer: NodeJS.Timeout | undefined
}

export class DeadlineQueue {
  readonly #groups = new Map<number, Group>()
  readonly #now: () => number

  constructor(now: () => number = () => performance.now()) {
    this.#now = now
  }

  /** Tracks `entry`, which expires `timeoutMs` from now unless removed first. */
  add(entry: Deadline, timeoutMs: number): void {
    entry.deadline = this.#now() + timeoutMs
    let group = this.#groups.get(timeoutMs)
    if (!group) {
      group = new Group()
      this.#groups.set(timeoutMs, group)
    }
    group.entries.add(entry)
    if (!group.timer) this.#arm(group, timeoutMs)
  }

  remove(entry: Deadline, timeoutMs: number): void {
    this.#groups.get(timeoutMs)?.entries.delete(entry)
  }

  get size(): number {
    let n = 0
    for (const g of this.#groups.values()) n += g.entries.size
    return n
  }

  /** Removes every entry without expiring it, and stops all timers. */
  clear(): Deadline[] {
    const all: Deadline[] = []
    for (const g of this.#groups.values()) {
      clearTimeout(g.timer)
      all.push(...g.entries)
    }
    this.#groups.clear()
    return all
  }

  #arm(group: Group, timeoutMs: number): void {
    const first = group.entries.values().next()
    if (first.done) {
      group.timer = undefined
      this.#groups.delete(timeoutMs)
      return
    }
    const delay = Math.max(0, first.value.deadline - this.#now())
    group.timer = setTimeout(() => this.#fire(group, timeoutMs), Math.ceil(delay))
  }

  #fire(group: Group, timeoutMs: number): void {
    const now = this.#now()
    for (const entry of group.entries) {
      if (entry.deadline > now) break
      group.entries.delete(entry)
      entry.expire()
    }
    this.#arm(group, timeoutMs)
  }
}
