/**
 * The singleton's allocation decision as a pure function of one node's view: oldest host, roles,
 * hand-over, the margin after a down, fencing on the losing side of a partition.
 */

import { type ClusterMember, keepMajority, noDowning } from 'shoal'
import { describe, expect, it } from 'vitest'
import { type AllocationSettings, type AllocationView, allocate, DownTracker, leaderMember, oldestMember } from '../src/singleton/Allocation.ts'

const member = (i: number, over: Partial<ClusterMember> = {}): ClusterMember => ({
  node: { endpoint: { name: `n${i}`, host: '127.0.0.1', port: 7000 + i }, uid: i.toString(16).padStart(16, '0') },
  status: 'up',
  upNumber: i,
  roles: [],
  reachability: 'reachable',
  ...over,
})
const uid = (i: number): string => member(i).node.uid

const settings: AllocationSettings = { role: undefined, strategy: oldestMember, downing: keepMajority(), margin: 3000, fenceAfter: 1000 }
const view = (self: number, members: ClusterMember[], over: Partial<AllocationView> = {}): AllocationView => ({
  self: uid(self),
  members,
  leader: undefined,
  downSince: new Map(),
  now: 10_000,
  hosting: false,
  listedElsewhere: [],
  fencedFor: 5000,
  confirmed: true,
  ...over,
})

