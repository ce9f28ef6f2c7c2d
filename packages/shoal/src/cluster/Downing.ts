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

/** Both sides of the view: reachable and unreachable members that count (up or leaving, plus joining ones on the losing side). */
function sides(view: DowningView): { reachable: ClusterMember[]; unreachable: ClusterMember[]; counted: ClusterMember[] } {
  const live = view.members.filter((m) => m.status !== 'down' && m.status !== 'removed' && m.status !== 'exiting')
  const reachable = live.filter((m) => m.reachability === 'reachable')
  const unreachable = live.filter((m) => m.reachability === 'unreachable')
  return { reachable, unreachable, counted: live.filter((m) => isActive(m.status)) }
}

function uids(ms: readonly ClusterMember[]): string[] {
  return ms.map((m) => m.node.uid)
}

/**
 * The shape every split-brain strategy shares: nothing while all is reachable; otherwise this
 * side stays (and downs the unreachable) if `stays` says so, or downs itself. `counted` are the
 * up and leaving members of both sides, `mine` how many of them are on this side.
 */
function splitBrain(view: DowningView, stays: (counted: readonly ClusterMember[], mine: number) => boolean): string[] {
  const { reachable, unreachable, counted } = sides(view)
  if (unreachable.length === 0) return []
  const mine = counted.filter((m) => m.reachability === 'reachable').length
  return stays(counted, mine) ? uids(unreachable) : uids(reachable)
}

/** Split-brain resolution: the side with more than half of the up members stays; a tie keeps the side with the lowest address. */
export function keepMajority(stableAfter = DEFAULT_STABLE_AFTER): DowningStrategy {
  return {
    name: 'keep-majority',
    stableAfter,
    decide: (view) =>
      splitBrain(view, (counted, mine) => {
        if (2 * mine !== counted.length) return 2 * mine > counted.length
        return [...counted].sort((a, b) => compareAddress(a.node, b.node))[0]?.reachability === 'reachable'
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
