/**
 * The virtual actors' shard table as a pure function: balance, minimal movement on joins and
 * leaves, weights, versions, and how evenly ids spread.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { emptyTable, hash32, movedShards, nextTable, quotas, type ShardCandidate, shardOf, shardsOf } from '../src/virtual/ShardTable.ts'

const uid = (i: number): string => i.toString(16).padStart(16, '0')
const nodes = (...is: number[]): ShardCandidate[] => is.map((i) => ({ uid: uid(i) }))
const counts = (t: { owners: readonly (string | undefined)[] }): Map<string, number> => {
  const out = new Map<string, number>()
  for (const o of t.owners) if (o) out.set(o, (out.get(o) ?? 0) + 1)
  return out
}

describe('shard table', () => {
  it('balances to within one shard and is the same for the same inputs, in any order', () => {
    const t = nextTable(emptyTable(1024), nodes(1, 2, 3))
    expect(t.version).toBe(1)
    expect([...counts(t).values()].sort()).toEqual([341, 341, 342])
    expect(nextTable(emptyTable(1024), nodes(3, 1, 2))).toEqual(t)
    expect(nextTable(t, nodes(2, 3, 1))).toBe(t) // nothing to change: the same object, the same version
  })

  it('a join moves exactly the new node fair share; a leave moves exactly the leaver shards', () => {
    const three = nextTable(emptyTable(1024), nodes(1, 2, 3))
    const four = nextTable(three, nodes(1, 2, 3, 4))
    const moved = movedShards(three, four)
    expect(moved).toHaveLength(256)
    for (const s of moved) expect(four.owners[s]).toBe(uid(4))
    expect([...counts(four).values()].sort()).toEqual([256, 256, 256, 256])
    const back = nextTable(four, nodes(1, 2, 3))
    const left = movedShards(four, back)
    expect(left.sort((a, b) => a - b)).toEqual(shardsOf(four, uid(4)))
    expect(back.version).toBe(four.version + 1)
  })

  it("maxMoves: a join moves in rounds of at most the cap, to the same end; a leaver's shards move at once whatever the cap", () => {
    const three = nextTable(emptyTable(1024), nodes(1, 2, 3))
    const uncapped = nextTable(three, nodes(1, 2, 3, 4))
    let t = three
    const rounds: number[] = []
    for (let i = 0; i < 10; i++) {
      const next = nextTable(t, nodes(1, 2, 3, 4), '', 100)
      if (next === t) break
      const moved = movedShards(t, next)
      for (const s of moved) expect(next.owners[s]).toBe(uid(4)) // only to the new node: no shuffling between the others
      rounds.push(moved.length)
      t = next
    }
    expect(rounds).toEqual([100, 100, 56])
    expect(t.owners).toEqual(uncapped.owners)
    // A leave: the leaver's 256 shards have no live owner; all are placed in one table.
    const back = nextTable(t, nodes(1, 2, 3), '', 10)
    expect(movedShards(t, back).sort((a, b) => a - b)).toEqual(shardsOf(t, uid(4)))
    expect([...counts(back).values()].sort()).toEqual([341, 341, 342])
    // A cap of 0 moves nothing for balance, yet places a crashed node's shards.
    expect(nextTable(three, nodes(1, 2, 3, 4), '', 0)).toBe(three)
    const orphaned = nextTable(uncapped, nodes(1, 2, 4), '', 0)
    expect(movedShards(uncapped, orphaned).sort((a, b) => a - b)).toEqual(shardsOf(uncapped, uid(3)))
  })

  it('property: movement is minimal and balance holds for any sequence of member changes', () => {
    fc.assert(
      fc.property(fc.array(fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { minLength: 0, maxLength: 7 }), { minLength: 1, maxLength: 8 }), (steps) => {
        let t = emptyTable(256)
        for (const step of steps) {
          const next = nextTable(t, nodes(...step))
          if (step.length === 0) {
            expect(next.owners.every((o) => o === undefined)).toBe(true)
          } else {
            const c = counts(next)
            expect(Math.max(...c.values()) - Math.min(...[...c.values(), ...(c.size < step.length ? [0] : [])])).toBeLessThanOrEqual(1)
            // A shard moves only if its owner left, or its owner held more than its new quota.
            const q = quotas(256, nodes(...step))
            const before = counts(t)
            for (const s of movedShards(t, next)) {
              const old = t.owners[s]
              if (old === undefined || !step.includes(Number.parseInt(old, 16))) continue
              expect(before.get(old)!).toBeGreaterThan(q.get(old)!)
            }
          }
          expect(next === t || next.version === t.version + 1).toBe(true)
          t = next
        }
      }),
    )
  })

  it('weights: a node of weight 2 gets twice the shards', () => {
    const t = nextTable(emptyTable(1024), [{ uid: uid(1), weight: 2 }, { uid: uid(2) }, { uid: uid(3) }])
    expect(counts(t).get(uid(1))).toBe(512)
    expect(() => nextTable(emptyTable(8), [{ uid: uid(1), weight: 0 }])).toThrow(RangeError)
    expect(() => emptyTable(0)).toThrow(RangeError)
  })

  it('10,000 ids spread over 3 to 5 nodes with max/mean ≤ 1.10', () => {
    for (const n of [3, 4, 5]) {
      const t = nextTable(emptyTable(), nodes(...Array.from({ length: n }, (_, i) => i + 1)))
      const perNode = new Map<string, number>()
      for (let i = 0; i < 10_000; i++) {
        const owner = t.owners[shardOf('Player', `player-${i}`)]!
        perNode.set(owner, (perNode.get(owner) ?? 0) + 1)
      }
      const max = Math.max(...perNode.values())
      expect(max / (10_000 / n), `${n} nodes`).toBeLessThanOrEqual(1.1)
    }
  })

  it('hashing is stable (a table computed anywhere agrees) and spreads consecutive ids', () => {
    expect(hash32('')).toBe(hash32(''))
    expect(shardOf('Player', 'ann')).toBe(shardOf('Player', 'ann'))
    expect(shardOf('Player', 'ann')).not.toBe(shardOf('Game', 'ann')) // (a property of these two strings, checked once)
    const hit = new Set(Array.from({ length: 2048 }, (_, i) => shardOf('T', String(i))))
    expect(hit.size).toBeGreaterThan(800)
  })
})
