/**
 * Where virtual actors live: ids hash to a fixed number of shards, and a versioned table says which
 * node owns each shard. Pure: no I/O, no clock. One decider (the cluster leader) computes each new
 * table from the previous one and the members that may host; every node keeps the latest version,
 * so a call goes straight to the owner with no directory lookup.
 *
 * The table is balanced to within one shard per node (weights aside) and moves as little as
 * possible: a shard keeps its owner while that owner is still a candidate and not above its quota;
 * only shards of departed or over-full nodes move, to the under-full nodes that rank them highest by
 * rendezvous hashing (so the same inputs give the same table on any node).
 * @module
 */

/** Shards per cluster by default (fixed per cluster: every node must use the same number). */
export const DEFAULT_SHARDS = 1024

/** FNV-1a, 32 bits, over the UTF-16 code units of `s`: fast, and the same on every node. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  // Final avalanche (from murmur3's fmix32): FNV alone leaves the low bits weak for `% shards`.
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The shard of virtual actor `id` of `type`. */
export function shardOf(type: string, id: string, shards = DEFAULT_SHARDS): number {
  return hash32(`${type}\u0000${id}`) % shards
}

/** A node that may own shards. */
export interface ShardCandidate {
  readonly uid: string
  /** Relative capacity (default 1): a node of weight 2 gets about twice the shards. */
  readonly weight?: number
}

/** Which node owns which shard, at one version. */
export interface ShardTable {
  /** Grows with every change; a node acts on a table only if it is newer than the one it has. */
  readonly version: number
  /**
   * The decider that made it (a node uid; '' for the empty table). Two deciders at once (a leader
   * change during a partition) may both make version v: (version, by) names one table, and orders
   * them (a higher `by` wins a tie).
   */
  readonly by: string
  /** Owner uid by shard; `undefined` while no candidate exists. */
  readonly owners: readonly (string | undefined)[]
}

/** Names one table: its version and decider. */
export interface TableKey {
  readonly version: number
  readonly by: string
}

/** True if table key `a` comes after `b`. */
export function isNewer(a: TableKey, b: TableKey): boolean {
  return a.version > b.version || (a.version === b.version && a.by > b.by)
}

/** True if `a` and `b` name the same table. */
export function sameTable(a: TableKey, b: TableKey | undefined): boolean {
  return b !== undefined && a.version === b.version && a.by === b.by
}

/** The empty table of `shards` shards (version 0, no owners). */
export function emptyTable(shards = DEFAULT_SHARDS): ShardTable {
  if (!Number.isInteger(shards) || shards < 1 || shards > 65_536) throw new RangeError(`shards must be a whole number 1..65536, got ${shards}`)
  return { version: 0, by: '', owners: new Array<string | undefined>(shards).fill(undefined) }
}

/** Rendezvous score of `shard` on `uid`: the candidate with the highest score is preferred. */
function score(shard: number, uid: string): number {
  return hash32(uid, 0x9e3779b9 ^ Math.imul(shard + 1, 0x85ebca6b))
}

/** A shard its owner may keep, with the owner's rendezvous score for it. */
interface Kept {
  readonly uid: string
  readonly shard: number
  readonly score: number
}

/** How many shards each candidate should own: proportional to weight, largest remainders first, ties by uid. */
export function quotas(shards: number, candidates: readonly ShardCandidate[]): Map<string, number> {
  const total = candidates.reduce((n, c) => n + weightOf(c), 0)
  const exact = candidates.map((c) => ({ uid: c.uid, share: (shards * weightOf(c)) / total }))
  const out = new Map(exact.map((e) => [e.uid, Math.floor(e.share)]))
  let left = shards - [...out.values()].reduce((a, b) => a + b, 0)
  const byRemainder = [...exact].sort((a, b) => b.share - Math.floor(b.share) - (a.share - Math.floor(a.share)) || (a.uid < b.uid ? -1 : 1))
  for (const e of byRemainder) {
    if (left === 0) break
    out.set(e.uid, out.get(e.uid)! + 1)
    left--
  }
  return out
}

function weightOf(c: ShardCandidate): number {
  const w = c.weight ?? 1
  if (!(w > 0) || !Number.isFinite(w)) throw new RangeError(`a shard candidate's weight must be a positive number, got ${w}`)
  return w
}

