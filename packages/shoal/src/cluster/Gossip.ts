/**
 * Membership gossip as pure functions: the replicated state (members, a version vector, the set of
 * nodes that have seen this version), merging two states, convergence, the leader and the
 * leader's actions. No I/O, no clock: the `Cluster` shell feeds these and sends the results.
 *
 * Convergence (Akka's rule): every member that is still present (not down or removed) and
 * reachable from here has seen the current version. The leader acts only on convergence, so
 * every live member agrees on what it is acting on.
 * @module
 */
import { compareAddress, isActive, isPresent, laterStatus, type Member, type MembershipStatus, STATUS_RANK } from './Member.ts'
import { compareVersions, incrementVersion, mergeVersions, type VersionVector } from './VersionVector.ts'

/** The replicated membership state. */
export interface GossipState {
  /** By node uid. */
  readonly members: ReadonlyMap<string, Member>
  readonly version: VersionVector
  /** Uids of members that have seen exactly this version. */
  readonly seen: ReadonlySet<string>
}

/** A state with no members, version zero. */
export function emptyGossip(): GossipState {
  return { members: new Map(), version: new Map(), seen: new Set() }
}

/** A change made by `self`: a new version, seen only by `self`. */
export function withMembers(g: GossipState, self: string, members: ReadonlyMap<string, Member>): GossipState {
  return { members, version: incrementVersion(g.version, self), seen: new Set([self]) }
}

/** Sets one member (forward-only: a status never moves back) as a change by `self`. */
export function updateMember(g: GossipState, self: string, m: Member): GossipState {
  const current = g.members.get(m.node.uid)
  const merged = current ? mergeMember(current, m) : m
  if (current && sameMember(current, merged)) return g
  const members = new Map(g.members)
  members.set(m.node.uid, merged)
  return withMembers(g, self, members)
}

/** The later of two records of one member. */
export function mergeMember(a: Member, b: Member): Member {
  const status = laterStatus(a.status, b.status)
  const upNumber = a.upNumber === 0 ? b.upNumber : b.upNumber === 0 ? a.upNumber : Math.min(a.upNumber, b.upNumber)
  const roles = a.roles.length >= b.roles.length ? a.roles : b.roles
  if (status === a.status && upNumber === a.upNumber && roles === a.roles) return a
  return { node: a.node, status, upNumber, roles }
}

function sameMember(a: Member, b: Member): boolean {
  return a.status === b.status && a.upNumber === b.upNumber && a.roles.length === b.roles.length
}

/**
 * Merges gossip received from another node into ours, as seen by `self`. `forgotten(uid)` says
 * a member was removed and forgotten here: stale gossip must not bring it back.
 */
export function mergeGossip(local: GossipState, remote: GossipState, self: string, forgotten: (uid: string) => boolean): GossipState {
  const remoteVersion = withoutForgotten(remote.version, forgotten)
  const localVersion = withoutForgotten(local.version, forgotten)
  switch (compareVersions(localVersion, remoteVersion)) {
    case 'same': {
      const seen = union(local.seen, remote.seen, self)
      // Nothing new: keep the same object, so the shell sees no change and pushes nothing.
      return seen.size === local.seen.size && localVersion === local.version ? local : { members: local.members, version: localVersion, seen }
    }
    case 'before':
      return { members: withoutForgotten(remote.members, forgotten), version: remoteVersion, seen: union(remote.seen, undefined, self) }
    case 'after':
      return local.seen.has(self) ? local : { ...local, seen: union(local.seen, undefined, self) }
    case 'concurrent': {
      const members = new Map(local.members)
      for (const [uid, m] of remote.members) {
        if (forgotten(uid)) continue
        const mine = members.get(uid)
        members.set(uid, mine ? mergeMember(mine, m) : m)
      }
      return { members, version: mergeVersions(localVersion, remoteVersion), seen: new Set([self]) }
    }
  }
}

