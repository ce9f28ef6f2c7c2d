/**
 * The lease store and journal that every simulated node reaches (PostgreSQL in a real cluster),
 * modelled on the simulator's clock: a lease is granted until the store's now + ttl and carries an
 * epoch that grows when it changes hands; answers take a round trip; faults make the store slow or
 * unavailable (an operation then fails after a quarter ttl, as LeaseKeeper bounds it). The journal
 * keeps one event log per singleton and per virtual actor and refuses an append at a sequence number already written,
 * as the real journals do.
 * @module
 */
import type { ClusterSimulator } from './ClusterSimulator.ts'
import type { Fault } from './Faults.ts'

/** The store's answer to a lease request: the epoch, someone else holds it, or no answer. */
export type LeaseAnswer = number | 'refused' | 'failed'

const ROUND_TRIP = 2

export class SimStore {
  readonly #cs: ClusterSimulator
  readonly #leases = new Map<string, { owner: string; expires: number; epoch: number }>()
  readonly #logs = new Map<string, string[]>()
  /**
   * Calls acknowledged (each wrote one event). A count, not a set of ids: an acknowledged call's
   * event is appended at the moment it is acknowledged, so what the end checks is that no journal
   * lost or doubled one (a set of every id cost a map entry per call, 2% of a run).
   */
  #acked = 0
  #downUntil = 0
  #slowUntil = 0
  #slowLatency = 0

  constructor(cs: ClusterSimulator) {
    this.#cs = cs
  }

  /** Calls acknowledged to their callers (their events are in the journal). */
  get acknowledged(): number {
    return this.#acked
  }

  fault(f: Extract<Fault, { kind: 'store-outage' | 'store-slow' }>): void {
    const now = this.#cs.sim.now
    if (f.kind === 'store-outage') this.#downUntil = Math.max(this.#downUntil, now + f.duration)
    else {
      this.#slowUntil = Math.max(this.#slowUntil, now + f.duration)
      this.#slowLatency = f.latency
    }
  }

  /**
   * Takes or renews lease `name` for `owner`; `done` runs in the node's process with the answer,
   * `failed` after `timeout` (default a quarter ttl, as LeaseKeeper bounds an operation).
   */
  acquire(node: number, name: string, owner: string, ttl: number, done: (a: LeaseAnswer) => void, timeout = ttl / 4): void {
    this.#roundTrip(
      node,
      timeout,
      () => {
        const now = this.#cs.sim.now
        const held = this.#leases.get(name)
        const live = held !== undefined && held.owner !== '' && held.expires > now
        if (live && held.owner !== owner) return 'refused'
        const epoch = live ? held.epoch : (held?.epoch ?? 0) + 1
        this.#leases.set(name, { owner, expires: now + ttl, epoch })
        return epoch
      },
      done,
    )
  }

  /** Who holds lease `name` now (undefined: nobody), answered in the node's process; `failed` as `acquire`. */
  holder(node: number, name: string, done: (holder: string | undefined | 'failed') => void, ttl = 8000): void {
    this.#roundTrip(
      node,
      ttl / 4,
      () => {
        const held = this.#leases.get(name)
        return held !== undefined && held.owner !== '' && held.expires > this.#cs.sim.now ? held.owner : undefined
      },
      done,
    )
  }

  release(node: number, name: string, owner: string): void {
    this.#roundTrip(
      node,
      Number.POSITIVE_INFINITY,
      () => {
        const held = this.#leases.get(name)
        if (held?.owner === owner) this.#leases.set(name, { owner: '', expires: 0, epoch: held.epoch })
        return 0
      },
      () => {},
    )
  }

  /** The journal's length for `name` (an instance recovering), answered in the node's process. */
  recover(node: number, name: string, done: (seq: number) => void): void {
    // The journal is not the lease store: its outages are not simulated.
    const sim = this.#cs.sim
    const generation = sim.members[node]!.generation
    sim.at(sim.now + ROUND_TRIP, () => {
      const seq = this.#log(name).length
      if (sim.members[node]!.generation === generation) sim.inProcess(node, () => done(seq))
    })
  }

  /**
   * Appends call `id`'s event at sequence number `seq`; a write at a number already written is
   * refused (two writers), which is a violation: the last line of defence had to act.
   */
  append(name: string, seq: number, id: string, node: number): void {
    const log = this.#log(name)
    this.#cs.checks.journal!++
    if (seq !== log.length) {
      this.#cs.violate('journal-conflict', `n${node} wrote event ${seq} of ${name}, but the journal holds ${log.length}: two instances wrote`)
      return
    }
    log.push(id)
    this.#acked++
  }

  /** At the end: every acknowledged call's event is in the journal once. */
  checkAcknowledged(): void {
    let held = 0
    for (const [name, log] of this.#logs) {
      const ids = new Set<string>()
      for (const id of log) {
        if (ids.has(id)) this.#cs.violate('lost-ack', `call ${id} is in ${name}'s journal twice`)
        ids.add(id)
      }
      held += log.length
    }
    if (held !== this.#acked) this.#cs.violate('lost-ack', `${this.#acked} calls were acknowledged, but the journals hold ${held} events`)
  }

  #log(name: string): string[] {
    let log = this.#logs.get(name)
    if (!log) this.#logs.set(name, (log = []))
    return log
  }

  /**
   * Runs `op` at the store after half a round trip and answers in the node's process after the
   * other half; an unavailable store, or one slower than `timeout`, answers `failed` at the timeout
   * (the operation may still run: a late grant nobody knows of then just expires).
   */
  #roundTrip<T>(node: number, timeout: number, op: () => T, done: (a: T | 'failed') => void): void {
    const sim = this.#cs.sim
    const now = sim.now
    const generation = sim.members[node]!.generation
    const half = (now < this.#slowUntil ? this.#slowLatency : ROUND_TRIP) / 2
    const answer = (a: T | 'failed'): void => {
      if (sim.members[node]!.generation === generation) sim.inProcess(node, () => done(a))
    }
    if (now < this.#downUntil) return void (Number.isFinite(timeout) && sim.at(now + timeout, () => answer('failed')))
    if (2 * half > timeout) {
      sim.at(now + half, op)
      return void sim.at(now + timeout, () => answer('failed'))
    }
    sim.at(now + half, () => {
      const result = op()
      sim.at(sim.now + half, () => answer(result))
    })
  }
}
