/**
 * DowningDecision: what the leader of one side does about unreachable members, as a pure
 * function of its view and the time. The cluster shell gathers the inputs (gossip, SWIM's view,
 * heartbeat answers, when each member was last heard) and applies the outcome (marks the members
 * down in gossip); the strategy (Downing.ts) says which side stays.
 *
 * Two rules around the strategy make it safe on a real network:
 * - **Talking members are not unreachable.** A member whose heartbeats answered moments ago, or
 *   that this node heard from directly within `stableAfter`, talks to this node even while SWIM
 *   still suspects it (a refutation takes a round of gossip; a flapping link can outpace it).
 * - **Confirmation.** Right after a partition, members of the other side that SWIM has not probed
 *   yet still look reachable; a minority counting them could believe it is the majority and down
 *   the real one (then, once it sees them too, go on as a second cluster: a split brain, found in
 *   about one run in three before this rule). So a decision that keeps this side and downs others
 *   waits until every member this side counts on has been heard from since the first current
 *   unreachability began, and since the view last changed (a partition that changes shape can cut
 *   a member off after the trouble began, and SWIM notices only seconds later); a decision to down
 *   this side needs no such wait.
 *
 * When to use: the cluster shell calls it on every tick while this node leads; the deterministic
 * simulator calls it the same way, and turns `confirm` off to show that the split brain comes back.
 * @module
 */
import type { DowningStrategy } from './Downing.ts'
import { type ClusterMember, isPresent } from './Member.ts'

/** The leader's view, at `now`, on one clock. */
export interface DowningInput {
  readonly self: string
  readonly now: number
  /** When the view (reachability or a status) last changed. */
  readonly viewChangedAt: number
  /** Every member not removed, with its reachability as SWIM and the observations give it. */
  readonly members: readonly ClusterMember[]
  /** Since when each unreachable member has been unreachable. */
  readonly unreachableSince: ReadonlyMap<string, number>
  /** Members that talk to this node (reachable, heartbeats answered recently, or heard directly within stableAfter). */
  readonly talking: ReadonlySet<string>
  /**
   * When each member was last heard from directly (a message straight from it, or the send time of
   * a heartbeat it answered), if ever.
   */
  readonly lastHeard: ReadonlyMap<string, number>
  /**
   * Members this node has marked down or removed whose down some present member has not been seen
   * to know (its gossip `seen` never included the state with the down): the other side may still
   * count them as up. The confirmation rule counts them there.
   */
  readonly unseenDowns?: readonly ClusterMember[]
  /** How long decisions have waited for confirmation without a break (see {@link decideDowning}). */
  readonly unconfirmedFor?: number
  /** The confirmation rule (default on; off only to show what it prevents). */
  readonly confirm?: boolean
}

/** What the leader does now. */
export type DowningOutcome =
  | { readonly kind: 'down'; readonly members: readonly string[] }
  | { readonly kind: 'wait'; readonly reason: 'all-talking' | 'unstable' | 'nothing-to-down' | 'unconfirmed' }

