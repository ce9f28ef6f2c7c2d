/**
 * Cluster heartbeats: a small request every `interval` over the control lane (TCP) to each member,
 * answered with what the answerer believes of the requester. Pure: times come in as arguments (the
 * SWIM instance's monotonic clock), sends and findings go out as return values; the `Cluster` shell
 * does the I/O.
 *
 * Three uses, none of which SWIM (UDP, with indirect probes) can serve:
 * - **Stalled associations.** A member whose answers stop while SWIM still sees it alive (through
 *   another member's indirect probe, in a bridge partition) is *directly* unreachable from here:
 *   recorded as this node's observation (see `Reachability.ts`) and its connection replaced.
 * - **Confirmations.** An answer says whether the answerer holds this node present (not down or
 *   removed). A host of a singleton (or shard) keeps serving only while members confirm it
 *   recently enough to form a side that stays (see `confirmedUntil` in `Downing.ts`). The answer
 *   also says whether the answerer's SWIM suspects the requester: for logs, not a condition; what
 *   the argument needs is that a member stops confirming once it has seen the down.
 * - **Fresh answers.** A member that answered a request sent moments ago is talking to this node:
 *   the leader does not count it unreachable for downing, whatever SWIM's lagging view says.
 *
 * Gotchas: a confirmation is dated by when its *request* was sent (like a lease term: the answerer
 * cannot have decided otherwise before the request existed, at the earliest). Every node of
 * protocol 2 answers; a member that never answers stalls like one that stopped. A member seen for
 * the first time gets its first request at the next tick, not at the next interval, so a member
 * that just joined confirms before the leader moves it up.
 * @module
 */
import { isPresent, type MembershipStatus } from './Member.ts'

/** Heartbeat timing. */
export interface HeartbeatSettings {
  /** Request period per member, ms. */
  readonly interval: number
  /** A member whose requests have gone unanswered this long is stalled, ms. */
  readonly stallAfter: number
}

/** Defaults: 500 ms period, stalled after 3 s (TCP retransmission after a 2 s cut still arrives in time). */
export const DEFAULT_HEARTBEAT: HeartbeatSettings = { interval: 500, stallAfter: 3000 }

/** What a member said of this node in an answer. */
export interface HeartbeatAnswer {
  readonly seq: number
  /** This node's status in the answerer's membership (undefined: it does not know this node). */
  readonly status: MembershipStatus | undefined
  /** The answerer reaches this node (SWIM does not suspect it, its heartbeats are answered). */
  readonly reachable: boolean
}

/** Outstanding requests kept per member beyond the stall window (answers to older ones are ignored). */
const MAX_OUTSTANDING = 64

interface PeerBeats {
  seq: number
  /** Send time by seq of requests not yet answered (ascending seq). */
  readonly outstanding: Map<number, number>
  /** Send time of the newest request answered at all, if any. */
  answeredAt: number | undefined
  /** Send time of the newest request answered with present and reachable. */
  confirmedAt: number | undefined
  stalled: boolean
}

/** What one tick decided: requests to send, members that just stalled. */
export interface HeartbeatTick {
  readonly send: ReadonlyArray<{ readonly uid: string; readonly seq: number }>
  readonly stalled: readonly string[]
}

/** Heartbeat state of one node toward its members; see the module comment. */
export class Heartbeats {
  readonly settings: HeartbeatSettings
  readonly #peers = new Map<string, PeerBeats>()
  #lastTick = Number.NEGATIVE_INFINITY

  constructor(settings: HeartbeatSettings = DEFAULT_HEARTBEAT) {
    if (!(settings.interval > 0) || !(settings.stallAfter > settings.interval))
      throw new RangeError(`heartbeat: need interval > 0 and stallAfter > interval, got ${settings.interval} and ${settings.stallAfter}`)
    this.settings = settings
  }

  /**
   * Called often (every cluster tick); every `interval` it sends a request to each of `targets`
   * (uids) and reports members whose oldest unanswered request passed `stallAfter`. Members not in
   * `targets` are forgotten.
   */
  tick(now: number, targets: readonly string[]): HeartbeatTick {
    // Forget members no longer targeted; usually none (every peer is a target), found without a set.
    let known = 0
    for (const uid of targets) if (this.#peers.has(uid)) known++
    if (known !== this.#peers.size) {
      const keep = new Set(targets)
      for (const uid of this.#peers.keys()) if (!keep.has(uid)) this.#peers.delete(uid)
    }
    const stalled: string[] = []
    for (const [uid, p] of this.#peers) {
      if (p.stalled) continue
      const oldest = p.outstanding.values().next().value
      if (oldest !== undefined && now - oldest >= this.settings.stallAfter) {
        p.stalled = true
        stalled.push(uid)
      }
    }
    const due = now - this.#lastTick >= this.settings.interval
    if (due) this.#lastTick = now
    const send: { uid: string; seq: number }[] = []
    for (const uid of targets) {
      let p = this.#peers.get(uid)
      if (!p) {
        p = { seq: 0, outstanding: new Map(), answeredAt: undefined, confirmedAt: undefined, stalled: false }
        this.#peers.set(uid, p)
      } else if (!due) continue
      const seq = ++p.seq
      p.outstanding.set(seq, now)
      if (p.outstanding.size > MAX_OUTSTANDING) p.outstanding.delete(p.outstanding.keys().next().value!)
      send.push({ uid, seq })
    }
    return { send, stalled }
  }

  /** An answer arrived; returns true if it ends a stall of that member. */
  answer(uid: string, a: HeartbeatAnswer): boolean {
    const p = this.#peers.get(uid)
    const sentAt = p?.outstanding.get(a.seq)
    if (!p || sentAt === undefined) return false
    for (const seq of p.outstanding.keys()) {
      if (seq > a.seq) break
      p.outstanding.delete(seq)
    }
    p.answeredAt = Math.max(p.answeredAt ?? sentAt, sentAt)
    if (a.status !== undefined && isPresent(a.status)) p.confirmedAt = Math.max(p.confirmedAt ?? sentAt, sentAt)
    const recovered = p.stalled
    p.stalled = false
    return recovered
  }

  /** Members whose answers stopped (see the module comment). */
  stalled(): string[] {
    return [...this.#peers].filter(([, p]) => p.stalled).map(([uid]) => uid)
  }

  /** Whether heartbeats to `uid` are stalled now. */
  isStalled(uid: string): boolean {
    return this.#peers.get(uid)?.stalled === true
  }

  /** Send time of the newest request `uid` answered at all, if any. */
  answeredAt(uid: string): number | undefined {
    return this.#peers.get(uid)?.answeredAt
  }

  /** Send time of the newest request `uid` answered confirming this node, if any. */
  confirmedAt(uid: string): number | undefined {
    return this.#peers.get(uid)?.confirmedAt
  }
}
