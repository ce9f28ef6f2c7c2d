/**
 * OwnerLeases: the virtual actors' leases, with a lease store configured. Each node holds one lease,
 * `virtual/owner/<its uid>`, and serves shards only while that lease is valid by its own clock
 * (counted from when it asked, minus a safety share: see lease/Lease.ts). A node opens shards a
 * crashed or removed member served only once that member's lease is known expired in the store:
 * this node took it, or the store names another holder. The taker keeps it for
 * {@link REVOKED_FOR} and never gives it back: that incarnation was removed and must never serve
 * again, and a node frozen past its lease that wakes up would otherwise take its lease again (a
 * higher epoch) and serve the shards it still believes open while their new owner serves them too
 * (found by the cluster simulator with `timeout` downing, where only the lease fences).
 *
 * Why per node and not per shard: the guarantee is the same (an owner frozen past its lease serves
 * nothing when it wakes, and nobody opens its shards before its lease ran out in the store), and
 * the store carries one renewal per node per ttl/4 instead of one per shard (1,024 by default).
 *
 * The epoch of this node's holding is the fencing token of everything it serves; it grows each
 * time the lease is taken again after lapsing.
 * @module
 */
import type { Logger } from 'pino'
import type { LeaseStore } from '../lease/Lease.ts'
import { LeaseKeeper } from '../lease/LeaseKeeper.ts'

export interface OwnerLeasesOptions {
  readonly store: LeaseStore
  readonly ttl: number
  /** This node's uid. */
  readonly self: string
  readonly log: Logger
  /** This node's lease was lost (refused, taken again with another epoch, or lapsed by the clock). */
  readonly onLost: (why: string) => void
  /** Another member's lease was found expired: its shards may open elsewhere now. */
  readonly onExpired: (uid: string) => void
}

/**
 * How long a removed member's lease is kept by the member that found it expired: for good, as far
 * as that incarnation goes (it never comes back; a day bounds what the store keeps).
 */
export const REVOKED_FOR = 24 * 60 * 60 * 1000

/** Lease name of the node incarnation `uid`. */
export const ownerLeaseName = (uid: string): string => `virtual/owner/${uid}`

export class OwnerLeases {
  readonly #o: OwnerLeasesOptions
  readonly #keeper: LeaseKeeper
  /** Members whose lease is known expired in the store (bounded: removed members only). */
  readonly #expired = new Set<string>()
  readonly #probing = new Set<string>()
  #acquiring = false
  #stopped = false

  constructor(o: OwnerLeasesOptions) {
    this.#o = o
    this.#keeper = new LeaseKeeper({
      store: o.store,
      name: ownerLeaseName(o.self),
      owner: o.self,
      ttl: o.ttl,
      log: o.log,
      onLost: (why) => o.onLost(why),
    })
  }

  /** Whether this node holds its lease now (it may serve). */
  valid(): boolean {
    return this.#keeper.valid()
  }

  /** The epoch of this node's current holding, while valid. */
  get epoch(): number | undefined {
    return this.#keeper.epoch
  }

  /** Takes (or takes again) this node's lease unless held or a try is under way; failures are logged and tried again on the next call. */
  ensureHeld(): void {
    if (this.#stopped || this.#acquiring || this.#keeper.valid()) return
    this.#acquiring = true
    this.#keeper
      .acquire()
      .then((epoch) => {
        if (epoch === undefined)
          this.#o.log.warn({ lease: ownerLeaseName(this.#o.self), store: this.#o.store.name }, 'virtual actors: own lease held by another owner')
        else this.#o.log.info({ epoch }, 'virtual actors: serving under lease')
      })
      .catch((err: unknown) => this.#o.log.warn({ err, store: this.#o.store.name }, 'virtual actors: could not take this node’s lease; serving waits'))
      .finally(() => (this.#acquiring = false))
  }

  /** Whether member `uid`'s lease is known expired. */
  expired(uid: string): boolean {
    return this.#expired.has(uid)
  }

  /** Checks the leases of these removed members (each once at a time); `onExpired` for each found expired. */
  probe(uids: Iterable<string>): void {
    for (const uid of uids) {
      if (this.#stopped || this.#expired.has(uid) || this.#probing.has(uid)) continue
      this.#probing.add(uid)
      void this.#probe(uid).finally(() => this.#probing.delete(uid))
    }
  }

  async #probe(uid: string): Promise<void> {
    const { store, self, log } = this.#o
    const name = ownerLeaseName(uid)
    try {
      // Taken for good if expired (see REVOKED_FOR); held by another member: revoked already.
      const epoch = await store.acquireLease(name, self, REVOKED_FOR)
      if (epoch === undefined && (await store.leaseHolder(name)) === uid) return // still held: its owner may serve
    } catch (err) {
      log.debug({ err, member: uid }, 'virtual actors: could not check a removed member’s lease; trying again')
      return
    }
    if (this.#stopped) return
    this.#expired.add(uid)
    this.#o.onExpired(uid)
  }

  /** Forgets a member no longer waited for (bounded memory). */
  forget(uid: string): void {
    this.#expired.delete(uid)
  }

  /** Gives this node's lease up (a graceful stop). */
  async stop(): Promise<void> {
    this.#stopped = true
    await this.#keeper.release()
  }
}
