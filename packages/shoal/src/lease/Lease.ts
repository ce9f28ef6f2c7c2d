/**
 * Leases: a named right that one owner holds for a limited time, kept in a store every node can
 * reach (PostgreSQL, an SQLite file shared by the processes of one machine, memory in tests).
 *
 * When to use: to make "at most one at a time" hold even when the cluster cannot tell, e.g. a
 * cluster singleton whose host froze (a GC pause, SIGSTOP, a stalled VM) for longer than failure
 * detection and the downing margin: the cluster downs it and starts a successor, and when the old
 * host wakes up it would serve calls before it learns it was downed. With a lease the successor
 * cannot start until the old host's lease has expired in the store, and the old host stops serving
 * the moment its own clock says its lease may have expired, before it talks to anyone.
 *
 * Details: the store decides with its own clock (expiry = the store's now + ttl); a holder counts
 * validity from the moment it *sent* the request that the store granted, on its monotonic clock, so
 * it always believes itself the holder for less time than the store does ({@link LeaseTerm}).
 *
 * Every grant carries the lease's **epoch**, a fencing token: it grows whenever the lease changes
 * hands (or is taken again after it lapsed), never on a renewal. Pass it with writes to an external
 * system that must never see a stale holder, and have that system refuse tokens lower than the
 * highest it has seen.
 *
 * Gotchas: clocks running at very different rates break any lease; `ttl` should be several times
 * the store's round trip. A call that was already running when the lease lapsed finishes: that is
 * what the epoch is for.
 * @module
 */

import { ConfigError } from '../errors.ts'

/** A store of leases. Every operation is atomic in the store. */
export interface LeaseStore {
  /** For logs and errors. */
  readonly name: string
  /**
   * Takes lease `name` for `owner` (non-empty), or renews it if `owner` holds it, until `ttlMs`
   * from now by the store's clock, provided it is free, expired or already `owner`'s. Resolves with
   * the lease's epoch if `owner` holds it now (a fencing token: it grows when the lease changes
   * hands or is taken again after lapsing, not on renewal), undefined if someone else does. Rejects
   * if the store cannot answer.
   */
  acquireLease(name: string, owner: string, ttlMs: number): Promise<number | undefined>
  /** Gives lease `name` up if `owner` holds it (so a successor need not wait for it to expire). */
  releaseLease(name: string, owner: string): Promise<void>
  /** Who holds lease `name` now, if anyone (tools and tests). */
  leaseHolder(name: string): Promise<string | undefined>
}

/**
 * A holder's view of its lease, pure: when it may act as the holder. Validity counts from when a
 * granted request was sent (the store's expiry is later than that), minus a safety share of the
 * ttl for clock-rate differences and scheduling.
 */
export class LeaseTerm {
  #validUntil = Number.NEGATIVE_INFINITY

  constructor(
    readonly ttlMs: number,
    /** Share of the ttl not relied upon. Default 0.1. */
    readonly safety = 0.1,
  ) {}

  /** The store granted (or renewed) a request sent at `sentAt`. */
  granted(sentAt: number): void {
    this.#validUntil = Math.max(this.#validUntil, sentAt + this.ttlMs * (1 - this.safety))
  }

  /** The store said someone else holds it, or this holder gave it up. */
  lost(): void {
    this.#validUntil = Number.NEGATIVE_INFINITY
  }

  /** Whether the holder may act as the holder at `now`. */
  valid(now: number): boolean {
    return now < this.#validUntil
  }

  /** How long it stays valid from `now` (0 if not valid). */
  remaining(now: number): number {
    return Math.max(0, this.#validUntil - now)
  }
}

/** Leases in this process's memory: for tests and single-process systems. */
export class MemoryLeaseStore implements LeaseStore {
  readonly name = 'memory'
  /** owner '' = released (the epoch is kept, so the next holder's is higher). */
  readonly #leases = new Map<string, { owner: string; expires: number; epoch: number }>()
  #down = false

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Simulates an outage (tests): while down, every operation rejects. */
  setAvailable(available: boolean): void {
    this.#down = !available
  }

  async acquireLease(name: string, owner: string, ttlMs: number): Promise<number | undefined> {
    this.#check()
    if (owner === '') throw new ConfigError('A lease owner must not be empty (empty marks a released lease).')
    const now = this.now()
    const held = this.#leases.get(name)
    const live = held !== undefined && held.owner !== '' && held.expires > now
    if (live && held.owner !== owner) return undefined
    const epoch = live ? held.epoch : (held?.epoch ?? 0) + 1
    this.#leases.set(name, { owner, expires: now + ttlMs, epoch })
    return epoch
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    this.#check()
    const held = this.#leases.get(name)
    if (held?.owner === owner) this.#leases.set(name, { owner: '', expires: 0, epoch: held.epoch })
  }

  async leaseHolder(name: string): Promise<string | undefined> {
    this.#check()
    const held = this.#leases.get(name)
    return held && held.owner !== '' && held.expires > this.now() ? held.owner : undefined
  }

  #check(): void {
    if (this.#down) throw new Error('the memory lease store is unavailable (simulated outage)')
  }
}
