/**
 * Which shards one node may serve now: the hand-over state machine of one placement group (the
 * members with one role). Pure: events and the time come in, directives go out; the virtual-actors
 * shell holds calls, deactivates activations and sends the messages.
 *
 * The rule that makes one activation per id: **a node opens a shard only once every other present
 * member of the group has released exactly the table version this node holds, and that shard with
 * it** (or has been removed from the cluster and the margin has passed, for one that crashed). A
 * release of a newer version does not count: that table may give the releaser a shard this one
 * gives us. A release of version v with draining set D says "I serve no shard that table v does not
 * give me, except those in D, still draining": a node sends one as soon as it adopts v (D: the
 * shards v took from it that still have activations), and again each time D shrinks (sealed: new
 * calls held; activations deactivated after their current turn). Releases name a table version, so
 * a node that missed a version cannot be skipped; they name the shards still draining, so a shard
 * opens as soon as its own old owner let it go, not when the whole round drained. (A release of the
 * whole round at once deadlocks: a turn that holds up its shard's drain may call into another shard
 * of the same round, whose new owner would wait for that drain — until the call timeout.)
 *
 * Phases of a shard on this node: `closed` (not ours) → `opening` (ours in the table, waiting for
 * releases; calls held) → `open` (serving) → `sealing` (the table gave it away; calls held until the
 * new owner opens, activations draining) → `closed`.
 * @module
 */
import { isNewer, type ShardTable, sameTable, type TableKey } from './ShardTable.ts'

/** A member of the placement group as the machine needs it. */
export interface GroupMember {
  readonly uid: string
  /** Joining, up, leaving or exiting: it may still serve shards and must release them. */
  readonly present: boolean
}

/** What the shell must do. */
export type OwnershipDirective =
  /** Hold new calls of these shards and deactivate their activations after their current turn, then report `drained`. */
  | { readonly kind: 'seal'; readonly shards: readonly number[] }
  /** Serve these shards now: deliver the calls held for them. */
  | { readonly kind: 'open'; readonly shards: readonly number[] }
  /** Tell every group member that this node released `table`, but for the shards still `draining` (latest wins: coalesce). */
  | { readonly kind: 'release'; readonly table: TableKey; readonly draining: readonly number[] }

/** A member's statement: it serves no shard that `table` does not give it, except `draining`. */
export interface Release {
  readonly table: TableKey
  readonly draining: ReadonlySet<number>
}

/** What to do with a call for a shard. */
export type Admission = 'deliver' | 'hold' | 'elsewhere'

export type ShardPhase = 'closed' | 'opening' | 'open' | 'sealing'

/** The hand-over machine of one node for one placement group; see the module comment. */
export class ShardOwnership {
  readonly self: string
  /** How long after a member's removal before its shards may open elsewhere, ms (see the singleton's margin). */
  readonly margin: number
  #table: ShardTable | undefined
  /** When {@link table} was adopted (this node's clock). */
  #adoptedAt = Number.NEGATIVE_INFINITY
  readonly #phase: ShardPhase[]
  /** How many shards are `opening` (most ticks have none: no scan then). */
  #opening = 0
  /** Shards still draining on this node. */
  readonly #sealing = new Set<number>()
  /** Latest release of each member. */
  readonly #released = new Map<string, Release>()
  /** Present members of the group other than this node. */
  #others: readonly string[] = []
  /** When each member was seen gone (removed, or never to return), for the margin. */
  readonly #goneAt = new Map<string, number>()
  /** Members first seen already removed, since when (for {@link mayStillServe} only). */
  readonly #unseenGoneAt = new Map<string, number>()
  /** Members seen present while listed (their margin is `#goneAt`'s, never started again). */
  readonly #seenPresent = new Set<string>()
  /** This node's latest release. */
  #release: Release | undefined

  constructor(self: string, shards: number, margin: number) {
    this.self = self
    this.margin = margin
    this.#phase = new Array<ShardPhase>(shards).fill('closed')
  }

  get table(): ShardTable | undefined {
    return this.#table
  }

  /** When the current {@link table} was adopted, ms on this node's clock (−∞ before any). */
  get adoptedAt(): number {
    return this.#adoptedAt
  }

  phase(shard: number): ShardPhase {
    return this.#phase[shard] ?? 'closed'
  }

  /** This node's latest release (sent again periodically: a member that missed it must hear it). */
  get release(): Release | undefined {
    return this.#release
  }

