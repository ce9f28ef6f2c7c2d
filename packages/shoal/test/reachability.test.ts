/**
 * Per-observer reachability and the decisions built on it, as pure functions: the observation
 * table, the indirectly connected members of a partition that is not clean (a bridge), and how long
 * heartbeat confirmations keep a host's side confirmed.
 */
import { type ClusterMember, downAll, keepMajority, keepOldest, noDowning, staticQuorum, timeoutDowning } from 'shoal'
import { describe, expect, it } from 'vitest'
import { confirmedUntil, indirectlyConnected, resolveIndirect } from '../src/cluster/Downing.ts'
import { mergeObservations, observe, observersOf, pruneObservations, unreachabilityEdges } from '../src/cluster/Reachability.ts'

const member = (i: number, over: Partial<ClusterMember> = {}): ClusterMember => ({
  node: { endpoint: { name: `n${i}`, host: '10.0.0.1', port: 7000 + i }, uid: i.toString(16).padStart(16, '0') },
  status: 'up',
  upNumber: i,
  roles: [],
  reachability: 'reachable',
  ...over,
})
const uid = (i: number): string => member(i).node.uid
const five = [1, 2, 3, 4, 5].map((i) => member(i))
/** A..E = 1..5; {A,B}×{D,E} cut both ways, C reaches everyone. */
const bridge: Array<readonly [string, string]> = []
for (const [x, y] of [
  [1, 4],
  [1, 5],
  [2, 4],
  [2, 5],
]) {
  bridge.push([uid(x!), uid(y!)], [uid(y!), uid(x!)])
}

describe('observation table', () => {
  it('an observer bumps its seq only when its observations change; the newer record wins a merge', () => {
    const t1 = observe(new Map(), uid(1), [uid(4), uid(5), uid(4)])
    expect(t1.get(uid(1))).toEqual({ seq: 1, unreachable: [uid(4), uid(5)] })
    expect(observe(t1, uid(1), [uid(5), uid(4)])).toBe(t1)
    expect(observe(new Map(), uid(1), [])).toEqual(new Map())
    const t2 = observe(t1, uid(1), [])
    expect(t2.get(uid(1))).toEqual({ seq: 2, unreachable: [] })
    // Node 3 hears the old record, then the new one; the old one again changes nothing.
    const at3 = mergeObservations(new Map(), t1, uid(3), () => true)
    const newer = mergeObservations(at3, t2, uid(3), () => true)
    expect(newer.get(uid(1))?.seq).toBe(2)
    expect(mergeObservations(newer, t1, uid(3), () => true)).toBe(newer)
    // Nobody else writes a node's own record, and observers that are not members are dropped.
    expect(mergeObservations(t2, t1, uid(1), () => true)).toBe(t2)
    expect(mergeObservations(new Map(), t1, uid(3), () => false)).toEqual(new Map())
    expect(pruneObservations(newer, () => false)).toEqual(new Map())
  })

  it('edges only among the given members; observers of a subject', () => {
    let t = observe(new Map(), uid(1), [uid(4), uid(9)])
    t = mergeObservations(t, observe(new Map(), uid(4), [uid(1)]), uid(1), () => true)
    expect(unreachabilityEdges(t, (u) => u !== uid(9))).toEqual([
      [uid(1), uid(4)],
      [uid(4), uid(1)],
    ])
    expect(observersOf(t, uid(4))).toEqual([uid(1)])
  })
})

describe('indirectly connected members', () => {
  it('a bridge partition keeps the pair with the oldest member, and three in all', () => {
    expect(indirectlyConnected(five, bridge).sort()).toEqual([uid(4), uid(5)])
    // Ages the other way round: A and B are then the youngest pair.
    const reversed = five.map((m) => ({ ...m, upNumber: 6 - m.upNumber }))
    expect(indirectlyConnected(reversed, bridge).sort()).toEqual([uid(1), uid(2)])
    // The oldest member in the second pair alone decides it, whatever the other's age (the lab run
    // that found this had A oldest and B youngest of all; greedy removal downed A and B).
    const mixed = five.map((m) => ({ ...m, upNumber: [0, 1, 5, 2, 3, 4][m.upNumber]! }))
    expect(indirectlyConnected(mixed, bridge).sort()).toEqual([uid(4), uid(5)])
  })

  it('downs as few as possible: one node cut from two others goes alone', () => {
    const edges: Array<[string, string]> = [
      [uid(3), uid(1)],
      [uid(3), uid(2)],
      [uid(1), uid(3)],
    ]
    expect(indirectlyConnected(five, edges)).toEqual([uid(3)])
    expect(indirectlyConnected(five, [])).toEqual([])
    // Edges to strangers or to itself count for nothing.
    expect(
      indirectlyConnected(five, [
        [uid(1), 'f'.repeat(16)],
        [uid(2), uid(2)],
      ]),
    ).toEqual([])
  })

  it('beyond 16 members on edges it removes greedily, and still leaves no edge', () => {
    const many = Array.from({ length: 20 }, (_, i) => member(i + 1))
    const ring: Array<[string, string]> = many.map((m, i) => [m.node.uid, many[(i + 1) % 20]!.node.uid])
    const cut = new Set(indirectlyConnected(many, ring))
    for (const [a, b] of ring) expect(cut.has(a) || cut.has(b)).toBe(true)
    expect(cut.size).toBeLessThanOrEqual(12)
  })

  it('the strategy decides for the rest: keep-majority keeps three, and downs everyone rather than keep a minority', () => {
    const view = { self: uid(1), members: five, stableFor: 10_000, unreachableFor: new Map() }
    expect(resolveIndirect(view, bridge, keepMajority()).sort()).toEqual([uid(4), uid(5)])
    // A star: 1 cut from 2..5 and 2 from 3..5 leaves {3,4,5} after two removals; that is a majority of five.
    const star: Array<[string, string]> = [2, 3, 4, 5].map((i) => [uid(1), uid(i)])
    star.push(...[3, 4, 5].map((i): [string, string] => [uid(2), uid(i)]))
    expect(resolveIndirect(view, star, keepMajority()).sort()).toEqual([uid(1), uid(2)])
    // Three of five cut apart pairwise: the rest (two) is a minority, so everyone goes.
    const triangle: Array<[string, string]> = [
      [uid(1), uid(2)],
      [uid(2), uid(3)],
      [uid(1), uid(3)],
      [uid(3), uid(4)],
      [uid(4), uid(5)],
      [uid(3), uid(5)],
    ]
    // The largest edge-free sets have two members ({1,4}, {1,5}, {2,4}, {2,5}); {1,4} is the oldest.
    expect(indirectlyConnected(five, triangle)).toEqual([uid(2), uid(3), uid(5)])
    expect(resolveIndirect(view, triangle, keepMajority()).sort()).toEqual(five.map((m) => m.node.uid))
    // Strategies that never down a side on their own leave it to the operator.
    expect(resolveIndirect(view, bridge, noDowning())).toEqual([])
    expect(resolveIndirect(view, bridge, timeoutDowning(1000))).toEqual([])
    expect(resolveIndirect(view, bridge, downAll()).length).toBe(5)
  })
})

