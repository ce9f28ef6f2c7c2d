/**
 * Tombstones: the node incarnations (uids) known gone for good (shut down, replaced by a restart,
 * downed), whose handshakes the transport refuses so a zombie cannot come back.
 *
 * Bounded in time and size, so a long-lived node under churn does not grow without end: an entry
 * lasts `ttlMs` (default 24 h, as SWIM keeps its dead members: far beyond any pause a process
 * survives and then resumes with its old uid), and past `max` entries (default 100,000) the oldest
 * go first. Pure: the clock is injected (default: the monotonic clock, so a wall-clock jump neither
 * forgets nor keeps them).
 */
export class Tombstones {
  /** uid → when it was (last) marked, in insertion order: oldest first. */
  readonly #marked = new Map<string, number>()

  constructor(
    private readonly now: () => number = () => performance.now(),
    readonly ttlMs = 24 * 60 * 60 * 1000,
    readonly max = 100_000,
  ) {}

  /** Marks `uid` gone (again: its time is renewed). */
  add(uid: string): void {
    this.#marked.delete(uid)
    this.#marked.set(uid, this.now())
    this.#prune()
  }

  has(uid: string): boolean {
    const at = this.#marked.get(uid)
    if (at === undefined) return false
    if (this.now() - at < this.ttlMs) return true
    this.#prune()
    return false
  }

  get size(): number {
    return this.#marked.size
  }

  #prune(): void {
    const now = this.now()
    for (const [uid, at] of this.#marked) {
      if (this.#marked.size <= this.max && now - at < this.ttlMs) return
      this.#marked.delete(uid)
    }
  }
}