describe('singleton allocation', () => {
  it('hosts on the oldest up member; everyone else forwards there; younger joiners do not move it', () => {
    const ms = [member(3), member(1), member(2), member(9, { status: 'joining', upNumber: 0 })]
    expect(allocate(view(1, ms), settings)).toEqual({ kind: 'host' })
    expect(allocate(view(2, ms), settings)).toMatchObject({ kind: 'remote', host: { upNumber: 1 } })
    expect(allocate(view(2, [...ms, member(0, { upNumber: 10 })]), settings)).toMatchObject({ kind: 'remote', host: { upNumber: 1 } })
  })

  it('respects the role, and waits when nobody has it', () => {
    const ms = [member(1), member(2, { roles: ['lobby'] }), member(3, { roles: ['lobby'] })]
    const lobby = { ...settings, role: 'lobby' }
    expect(allocate(view(2, ms), lobby)).toEqual({ kind: 'host' })
    expect(allocate(view(1, ms), lobby)).toMatchObject({ kind: 'remote', host: { upNumber: 2 } })
    expect(allocate(view(1, ms), { ...settings, role: 'none' })).toEqual({ kind: 'wait', reason: 'no-candidate' })
  })

  it('an unreachable host keeps it until downed; the successor then waits out the margin', () => {
    const unreachable = [member(1, { reachability: 'unreachable' }), member(2), member(3)]
    expect(allocate(view(2, unreachable), settings)).toMatchObject({ kind: 'remote', host: { upNumber: 1 } })
    // Down but not yet removed: some reachable member may not have seen the down, and confirm the old host.
    const down = [member(1, { status: 'down', reachability: 'unreachable' }), member(2), member(3)]
    expect(allocate(view(2, down, { now: 1e9 }), settings)).toEqual({ kind: 'wait', reason: 'margin' })
    // Removed (everyone reachable saw the down): the margin runs from when this node saw the removal.
    const downed = [member(1, { status: 'removed', reachability: 'unreachable' }), member(2), member(3)]
    const downSince = new Map([[uid(1), 9000]])
    expect(allocate(view(2, downed, { downSince }), settings)).toEqual({ kind: 'wait', reason: 'margin', until: 12_000 })
    expect(allocate(view(2, downed, { downSince, now: 12_000 }), settings)).toEqual({ kind: 'host' })
    expect(allocate(view(3, downed, { downSince }), settings)).toMatchObject({ kind: 'remote', host: { upNumber: 2 } })
  })

  it('hand-over: the successor waits while the old host is leaving, and starts once it is exiting', () => {
    expect(allocate(view(2, [member(1, { status: 'leaving' }), member(2), member(3)]), settings)).toEqual({ kind: 'wait', reason: 'hand-over' })
    expect(allocate(view(1, [member(1, { status: 'leaving' }), member(2)]), settings)).toMatchObject({ kind: 'remote', host: { upNumber: 2 } })
    expect(allocate(view(2, [member(1, { status: 'exiting' }), member(2), member(3)]), settings)).toEqual({ kind: 'host' })
    // A running instance is kept whatever else is leaving or was downed.
    expect(allocate(view(2, [member(2), member(3, { status: 'leaving' })], { hosting: true }), settings)).toEqual({ kind: 'host' })
  })

  it('fencing: a host on the minority side stops, the majority side does not', () => {
    const fromMinority = [member(1), member(2, { reachability: 'unreachable' }), member(3, { reachability: 'unreachable' })]
    expect(allocate(view(1, fromMinority, { hosting: true }), settings)).toEqual({ kind: 'wait', reason: 'fenced' })
    // A blip shorter than fenceAfter keeps the instance (and its in-memory state).
    expect(allocate(view(1, fromMinority, { hosting: true, fencedFor: 400 }), settings)).toEqual({ kind: 'host' })
    const fromMajority = [member(1, { reachability: 'unreachable' }), member(2), member(3)]
    expect(allocate(view(2, fromMajority), settings)).toMatchObject({ kind: 'remote', host: { upNumber: 1 } })
    // With downing disabled nothing fences (and nothing is safe: documented).
    expect(allocate(view(1, fromMinority, { hosting: true }), { ...settings, downing: noDowning() })).toEqual({ kind: 'host' })
    // A tie keeps the side with the lowest address (keep-majority): the host there keeps it.
    const tie = [member(1), member(2), member(3, { reachability: 'unreachable' }), member(4, { reachability: 'unreachable' })]
    expect(allocate(view(1, tie, { hosting: true }), settings)).toEqual({ kind: 'host' })
  })

  it('a node that is down fences itself (an operator downed it, or its side did)', () => {
    expect(allocate(view(1, [member(1, { status: 'down' }), member(2), member(3)], { hosting: true, fencedFor: 0 }), settings)).toEqual({
      kind: 'wait',
      reason: 'fenced',
    })
  })

  it('the leader strategy follows the leader, but never starts while another node lists an instance', () => {
    const ms = [member(1), member(2), member(3)]
    expect(allocate(view(3, ms, { leader: uid(3) }), { ...settings, strategy: leaderMember })).toEqual({ kind: 'host' })
    // The old leader (1) is merely unreachable and still lists its instance: 3 waits.
    const moved = [member(1, { reachability: 'unreachable' }), member(2), member(3)]
    expect(allocate(view(3, moved, { leader: uid(3), listedElsewhere: [uid(1)] }), { ...settings, strategy: leaderMember })).toEqual({
      kind: 'wait',
      reason: 'instance-elsewhere',
    })
    expect(allocate(view(3, ms, { leader: undefined }), { ...settings, strategy: leaderMember })).toMatchObject({ kind: 'remote', host: { upNumber: 1 } })
  })

  it('the down tracker: a graceful leave gets no margin; a downed member counts from its removal', () => {
    const t = new DownTracker()
    t.observe([member(1, { status: 'leaving' }), member(2), member(3)], 1)
    t.observe([member(1, { status: 'removed' }), member(2, { status: 'down' }), member(3, { status: 'removed' })], 2)
    expect(t.since.has(uid(1))).toBe(false) // left: it stopped its instance before exiting
    expect(t.since.has(uid(2))).toBe(false) // down, not yet removed: allocate waits without a deadline
    expect(t.since.get(uid(3))).toBe(2) // removed without being seen leaving: may have crashed
    t.observe([member(2, { status: 'removed' })], 9)
    expect(t.since.get(uid(2))).toBe(9)
    t.observe([member(2, { status: 'removed' })], 12)
    expect(t.since.get(uid(2))).toBe(9) // the first sighting counts
  })

  it('a node its side does not confirm does not host, whatever its own view says; it still forwards', () => {
    const ms = [member(1), member(2), member(3)]
    expect(allocate(view(1, ms, { confirmed: false }), settings)).toEqual({ kind: 'wait', reason: 'unconfirmed' })
    expect(allocate(view(1, ms, { confirmed: false, hosting: true }), settings)).toEqual({ kind: 'wait', reason: 'unconfirmed' })
    expect(allocate(view(2, ms, { confirmed: false }), settings)).toMatchObject({ kind: 'remote', host: { upNumber: 1 } })
  })
})