  /** What to do with a call for `shard` now. */
  admit(shard: number): Admission {
    const p = this.#phase[shard]
    if (p === 'open') return 'deliver'
    if (p === 'opening') return 'hold'
    return 'elsewhere'
  }

  /** A newer table: seal what it takes away, open what it gives once released. Older or equal versions are ignored. */
  adopt(table: ShardTable, now: number): OwnershipDirective[] {
    if (table.owners.length !== this.#phase.length) throw new RangeError(`a table of ${table.owners.length} shards for a group of ${this.#phase.length}`)
    if (this.#table && !isNewer(table, this.#table)) return []
    this.#table = table
    this.#adoptedAt = now
    const seal: number[] = []
    for (let shard = 0; shard < this.#phase.length; shard++) {
      const mine = table.owners[shard] === this.self
      const p = this.#phase[shard]!
      if (mine && p === 'closed') {
        this.#phase[shard] = 'opening'
        this.#opening++
      } else if (mine && p === 'sealing') {
        this.#phase[shard] = 'opening' // given back while draining: reopen after the releases
        this.#opening++
      } else if (!mine && p === 'opening') {
        this.#phase[shard] = 'closed' // never served here: nothing to drain
        this.#opening--
      } else if (!mine && p === 'open') {
        this.#phase[shard] = 'sealing'
        this.#sealing.add(shard)
        seal.push(shard)
      }
    }
    const out: OwnershipDirective[] = seal.length > 0 ? [{ kind: 'seal', shards: seal }] : []
    return [...out, ...this.#releaseNow(), ...this.#openReady(now)]
  }

  /** The shell finished draining `shard` (its activations are gone). */
  drained(shard: number, now: number): OwnershipDirective[] {
    if (!this.#sealing.delete(shard)) return []
    if (this.#phase[shard] === 'sealing') this.#phase[shard] = 'closed'
    return [...this.#releaseNow(), ...this.#openReady(now)]
  }

  /**
   * Member `uid` released `table` but for the shards still `draining`. A release of an older table
   * than one already heard is ignored; of the same table, only what it adds counts (a member's
   * draining set for one table only shrinks, so releases that arrive out of order are merged).
   */
  released(uid: string, table: TableKey, draining: readonly number[], now: number): OwnershipDirective[] {
    const known = this.#released.get(uid)
    if (known && sameTable(table, known.table)) {
      const still = new Set(draining.filter((s) => known.draining.has(s)))
      if (still.size === known.draining.size) return []
      this.#released.set(uid, { table: known.table, draining: still })
    } else if (known && !isNewer(table, known.table)) return []
    else this.#released.set(uid, { table: { version: table.version, by: table.by }, draining: new Set(draining) })
    return this.#openReady(now)
  }

  /**
   * The group's members now (this node excluded or not). Members no longer present are gone: their
   * shards may open `margin` after this node first saw them gone. A member this node never saw
   * present (it joined after that member's removal) is not waited for here, but remembered for
   * {@link mayStillServe}: it may have owned shards of a table this node never saw.
   */
  members(members: readonly GroupMember[], now: number): OwnershipDirective[] {
    const present: string[] = []
    const listed = new Set<string>()
    for (const m of members) {
      if (m.uid === this.self) continue
      listed.add(m.uid)
      if (m.present) present.push(m.uid)
      else if (!this.#seenPresent.has(m.uid) && !this.#unseenGoneAt.has(m.uid)) this.#unseenGoneAt.set(m.uid, now)
    }
    for (const uid of this.#others) if (!present.includes(uid) && !this.#goneAt.has(uid)) this.#goneAt.set(uid, now)
    for (const uid of present) {
      this.#goneAt.delete(uid)
      this.#unseenGoneAt.delete(uid)
      this.#seenPresent.add(uid)
    }
    // Bounded: a member the cluster forgot is no longer listed.
    for (const uid of this.#unseenGoneAt.keys()) if (!listed.has(uid)) this.#unseenGoneAt.delete(uid)
    for (const uid of this.#seenPresent) if (!listed.has(uid)) this.#seenPresent.delete(uid)
    this.#others = present
    return this.#openReady(now)
  }

  /**
   * Whether gone member `uid` may still be serving at `now`: it was seen gone (or first seen
   * already removed) less than `margin` ago and has not released this node's table holding no
   * shard. The decider leaves such a member's shards where they are until then, so that whoever
   * gets them next (a node that joined after the removal included) opens them only once it has
   * stopped.
   */
  mayStillServe(uid: string, now: number): boolean {
    const at = this.#goneAt.get(uid) ?? this.#unseenGoneAt.get(uid)
    if (at === undefined || now - at >= this.margin) return false
    return !(this.#releasedAll(uid) && !this.#table?.owners.includes(uid))
  }

  /** Time passes: margins run out. */
  tick(now: number): OwnershipDirective[] {
    return this.#openReady(now)
  }

  /**
   * Who opening waits for: members that have not released this node's table (with their latest
   * release), and gone members still in their margin. Empty when nothing waits. For status and logs.
   */
  waitingFor(): string[] {
    const t = this.#table
    if (!t) return ['no table yet']
    const out: string[] = []
    if (this.#sealing.size > 0) out.push(`self (draining ${this.#sealing.size})`)
    for (const uid of this.#others) {
      const r = this.#released.get(uid)
      if (!this.#releasedAll(uid)) out.push(`${uid} released ${r ? `${JSON.stringify(r.table)}, draining ${r.draining.size}` : 'nothing'}`)
    }
    for (const [uid] of this.#goneAt) if (!this.#releasedAll(uid)) out.push(`${uid} gone, in its margin`)
    return out
  }

  /**
   * Whether every present member of the group, this node included, has released the table this
   * node holds: the moves it made are over. The decider starts the next round of balancing moves
   * only then, so rounds do not pile up.
   */
  settled(): boolean {
    if (!this.#table || this.#sealing.size > 0) return false
    return this.#others.every((uid) => this.#releasedAll(uid))
  }

  /** When the next margin runs out (for the shell's timer), if one is pending. */
  nextDeadline(): number | undefined {
    const pending = [...this.#goneAt].filter(([uid]) => !this.#releasedAll(uid)).map(([, at]) => at + this.margin)
    return pending.length === 0 ? undefined : Math.min(...pending)
  }

  /** This node's release of its table with the shards still draining, if it says anything new. */
  #releaseNow(): OwnershipDirective[] {
    const t = this.#table
    if (!t) return []
    const mine = this.#release
    if (mine && sameTable(t, mine.table) && mine.draining.size === this.#sealing.size) return []
    this.#release = { table: { version: t.version, by: t.by }, draining: new Set(this.#sealing) }
    return [{ kind: 'release', table: this.#release.table, draining: [...this.#sealing] }]
  }

  /** Whether `uid` released this node's table with nothing left draining. */
  #releasedAll(uid: string): boolean {
    const r = this.#released.get(uid)
    return this.#table !== undefined && r !== undefined && sameTable(this.#table, r.table) && r.draining.size === 0
  }

  #openReady(now: number): OwnershipDirective[] {
    const t = this.#table
    if (!t) return []
    // Everyone who might serve a shard has released exactly this version, and the shard with it: a
    // release of a newer version proves nothing here (that table may give the member a shard this
    // one gives us; it opens it only after we release that version too). A member gone without
    // releasing this version (crashed, downed) counts once the margin has passed since this node
    // saw it gone.
    const waiting: Release[] = []
    for (const uid of this.#others) {
      const r = this.#released.get(uid)
      if (!r || !sameTable(t, r.table)) return []
      if (r.draining.size > 0) waiting.push(r)
    }
    for (const [uid, at] of this.#goneAt) {
      // Kept until its margin passes (a table newer than its last release may still come), unless
      // it released a version that gave it nothing: it left holding no shard, and serves none again.
      const r = this.#released.get(uid)
      const releasedIt = r !== undefined && sameTable(t, r.table)
      if (now - at >= this.margin || (this.#releasedAll(uid) && !t.owners.includes(uid))) this.#goneAt.delete(uid)
      else if (!releasedIt) return []
      else if (r.draining.size > 0) waiting.push(r)
    }
    if (this.#opening === 0) return []
    const open: number[] = []
    for (let shard = 0; shard < this.#phase.length; shard++) {
      if (this.#phase[shard] !== 'opening' || this.#sealing.has(shard)) continue
      if (waiting.some((r) => r.draining.has(shard))) continue
      this.#phase[shard] = 'open'
      this.#opening--
      open.push(shard)
    }
    return open.length > 0 ? [{ kind: 'open', shards: open }] : []
  }
}
