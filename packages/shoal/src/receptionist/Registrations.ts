/**
 * The receptionist's replicated registry as a pure data structure (no I/O, no clock).
 *
 * Each node owns its own registrations and is the only writer of them: every check-in and
 * check-out is an operation with the owner's next sequence number. Replicas hold, per owner, the
 * current set and the last sequence applied, so replication is anti-entropy by digest: a node
 * sends `{ owner → seq }`, the peer answers with what is missing, as the operations since that
 * seq while the owner's log still has them, or else as a snapshot of the owner's current set in
 * chunks. Either way a message carries at most `maxBatch` items, however many registrations
 * exist, and a new or returning node catches up from any peer.
 *
 * Removals are first-class (the reference receptionist only ever adds): a check-out is an
 * operation like a check-in, and `dropOwner` removes everything a down node had registered.
 * @module
 */

/** One registration: an actor (its id string) under a key. */
export interface Registration {
  readonly key: string
  readonly actor: string
}

/** One operation of an owner, numbered from 1 without gaps. */
export interface Op extends Registration {
  readonly seq: number
  readonly kind: 'add' | 'remove'
}

/** What one node sends another to bring it up to date about one owner. */
export type Delta =
  | { readonly owner: string; readonly kind: 'ops'; readonly ops: readonly Op[] }
  | {
      readonly owner: string
      readonly kind: 'snapshot'
      readonly seq: number
      readonly part: number
      readonly parts: number
      readonly entries: readonly Registration[]
    }

/** A change to what a key lists, for listings and events. */
export interface Change {
  readonly key: string
  readonly added: readonly string[]
  readonly removed: readonly string[]
}

/** Bounds of the registry. */
export interface RegistrationsOptions {
  /** Operations the owner keeps for peers that are slightly behind. Default 1000. */
  readonly maxOps?: number
  /** Most operations or entries in one delta. Default 256. */
  readonly maxBatch?: number
}

interface Replica {
  seq: number
  readonly entries: Map<string, Set<string>>
  /** Snapshot chunks being assembled: seq → parts received. */
  pending?: { seq: number; parts: number; received: Map<number, readonly Registration[]> }
}

/** One node's replica of every owner's registrations (module comment). */
export class Registrations {
  readonly self: string
  readonly #maxOps: number
  readonly #maxBatch: number
  readonly #replicas = new Map<string, Replica>()
  /** This node's own operations, oldest first (bounded). */
  readonly #log: Op[] = []

  constructor(self: string, o: RegistrationsOptions = {}) {
    this.self = self
    this.#maxOps = o.maxOps ?? 1000
    this.#maxBatch = o.maxBatch ?? 256
    this.#replicas.set(self, { seq: 0, entries: new Map() })
  }

  /** Registers `actor` under `key` on this node. Returns the change, or undefined if already there. */
  add(key: string, actor: string): Change | undefined {
    return this.#local('add', key, actor)
  }

  /** Removes a registration of this node. Returns the change, or undefined if it was not there. */
  remove(key: string, actor: string): Change | undefined {
    return this.#local('remove', key, actor)
  }

