/**
 * The virtual actors' placement decisions around the hand-over machine (virtual/Placement.ts),
 * pure: who a placement group waits for, what the decider makes next, and whether a node's side
 * confirms it may serve.
 */
import { describe, expect, it } from 'vitest'
import type { ClusterMember, MembershipStatus } from '../src/cluster/Member.ts'
import { ServingConfirmation } from '../src/cluster/ServingConfirmation.ts'
import { LINK_WAIT, placementGroup, readyToHost, TableDecider } from '../src/virtual/Placement.ts'
import { type OwnershipDirective, ShardOwnership } from '../src/virtual/ShardOwnership.ts'
import type { ShardTable } from '../src/virtual/ShardTable.ts'

const table = (version: number, ...owners: (string | undefined)[]): ShardTable => ({ version, by: 'd', owners })
const member = (uid: string, status: MembershipStatus, roles: string[] = []): ClusterMember => ({
  node: { endpoint: { name: 'shoal', host: '127.0.0.1', port: 1 }, uid },
  status,
  upNumber: 1,
  roles,
  reachability: 'reachable',
})

describe('placement', () => {
  it('a gone owner keeps its shards in the decider’s tables until its margin has passed, even for a decider that joined after its removal (found by the cluster simulator)', () => {
    // b joined just after c, the owner of shard 1, was removed: c may still be serving, cut off.
    const b = new ShardOwnership('b', 2, 5000)
    b.members(
      [
        { uid: 'a', present: true },
        { uid: 'b', present: true },
        { uid: 'c', present: false },
      ],
      1000,
    )
    b.adopt(table(3, 'a', 'c'), 1000)
    expect(b.mayStillServe('c', 1000)).toBe(true)
    const decider = new TableDecider(2, 1)
    expect(decider.next(b, ['a', 'b'], 'b', 1000)).toBeUndefined() // c keeps shard 1 for now
    expect(decider.next(b, ['a', 'b'], 'b', 5999)).toBeUndefined()
    expect(b.mayStillServe('c', 6000)).toBe(false)
    expect(decider.next(b, ['a', 'b'], 'b', 6000)?.owners).toEqual(['a', 'b'])
    // A member that left gracefully released a table that gave it nothing: its absence holds nothing up.
    expect(b.mayStillServe('never-seen', 1000)).toBe(false)
  })

  it('a decider that saw the owner present waits out the margin from when it saw it gone', () => {
    const a = new ShardOwnership('a', 2, 5000)
    a.members(
      [
        { uid: 'a', present: true },
        { uid: 'c', present: true },
      ],
      0,
    )
    a.released('c', { version: 1, by: 'd' }, [], 0)
    a.adopt(table(1, 'a', 'c'), 0)
    a.members(
      [
        { uid: 'a', present: true },
        { uid: 'c', present: false },
      ],
      2000,
    )
    const decider = new TableDecider(2, 1)
    expect(decider.next(a, ['a'], 'a', 2000)).toBeUndefined()
    expect(a.tick(7000)).toEqual([]) // the margin ran out here
    expect(decider.next(a, ['a'], 'a', 7000)?.owners).toEqual(['a', 'a'])
    // Still listed as removed for a while: its margin does not start again.
    a.members(
      [
        { uid: 'a', present: true },
        { uid: 'c', present: false },
      ],
      7500,
    )
    expect(a.mayStillServe('c', 7500)).toBe(false)
  })

  it('a downed owner (not yet removed) keeps its shards; a leaving one hands them over at once', () => {
    const a = new ShardOwnership('a', 2, 5000)
    a.members(
      [
        { uid: 'a', present: true },
        { uid: 'c', present: true },
      ],
      0,
    )
    a.adopt(table(1, 'a', 'c'), 0)
    const decider = new TableDecider(2, 1)
    // (300 ms on: another decider's table is left alone for FOREIGN_TABLE_HOLDOFF after it arrives.)
    expect(decider.next(a, ['a'], 'a', 300, new Set(['c']))).toBeUndefined()
    expect(decider.next(a, ['a'], 'a', 300)?.owners).toEqual(['a', 'a'])
  })

  it('two members that each believe they lead do not trade tables at network speed: another decider’s table is left alone for a tick (found by the cluster simulator)', () => {
    // a sees c up, b does not yet: each would "correct" the other's table at once, for as long as
    // both believe they lead. Tables and releases travel 1 ms, as the plugin sends them.
    const uids = ['a', 'b', 'c'] as const
    type Uid = (typeof uids)[number]
    const own = Object.fromEntries(uids.map((u) => [u, new ShardOwnership(u, 8, 5000)])) as Record<Uid, ShardOwnership>
    for (const o of Object.values(own))
      o.members(
        [...uids].map((uid) => ({ uid, present: true })),
        0,
      )
    const deciders = { a: new TableDecider(8, 8), b: new TableDecider(8, 8) }
    const hosts = { a: ['a', 'b', 'c'], b: ['a', 'b'] }
    const inFlight: { at: number; to: Uid; run: (now: number) => void }[] = []
    const apply = (self: Uid, ds: readonly OwnershipDirective[], now: number): void => {
      for (const d of ds) {
        // Nothing active here: a sealed shard is drained at once.
        if (d.kind === 'seal') for (const shard of d.shards) apply(self, own[self].drained(shard, now), now)
        if (d.kind !== 'release' || !own[self].release) continue
        const r = own[self].release!
        for (const to of uids)
          if (to !== self) inFlight.push({ at: now + 1, to, run: (t) => apply(to, own[to].released(self, r.table, [...r.draining], t), t) })
      }
    }
    let made = 0
    for (let now = 0; now < 1000; now++) {
      for (const m of inFlight.filter((x) => x.at <= now)) m.run(now)
      inFlight.splice(0, inFlight.length, ...inFlight.filter((x) => x.at > now))
      for (const self of ['a', 'b'] as const) {
        const next = deciders[self].next(own[self], hosts[self], self, now)
        if (!next) continue
        made++
        apply(self, own[self].adopt(next, now), now)
        for (const to of uids) if (to !== self) inFlight.push({ at: now + 1, to, run: (t) => apply(to, own[to].adopt(next, t), t) })
      }
    }
    // Without the hold-off they trade a table every millisecond or two: 668 in this second.
    expect(made).toBeGreaterThan(2)
    expect(made).toBeLessThanOrEqual(12)
  })

  it('readyToHost: not before the node is up; then once it heard from every other present member, or LINK_WAIT after it came up', () => {
    const heard = new Set<string>(['a'])
    const from = (uid: string): boolean => heard.has(uid)
    expect(readyToHost(['a'], from, undefined, 10_000)).toBe(false) // not up yet
    expect(readyToHost([], from, 100, 100)).toBe(true) // alone: at once
    expect(readyToHost(['a', 'b'], from, 100, 100 + LINK_WAIT - 1)).toBe(false) // b not heard from, still waiting
    expect(readyToHost(['a', 'b'], from, 100, 100 + LINK_WAIT)).toBe(true) // waited long enough
    heard.add('b')
    expect(readyToHost(['a', 'b'], from, 100, 101)).toBe(true)
  })

  it('placementGroup: members with the role, removed ones absent; with leases, removed ones count until their lease is known expired', () => {
    const ms = [member('a', 'up', ['players']), member('b', 'up'), member('c', 'removed', ['players']), member('d', 'down', ['players'])]
    expect(placementGroup(ms, 'players', 'a')).toEqual([
      { uid: 'a', present: true },
      { uid: 'c', present: false },
      { uid: 'd', present: true },
    ])
    const pending = new Set<string>(['gone-long-ago'])
    const group = placementGroup(ms, 'players', 'a', (uid) => uid !== 'c', pending)
    expect(group).toContainEqual({ uid: 'c', present: true })
    expect(group).toContainEqual({ uid: 'gone-long-ago', present: true })
    expect([...pending].sort()).toEqual(['c', 'gone-long-ago'])
  })

  it('ServingConfirmation: first, lapsed, again; confirmations from before a lapse do not count; asks only when the last answer ran out', () => {
    const c = new ServingConfirmation(4000)
    let until = 0
    let asked: number[] = []
    const query = (window: number, notBefore: number): number => {
      expect(window).toBe(4000)
      asked.push(notBefore)
      return until
    }
    expect(c.check(100, query)).toBe(false)
    expect(c.change).toBeUndefined() // never confirmed: nothing lapsed
    until = 5000
    expect(c.check(200, query)).toBe(true)
    expect(c.change).toBe('first')
    asked = []
    expect(c.check(4000, query)).toBe(true) // cached until 5000
    expect(asked).toEqual([])
    until = 4500
    expect(c.wouldServe(6000, () => 0)).toBe(false)
    expect(c.check(6000, query)).toBe(false)
    expect(c.change).toBe('lapsed')
    until = 9000
    expect(c.check(6100, query)).toBe(true)
    expect(c.change).toBe('again')
    expect(asked.at(-1)).toBe(6000) // only confirmations since the lapse
    expect(new ServingConfirmation(4000, false).check(1e9, () => 0)).toBe(true)
    // A fence: what was confirmed before it no longer counts, even inside the cached window.
    expect(c.lapse(7000)).toBe(true)
    expect(c.change).toBe('lapsed')
    expect(c.check(7100, () => 0)).toBe(false)
    expect(c.lapse(7200)).toBe(false) // not confirmed: nothing to lapse
  })
})
