/**
 * The virtual actors' placement decisions around the hand-over machine ({@link ShardOwnership}):
 * which members a placement group must wait for, what table the decider makes next, and whether
 * this node's side is confirmed so that it may serve (`cluster/ServingConfirmation.ts`, shared with
 * the singleton). Pure: members, tables and the time come in,
 * answers go out; the plugin (and the cluster simulator) apply them.
 * @module
 */
import type { ClusterMember } from '../cluster/Member.ts'
import type { GroupMember, ShardOwnership } from './ShardOwnership.ts'
import { emptyTable, nextTable, type ShardTable } from './ShardTable.ts'

/**
 * How long after a member's removal its shards may open elsewhere, ms: stableAfter (at least 2 s)
 * plus 2 s, so a partitioned owner has stopped serving (its confirmations lapse at 0.8 of it).
 */
export function defaultShardMargin(stableAfter: number): number {
  return Math.max(2000, stableAfter) + 2000
}

/**
 * How long a decider leaves another decider's table alone after adopting it, ms. For a moment after
 * a partition heals two members may each believe they lead; each answered the other's table at
 * once with one of its own, and the two traded tables at network speed until their views agreed
 * (213 tables in 0.5 s, each sealing and opening shards: the cluster simulator, seed 299 of
 * `--gap 5 --faults partition`). One tick is enough for leadership to settle.
 */
export const FOREIGN_TABLE_HOLDOFF = 250

/** Shards moved for balance per round by default: a tenth of them, at least one. */
export function defaultMaxMoves(shards: number): number {
  return Math.max(1, Math.ceil(shards / 10))
}

/**
 * How long a host that has just come up waits to hear from every other member before it may be
 * given shards anyway, ms (a member it never hears from: one without the plugin, or cut off).
 */
export const LINK_WAIT = 1000

/**
 * Whether a host may be given shards yet: once it has heard from every other present member of the
 * placement groups it hosts for (each sends its hosted types to a member it sees for the first
 * time), or {@link LINK_WAIT} after it first saw itself up. Why: a shard opens on its new owner
 * only when the old owner's release reaches it, and until the two have a connection that release
 * waits for a dial and a handshake (some 200 ms of a 4-node bench under load: the sealed shard's
 * calls wait with it). A decider gives shards only to ready hosts, so old owners seal once their
 * releases can travel at once.
 *
 * `others`: the uids of those members; `heardFrom`: whether this node has heard from one;
 * `upSince`: when this node first saw itself up (undefined: not yet); `now`, same clock.
 */
export function readyToHost(
  others: readonly string[],
  heardFrom: (uid: string) => boolean,
  upSince: number | undefined,
  now: number,
  wait = LINK_WAIT,
): boolean {
  if (upSince === undefined) return false
  return now - upSince >= wait || others.every(heardFrom)
}

/** Whether the removed member `uid`'s owner lease is known expired (with a lease store). */
export type LeaseExpired = (uid: string) => boolean

/**
 * The members that must release a table before anyone opens a shard of `role`: every member with
 * the role (every member, for types without one), whatever it announced, until it is removed. A
 * member downed but not yet removed still counts: its side may be serving until it learns. With
 * leases (`leaseExpired` given), a removed member counts until its lease is known expired, even
 * once the cluster forgot it (`pending`: such members, kept by the caller; this adds to it).
 */
export function placementGroup(
  members: readonly ClusterMember[],
  role: string | undefined,
  self: string,
  leaseExpired?: LeaseExpired,
  pending?: Set<string>,
): GroupMember[] {
  const out: GroupMember[] = []
  for (const m of members) {
    if (role !== undefined && !m.roles.includes(role)) continue
    const uid = m.node.uid
    const waitLease = leaseExpired !== undefined && m.status === 'removed' && uid !== self && !leaseExpired(uid)
    if (waitLease) pending?.add(uid)
    out.push({ uid, present: m.status !== 'removed' || waitLease })
  }
  if (pending) for (const uid of pending) if (!out.some((m) => m.uid === uid)) out.push({ uid, present: true })
  return out
}

/**
 * The decider's side of one placement group: the next table from the current one and the up
 * hosts. Moves for balance go in rounds of at most `maxMoves`, each once the last is over (the
 * group is settled); a departed owner's shards are placed at once whatever the cap. Remembers what
 * it last found nothing new for, so that a tick with the same table and hosts costs nothing.
 */
export class TableDecider {
  readonly #shards: number
  readonly #maxMoves: number
  #last: { table: ShardTable | undefined; hosts: string; cap: number } | undefined

  constructor(shards: number, maxMoves: number) {
    this.#shards = shards
    this.#maxMoves = maxMoves
  }

  /**
   * The table decider `self` makes next for the up `hosts` (uids) at `now`, or undefined when
   * nothing changes. The shards of an owner that is `downed` (marked down, not yet removed) or
   * gone but may still be serving (`ownership.mayStillServe`) stay with it until its margin has
   * passed: whoever gets them next then opens them at once, a node that joined after the owner's
   * removal included. (A leaving owner's shards move at once: it hands them over.) A table another
   * decider made is left alone for {@link FOREIGN_TABLE_HOLDOFF} after it was adopted.
   */
  next(ownership: ShardOwnership, hosts: readonly string[], self: string, now: number, downed: ReadonlySet<string> = NONE): ShardTable | undefined {
    const have = ownership.table
    if (have && have.by !== self && now - ownership.adoptedAt < FOREIGN_TABLE_HOLDOFF) return undefined
    const cap = ownership.settled() ? this.#maxMoves : 0
    const stay = new Set<string>()
    if (have) for (const uid of ownersOf(have)) if (!hosts.includes(uid) && (downed.has(uid) || ownership.mayStillServe(uid, now))) stay.add(uid)
    const key = `${hosts.join(',')}|${[...stay].join(',')}`
    const last = this.#last
    if (last && last.table === have && last.hosts === key && last.cap === cap) return undefined
    const current = have ?? emptyTable(this.#shards)
    const next = nextTable(
      current,
      hosts.map((uid) => ({ uid })),
      self,
      cap,
      (uid) => stay.has(uid),
    )
    if (next === current) this.#last = { table: have, hosts: key, cap }
    // Nothing to decide (no host up yet: an empty table of version 0, which no node accepts) or nothing new.
    if (next.version === 0 || (next === current && have)) return undefined
    return next
  }
}

const NONE: ReadonlySet<string> = new Set()

/** Each table's distinct owners, in first-shard order: the decider asks every tick, and tables never change. */
const owners = new WeakMap<ShardTable, readonly string[]>()

function ownersOf(table: ShardTable): readonly string[] {
  let list = owners.get(table)
  if (!list) {
    const distinct = new Set<string>()
    for (const uid of table.owners) if (uid !== undefined) distinct.add(uid)
    owners.set(table, (list = [...distinct]))
  }
  return list
}

/** Activations (or anything with a shard) by shard: what sealing a set of shards deactivates. */
export function byShard<T extends { readonly shard: number }>(items: Iterable<T>): Map<number, T[]> {
  const out = new Map<number, T[]>()
  for (const x of items) {
    const list = out.get(x.shard)
    if (list) list.push(x)
    else out.set(x.shard, [x])
  }
  return out
}