/**
 * The next table, made by decider `by`: `previous` adjusted to `candidates` with minimal movement
 * (see the module comment). The same object if nothing changes; otherwise version + 1. With no
 * candidates, every shard is unowned.
 *
 * `maxMoves` caps the shards taken from a live owner for balance in this one table (a join's
 * moves, in rounds: Akka's rebalance limit); shards with no live owner (it left, crashed) are always
 * placed at once. Over-full owners keep their surplus beyond the cap until a later table. Default:
 * no cap.
 *
 * `stays(owner)`: the shards of an owner that is no longer a candidate stay with it in this table
 * while this says true (a crashed owner that may still be serving, until its margin has passed:
 * see `ShardOwnership.mayStillServe`). Default: none stay.
 */
export function nextTable(
  previous: ShardTable,
  candidates: readonly ShardCandidate[],
  by = '',
  maxMoves = Number.POSITIVE_INFINITY,
  stays?: (owner: string) => boolean,
): ShardTable {
  const shards = previous.owners.length
  const owners: (string | undefined)[] = new Array(shards).fill(undefined)
  if (stays) {
    const isCandidate = new Set(candidates.map((c) => c.uid))
    const staying = new Map<string, boolean>()
    previous.owners.forEach((uid, shard) => {
      if (uid === undefined || isCandidate.has(uid)) return
      let stay = staying.get(uid)
      if (stay === undefined) staying.set(uid, (stay = stays(uid)))
      if (stay) owners[shard] = uid
    })
  }
  if (candidates.length === 0) {
    if (previous.owners.every((o, i) => o === owners[i])) return previous
    return { version: previous.version + 1, by, owners }
  }
  const quota = quotas(shards, candidates)
  const owned = new Map<string, number>([...quota.keys()].map((uid) => [uid, 0]))
  // Keep: a shard stays with its owner while the owner is a candidate with room. Where an owner is
  // over quota, it keeps the shards it ranks highest (the others are the ones that would go first anyway).
  // Each score computed once (a comparator that hashed would hash ~20 times per shard).
  const keepOrder: Kept[] = []
  previous.owners.forEach((uid, shard) => {
    if (uid !== undefined && quota.has(uid)) keepOrder.push({ uid, shard, score: score(shard, uid) })
  })
  keepOrder.sort((a, b) => b.score - a.score)
  const surplus: Kept[] = []
  for (const x of keepOrder) {
    if (owned.get(x.uid)! >= quota.get(x.uid)!) {
      surplus.push(x)
      continue
    }
    owners[x.shard] = x.uid
    owned.set(x.uid, owned.get(x.uid)! + 1)
  }
  // Past the cap, surplus shards stay put (lowest-ranked move first: they are last in keepOrder).
  for (const x of surplus.slice(0, Math.max(0, surplus.length - maxMoves))) {
    owners[x.shard] = x.uid
    owned.set(x.uid, owned.get(x.uid)! + 1)
  }
  // Place the rest on the under-full candidate that ranks each shard highest.
  const uids = [...quota.keys()].sort()
  for (let shard = 0; shard < shards; shard++) {
    if (owners[shard] !== undefined) continue
    let best: string | undefined
    let bestScore = -1
    for (const uid of uids) {
      if (owned.get(uid)! >= quota.get(uid)!) continue
      const s = score(shard, uid)
      if (s > bestScore) {
        best = uid
        bestScore = s
      }
    }
    owners[shard] = best!
    owned.set(best!, owned.get(best!)! + 1)
  }
  const same = owners.every((o, i) => o === previous.owners[i])
  return same ? previous : { version: previous.version + 1, by, owners }
}

/** Shards whose owner differs between two tables of the same size. */
export function movedShards(from: ShardTable, to: ShardTable): number[] {
  if (from.owners.length !== to.owners.length) throw new RangeError(`tables of ${from.owners.length} and ${to.owners.length} shards cannot be compared`)
  const out: number[] = []
  for (let i = 0; i < to.owners.length; i++) if (from.owners[i] !== to.owners[i]) out.push(i)
  return out
}

/** Shards owned by `uid`. */
export function shardsOf(table: ShardTable, uid: string): number[] {
  const out: number[] = []
  for (let i = 0; i < table.owners.length; i++) if (table.owners[i] === uid) out.push(i)
  return out
}
