/**
 * Downing: who decides that an unreachable member is gone, and what happens to the two sides of a
 * network partition. Strategies are pure: given this node's view (members, their reachability
 * from here, how long the view has been stable), they return the members to mark down. Only the
 * leader of each side acts, and only after the view has been stable for `stableAfter`.
 *
 * The guarantee the split-brain strategies give: after a partition at most one side goes on as
 * the cluster; the other marks itself down (its nodes shut down, and rejoin with new uids once
 * restarted).
 * @module
 */
import { ConfigError } from '../errors.ts'
import { type ClusterMember, compareAddress, isActive } from './Member.ts'

/** What a downing strategy decides on: this node's view of the members. */
export interface DowningView {
  /** This node's uid. */
  readonly self: string
  /** Every member not yet removed, with its reachability from this node. */
  readonly members: readonly ClusterMember[]
  /** ms the set of unreachable members and statuses has been unchanged. */
  readonly stableFor: number
  /** ms each unreachable member has been unreachable, by uid. */
  readonly unreachableFor: ReadonlyMap<string, number>
}

/** A downing strategy: pure, asked by the leader once the view has been stable for `stableAfter`. */
export interface DowningStrategy {
  readonly name: string
  /** How long the view must be stable before `decide` is asked (the shell waits). */
  readonly stableAfter: number
  /** Uids to mark down now (possibly this node's own side); empty for none. */
  decide(view: DowningView): readonly string[]
}

const DEFAULT_STABLE_AFTER = 3000

/**
 * Both sides of the view: reachable and unreachable members (not down, exiting or removed),
 * those that count (up or leaving), and `possiblyUp`: joining members on the other side, when it
 * has an up member to lead them. A leader that reached convergence just before a partition began
 * may have moved them up over there, with its gossip never crossing: that side counts them, this
 * side must too, or both sides can each find a majority (the cluster simulator, seed 96 of
 * `--nodes 7 --faults partition`).
 */
function sides(view: DowningView): { reachable: ClusterMember[]; unreachable: ClusterMember[]; counted: ClusterMember[]; possiblyUp: ClusterMember[] } {
  const live = view.members.filter((m) => m.status !== 'down' && m.status !== 'removed' && m.status !== 'exiting')
  const reachable = live.filter((m) => m.reachability === 'reachable')
  const unreachable = live.filter((m) => m.reachability === 'unreachable')
  const otherLeads = unreachable.some((m) => isActive(m.status))
  const possiblyUp = otherLeads ? unreachable.filter((m) => m.status === 'joining') : []
  return { reachable, unreachable, counted: live.filter((m) => isActive(m.status)), possiblyUp }
}

function uids(ms: readonly ClusterMember[]): string[] {
  return ms.map((m) => m.node.uid)
}

/**
 * The shape every split-brain strategy shares: nothing while all is reachable; otherwise this
 * side stays (and downs the unreachable) if `stays` says so, or downs itself. `counted` are the
 * up and leaving members of both sides, `mine` how many of them are on this side, `possiblyUp`
 * the other side's joining members that may be up over there (see `sides`).
 */
function splitBrain(view: DowningView, stays: (counted: readonly ClusterMember[], mine: number, possiblyUp: readonly ClusterMember[]) => boolean): string[] {
  const { reachable, unreachable, counted, possiblyUp } = sides(view)
  if (unreachable.length === 0) return []
  const mine = counted.filter((m) => m.reachability === 'reachable').length
  return stays(counted, mine, possiblyUp) ? uids(unreachable) : uids(reachable)
}

/**
 * Split-brain resolution: the side with more than half of the up members stays; a tie keeps the
 * side with the lowest address. The other side's joining members count as up there (see `sides`):
 * this side counts itself without its joiners and the other side with them, so two sides never
 * both stay.
 */
export function keepMajority(stableAfter = DEFAULT_STABLE_AFTER): DowningStrategy {
  return {
    name: 'keep-majority',
    stableAfter,
    decide: (view) =>
      splitBrain(view, (counted, mine, possiblyUp) => {
        const all = possiblyUp.length === 0 ? counted : [...counted, ...possiblyUp]
        if (2 * mine !== all.length) return 2 * mine > all.length
        return [...all].sort((a, b) => compareAddress(a.node, b.node))[0]?.reachability === 'reachable'
      }),
  }
}

/** The side with at least `quorum` up members stays; a side below it downs itself (both may, if neither has it). */
export function staticQuorum(quorum: number, stableAfter = DEFAULT_STABLE_AFTER): DowningStrategy {
  if (!Number.isInteger(quorum) || quorum < 1) throw new ConfigError(`static-quorum needs a quorum size ≥ 1, got ${quorum}.`)
  return { name: 'static-quorum', stableAfter, decide: (view) => splitBrain(view, (_, mine) => mine >= quorum) }
}

