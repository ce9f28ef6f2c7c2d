/**
 * Where a cluster singleton runs, decided purely from one node's view of the membership: no
 * sockets, no timers (the clock is passed in).
 *
 * The rules, in order, for a singleton with an optional role:
 * 1. **Fencing.** If this node is down, or the downing strategy, applied to this node's current
 *    reachability, has wanted to down this node's own side for `fenceAfter` (a blip of
 *    unreachability should not cost the instance its in-memory state), this node neither hosts
 *    nor forwards: its side is about to be downed, and the other side may soon start an instance.
 *    A host stops its instance here, seconds before the other side can down it.
 * 2. **Target.** The allocation strategy picks among members that are `up` and have the role
 *    (default: the oldest, by up-number, so younger nodes joining never move it). Members merely
 *    unreachable stay eligible: an instance is not moved until its node is downed.
 * 3. **Hand-over and margin.** If the target is this node, it still waits while another instance
 *    may be running: a `leaving` member (it passivates its instance before becoming `exiting`),
 *    any other node that still lists an instance (a previous target, with any strategy: the
 *    leader moves when the host is merely unreachable), a member `down` but not yet `removed` (the
 *    leader removes it once every reachable member has seen the down, so none of them confirms it
 *    any more), or one removed less than `margin` ago (a host stops serving within its confirmation
 *    window once confirmations stop, and the margin exceeds that window; the reference's
 *    leader-based allocation has no such wait, so two instances can briefly coexist).
 * 4. **Confirmed.** A node hosts only while members confirm its membership recently enough to
 *    form a side that stays (`confirmed`, see `confirmedUntil` in cluster/Downing.ts); otherwise
 *    it stops its instance like in rule 1, whatever its own view of reachability says. Forwarding
 *    needs no confirmation: the instance it reaches checks its own.
 * @module
 */
import type { DowningStrategy } from '../cluster/Downing.ts'
import { type ClusterMember, compareAddress } from '../cluster/Member.ts'

/** Picks the member that should host, among `up` members with the role (oldest first by default). */
export interface AllocationStrategy {
  readonly name: string
  /** `candidates`: `up` members with the role, any reachability. `leader`: the cluster leader's uid, if any. */
  target(candidates: readonly ClusterMember[], leader: string | undefined): ClusterMember | undefined
}

/** Oldest `up` member (lowest up-number, then lowest address): stable while younger nodes come and go. */
export const oldestMember: AllocationStrategy = {
  name: 'oldest',
  target: (candidates) => {
    // The first of `[...candidates].sort(byAge)`, without the copy and the sort (this runs on every evaluation).
    let oldest: ClusterMember | undefined
    for (const m of candidates) if (oldest === undefined || byAge(m, oldest) < 0) oldest = m
    return oldest
  },
}

/** The cluster leader if it is a candidate, else the oldest (the reference system's default). */
export const leaderMember: AllocationStrategy = {
  name: 'leader',
  target: (candidates, leader) => candidates.find((m) => m.node.uid === leader) ?? oldestMember.target(candidates, leader),
}

/** Oldest first: lower up-number, then lower address. */
export function byAge(a: ClusterMember, b: ClusterMember): number {
  return a.upNumber - b.upNumber || compareAddress(a.node, b.node)
}

/** One node's view, as the decision needs it. */
export interface AllocationView {
  readonly self: string
  readonly members: readonly ClusterMember[]
  readonly leader: string | undefined
  /** When this node first saw each downed member `removed` (uid → ms), for the margin. */
  readonly downSince: ReadonlyMap<string, number>
  readonly now: number
  /** This node runs the instance now (rule 3 is about starting one, not keeping it). */
  readonly hosting: boolean
  /** Uids of other nodes that list an instance (from the receptionist). */
  readonly listedElsewhere: readonly string[]
  /** How long `wouldBeDowned` has been true without a break, ms (0 if it is false now). */
  readonly fencedFor: number
  /** Heartbeat answers confirm this node's side now (always true outside a cluster). */
  readonly confirmed: boolean
}

/** The allocation settings of one singleton. */
export interface AllocationSettings {
  readonly role: string | undefined
  readonly strategy: AllocationStrategy
  /** The cluster's downing strategy, for fencing; undefined disables fencing. */
  readonly downing: DowningStrategy | undefined
  /** How long after a downed member is removed before a successor may start, ms. */
  readonly margin: number
  /** How long this side must look doomed before a host fences, ms (well below stableAfter + margin). */
  readonly fenceAfter: number
}

