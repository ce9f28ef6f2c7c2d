/**
 * The virtual actors' hand-over machine as a pure state machine: a node opens a shard only once
 * every other present member of its group has released the table version that gave it the shard,
 * or has been gone for the margin; a shard taken away is sealed, drained, then released.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type OwnershipDirective, ShardOwnership } from '../src/virtual/ShardOwnership.ts'
import type { ShardTable } from '../src/virtual/ShardTable.ts'

const table = (version: number, ...owners: (string | undefined)[]): ShardTable => ({ version, by: 'd', owners })
const v = (version: number) => ({ version, by: 'd' })
const members = (...uids: string[]) => uids.map((uid) => ({ uid, present: true }))
const kinds = (ds: OwnershipDirective[]) =>
  ds.map((d) =>
    d.kind === 'release' ? `release ${d.table.version}${d.draining.length ? ` draining ${d.draining.join(',')}` : ''}` : `${d.kind} ${d.shards.join(',')}`,
  )

describe('shard ownership', () => {
  it('alone: adopts the first table, releases it, opens its shards at once', () => {
    const a = new ShardOwnership('a', 2, 5000)
    a.members(members('a'), 0)
    expect(kinds(a.adopt(table(1, 'a', 'a'), 0))).toEqual(['release 1', 'open 0,1'])
    expect(a.admit(0)).toBe('deliver')
  })

  it('a move on a join: the old owner seals, drains and releases; only then does the new owner open, and calls wait meanwhile', () => {
    const a = new ShardOwnership('a', 2, 5000)
    const b = new ShardOwnership('b', 2, 5000)
    a.members(members('a'), 0)
    a.adopt(table(1, 'a', 'a'), 0)
    // b joins; the decider moves shard 1 to b.
    a.members(members('a', 'b'), 10)
    b.members(members('a', 'b'), 10)
    const t2 = table(2, 'a', 'b')
    expect(kinds(a.adopt(t2, 20))).toEqual(['seal 1', 'release 2 draining 1'])
    expect(a.admit(1)).toBe('elsewhere') // new calls go to b, which holds them
    expect(a.admit(0)).toBe('deliver') // unmoved shards are unaffected
    expect(kinds(b.adopt(t2, 20))).toEqual(['release 2'])
    expect(b.admit(1)).toBe('hold')
    expect(kinds(b.released('a', v(1), [], 21))).toEqual([]) // an older release proves nothing
    expect(kinds(b.released('a', v(2), [1], 22))).toEqual([]) // shard 1 still draining on a
    expect(kinds(a.drained(1, 30))).toEqual(['release 2'])
    expect(kinds(b.released('a', v(2), [], 31))).toEqual(['open 1'])
    expect(b.admit(1)).toBe('deliver')
    // a does not reopen anything: b released 2 too, and a owns only shard 0, already open.
    expect(kinds(a.released('b', v(2), [], 31))).toEqual([])
  })

  it('settled: only once every present member, this node included, released the table it holds (rounds of moves wait for it)', () => {
    const a = new ShardOwnership('a', 2, 5000)
    expect(a.settled()).toBe(false) // no table yet
    a.members(members('a', 'b'), 0)
    a.adopt(table(1, 'a', 'a'), 0)
    expect(a.settled()).toBe(false) // b has not released 1
    a.released('b', v(1), [], 1)
    expect(a.settled()).toBe(true)
    a.adopt(table(2, 'a', 'b'), 2) // shard 1 to b: a seals it
    expect(a.settled()).toBe(false) // a still draining
    a.drained(1, 3)
    a.released('b', v(2), [], 4)
    expect(a.settled()).toBe(true)
  })

  it('a graceful leave: the leaver releases, leaves, and the others open without a margin', () => {
    const a = new ShardOwnership('a', 2, 5000)
    const b = new ShardOwnership('b', 2, 5000)
    for (const n of [a, b]) n.members(members('a', 'b'), 0)
    for (const n of [a, b]) n.adopt(table(1, 'a', 'b'), 0)
    a.released('b', v(1), [], 0)
    b.released('a', v(1), [], 0)
    // b leaves: the decider gives its shard to a.
    const t2 = table(2, 'a', 'a')
    expect(kinds(b.adopt(t2, 100))).toEqual(['seal 1', 'release 2 draining 1'])
    expect(kinds(a.adopt(t2, 100))).toEqual(['release 2'])
    expect(kinds(b.drained(1, 150))).toEqual(['release 2'])
    a.released('b', v(2), [], 151)
    expect(a.phase(1)).toBe('open')
    expect(kinds(a.members(members('a'), 200))).toEqual([]) // b removed afterwards: nothing waits
    // Not even a later table: b left holding nothing.
    expect(kinds(a.adopt(table(3, 'a', 'a'), 300))).toEqual(['release 3'])
    expect(a.nextDeadline()).toBeUndefined()
  })

  it('a crash: the shards of a member gone without releasing open only after the margin', () => {
    const a = new ShardOwnership('a', 2, 5000)
    a.members(members('a', 'b'), 0)
    a.adopt(table(1, 'a', 'b'), 0)
    a.released('b', v(1), [], 0)
    // b is downed and removed; the decider gives its shard to a.
    a.members(members('a'), 1000)
    expect(kinds(a.adopt(table(2, 'a', 'a'), 1000))).toEqual(['release 2'])
    expect(a.admit(1)).toBe('hold')
    expect(a.nextDeadline()).toBe(6000)
    expect(kinds(a.tick(5999))).toEqual([])
    expect(kinds(a.tick(6000))).toEqual(['open 1'])
    expect(a.nextDeadline()).toBeUndefined()
  })

  it('a missed table version cannot be skipped: opening needs every present member to release the newest', () => {
    const c = new ShardOwnership('c', 1, 5000)
    c.members(members('a', 'b', 'c'), 0)
    // c never saw version 2 (a → b); it gets version 3 (→ c). b may be serving: c waits for b too.
    c.adopt(table(3, 'c'), 0)
    c.released('a', v(3), [], 1)
    expect(c.phase(0)).toBe('opening')
    expect(kinds(c.released('b', v(3), [], 2))).toEqual(['open 0'])
  })

  it('older or equal table versions are ignored; a shard given away before it opened closes without draining', () => {
    const a = new ShardOwnership('a', 1, 5000)
    a.members(members('a', 'b'), 0)
    expect(kinds(a.adopt(table(2, 'a'), 0))).toEqual(['release 2'])
    expect(a.adopt(table(1, 'b'), 0)).toEqual([])
    expect(a.adopt(table(2, 'b'), 0)).toEqual([])
    expect(kinds(a.adopt(table(3, 'b'), 0))).toEqual(['release 3'])
    expect(a.phase(0)).toBe('closed')
    expect(() => a.adopt(table(4, 'a', 'b'), 0)).toThrow(RangeError)
  })

  it('a shard given back while draining reopens only after the new releases', () => {
    const a = new ShardOwnership('a', 1, 5000)
    a.members(members('a', 'b'), 0)
    a.adopt(table(1, 'a'), 0)
    a.released('b', v(1), [], 0)
    expect(a.phase(0)).toBe('open')
    expect(kinds(a.adopt(table(2, 'b'), 10))).toEqual(['seal 0', 'release 2 draining 0'])
    expect(kinds(a.adopt(table(3, 'a'), 20))).toEqual(['release 3 draining 0']) // still draining: not opened
    expect(a.admit(0)).toBe('hold')
    expect(kinds(a.drained(0, 30))).toEqual(['release 3'])
    expect(kinds(a.released('b', v(3), [], 31))).toEqual(['open 0'])
  })
})

describe('shard ownership, simulated', () => {
  /**
   * Four nodes, tables from a decider with random owners, delivered late, out of order between
   * kinds of messages (a node may miss versions), drains that take random time, releases delayed
   * per recipient (so releases of one table overtake each other). After every event, no shard is
   * open or still draining on two nodes; at the end, the last table holds everywhere.
   */
  it('property: no shard is ever open (or draining) on two nodes, and the last table is served once everything arrives', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), (seed) => {
        let s = seed
        const rnd = (): number => {
          s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
          return s / 2 ** 32
        }
        const uids = ['a', 'b', 'c', 'd']
        const SHARDS = 6
        const nodes = new Map(uids.map((u) => [u, new ShardOwnership(u, SHARDS, 1000)]))
        for (const n of nodes.values()) n.members(members(...uids), 0)
        type Event = { at: number; run: () => void }
        const queue: Event[] = []
        let now = 0
        const later = (delay: number, run: () => void): void => {
          queue.push({ at: now + delay, run })
        }
        const apply = (from: string, ds: OwnershipDirective[]): void => {
          for (const d of ds) {
            if (d.kind === 'release')
              for (const u of uids) if (u !== from) later(1 + rnd() * 50, () => apply(u, nodes.get(u)!.released(from, d.table, d.draining, now)))
            if (d.kind === 'seal') for (const shard of d.shards) later(rnd() * 80, () => apply(from, nodes.get(from)!.drained(shard, now)))
          }
        }
        let last: ShardTable | undefined
        const owners = (): string[] => Array.from({ length: SHARDS }, () => uids[Math.floor(rnd() * uids.length)]!)
        for (let v = 1; v <= 8; v++) {
          // Sometimes two deciders at once (a leader change in a partition) make the same version.
          const made: ShardTable[] = [{ version: v, by: 'd', owners: owners() }]
          if (rnd() < 0.3) made.push({ version: v, by: 'e', owners: owners() })
          for (const t of made) {
            last = t
            for (const u of uids) if (v === 8 || rnd() < 0.7) later(v * 30 + rnd() * 100, () => apply(u, nodes.get(u)!.adopt(t, now)))
          }
        }
        while (queue.length > 0) {
          queue.sort((x, y) => x.at - y.at)
          const e = queue.shift()!
          now = e.at
          e.run()
          for (let shard = 0; shard < SHARDS; shard++) {
            // Serving (open) or still draining activations (sealing): either may run a turn.
            const live = uids.filter((u) => ['open', 'sealing'].includes(nodes.get(u)!.phase(shard)))
            expect(live.length, `shard ${shard} open or draining on ${live.join(',')} at ${now}`).toBeLessThanOrEqual(1)
          }
        }
        for (let shard = 0; shard < SHARDS; shard++) expect(nodes.get(last!.owners[shard]!)!.phase(shard)).toBe('open')
      }),
      { numRuns: Number(process.env.SHARD_SIM_RUNS ?? 300) },
    )
  })
})