/** The side with the oldest member (lowest up-number) stays. */
export function keepOldest(stableAfter = DEFAULT_STABLE_AFTER): DowningStrategy {
  return {
    name: 'keep-oldest',
    stableAfter,
    decide: (view) =>
      splitBrain(view, (counted) => [...counted].sort((a, b) => a.upNumber - b.upNumber || compareAddress(a.node, b.node))[0]?.reachability === 'reachable'),
  }
}

/** Downs every member, both sides, when anything is unreachable: safe, and the cluster restarts. */
export function downAll(stableAfter = DEFAULT_STABLE_AFTER): DowningStrategy {
  return {
    name: 'down-all',
    stableAfter,
    decide(view) {
      const { reachable, unreachable } = sides(view)
      return unreachable.length === 0 ? [] : uids([...reachable, ...unreachable])
    },
  }
}

/**
 * Downs a member once it has been unreachable for `downAfter` (the reference system's strategy).
 * No split-brain protection: each side of a partition downs the other.
 */
export function timeoutDowning(downAfter = 5000): DowningStrategy {
  return {
    name: 'timeout',
    stableAfter: 0,
    decide(view) {
      return [...view.unreachableFor].filter(([, ms]) => ms >= downAfter).map(([uid]) => uid)
    },
  }
}

/** Never downs anything automatically: an operator calls `cluster.down(node)`. */
export function noDowning(): DowningStrategy {
  return { name: 'none', stableAfter: 0, decide: () => [] }
}

/** Parses a strategy name as the CLI accepts it: keep-majority, static-quorum:N, keep-oldest, down-all, timeout[:ms], none. */
export function downingFromName(spec: string, stableAfter?: number): DowningStrategy {
  const [name, arg] = spec.split(':')
  switch (name) {
    case 'keep-majority':
      return keepMajority(stableAfter)
    case 'static-quorum':
      return staticQuorum(Number(arg), stableAfter)
    case 'keep-oldest':
      return keepOldest(stableAfter)
    case 'down-all':
      return downAll(stableAfter)
    case 'timeout': {
      const ms = arg === undefined ? (stableAfter ?? 5000) : Number(arg)
      if (!Number.isFinite(ms) || ms < 0) throw new ConfigError(`timeout downing needs a delay in ms ≥ 0 (timeout:5000), got "${arg}".`)
      return timeoutDowning(ms)
    }
    case 'none':
      return noDowning()
    default:
      throw new ConfigError(`Unknown downing strategy "${spec}": use keep-majority, static-quorum:N, keep-oldest, down-all, timeout[:ms] or none.`)
  }
}

/** Members on edges up to which {@link indirectlyConnected} searches exhaustively (2^n subsets). */
const EXACT_UP_TO = 16

/**
 * The members to down so that no direct unreachability is left among the rest: Akka's "indirectly
 * connected" members, chosen minimally rather than all of them. `edges` are observer → subject
 * pairs (see `Reachability.ts`) among members that SWIM still sees alive, so the partition is not
 * clean: some members reach each other only through others.
 *
 * Deterministic, so every leader decides alike. Among the members on some edge, it keeps the
 * largest set with no edge inside it (ties: the set whose members are oldest, compared oldest
 * first) and downs the others: a bridge partition {A,B}×{D,E} with C reaching everyone keeps
 * whichever pair holds the oldest member, and three in all. Up to 16 members on edges it searches
 * every subset; beyond, it removes the member on the most edges (youngest first) until none is left.
 */
export function indirectlyConnected(members: readonly ClusterMember[], edges: ReadonlyArray<readonly [string, string]>): string[] {
  const byUid = new Map(members.map((m) => [m.node.uid, m]))
  const pairs = new Set<string>()
  for (const [a, b] of edges) if (a !== b && byUid.has(a) && byUid.has(b)) pairs.add(a < b ? `${a} ${b}` : `${b} ${a}`)
  if (pairs.size === 0) return []
  const age = (m: ClusterMember): number => (m.upNumber === 0 ? Number.POSITIVE_INFINITY : m.upNumber)
  const oldestFirst = (x: ClusterMember, y: ClusterMember): number => age(x) - age(y) || compareAddress(x.node, y.node)
  const involved = [...new Set([...pairs].flatMap((p) => p.split(' ')))].map((uid) => byUid.get(uid)!).sort(oldestFirst)
  const linked = (a: number, b: number): boolean => {
    const x = involved[a]!.node.uid
    const y = involved[b]!.node.uid
    return pairs.has(x < y ? `${x} ${y}` : `${y} ${x}`)
  }
  if (involved.length > EXACT_UP_TO) return greedyCut(involved, linked)
  // Subsets as bitmasks over `involved` (oldest first): bit i set = keep member i. Among the largest
  // edge-free sets, the one with the lowest index set compared element by element keeps the oldest.
  let best = 0
  let bestSize = -1
  for (let mask = 0; mask < 1 << involved.length; mask++) {
    const size = popcount(mask)
    if (size < bestSize || !edgeFree(mask, involved.length, linked)) continue
    if (size > bestSize || olderSet(mask, best)) {
      best = mask
      bestSize = size
    }
  }
  return involved.filter((_, i) => (best & (1 << i)) === 0).map((m) => m.node.uid)
}

