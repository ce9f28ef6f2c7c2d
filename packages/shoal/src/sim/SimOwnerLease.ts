/**
 * The cluster simulator's counterpart of `virtual/OwnerLeases.ts`, on the simulated store: one
 * node's virtual-actor lease `virtual/owner/<its uid>`, held as a {@link LeaseTerm} (valid from when
 * it asked, less the safety share, by the node's own clock) and renewed every quarter ttl, and the
 * probes of removed members' leases. The shell (`SimShards.ts`) wires it as the plugin wires
 * OwnerLeases: a node serves only while its lease is valid, and opens the shards of a removed member
 * only once that member's lease is known expired in the store.
 * @module
 */
import { LeaseTerm } from '../lease/Lease.ts'
import { ownerLeaseName, REVOKED_FOR } from '../virtual/OwnerLeases.ts'
import type { ClusterSimulator } from './ClusterSimulator.ts'
import type { LeaseAnswer } from './SimStore.ts'

/** What the lease tells its node's shell. */
export interface SimOwnerLeaseEvents {
  /** Refused or taken again with another epoch on renewal: stop serving now. */
  readonly lost: () => void
  /** Granted after not being held: what waited may be served. */
  readonly granted: () => void
  /** Member `uid`'s lease is known expired: its shards may open elsewhere. */
  readonly expired: (uid: string) => void
}

/** One node's virtual-actor lease and its probes of removed members' leases (see the module comment). */
export class SimOwnerLease {
  readonly ttl: number
  /** Members whose lease is known expired. */
  readonly expired = new Set<string>()
  /** Removed members whose lease opening their shards waits for (placementGroup fills it). */
  readonly pending = new Set<string>()
  readonly #cs: ClusterSimulator
  readonly #index: number
  readonly #uid: string
  readonly #events: SimOwnerLeaseEvents
  readonly #term: LeaseTerm
  readonly #probing = new Set<string>()
  #epoch: number | undefined
  #acquiring = false
  #stopped = false

  constructor(cs: ClusterSimulator, index: number, uid: string, ttl: number, events: SimOwnerLeaseEvents) {
    this.#cs = cs
    this.#index = index
    this.#uid = uid
    this.ttl = ttl
    this.#events = events
    this.#term = new LeaseTerm(ttl)
  }

  /** The node's process died: its answers go nowhere. */
  stop(): void {
    this.#stopped = true
  }

  /** Whether the node holds its lease at `now` (its clock). */
  valid(now: number): boolean {
    return this.#term.valid(now)
  }

  /** Takes the lease unless held or a try is under way; a failure is tried again on the next call (as LeaseKeeper.acquire). */
  ensureHeld(now: number): void {
    if (this.#stopped || this.#acquiring || this.#term.valid(now)) return
    this.#acquiring = true
    this.#cs.store.acquire(this.#index, ownerLeaseName(this.#uid), this.#uid, this.ttl, (r) => {
      this.#acquiring = false
      if (this.#stopped || typeof r !== 'number') return
      this.#epoch = r
      this.#term.granted(now)
      this.#events.granted()
    })
  }

  /** Renews a lease held (every quarter ttl); another epoch or a refusal is a loss, no answer lets the term run out. */
  renew(now: number): void {
    if (this.#stopped || this.#acquiring || !this.#term.valid(now)) return
    const epoch = this.#epoch
    this.#cs.store.acquire(this.#index, ownerLeaseName(this.#uid), this.#uid, this.ttl, (r) => {
      if (this.#stopped || r === 'failed') return
      if (r === epoch) return this.#term.granted(now)
      this.#term.lost()
      this.#events.lost()
    })
  }

  /** Checks the leases of the pending members, each once at a time (OwnerLeases.probe). */
  probe(): void {
    for (const uid of this.pending) {
      if (this.#stopped || this.expired.has(uid) || this.#probing.has(uid)) continue
      this.#probing.add(uid)
      const name = ownerLeaseName(uid)
      const store = this.#cs.store
      // Taken for good if expired, as OwnerLeases does (REVOKED_FOR): a removed owner that wakes up
      // must not take its lease again.
      const answered = (r: LeaseAnswer): void => {
        if (r === 'failed') return void this.#probing.delete(uid)
        if (typeof r === 'number') return this.#found(uid)
        // Held: by its owner (it may serve), or by a member that revoked it (expired).
        store.holder(
          this.#index,
          name,
          (holder) => {
            if (holder === 'failed' || holder === uid) return void this.#probing.delete(uid)
            this.#found(uid)
          },
          this.ttl,
        )
      }
      store.acquire(this.#index, name, this.#uid, REVOKED_FOR, answered, this.ttl / 4)
    }
  }

  #found(uid: string): void {
    this.#probing.delete(uid)
    if (this.#stopped) return
    this.expired.add(uid)
    this.pending.delete(uid)
    this.#events.expired(uid)
  }
}