  /** Every actor registered under `key`, on any node. */
  lookup(key: string): Set<string> {
    const out = new Set<string>()
    for (const r of this.#replicas.values()) for (const a of r.entries.get(key) ?? []) out.add(a)
    return out
  }

  /** Registrations of this node (to re-check-in after a restart of the structure, or to list). */
  own(): Registration[] {
    return flatten(this.#replicas.get(this.self)!.entries)
  }

  /** How many registrations this node owns (for metrics: no copy, no sort). */
  get ownSize(): number {
    let n = 0
    for (const set of this.#replicas.get(this.self)!.entries.values()) n += set.size
    return n
  }

  /** Per owner, the last operation applied here. */
  digest(): Map<string, number> {
    return new Map([...this.#replicas].map(([owner, r]) => [owner, r.seq]))
  }

  /**
   * What a peer with `digest` lacks, as deltas of at most `maxBatch` items each. Only this node's
   * own registrations are sent as operations (it holds their log); other owners' state goes as
   * snapshots, so any replica can bring any other up to date.
   */
  deltasFor(digest: ReadonlyMap<string, number>): Delta[] {
    const out: Delta[] = []
    for (const [owner, r] of this.#replicas) this.#deltasOf(owner, r, digest.get(owner) ?? 0, out)
    return out
  }

  /** This node's own changes after `seq` (ops while the log has them, else a snapshot). */
  ownSince(seq: number): Delta[] {
    const out: Delta[] = []
    this.#deltasOf(this.self, this.#replicas.get(this.self)!, seq, out)
    return out
  }

  /** Last operation of this node's own registrations. */
  get ownSeq(): number {
    return this.#replicas.get(this.self)!.seq
  }

  /** Registrations known here, over all owners. */
  get size(): number {
    let n = 0
    for (const r of this.#replicas.values()) for (const set of r.entries.values()) n += set.size
    return n
  }

  /** Keys with at least one registration. */
  keys(): Set<string> {
    const out = new Set<string>()
    for (const r of this.#replicas.values()) for (const k of r.entries.keys()) out.add(k)
    return out
  }

  #deltasOf(owner: string, r: Replica, theirs: number, out: Delta[]): void {
    if (r.seq <= theirs) return
    const first = this.#log[0]?.seq ?? r.seq + 1
    if (owner === this.self && theirs + 1 >= first) {
      const ops = this.#log.filter((op) => op.seq > theirs)
      for (let i = 0; i < ops.length; i += this.#maxBatch) out.push({ owner, kind: 'ops', ops: ops.slice(i, i + this.#maxBatch) })
      return
    }
    const entries = flatten(r.entries)
    const parts = Math.max(1, Math.ceil(entries.length / this.#maxBatch))
    for (let p = 0; p < parts; p++)
      out.push({ owner, kind: 'snapshot', seq: r.seq, part: p, parts, entries: entries.slice(p * this.#maxBatch, (p + 1) * this.#maxBatch) })
  }

  /** Applies a delta from a peer; returns what changed. Stale or out-of-order deltas change nothing. */
  apply(d: Delta): Change[] {
    if (d.owner === this.self) return []
    const r = this.#replica(d.owner)
    if (d.kind === 'ops') {
      const changes: Change[] = []
      for (const op of d.ops) {
        if (op.seq !== r.seq + 1) continue // a gap (or a repeat): wait for a snapshot or the missing ops
        r.seq = op.seq
        const c = mutate(r.entries, op.kind, op.key, op.actor)
        if (c) changes.push(c)
      }
      return merge(changes)
    }
    if (d.seq <= r.seq || d.parts < 1 || d.part < 0 || d.part >= d.parts) return []
    if (!r.pending || r.pending.seq !== d.seq || r.pending.parts !== d.parts) r.pending = { seq: d.seq, parts: d.parts, received: new Map() }
    r.pending.received.set(d.part, d.entries)
    if (r.pending.received.size < d.parts) return []
    const next = new Map<string, Set<string>>()
    for (const chunk of r.pending.received.values()) for (const e of chunk) mutate(next, 'add', e.key, e.actor)
    const changes = diff(r.entries, next)
    r.entries.clear()
    for (const [k, v] of next) r.entries.set(k, v)
    r.seq = d.seq
    r.pending = undefined
    return changes
  }

  /** Forgets everything `owner` registered (its node is down or removed). */
  dropOwner(owner: string): Change[] {
    if (owner === this.self) return []
    const r = this.#replicas.get(owner)
    if (!r) return []
    this.#replicas.delete(owner)
    return diff(r.entries, new Map())
  }

  #local(kind: 'add' | 'remove', key: string, actor: string): Change | undefined {
    const r = this.#replicas.get(this.self)!
    const has = r.entries.get(key)?.has(actor) ?? false
    if ((kind === 'add') === has) return undefined
    const op: Op = { seq: r.seq + 1, kind, key, actor }
    r.seq = op.seq
    this.#log.push(op)
    if (this.#log.length > this.#maxOps) this.#log.splice(0, this.#log.length - this.#maxOps)
    return mutate(r.entries, kind, key, actor)
  }

  #replica(owner: string): Replica {
    let r = this.#replicas.get(owner)
    if (!r) {
      r = { seq: 0, entries: new Map() }
      this.#replicas.set(owner, r)
    }
    return r
  }
}

function mutate(entries: Map<string, Set<string>>, kind: 'add' | 'remove', key: string, actor: string): Change | undefined {
  let set = entries.get(key)
  if (kind === 'add') {
    if (set?.has(actor)) return undefined
    if (!set) entries.set(key, (set = new Set()))
    set.add(actor)
    return { key, added: [actor], removed: [] }
  }
  if (!set?.delete(actor)) return undefined
  if (set.size === 0) entries.delete(key)
  return { key, added: [], removed: [actor] }
}

/**
 * Every registration, sorted by key then actor: replicas at the same seq hold the same set, so
 * sorted, they cut it into the same snapshot parts, and parts from different peers can be mixed.
 */
function flatten(entries: ReadonlyMap<string, ReadonlySet<string>>): Registration[] {
  const out: Registration[] = []
  for (const [key, set] of entries) for (const actor of set) out.push({ key, actor })
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.actor < b.actor ? -1 : a.actor > b.actor ? 1 : 0))
}

function diff(before: ReadonlyMap<string, ReadonlySet<string>>, after: ReadonlyMap<string, ReadonlySet<string>>): Change[] {
  const out: Change[] = []
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(key) ?? new Set<string>()
    const a = after.get(key) ?? new Set<string>()
    const added = [...a].filter((x) => !b.has(x))
    const removed = [...b].filter((x) => !a.has(x))
    if (added.length + removed.length > 0) out.push({ key, added, removed })
  }
  return out
}

function merge(changes: readonly Change[]): Change[] {
  const byKey = new Map<string, { added: Set<string>; removed: Set<string> }>()
  for (const c of changes) {
    const e = byKey.get(c.key) ?? { added: new Set<string>(), removed: new Set<string>() }
    // An add and a remove of the same actor in one batch cancel out.
    for (const a of c.added) if (!e.removed.delete(a)) e.added.add(a)
    for (const r of c.removed) if (!e.added.delete(r)) e.removed.add(r)
    byKey.set(c.key, e)
  }
  return [...byKey].filter(([, e]) => e.added.size + e.removed.size > 0).map(([key, e]) => ({ key, added: [...e.added], removed: [...e.removed] }))
}