function popcount(mask: number): number {
  let n = 0
  for (let m = mask; m !== 0; m &= m - 1) n++
  return n
}

function edgeFree(mask: number, n: number, linked: (a: number, b: number) => boolean): boolean {
  for (let a = 0; a < n; a++) {
    if ((mask & (1 << a)) === 0) continue
    for (let b = a + 1; b < n; b++) if ((mask & (1 << b)) !== 0 && linked(a, b)) return false
  }
  return true
}

/** Whether set `a` keeps older members than `b` (same size): its lowest differing member is older. */
function olderSet(a: number, b: number): boolean {
  const diff = a ^ b
  if (diff === 0) return false
  const lowest = diff & -diff
  return (a & lowest) !== 0
}

/** Removes the member on the most remaining edges (ties: the youngest) until no edge is left. */
function greedyCut(involved: readonly ClusterMember[], linked: (a: number, b: number) => boolean): string[] {
  const alive = new Set(involved.map((_, i) => i))
  const out: string[] = []
  for (;;) {
    let worst = -1
    let worstDegree = 0
    for (const a of alive) {
      let degree = 0
      for (const b of alive) if (a !== b && linked(a, b)) degree++
      // `involved` is oldest first: on a tie the later (younger) index wins.
      if (degree > 0 && degree >= worstDegree) {
        worst = a
        worstDegree = degree
      }
    }
    if (worst < 0) return out
    alive.delete(worst)
    out.push(involved[worst]!.node.uid)
  }
}

/**
 * What the leader downs for a partition that is not clean: the {@link indirectlyConnected}
 * members, counted as unreachable, and then what `strategy` decides for the rest (if the rest would
 * be downed too, say a minority under keep-majority, everyone goes). Nothing when the strategy
 * would not act (`none`; `timeout` acts on SWIM's unreachability only).
 */
export function resolveIndirect(view: DowningView, edges: ReadonlyArray<readonly [string, string]>, strategy: DowningStrategy): string[] {
  const live = view.members.filter((m) => m.status !== 'down' && m.status !== 'removed')
  const cut = new Set(indirectlyConnected(live, edges))
  if (cut.size === 0) return []
  const members = view.members.map((m): ClusterMember => (cut.has(m.node.uid) ? { ...m, reachability: 'unreachable' } : m))
  const decision = strategy.decide({ ...view, members })
  return decision.length === 0 ? [] : [...new Set([...cut, ...decision])]
}

const NOBODY: ReadonlySet<string> = new Set()

/**
 * Until when this node's side is confirmed: the latest time `t` such that the members whose
 * confirmation (see `Heartbeat.ts`) is no older than `t - window` would, with this node, still stay
 * under `strategy` if every other member were on the other side. `confirmedAt(uid)` is the send time
 * of the newest confirming heartbeat (undefined: none). -Infinity if no set of confirmations does.
 * `otherSide`: members (in `members`) whose confirmations do not count: this node downed them.
 *
 * A host (a singleton instance, a shard) serves only before this time: the downing that starts its
 * successor needs a side that has not confirmed it, so once confirmations stop, the host stops
 * within `window`, which the successor's margin exceeds (docs/singleton.md has the argument).
 */
export function confirmedUntil(
  self: string,
  members: readonly ClusterMember[],
  confirmedAt: (uid: string) => number | undefined,
  strategy: DowningStrategy,
  window: number,
  otherSide: ReadonlySet<string> = NOBODY,
): number {
  // A node downed or removed (or missing from the view) is on no side that stays, whoever answers.
  const me = members.find((m) => m.node.uid === self)
  if (!me || me.status === 'down' || me.status === 'removed') return Number.NEGATIVE_INFINITY
  const others = members
    // Members this node downed count on the other side whatever they answer: a down another member
    // has not seen yet (see `unseenDowns`) left them up over there, not here. Counting the answers
    // of one that had joined this side before the other side downed it let a minority confirm
    // itself (a shard served twice; the cluster simulator, seed 954 of `--gap 5`).
    .filter((m) => m.node.uid !== self && !otherSide.has(m.node.uid))
    .map((m) => ({ m, at: confirmedAt(m.node.uid) }))
    .filter((x): x is { m: ClusterMember; at: number } => x.at !== undefined)
    .sort((a, b) => b.at - a.at)
  const staysWith = (confirmed: ReadonlySet<string>): boolean => {
    const view = members.map((m): ClusterMember => ({ ...m, reachability: m.node.uid === self || confirmed.has(m.node.uid) ? 'reachable' : 'unreachable' }))
    return !strategy.decide({ self, members: view, stableFor: Number.POSITIVE_INFINITY, unreachableFor: new Map() }).includes(self)
  }
  const confirmed = new Set<string>()
  if (staysWith(confirmed)) return Number.POSITIVE_INFINITY
  for (const { m, at } of others) {
    confirmed.add(m.node.uid)
    if (staysWith(confirmed)) return at + window
  }
  return Number.NEGATIVE_INFINITY
}