describe('confirmedUntil', () => {
  const at = (times: Record<number, number>) => (u: string) => {
    const i = Number.parseInt(u, 16)
    return times[i]
  }

  it('keep-majority: the side stays until the second-newest confirmation of two others is `window` old', () => {
    // Self 1; confirmations from 2 (t=100), 3 (t=300), 4 (t=200). Majority of 5 = self + 2 others: 3 and 4.
    expect(confirmedUntil(uid(1), five, at({ 2: 100, 3: 300, 4: 200 }), keepMajority(), 4000)).toBe(4200)
    // Only one other confirms: never.
    expect(confirmedUntil(uid(1), five, at({ 2: 100 }), keepMajority(), 4000)).toBe(Number.NEGATIVE_INFINITY)
    // Alone in the cluster: always.
    expect(confirmedUntil(uid(1), [member(1)], at({}), keepMajority(), 4000)).toBe(Number.POSITIVE_INFINITY)
    // Members already down or removed do not count either way.
    const shrunk = [member(1), member(2), member(3, { status: 'down' }), member(4, { status: 'removed' }), member(5, { status: 'down' })]
    // Two left: keep-majority's tie goes to the lowest address, so 1 stays alone and 2 needs 1.
    expect(confirmedUntil(uid(1), shrunk, at({}), keepMajority(), 4000)).toBe(Number.POSITIVE_INFINITY)
    expect(confirmedUntil(uid(2), shrunk, at({ 1: 700 }), keepMajority(), 4000)).toBe(4700)
    // A node that is itself down, removed or gone from the view is never confirmed, whoever answers
    // (a woken node that learned it was removed must not serve in the second before it shuts down).
    expect(confirmedUntil(uid(3), shrunk, at({ 1: 700, 2: 700 }), keepMajority(), 4000)).toBe(Number.NEGATIVE_INFINITY)
    expect(confirmedUntil(uid(4), shrunk, at({ 1: 700, 2: 700 }), keepMajority(), 4000)).toBe(Number.NEGATIVE_INFINITY)
    expect(confirmedUntil(uid(6), five, at({ 1: 700, 2: 700, 3: 700 }), keepMajority(), 4000)).toBe(Number.NEGATIVE_INFINITY)
  })

  it('members this node downed count on the other side, whatever they answer (found by the cluster simulator)', () => {
    // Seed 954 of `--gap 5`: 5 had joined this side before the other side downed it; this node
    // learned of the down, and 5 (up over there as far as this node knows) still answered. With 4,
    // its answer made 1 a majority of three.
    const view = [member(1), member(2, { reachability: 'unreachable' }), member(3, { reachability: 'unreachable' }), member(4), member(5)]
    expect(confirmedUntil(uid(1), view, at({ 4: 600, 5: 700 }), keepMajority(), 4000)).toBe(4600)
    expect(confirmedUntil(uid(1), view, at({ 4: 600, 5: 700 }), keepMajority(), 4000, new Set([uid(5)]))).toBe(Number.NEGATIVE_INFINITY)
  })

  it('keep-oldest needs the oldest; static-quorum its quorum; none and timeout never fence', () => {
    expect(confirmedUntil(uid(3), five, at({ 1: 50, 2: 900, 4: 900 }), keepOldest(), 1000)).toBe(1050)
    expect(confirmedUntil(uid(3), five, at({ 2: 900, 4: 900, 5: 900 }), keepOldest(), 1000)).toBe(Number.NEGATIVE_INFINITY)
    expect(confirmedUntil(uid(3), five, at({ 2: 900, 4: 800 }), staticQuorum(3), 1000)).toBe(1800)
    expect(confirmedUntil(uid(3), five, at({}), noDowning(), 1000)).toBe(Number.POSITIVE_INFINITY)
    expect(confirmedUntil(uid(3), five, at({}), timeoutDowning(), 1000)).toBe(Number.POSITIVE_INFINITY)
  })
})
