/**
 * ReachabilityHistory and the self-join wait, pure, on explicit times: unreachable-since and the
 * view's stability, leaving members that are gone rather than unreachable, removed members
 * forgotten after a minute and ignored for a day.
 */
import { describe, expect, it } from 'vitest'
import { FORGET_REMOVED_AFTER, FORGOTTEN_TTL, ReachabilityHistory, waitingForOthers } from '../src/cluster/ReachabilityHistory.ts'

describe('ReachabilityHistory', () => {
  it('notes since when a member is unreachable; only a change restarts the view', () => {
    const h = new ReachabilityHistory(0)
    expect(h.report('b', true, false, 100)).toBe('none')
    expect(h.viewChangedAt).toBe(0)
    expect(h.report('b', false, false, 1000)).toBe('reachability')
    expect(h.report('b', false, false, 2000)).toBe('none') // still unreachable: since 1000
    expect(h.unreachableSince.get('b')).toBe(1000)
    expect(h.viewChangedAt).toBe(1000)
    expect([h.isUnreachable('b'), h.notCutOff('b')]).toEqual([true, false])
    expect(h.report('b', true, false, 3000)).toBe('reachability')
    expect([h.isUnreachable('b'), h.notCutOff('b'), h.viewChangedAt]).toEqual([false, true, 3000])
    h.statusChanged(4000)
    expect(h.viewChangedAt).toBe(4000)
  })

  it('a leaving member that SWIM no longer sees is gone, not unreachable, and does not restart the view', () => {
    const h = new ReachabilityHistory(0)
    h.report('c', false, false, 500)
    expect(h.report('c', false, true, 900)).toBe('presence')
    expect([h.isUnreachable('c'), h.notCutOff('c'), h.viewChangedAt]).toEqual([false, false, 500])
    expect(h.report('c', true, true, 950)).toBe('presence')
    expect(h.notCutOff('c')).toBe(true)
  })

  it('forgets a removed member a minute after its removal, and ignores it for a day', () => {
    const h = new ReachabilityHistory(0)
    h.report('d', false, false, 10)
    h.removed('d', 1000)
    expect(h.forgetDue(1000 + FORGET_REMOVED_AFTER - 1)).toEqual([])
    expect(h.forgetDue(1000 + FORGET_REMOVED_AFTER)).toEqual(['d'])
    expect([h.isForgotten('d'), h.isUnreachable('d')]).toEqual([true, false])
    expect(h.forgetDue(1000 + FORGET_REMOVED_AFTER + 10)).toEqual([]) // once
    h.forgetDue(1000 + FORGET_REMOVED_AFTER + FORGOTTEN_TTL + 1)
    expect(h.isForgotten('d')).toBe(false)
  })
})

describe('waitingForOthers', () => {
  const base = { hasProviders: true, foundNoOne: false, alone: true, startedAt: 0, now: 500, selfJoinAfter: 2000 }
  it('a lone node with somewhere to join waits until selfJoinAfter, unless discovery found no one or it is not alone', () => {
    expect(waitingForOthers(base)).toBe(true)
    expect(waitingForOthers({ ...base, now: 2000 })).toBe(false)
    expect(waitingForOthers({ ...base, foundNoOne: true })).toBe(false)
    expect(waitingForOthers({ ...base, hasProviders: false })).toBe(false)
    expect(waitingForOthers({ ...base, alone: false })).toBe(false)
  })

  it('nodes that are not in a cluster yet form one only around the lowest listed address (found by the cluster simulator)', () => {
    // Two nodes restarted while cut off from the lowest seed met each other: they wait, together.
    const together = { ...base, alone: false, unformed: true, now: 60_000 }
    expect(waitingForOthers({ ...together, mayFormAlone: false })).toBe(true)
    // The lowest address forms a cluster with those that reached it at once, alone only after selfJoinAfter.
    expect(waitingForOthers({ ...together, mayFormAlone: true, now: 100 })).toBe(false)
    expect(waitingForOthers({ ...base, mayFormAlone: true, now: 100 })).toBe(true)
    // In a cluster already: never waits.
    expect(waitingForOthers({ ...together, unformed: false, mayFormAlone: false })).toBe(false)
  })
})