/** What this node should do about the singleton now. */
export type Allocation =
  | { readonly kind: 'host' }
  | { readonly kind: 'remote'; readonly host: ClusterMember }
  | {
      readonly kind: 'wait'
      readonly reason: 'fenced' | 'no-candidate' | 'hand-over' | 'instance-elsewhere' | 'margin' | 'unconfirmed'
      readonly until?: number
    }

/** Decides per the module comment. */
export function allocate(view: AllocationView, s: AllocationSettings): Allocation {
  if (selfDown(view) || (s.downing && view.fencedFor >= s.fenceAfter && wouldBeDowned(view, s.downing))) return { kind: 'wait', reason: 'fenced' }
  const withRole = s.role === undefined ? view.members : view.members.filter((m) => m.roles.includes(s.role!))
  const target = s.strategy.target(
    withRole.filter((m) => m.status === 'up'),
    view.leader,
  )
  if (!target) return { kind: 'wait', reason: 'no-candidate' }
  if (target.node.uid !== view.self) return { kind: 'remote', host: target }
  // Only hosting needs confirmations: a proxy forwarding to an instance elsewhere is harmless.
  if (!view.confirmed) return { kind: 'wait', reason: 'unconfirmed' }
  if (view.hosting) return { kind: 'host' }
  const others = withRole.filter((m) => m.node.uid !== view.self)
  if (others.some((m) => m.status === 'leaving')) return { kind: 'wait', reason: 'hand-over' }
  if (view.listedElsewhere.some((uid) => uid !== view.self)) return { kind: 'wait', reason: 'instance-elsewhere' }
  if (others.some((m) => m.status === 'down')) return { kind: 'wait', reason: 'margin' }
  let until = 0
  for (const m of others) {
    const since = view.downSince.get(m.node.uid)
    if (since !== undefined && view.now - since < s.margin) until = Math.max(until, since + s.margin)
  }
  return until > 0 ? { kind: 'wait', reason: 'margin', until } : { kind: 'host' }
}

/**
 * When this node first saw each downed member removed, for the margin. A member that left
 * gracefully (seen leaving or exiting, then removed) gets no margin: it stopped its instance before
 * exiting. One seen removed without that history counts as downed (it may have crashed).
 */
export class DownTracker {
  readonly since = new Map<string, number>()
  readonly #last = new Map<string, string>()
  /** The list last observed: the membership core hands out the same array until something changes, and then nothing is new. */
  #observed: readonly unknown[] | undefined

  observe(members: readonly { readonly node: { readonly uid: string }; readonly status: string }[], now: number): void {
    if (members === this.#observed) return
    this.#observed = members
    for (const m of members) {
      const uid = m.node.uid
      const before = this.#last.get(uid)
      if (before === m.status) continue
      this.#last.set(uid, m.status)
      if (this.since.has(uid)) continue
      if (m.status === 'removed' && before !== 'leaving' && before !== 'exiting' && before !== 'removed') this.since.set(uid, now)
    }
  }

  /** Forgets what is older than `ms`. */
  prune(now: number, ms: number): void {
    for (const [uid, at] of this.since) if (now - at > ms) this.since.delete(uid)
    if (this.#last.size > 10 * (this.since.size + 100)) {
      this.#last.clear()
      this.#observed = undefined
    }
  }
}

/** True if this node is down or removed (an operator, or its own side, downed it). */
export function selfDown(view: Pick<AllocationView, 'self' | 'members'>): boolean {
  const self = view.members.find((m) => m.node.uid === view.self)
  return !self || self.status === 'down' || self.status === 'removed'
}

/** True if the downing strategy, asked now, would down this node's own side. */
export function wouldBeDowned(view: Pick<AllocationView, 'self' | 'members'>, downing: DowningStrategy): boolean {
  // Strategies decide only about unreachable members (the leader asks them only then): nothing
  // unreachable, nothing to ask. The common case, on every evaluation of every singleton.
  if (view.members.every((m) => m.reachability === 'reachable')) return false
  const downs = downing.decide({ self: view.self, members: view.members, stableFor: Number.POSITIVE_INFINITY, unreachableFor: new Map() })
  return downs.includes(view.self)
}