/** `map` without the forgotten keys; the same object when there are none (identity means "unchanged"). */
function withoutForgotten<V>(map: ReadonlyMap<string, V>, forgotten: (uid: string) => boolean): ReadonlyMap<string, V> {
  let any = false
  for (const k of map.keys()) if (forgotten(k)) any = true
  if (!any) return map
  const out = new Map(map)
  for (const k of map.keys()) if (forgotten(k)) out.delete(k)
  return out
}

function union(a: ReadonlySet<string>, b: ReadonlySet<string> | undefined, self: string): Set<string> {
  const out = new Set(a)
  if (b) for (const x of b) out.add(x)
  out.add(self)
  return out
}

/** Every present, reachable member has seen this version. */
export function isConverged(g: GossipState, reachable: (uid: string) => boolean): boolean {
  for (const [uid, m] of g.members) {
    if (!isPresent(m.status) || !reachable(uid)) continue
    if (!g.seen.has(uid)) return false
  }
  return true
}

/**
 * The leader: the lowest-address reachable member that is up or leaving; while none is (a cluster
 * forming), the lowest-address reachable joining member; while none is either (everyone leaving at
 * once), the lowest-address exiting member.
 */
export function leaderOf(g: GossipState, reachable: (uid: string) => boolean): Member | undefined {
  let best: Member | undefined
  let bestJoining: Member | undefined
  let bestExiting: Member | undefined
  const lower = (m: Member, than: Member | undefined): boolean => !than || compareAddress(m.node, than.node) < 0
  for (const m of g.members.values()) {
    if (!reachable(m.node.uid)) continue
    if (m.status === 'up' || m.status === 'leaving') {
      if (lower(m, best)) best = m
    } else if (m.status === 'joining') {
      if (lower(m, bestJoining)) bestJoining = m
    } else if (m.status === 'exiting' && lower(m, bestExiting)) {
      bestExiting = m
    }
  }
  // Everyone leaving at once (a whole cluster stopped): an exiting member leads, to remove them all.
  return best ?? bestJoining ?? bestExiting
}

/** What the leader actions need besides the state. */
export interface LeaderActionsInput {
  readonly self: string
  readonly minMembers: number
  readonly reachable: (uid: string) => boolean
  /**
   * Whether this node has heard from member `uid` lately (default: always). Nobody moves up while
   * an up member is not: a leader that wakes from a pause sees everyone alive in SWIM's stale view
   * for a moment, and must not grow its side from it.
   */
  readonly heardLately?: (uid: string) => boolean
}

/** What the leader did: the new state (unchanged if nothing) and the members it removed. */
export interface LeaderActionsResult {
  readonly gossip: GossipState
  readonly removed: readonly Member[]
}

/**
 * The leader's actions, taken only on convergence and only by the leader: joining → up (assigning
 * up-numbers in address order) once there are `minMembers`; exiting and down → removed.
 */