/** The leader's decision (see the module comment); pure. */
export function decideDowning(input: DowningInput, strategy: DowningStrategy): DowningOutcome {
  const { self, now, members, talking } = input
  if (members.filter((m) => isPresent(m.status)).every((m) => talking.has(m.node.uid))) return { kind: 'wait', reason: 'all-talking' }
  const stableFor = now - input.viewChangedAt
  if (stableFor < strategy.stableAfter) return { kind: 'wait', reason: 'unstable' }
  // Only present members: a member removed moments ago (kept a minute before it is forgotten) was
  // unreachable since long before the current trouble, and counting it dated the trouble back to
  // it, so members heard since then passed the confirmation rule (a split brain the cluster
  // simulator found: a crash, then a partition within the minute).
  const present = new Set(members.filter((m) => isPresent(m.status)).map((m) => m.node.uid))
  const unreachableFor = new Map([...input.unreachableSince].filter(([uid]) => present.has(uid) && !talking.has(uid)).map(([uid, since]) => [uid, now - since]))
  const view = members.map((m): ClusterMember => ({ ...m, reachability: talking.has(m.node.uid) ? 'reachable' : 'unreachable' }))
  const byUid = new Map(members.map((m) => [m.node.uid, m]))
  const toDown = strategy.decide({ self, members: view, stableFor, unreachableFor }).filter((uid) => {
    const m = byUid.get(uid)
    return m !== undefined && isPresent(m.status)
  })
  if (toDown.length === 0) return { kind: 'wait', reason: 'nothing-to-down' }
  if (input.confirm === false) return { kind: 'down', members: toDown }
  // Heard since the trouble began, and since the view last changed: a member heard before the last
  // change may have been cut off by it while SWIM still counts it (a split brain the cluster
  // simulator found: a partition changed shape, moving a member to the other side; 3.4 s later,
  // before SWIM suspected it, this side decided counting it and downed the real majority).
  const since = Math.max(now - Math.max(0, ...unreachableFor.values()), input.viewChangedAt)
  // Downing this side needs no confirmation, but only for the members this side can vouch for: one
  // not heard from since then may be on the other side by now, and a down of it that reaches the
  // other side's leader (not it) removes a live member there, which goes on as a cluster of its own
  // (the cluster simulator, seed 67 of --gap 5 --faults partition). The rest decide for themselves.
  if (toDown.includes(self))
    return { kind: 'down', members: toDown.filter((uid) => uid === self || (input.lastHeard.get(uid) ?? Number.NEGATIVE_INFINITY) >= since) }
  const pessimistic = pessimisticDecision(input, view, since, stableFor, unreachableFor, strategy)
  if (!pessimistic.includes(self)) return { kind: 'down', members: toDown }
  // Unconfirmed for another stableAfter: the members not heard from are on the other side after
  // all, and this side would lose there. Down it rather than wait for ever (its hosts are already
  // fenced, since confirmations count the same way).
  if ((input.unconfirmedFor ?? 0) < strategy.stableAfter) return { kind: 'wait', reason: 'unconfirmed' }
  const ours = pessimistic.filter((uid) => {
    const m = byUid.get(uid)
    return m !== undefined && isPresent(m.status)
  })
  return { kind: 'down', members: ours }
}

/**
 * What the strategy decides if every member not heard from since the trouble began, and every
 * member downed here whose down another member may not know of, were on the other side: this side
 * is confirmed if that does not down it.
 */
function pessimisticDecision(
  input: Pick<DowningInput, 'self' | 'lastHeard' | 'unseenDowns'>,
  view: readonly ClusterMember[],
  since: number,
  stableFor: number,
  unreachableFor: ReadonlyMap<string, number>,
  strategy: DowningStrategy,
): readonly string[] {
  const unseen = new Map((input.unseenDowns ?? []).map((m) => [m.node.uid, m]))
  const pessimistic = view.map((m): ClusterMember => {
    const down = unseen.get(m.node.uid)
    if (down) return { ...down, status: 'up', reachability: 'unreachable' }
    if (m.node.uid === input.self || m.reachability === 'unreachable') return m
    const heard = input.lastHeard.get(m.node.uid)
    return heard !== undefined && heard >= since ? m : { ...m, reachability: 'unreachable' }
  })
  // A member this side downed just before the partition, whose down never reached the other side,
  // is up over there: count it there (a split brain the cluster simulator found: a pause downed,
  // then a partition 29 ms later; this side then won a tie that the other side, counting the
  // paused member, won too).
  const inView = new Set(view.map((m) => m.node.uid))
  for (const m of unseen.values()) if (!inView.has(m.node.uid)) pessimistic.push({ ...m, status: 'up', reachability: 'unreachable' })
  return strategy.decide({ self: input.self, members: pessimistic, stableFor, unreachableFor })
}

/**
 * The confirmation rule for a decision made outside {@link decideDowning}: the leader's downing of
 * the indirectly connected members of a partition that is not clean (`resolveIndirect`). `view`
 * has the members that decision cuts off marked unreachable; this side is confirmed if it would
 * still stay with every member not heard from since `since` (when the observations and the view
 * last changed), and every down another member may not know of, counted on the other side.
 *
 * Without it, a clean partition that SWIM had not noticed yet (heartbeats stalled, observations
 * made, SWIM still counting the member alive) went down this path unconfirmed: a side of two that
 * had downed two members the other side never heard of downed the third as "indirectly
 * connected", removed all three, and went on as a cluster of two beside the real majority (a
 * split brain the cluster simulator found, seed 80 of its partition schedules).
 */
export function indirectDecisionConfirmed(
  input: Pick<DowningInput, 'self' | 'lastHeard' | 'unseenDowns' | 'confirm'>,
  view: readonly ClusterMember[],
  since: number,
  stableFor: number,
  strategy: DowningStrategy,
): boolean {
  if (input.confirm === false) return true
  return !pessimisticDecision(input, view, since, stableFor, new Map(), strategy).includes(input.self)
}
