/**
 * ReachabilityHistory: what one node remembers about its members over time, on the cluster's one
 * monotonic clock, with no timers: since when each member has been unreachable from here, which
 * leaving members SWIM no longer sees (absent, not unreachable), when the view last changed (the
 * start of "stable for"), and removed members until they are forgotten, then for a day so that
 * stale gossip cannot bring them back. The cluster shell feeds it events with their time and acts
 * on what it answers; the deterministic simulator does the same.
 * @module
 */

/** A removed member is forgotten (dropped from gossip) this long after it was removed, ms. */
export const FORGET_REMOVED_AFTER = 60_000
/** A forgotten member's gossip is ignored for this long, ms. */
export const FORGOTTEN_TTL = 24 * 3600_000

/** What a reachability report changed. */
export type ReachabilityChange = 'none' | 'reachability' | 'presence'

export class ReachabilityHistory {
  readonly #unreachableSince = new Map<string, number>()
  /** Members that left SWIM while leaving, exiting or down: absent, but never "unreachable". */
  readonly #gone = new Set<string>()
  readonly #removedAt = new Map<string, number>()
  readonly #forgotten = new Map<string, number>()
  #viewChangedAt: number

  constructor(now: number) {
    this.#viewChangedAt = now
  }

  /** Since when each unreachable member has been unreachable. */
  get unreachableSince(): ReadonlyMap<string, number> {
    return this.#unreachableSince
  }

  /** When the view (a reachability or a status) last changed. */
  get viewChangedAt(): number {
    return this.#viewChangedAt
  }

  /**
   * SWIM finds `uid` reachable or not at `now`. For a member that is leaving or further on its
   * way out (`leaving`), absence is not unreachability: it is noted as gone (`presence`). Otherwise a
   * change of reachability restarts the view's stability (`reachability`).
   */
  report(uid: string, reachable: boolean, leaving: boolean, now: number): ReachabilityChange {
    if (leaving) {
      if (reachable) this.#gone.delete(uid)
      else this.#gone.add(uid)
      this.#unreachableSince.delete(uid)
      return 'presence'
    }
    if (this.#unreachableSince.has(uid) === !reachable) return 'none'
    if (reachable) this.#unreachableSince.delete(uid)
    else this.#unreachableSince.set(uid, now)
    this.#viewChangedAt = now
    return 'reachability'
  }

  /** Some member's status changed at `now`: the view is new. */
  statusChanged(now: number): void {
    this.#viewChangedAt = now
  }

  /** `uid` was removed at `now`: it will be forgotten `FORGET_REMOVED_AFTER` later. */
  removed(uid: string, now: number): void {
    this.#removedAt.set(uid, now)
  }

  /** Not unreachable and not gone, as far as this history knows (SWIM must also know the member). */
  notCutOff(uid: string): boolean {
    return !this.#unreachableSince.has(uid) && !this.#gone.has(uid)
  }

  isUnreachable(uid: string): boolean {
    return this.#unreachableSince.has(uid)
  }

  isForgotten(uid: string): boolean {
    return this.#forgotten.has(uid)
  }

  /**
   * Time passes: returns the removed members to forget now (the shell drops them from gossip; every
   * node forgets on its own clock), and stops ignoring those forgotten a day ago.
   */
  forgetDue(now: number): string[] {
    const forget: string[] = []
    for (const [uid, at] of this.#removedAt) {
      if (now - at < FORGET_REMOVED_AFTER) continue
      this.#removedAt.delete(uid)
      this.#forgotten.set(uid, now)
      this.#unreachableSince.delete(uid)
      this.#gone.delete(uid)
      forget.push(uid)
    }
    for (const [uid, at] of this.#forgotten) if (now - at > FORGOTTEN_TTL) this.#forgotten.delete(uid)
    return forget
  }
}

/**
 * Whether a node that has somewhere to join (seeds, clusterd or discovery) and is not in a cluster
 * yet should wait before the leader actions make it (and whoever joins it) up. Only the node with
 * the lowest address among those its sources list (`mayFormAlone`) ever forms a new cluster, and
 * only once it has met every other listed endpoint (`unmet`: those not yet in its view), none of
 * them in a cluster (else it would be joining theirs); with no other endpoint listed, alone after
 * `selfJoinAfter` ms, or at once if every discovery provider answered and listed no one else. The
 * others wait to reach a member of a cluster. This is Akka's first-seed rule made strict as its
 * Cluster Bootstrap makes it: a node that restarts while cut off from the rest of its cluster,
 * even the lowest, never forms a cluster apart (alone, or with others cut off with it).
 */
export function waitingForOthers(o: {
  readonly hasProviders: boolean
  readonly foundNoOne: boolean
  /** No other node in this node's view. */
  readonly alone: boolean
  /** No cluster yet: no member this node knows of, itself included, is up, leaving or exiting. Default: `alone`. */
  readonly unformed?: boolean
  /** Other endpoints its sources list that this node has not met yet. Default 0. */
  readonly unmet?: number
  readonly startedAt: number
  readonly now: number
  readonly selfJoinAfter: number
  readonly mayFormAlone?: boolean
}): boolean {
  if (!o.hasProviders || o.foundNoOne || !(o.unformed ?? o.alone)) return false
  if (o.mayFormAlone === false || (o.unmet ?? 0) > 0) return true
  return o.alone && o.now - o.startedAt < o.selfJoinAfter
}
