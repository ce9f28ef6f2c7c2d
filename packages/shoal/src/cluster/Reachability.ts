/**
 * Per-observer reachability (Akka's reachability table with `observedBy`): each node publishes
 * the members it cannot reach *directly* (its heartbeats to them stalled, see `Heartbeat.ts`), and
 * every node keeps the latest record of every observer. Pure: no I/O, no clock.
 *
 * SWIM alone cannot see a bridge partition: with {A,B}×{D,E} cut and C reaching everyone, C's
 * indirect probes answer for everyone, so nobody is ever suspected. The table shows it: A and B
 * observe D and E, and D and E observe A and B. The leader then resolves the indirectly connected
 * members with `indirectlyConnected` (Downing.ts).
 *
 * Records travel epidemically (a node that learns a newer record passes the table on), because an
 * observer's own links to the leader may be the ones that are cut. A record is newer if its `seq`
 * is higher; an observer restarted is a new uid, so sequences never go back.
 * @module
 */

/** One observer's direct observations. */
export interface Observation {
  /** Grows with every change of `unreachable`. */
  readonly seq: number
  /** Uids of the members this observer's heartbeats find stalled, sorted. */
  readonly unreachable: readonly string[]
}

/** Observer uid → its latest observation. */
export type ObservationTable = ReadonlyMap<string, Observation>

/** The table with `self`'s own record set to `unreachable` (a new seq only if it changed). */
export function observe(table: ObservationTable, self: string, unreachable: readonly string[]): ObservationTable {
  const sorted = [...new Set(unreachable)].sort()
  const mine = table.get(self)
  if (mine && sameList(mine.unreachable, sorted)) return table
  if (!mine && sorted.length === 0) return table
  const out = new Map(table)
  out.set(self, { seq: (mine?.seq ?? 0) + 1, unreachable: sorted })
  return out
}

/**
 * Merges a received table into ours: per observer, the higher seq wins. `keep(uid)` drops observers
 * that are not present members here (down, removed, unknown). `self`'s own record is never taken
 * from others. The same object comes back when nothing changed.
 */
export function mergeObservations(local: ObservationTable, remote: ObservationTable, self: string, keep: (uid: string) => boolean): ObservationTable {
  let out: Map<string, Observation> | undefined
  for (const [observer, o] of remote) {
    if (observer === self || !keep(observer)) continue
    const mine = local.get(observer)
    if (mine && mine.seq >= o.seq) continue
    out ??= new Map(local)
    out.set(observer, o)
  }
  return out ?? local
}

/** The table without observers `keep` rejects; the same object if none. */
export function pruneObservations(table: ObservationTable, keep: (uid: string) => boolean): ObservationTable {
  if ([...table.keys()].every(keep)) return table
  return new Map([...table].filter(([uid]) => keep(uid)))
}

/** Observer → subject pairs where both are among `among` (e.g. present and reachable by SWIM), sorted. */
export function unreachabilityEdges(table: ObservationTable, among: (uid: string) => boolean): Array<readonly [observer: string, subject: string]> {
  const out: Array<readonly [string, string]> = []
  for (const [observer, o] of table) {
    if (!among(observer)) continue
    for (const subject of o.unreachable) if (subject !== observer && among(subject)) out.push([observer, subject])
  }
  return out.sort((a, b) => (a[0] + a[1] < b[0] + b[1] ? -1 : a[0] + a[1] > b[0] + b[1] ? 1 : 0))
}

/** Observers that find `subject` unreachable. */
export function observersOf(table: ObservationTable, subject: string): string[] {
  return [...table].filter(([, o]) => o.unreachable.includes(subject)).map(([observer]) => observer)
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
