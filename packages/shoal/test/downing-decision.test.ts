/**
 * The leader's downing decision as a pure function (DowningDecision.ts): talking members are not
 * unreachable, nothing happens before the view has been stable for stableAfter, and the
 * confirmation rule: a minority whose other-side members SWIM has not probed yet must not believe
 * it is the majority. With the rule off, the same view downs the real majority (the split brain
 * the rule was made for).
 */
import { describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/actor/ClusterNode.ts'
import { keepMajority } from '../src/cluster/Downing.ts'
import { type DowningInput, decideDowning, indirectDecisionConfirmed } from '../src/cluster/DowningDecision.ts'
import type { ClusterMember } from '../src/cluster/Member.ts'

const node = (i: number): ClusterNode => ({ endpoint: { name: `n${i}`, host: '127.0.0.1', port: 7000 + i }, uid: `u${i}` })
const up = (i: number, reachable = true): ClusterMember => ({
  node: node(i),
  status: 'up',
  upNumber: i + 1,
  roles: [],
  reachability: reachable ? 'reachable' : 'unreachable',
})
const strategy = keepMajority(3000)

/**
 * Five members; this node (u0) leads its side {u0, u1} of a partition that began at t=10,000: u2
 * is already unreachable; u3 and u4 are on the other side too, but SWIM has not probed them yet
 * (still reachable, last heard at 9,000: before the trouble). At t=14,000 the view has been stable
 * for 4 s.
 */
function minority(overrides: Partial<DowningInput> = {}): DowningInput {
  const members = [up(0), up(1), up(2, false), up(3), up(4)]
  return {
    self: 'u0',
    now: 14_000,
    viewChangedAt: 10_000,
    members,
    unreachableSince: new Map([['u2', 10_000]]),
    talking: new Set(['u0', 'u1', 'u3', 'u4']),
    lastHeard: new Map([
      ['u1', 13_900],
      ['u3', 9_000],
      ['u4', 9_000],
    ]),
    ...overrides,
  }
}

describe('decideDowning', () => {
  it('waits while every present member talks to this node, and until the view has been stable for stableAfter', () => {
    expect(decideDowning(minority({ talking: new Set(['u0', 'u1', 'u2', 'u3', 'u4']) }), strategy)).toEqual({ kind: 'wait', reason: 'all-talking' })
    expect(decideDowning(minority({ now: 12_000 }), strategy)).toEqual({ kind: 'wait', reason: 'unstable' })
  })

  it('a minority that still counts unprobed members of the other side waits (confirmation); without the rule it downs them', () => {
    expect(decideDowning(minority(), strategy)).toEqual({ kind: 'wait', reason: 'unconfirmed' })
    // The split brain the rule prevents: {u0, u1} believe they have four of five and down u2.
    expect(decideDowning(minority({ confirm: false }), strategy)).toEqual({ kind: 'down', members: ['u2'] })
  })

  it('once the others are known unreachable, the minority downs itself at once (no confirmation needed)', () => {
    const outcome = decideDowning(
      minority({
        talking: new Set(['u0', 'u1']),
        unreachableSince: new Map([
          ['u2', 10_000],
          ['u3', 10_500],
          ['u4', 10_500],
        ]),
      }),
      strategy,
    )
    expect(outcome).toEqual({ kind: 'down', members: ['u0', 'u1'] })
  })

  it('a minority downs only the members of its side it heard from since the view changed (found by the cluster simulator)', () => {
    // u4 still looks reachable but was last heard before the view changed: it may be on the other
    // side by now, where a down of it would remove a live member behind its back.
    const outcome = decideDowning(
      minority({
        members: [up(0), up(1, false), up(2, false), up(3, false), up(4)],
        talking: new Set(['u0', 'u4']),
        viewChangedAt: 10_500,
        unreachableSince: new Map([
          ['u1', 10_500],
          ['u2', 10_000],
          ['u3', 10_500],
        ]),
        lastHeard: new Map([['u4', 10_200]]),
      }),
      strategy,
    )
    expect(outcome).toEqual({ kind: 'down', members: ['u0'] })
  })

  it('a majority whose members were all heard since the trouble began downs the unreachable side', () => {
    const outcome = decideDowning(
      minority({
        lastHeard: new Map([
          ['u1', 13_900],
          ['u3', 13_000],
          ['u4', 12_000],
        ]),
      }),
      strategy,
    )
    expect(outcome).toEqual({ kind: 'down', members: ['u2'] })
  })

  it('a member heard since the trouble began but not since the view last changed is not counted (found by the cluster simulator)', () => {
    // The trouble began at 10,000 (u1 and u2 unreachable). At 12,000 the partition changed shape:
    // u4's answers came back (the view changed) while u3 was cut off, last heard at 11,900; SWIM has
    // not suspected u3 yet. At 15,000 the view has been stable for 3 s: counting u3, {u0, u3, u4}
    // would be three of five and down u1 and u2, but u3 is on their side now.
    const input = minority({
      now: 15_000,
      viewChangedAt: 12_000,
      members: [up(0), up(1, false), up(2, false), up(3), up(4)],
      unreachableSince: new Map([
        ['u1', 10_000],
        ['u2', 10_000],
      ]),
      talking: new Set(['u0', 'u3', 'u4']),
      lastHeard: new Map([
        ['u3', 11_900],
        ['u4', 14_800],
      ]),
    })
    expect(decideDowning(input, strategy)).toEqual({ kind: 'wait', reason: 'unconfirmed' })
    // Heard after the change (a heartbeat sent then was answered), it counts, and the majority decides.
    expect(decideDowning({ ...input, lastHeard: new Map([...input.lastHeard, ['u3', 14_700]]) }, strategy)).toEqual({
      kind: 'down',
      members: ['u1', 'u2'],
    })
  })

  it('a member that talks (heartbeats answered) is not counted unreachable, even if SWIM says so', () => {
    const members = [up(0), up(1), up(2, false)]
    const outcome = decideDowning(
      {
        self: 'u0',
        now: 20_000,
        viewChangedAt: 10_000,
        members,
        unreachableSince: new Map([['u2', 10_000]]),
        talking: new Set(['u0', 'u1', 'u2']),
        lastHeard: new Map(),
      },
      strategy,
    )
    expect(outcome).toEqual({ kind: 'wait', reason: 'all-talking' })
  })

  it('an unreachability of a member removed before the trouble does not date it back (found by the cluster simulator)', () => {
    // u5 crashed at 1,000 and was removed (kept a minute before it is forgotten); the partition
    // began at 10,000. u3 and u4 were last heard at 9,000: after u5's crash, before the partition.
    const removed: ClusterMember = { ...up(5, false), status: 'removed' }
    const input = minority({
      members: [up(0), up(1), up(2, false), up(3), up(4), removed],
      unreachableSince: new Map([
        ['u5', 1_000],
        ['u2', 10_000],
      ]),
    })
    expect(decideDowning(input, strategy)).toEqual({ kind: 'wait', reason: 'unconfirmed' })
  })

  it('a member this side downed whose down the others never saw counts on their side (found by the cluster simulator)', () => {
    // u4 was paused; this node downed it just before a partition cut off u2 and u3, who never saw
    // the down and still count u4 up. Without u4 this side {u0, u1} ties {u2, u3} and the lowest
    // address would keep it; counting u4 over there, it loses.
    const members = [up(0), up(1), up(2, false), up(3, false), { ...up(4, false), status: 'down' as const }]
    const input: DowningInput = {
      self: 'u0',
      now: 20_000,
      viewChangedAt: 10_000,
      members,
      unreachableSince: new Map([
        ['u2', 10_000],
        ['u3', 10_000],
      ]),
      talking: new Set(['u0', 'u1']),
      lastHeard: new Map([['u1', 19_000]]),
    }
    expect(decideDowning(input, strategy)).toEqual({ kind: 'down', members: ['u2', 'u3'] })
    const unseenDowns = [members[4]!]
    expect(decideDowning({ ...input, unseenDowns }, strategy)).toEqual({ kind: 'wait', reason: 'unconfirmed' })
    // Unconfirmed for another stableAfter: this side downs itself rather than wait for ever.
    expect(decideDowning({ ...input, unseenDowns, unconfirmedFor: 3000 }, strategy)).toEqual({ kind: 'down', members: ['u0', 'u1'] })
  })

  it('never downs a member that is not present (already down or removed)', () => {
    const members = [up(0), up(1), up(2), { ...up(3, false), status: 'down' as const }]
    const outcome = decideDowning(
      {
        self: 'u0',
        now: 20_000,
        viewChangedAt: 10_000,
        members,
        unreachableSince: new Map([['u3', 10_000]]),
        talking: new Set(['u0', 'u1', 'u2']),
        lastHeard: new Map([
          ['u1', 19_000],
          ['u2', 19_000],
        ]),
      },
      strategy,
    )
    expect(outcome).toEqual({ kind: 'wait', reason: 'all-talking' })
  })

  it('an indirect downing that keeps this side needs the confirmation rule too (found by the cluster simulator)', () => {
    // Seed 80 of the partition schedules: u1 leads {u1, u2, u4} and downs u0 and u3; u2 is cut off
    // before it hears of those downs, and SWIM still counts it alive (heartbeats stalled: the
    // indirect path). Cutting u2 off leaves {u1, u4}: a majority of the three members u1 still
    // counts, but u0 and u3 are up over there, where u2 never saw their down.
    const down = (i: number): ClusterMember => ({ ...up(i, false), status: 'down' })
    const view = [down(0), up(1), up(2, false), down(3), up(4)]
    const input = { self: 'u1', lastHeard: new Map([['u4', 14_900]]), unseenDowns: [down(0), down(3)] }
    expect(indirectDecisionConfirmed(input, view, 12_000, 3000, strategy)).toBe(false)
    // Once every present member has seen those downs, the three that are left decide alone.
    expect(indirectDecisionConfirmed({ ...input, unseenDowns: [] }, view, 12_000, 3000, strategy)).toBe(true)
    // A member not heard from since the observations changed counts on the other side as well.
    const five = [up(0), up(1), up(2, false), up(3), up(4)]
    const heard = new Map([
      ['u0', 14_000],
      ['u3', 11_000],
      ['u4', 14_900],
    ])
    expect(indirectDecisionConfirmed({ self: 'u1', lastHeard: heard, unseenDowns: [] }, five, 12_000, 3000, strategy)).toBe(true)
    expect(indirectDecisionConfirmed({ self: 'u1', lastHeard: heard, unseenDowns: [] }, five, 14_500, 3000, strategy)).toBe(false)
  })
})