export function leaderActions(g: GossipState, o: LeaderActionsInput): LeaderActionsResult {
  const leader = leaderOf(g, o.reachable)
  if (!leader || leader.node.uid !== o.self || !isConverged(g, o.reachable)) return { gossip: g, removed: [] }
  const members = new Map(g.members)
  const removed: Member[] = []
  let changed = false
  const present = [...g.members.values()].filter((m) => m.status === 'joining' || m.status === 'up' || m.status === 'leaving')
  // Nobody moves up while a present member is unreachable (Akka's rule): in a partition, a side
  // must not grow its quorum with newcomers the other side cannot count.
  // (A leader woken from a pause, whose side the others had downed meanwhile, moved a joiner up at
  // once on SWIM's stale view and won a tie it had lost: the cluster simulator, seed 729 of --gap 5.)
  const heard = o.heardLately ?? (() => true)
  const allReachable = [...g.members.values()].every(
    (m) => !isPresent(m.status) || (o.reachable(m.node.uid) && (m.status === 'joining' || m.node.uid === o.self || heard(m.node.uid))),
  )
  if (present.length >= o.minMembers && allReachable) {
    let next = Math.max(0, ...[...g.members.values()].map((m) => m.upNumber)) + 1
    const joining = present.filter((m) => m.status === 'joining' && o.reachable(m.node.uid)).sort((a, b) => compareAddress(a.node, b.node))
    for (const m of joining) {
      members.set(m.node.uid, { ...m, status: 'up', upNumber: next++ })
      changed = true
    }
  }
  // A down member is removed only once every present member has seen the state, reachable or not
  // (Akka's rule): a member the downing decision counted on this side, cut off since, must have
  // learned of the down before the removal starts the successors' margin, or it may go on
  // confirming the downed member for a confirmation window after they open (a shard served twice:
  // the cluster simulator, seed 250 of --gap 5 --faults partition). Until then it is reachable
  // again, or downed too. An exiting member handed over before it exited: it goes on convergence.
  const everyoneSaw = isConverged(g, () => true)
  for (const m of g.members.values()) {
    if (m.status === 'exiting' || (m.status === 'down' && everyoneSaw)) {
      members.set(m.node.uid, { ...m, status: 'removed' })
      removed.push(m)
      changed = true
    }
  }
  return changed ? { gossip: withMembers(g, o.self, members), removed } : { gossip: g, removed: [] }
}

/** Members whose status differs between two states (for events). */
export function statusChanges(before: GossipState, after: GossipState): { member: Member; previous: MembershipStatus | undefined }[] {
  const out: { member: Member; previous: MembershipStatus | undefined }[] = []
  for (const [uid, m] of after.members) {
    const old = before.members.get(uid)
    if (!old || STATUS_RANK[old.status] !== STATUS_RANK[m.status]) out.push({ member: m, previous: old?.status })
  }
  return out
}

/** Whether `g` has an active member (not `skip`ped) that `other` does not know at all. */
function hasActiveUnknownTo(g: GossipState, other: GossipState, skip: (uid: string) => boolean): boolean {
  for (const [uid, m] of g.members) if (isActive(m.status) && !other.members.has(uid) && !skip(uid)) return true
  return false
}

/** Which of two clusters formed apart stays, when their gossip meets (see {@link clusterMeeting}). */
export type ClusterMeeting = 'one-cluster' | 'local-stays' | 'remote-stays'

/**
 * Whether `remote` comes from a cluster formed apart from ours, and if so which one stays. Within
 * one cluster a member becomes up only through a leader that reaches every present member, so two
 * views of one cluster never each hold an up member the other never knew; two clusters formed
 * apart (a node that restarted while its seeds were cut off forms one alone) do. Merging them
 * would let a side count members the other side never counted: during a partition of another
 * shape, both sides can then find a majority and down each other (a split brain the cluster
 * simulator found). Instead the smaller cluster yields: its members leave it and join afresh (a
 * tie keeps the cluster whose lowest up member has the lowest address). `forgotten(uid)`: members
 * removed and forgotten here, which are not news.
 */
export function clusterMeeting(local: GossipState, remote: GossipState, forgotten: (uid: string) => boolean): ClusterMeeting {
  // The common case first, without copies (this runs for every gossip received): one view holds
  // every active member of the other.
  if (!hasActiveUnknownTo(local, remote, () => false) || !hasActiveUnknownTo(remote, local, forgotten)) return 'one-cluster'
  const active = (g: GossipState): Member[] => [...g.members.values()].filter((m) => isActive(m.status))
  const mine = active(local)
  const theirs = active(remote).filter((m) => !forgotten(m.node.uid))
  if (mine.length !== theirs.length) return mine.length > theirs.length ? 'local-stays' : 'remote-stays'
  const lowest = (ms: Member[]): Member => ms.reduce((a, b) => (compareAddress(a.node, b.node) <= 0 ? a : b))
  return compareAddress(lowest(mine).node, lowest(theirs).node) <= 0 ? 'local-stays' : 'remote-stays'
}
