/**
 * DeadlineQueue: call timeouts without a timer per call.
 *
 * Entries are grouped by timeout length; within a group, insertion order is deadline order, so
 * each group is an intrusive doubly-linked list (no hashing, no allocation per entry) with one
 * timer armed for its oldest entry. Adding and removing are O(1).
 * @module
 */

export interface Deadline {
  /** Absolute expiry on the queue's clock (ms); set by `add`. */
  deadline: number
  /** List links, owned by the queue. */
  prevDeadline: Deadline | undefined
  nextDeadline: Deadline | undefined
  deadlineGroup: unknown
  expire(): void
}

const MAX_TIMER_MS = 2 ** 31 - 1

class Group {
  head: Deadline | undefined
  tail: Deadline | undefined
  timer: NodeJS.Timeout | undefined
  constructor(readonly timeoutMs: number) {}
}

export class DeadlineQueue {
  readonly #groups = new Map<number, Group>()
  readonly #now: () => number
  /** Most calls use one timeout: remember its group and skip the map lookup. */
  #last: Group | undefined

  /**
   * @param now the queue's clock, ms. Monotonic by default: a wall clock stepped back (NTP, a VM
   *   resumed) would otherwise keep every pending call from timing out for as long as the step.
   */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now
  }

  /** Tracks `entry`, which expires `timeoutMs` from now unless removed first. */
  add(entry: Deadline, timeoutMs: number): void {
    entry.deadline = this.#now() + timeoutMs
    let group = this.#last?.timeoutMs === timeoutMs ? this.#last : this.#groups.get(timeoutMs)
    if (!group) {
      group = new Group(timeoutMs)
      this.#groups.set(timeoutMs, group)
    }
    this.#last = group
    entry.deadlineGroup = group
    entry.prevDeadline = group.tail
    entry.nextDeadline = undefined
    if (group.tail) group.tail.nextDeadline = entry
    else group.head = entry
    group.tail = entry
    if (!group.timer) this.#arm(group)
  }

  /** Milliseconds until `entry` expires (≤ 0: due); for an entry being tracked. */
  left(entry: Deadline): number {
    return entry.deadline - this.#now()
  }

  /** Stops tracking `entry`; a no-op if it is not tracked. */
  remove(entry: Deadline): void {
    const group = entry.deadlineGroup as Group | undefined
    if (!group) return
    const { prevDeadline: prev, nextDeadline: next } = entry
    if (prev) prev.nextDeadline = next
    else group.head = next
    if (next) next.prevDeadline = prev
    else group.tail = prev
    entry.deadlineGroup = entry.prevDeadline = entry.nextDeadline = undefined
  }

  /** Removes every entry without expiring it, and stops all timers. */
  clear(): Deadline[] {
    const all: Deadline[] = []
    for (const g of this.#groups.values()) {
      clearTimeout(g.timer)
      for (let e = g.head; e; e = e.nextDeadline) all.push(e)
    }
    for (const e of all) e.deadlineGroup = e.prevDeadline = e.nextDeadline = undefined
    this.#groups.clear()
    this.#last = undefined
    return all
  }

  #arm(group: Group): void {
    const first = group.head
    if (!first) {
      group.timer = undefined
      this.#groups.delete(group.timeoutMs)
      if (this.#last === group) this.#last = undefined
      return
    }
    // setTimeout clamps delays above 2^31-1 ms to 1 ms; re-arm in steps instead.
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(first.deadline - this.#now())))
    group.timer = setTimeout(() => this.#fire(group), delay)
  }

  #fire(group: Group): void {
    const now = this.#now()
    while (group.head && group.head.deadline <= now) {
      const entry = group.head
      this.remove(entry)
      entry.expire()
    }
    this.#arm(group)
  }
}
