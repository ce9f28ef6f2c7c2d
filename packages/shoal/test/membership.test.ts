/**
 * Cluster membership as pure functions: version vectors, member and gossip merging, convergence,
 * the leader and its actions, downing strategies and the gossip codec. No I/O, no clock.
 */
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/actor/ClusterNode.ts'
import {
  type DowningStrategy,
  type DowningView,
  downAll,
  downingFromName,
  keepMajority,
  keepOldest,
  noDowning,
  staticQuorum,
  timeoutDowning,
} from '../src/cluster/Downing.ts'
import {
  clusterMeeting,
  emptyGossip,
  type GossipState,
  isConverged,
  leaderActions,
  leaderOf,
  mergeGossip,
  mergeMember,
  statusChanges,
  updateMember,
} from '../src/cluster/Gossip.ts'
import { decodeGossip, encodeGossip, GossipDecodeError } from '../src/cluster/GossipCodec.ts'
import { compareAddress, laterStatus, type Member, type MembershipStatus, STATUS_RANK } from '../src/cluster/Member.ts'
import { compareVersions, incrementVersion, mergeVersions, type Ordering, type VersionVector } from '../src/cluster/VersionVector.ts'
import { ConfigError } from '../src/errors.ts'

// ── fixtures ─────────────────────────────────────────────────────────────────

const STATUSES: readonly MembershipStatus[] = ['joining', 'up', 'leaving', 'exiting', 'down', 'removed']

/** The uid of node i: 16 lower-case hex digits. */
const uidOf = (i: number): string => (0xc0de0000 + i).toString(16).padStart(16, '0')
/** Node i: by default 10.0.0.1:(7000 + i), so address order follows i. */
const nodeOf = (i: number, host = '10.0.0.1', port = 7000 + i): ClusterNode => ({ endpoint: { name: 'shoal', host, port }, uid: uidOf(i) })
const mem = (i: number, status: MembershipStatus, upNumber = 0, node: ClusterNode = nodeOf(i), roles: readonly string[] = []): Member => ({
  node,
  status,
  upNumber,
  roles,
})
const vv = (entries: Record<string, number>): Map<string, number> => new Map(Object.entries(entries))
const state = (members: readonly Member[], version: VersionVector, seen: readonly string[]): GossipState => ({
  members: new Map(members.map((m) => [m.node.uid, m])),
  version,
  seen: new Set(seen),
})
const everyone = (): boolean => true
const nothingForgotten = (): boolean => false
const reachableExcept =
  (...unreachable: string[]) =>
  (uid: string): boolean =>
    !unreachable.includes(uid)
const statusesOf = (g: GossipState): Record<string, MembershipStatus> => Object.fromEntries([...g.members].map(([uid, m]) => [uid, m.status]))
const upNumbersOf = (g: GossipState): Record<string, number> => Object.fromEntries([...g.members].map(([uid, m]) => [uid, m.upNumber]))
const sorted = (xs: Iterable<string>): string[] => [...xs].sort()

const U = [0, 1, 2, 3, 4, 5, 6, 7].map(uidOf)
const [A, B, C, D] = U as [string, string, string, string]

// ── version vectors ──────────────────────────────────────────────────────────

describe('version vectors', () => {
  it('compares same, before, after and concurrent', () => {
    const cases: [Record<string, number>, Record<string, number>, Ordering][] = [
      [{}, {}, 'same'],
      [{ a: 1, b: 2 }, { b: 2, a: 1 }, 'same'],
      [{ a: 0 }, {}, 'same'],
      [{}, { a: 0 }, 'same'],
      [{ a: 1 }, { a: 2 }, 'before'],
      [{}, { a: 1 }, 'before'],
      [{ a: 1 }, { a: 1, b: 1 }, 'before'],
      [{ a: 2 }, { a: 1 }, 'after'],
      [{ a: 1 }, {}, 'after'],
      [{ a: 1, b: 1 }, { a: 1 }, 'after'],
      [{ a: 1 }, { b: 1 }, 'concurrent'],
      [{ a: 2, b: 1 }, { a: 1, b: 2 }, 'concurrent'],
      [{ a: 2 }, { a: 1, b: 1 }, 'concurrent'],
    ]
    for (const [a, b, expected] of cases) expect(compareVersions(vv(a), vv(b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(expected)
  })

  const vectorArb = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.nat(4)).map(vv)
  const mirror: Record<Ordering, Ordering> = { same: 'same', before: 'after', after: 'before', concurrent: 'concurrent' }

  it('compare(a, b) mirrors compare(b, a)', () => {
    fc.assert(
      fc.property(vectorArb, vectorArb, (a, b) => {
        expect(compareVersions(b, a)).toBe(mirror[compareVersions(a, b)])
      }),
    )
  })

  it('merge is the pointwise maximum, commutative, and dominates both inputs', () => {
    const a = vv({ a: 3, b: 1 })
    const b = vv({ b: 2, c: 5 })
    expect(mergeVersions(a, b)).toEqual(vv({ a: 3, b: 2, c: 5 }))
    expect(a).toEqual(vv({ a: 3, b: 1 })) // inputs untouched
    expect(b).toEqual(vv({ b: 2, c: 5 }))
    fc.assert(
      fc.property(vectorArb, vectorArb, (x, y) => {
        const m = mergeVersions(x, y)
        expect(compareVersions(m, mergeVersions(y, x))).toBe('same')
        expect(['same', 'after']).toContain(compareVersions(m, x))
        expect(['same', 'after']).toContain(compareVersions(m, y))
        for (const k of new Set([...x.keys(), ...y.keys()])) expect(m.get(k)).toBe(Math.max(x.get(k) ?? 0, y.get(k) ?? 0))
      }),
    )
  })

  it('increment bumps one entry (from 0 when absent) in a new vector', () => {
    const v = vv({ a: 1 })
    const w = incrementVersion(v, 'a')
    expect(w).toEqual(vv({ a: 2 }))
    expect(v).toEqual(vv({ a: 1 }))
    expect(incrementVersion(v, 'b')).toEqual(vv({ a: 1, b: 1 }))
    fc.assert(
      fc.property(vectorArb, fc.constantFrom('a', 'b', 'e'), (x, k) => {
        expect(compareVersions(incrementVersion(x, k), x)).toBe('after')
      }),
    )
  })
})

// ── members ──────────────────────────────────────────────────────────────────

describe('member merge', () => {
  it('statuses only move forward: joining < up < leaving < exiting < down < removed', () => {
    expect(STATUSES.map((s) => STATUS_RANK[s])).toEqual([0, 1, 2, 3, 4, 5])
    for (const [i, s] of STATUSES.entries()) {
      for (const [j, t] of STATUSES.entries()) {
        const later = STATUSES[Math.max(i, j)]
        expect(laterStatus(s, t)).toBe(later)
        expect(mergeMember(mem(0, s), mem(0, t)).status, `${s} + ${t}`).toBe(later)
      }
    }
  })

  it('keeps an up-number once assigned; the lowest non-zero wins when both are set', () => {
    expect(mergeMember(mem(0, 'up', 3), mem(0, 'joining', 0)).upNumber).toBe(3)
    expect(mergeMember(mem(0, 'joining', 0), mem(0, 'up', 3)).upNumber).toBe(3)
    expect(mergeMember(mem(0, 'up', 5), mem(0, 'up', 3)).upNumber).toBe(3)
    expect(mergeMember(mem(0, 'up', 3), mem(0, 'up', 5)).upNumber).toBe(3)
    expect(mergeMember(mem(0, 'joining', 0), mem(0, 'joining', 0)).upNumber).toBe(0)
    // A later status with no up-number does not erase the one we know.
    expect(mergeMember(mem(0, 'up', 4), mem(0, 'down', 0))).toMatchObject({ status: 'down', upNumber: 4 })
  })

  it('returns the first record itself when the second adds nothing', () => {
    const a = mem(0, 'leaving', 2, nodeOf(0), ['web'])
    expect(mergeMember(a, mem(0, 'up', 2))).toBe(a)
    expect(mergeMember(a, a)).toBe(a)
  })

  it('updateMember never moves a status back, and a real change is a new version seen only by self', () => {
    const g = updateMember(emptyGossip(), A, mem(1, 'up', 1))
    expect(g.version).toEqual(vv({ [A]: 1 }))
    expect(sorted(g.seen)).toEqual([A])
    expect(updateMember(g, A, mem(1, 'joining', 0))).toBe(g)
    expect(updateMember(g, A, mem(1, 'up', 1))).toBe(g)
    const h = updateMember({ ...g, seen: new Set([A, B]) }, B, mem(1, 'leaving', 0))
    expect(h.members.get(uidOf(1))).toMatchObject({ status: 'leaving', upNumber: 1 })
    expect(h.version).toEqual(vv({ [A]: 1, [B]: 1 }))
    expect(sorted(h.seen)).toEqual([B])
  })
})

// ── gossip merge ─────────────────────────────────────────────────────────────

describe('mergeGossip', () => {
  it("'same' version: unions the seen sets, keeping our members", () => {
    const local = state([mem(0, 'up', 1), mem(1, 'joining')], vv({ [A]: 2 }), [A])
    const remote = state([mem(0, 'up', 1), mem(1, 'joining')], vv({ [A]: 2 }), [B])
    const merged = mergeGossip(local, remote, C, nothingForgotten)
    expect(sorted(merged.seen)).toEqual(sorted([A, B, C]))
    expect(merged.members).toBe(local.members)
    expect(compareVersions(merged.version, local.version)).toBe('same')
  })

  it("'same' version with nothing new: returns the identical object", () => {
    const local = state([mem(0, 'up', 1), mem(1, 'up', 2)], vv({ [A]: 2, [B]: 1 }), [A, B])
    const remote = state([mem(0, 'up', 1), mem(1, 'up', 2)], vv({ [B]: 1, [A]: 2 }), [B])
    expect(mergeGossip(local, remote, A, nothingForgotten)).toBe(local)
    // Not yet seen by self: that is new.
    const unseen = state([mem(0, 'up', 1)], vv({ [A]: 1 }), [A])
    const merged = mergeGossip(unseen, unseen, B, nothingForgotten)
    expect(merged).not.toBe(unseen)
    expect(sorted(merged.seen)).toEqual(sorted([A, B]))
  })

  it('remote newer: adopts the remote members and version; seen = remote seen + self', () => {
    const local = state([mem(0, 'up', 1), mem(1, 'joining')], vv({ [A]: 1 }), [A, C])
    const remote = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'joining')], vv({ [A]: 2, [B]: 1 }), [B])
    const merged = mergeGossip(local, remote, A, nothingForgotten)
    expect(statusesOf(merged)).toEqual(statusesOf(remote))
    expect(upNumbersOf(merged)).toEqual(upNumbersOf(remote))
    expect(merged.version).toEqual(remote.version)
    expect(sorted(merged.seen)).toEqual(sorted([A, B])) // not C: C saw the old version
  })

  it('local newer: keeps ours (adding self to seen if missing)', () => {
    const local = state([mem(0, 'up', 1), mem(1, 'up', 2)], vv({ [A]: 3 }), [A])
    const remote = state([mem(0, 'up', 1), mem(1, 'joining')], vv({ [A]: 2 }), [A, B, C])
    expect(mergeGossip(local, remote, A, nothingForgotten)).toBe(local)
    const merged = mergeGossip(local, remote, D, nothingForgotten)
    expect(merged.members).toBe(local.members)
    expect(merged.version).toEqual(local.version)
    expect(sorted(merged.seen)).toEqual(sorted([A, D]))
  })

  it('concurrent: merges member by member, merges the vectors, seen = {self}', () => {
    const local = state([mem(0, 'up', 1), mem(1, 'joining'), mem(3, 'up', 0)], vv({ [A]: 2, [B]: 1 }), [A, B])
    const remote = state([mem(0, 'leaving', 1), mem(2, 'joining'), mem(3, 'up', 4), mem(1, 'joining')], vv({ [A]: 1, [B]: 2 }), [B, C])
    const merged = mergeGossip(local, remote, A, nothingForgotten)
    expect(statusesOf(merged)).toEqual({ [uidOf(0)]: 'leaving', [uidOf(1)]: 'joining', [uidOf(2)]: 'joining', [uidOf(3)]: 'up' })
    expect(merged.members.get(uidOf(3))?.upNumber).toBe(4)
    expect(merged.members.get(uidOf(0))?.upNumber).toBe(1)
    expect(merged.version).toEqual(vv({ [A]: 2, [B]: 2 }))
    expect(sorted(merged.seen)).toEqual([A])
    // Inputs untouched.
    expect(local.members.get(uidOf(0))?.status).toBe('up')
    expect(local.members.has(uidOf(2))).toBe(false)
  })

  it('drops forgotten uids from the members and the vector (newer and concurrent remote)', () => {
    const F = uidOf(9)
    const forgotten = (uid: string): boolean => uid === F
    const local = state([mem(0, 'up', 1)], vv({ [A]: 1 }), [A])
    // Remote newer, still carrying a member this node removed and forgot.
    const newer = state([mem(0, 'up', 1), mem(9, 'removed', 2), mem(1, 'joining')], vv({ [A]: 1, [F]: 3, [B]: 1 }), [B])
    const adopted = mergeGossip(local, newer, A, forgotten)
    expect(adopted.members.has(F)).toBe(false)
    expect(adopted.version.has(F)).toBe(false)
    expect(adopted.version).toEqual(vv({ [A]: 1, [B]: 1 }))
    expect(adopted.members.has(uidOf(1))).toBe(true)
    // Concurrent remote.
    const mine = state([mem(0, 'up', 1)], vv({ [A]: 2 }), [A])
    const concurrent = mergeGossip(mine, newer, A, forgotten)
    expect(concurrent.members.has(F)).toBe(false)
    expect(concurrent.version.has(F)).toBe(false)
    expect(concurrent.version).toEqual(vv({ [A]: 2, [B]: 1 }))
    // A remote that differs only by the forgotten entry is the same version: nothing comes back.
    const stale = state([mem(0, 'up', 1), mem(9, 'removed', 2)], vv({ [A]: 1, [F]: 3 }), [B])
    const same = mergeGossip(state([mem(0, 'up', 1)], vv({ [A]: 1 }), [A]), stale, A, forgotten)
    expect(same.members.has(F)).toBe(false)
    expect(same.version.has(F)).toBe(false)
  })

  // Property: states produced by a random history of updates, merges and leader actions on a few
  // nodes (so that one version always means one content, as in a real cluster).
  const HOLDERS = 3
  const SUBJECTS = 5
  type Op =
    | { kind: 'update'; at: number; who: number; status: MembershipStatus; upNumber: number }
    | { kind: 'merge'; at: number; from: number }
    | { kind: 'lead'; at: number }
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc
      .record({
        kind: fc.constant('update' as const),
        at: fc.nat(HOLDERS - 1),
        who: fc.nat(SUBJECTS - 1),
        status: fc.constantFrom(...STATUSES),
        upNumber: fc.nat(4),
      })
      // Up-numbers come with being up: a joining member has none.
      .map((op) => (op.status === 'joining' ? { ...op, upNumber: 0 } : op)),
    fc.record({ kind: fc.constant('merge' as const), at: fc.nat(HOLDERS - 1), from: fc.nat(HOLDERS - 1) }),
    fc.record({ kind: fc.constant('lead' as const), at: fc.nat(HOLDERS - 1) }),
  )

  function expectNoStatusGoesBack(before: GossipState, after: GossipState): void {
    for (const [uid, m] of before.members) {
      const now = after.members.get(uid)
      expect(now, `member ${uid} vanished`).toBeDefined()
      expect(STATUS_RANK[now!.status], `${uid}: ${m.status} → ${now!.status}`).toBeGreaterThanOrEqual(STATUS_RANK[m.status])
      if (m.upNumber !== 0) {
        expect(now!.upNumber).not.toBe(0)
        expect(now!.upNumber).toBeLessThanOrEqual(m.upNumber)
      }
    }
  }

  function run(ops: readonly Op[]): GossipState[] {
    const states: GossipState[] = Array.from({ length: HOLDERS }, () => emptyGossip())
    for (const op of ops) {
      const before = states[op.at]!
      const self = uidOf(op.at)
      let after: GossipState
      if (op.kind === 'update') after = updateMember(before, self, mem(op.who, op.status, op.upNumber))
      else if (op.kind === 'merge') after = mergeGossip(before, states[op.from]!, self, nothingForgotten)
      else after = leaderActions(before, { self, minMembers: 1, reachable: everyone }).gossip
      expectNoStatusGoesBack(before, after)
      states[op.at] = after
    }
    return states
  }

  it('property: merge(a, b) and merge(b, a) agree; merging twice changes nothing; no status goes back', () => {
    const kinds = new Set<Ordering>()
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const states = run(ops)
        for (let i = 0; i < HOLDERS; i++) {
          for (let j = 0; j < HOLDERS; j++) {
            const a = states[i]!
            const b = states[j]!
            kinds.add(compareVersions(a.version, b.version))
            const ab = mergeGossip(a, b, uidOf(i), nothingForgotten)
            const ba = mergeGossip(b, a, uidOf(j), nothingForgotten)
            expect(statusesOf(ab)).toEqual(statusesOf(ba))
            expect(upNumbersOf(ab)).toEqual(upNumbersOf(ba))
            expect(compareVersions(ab.version, ba.version)).toBe('same')
            // Idempotent: merging either input again is a no-op (the very same object).
            expect(mergeGossip(ab, b, uidOf(i), nothingForgotten)).toBe(ab)
            expect(mergeGossip(ab, a, uidOf(i), nothingForgotten)).toBe(ab)
            expect(mergeGossip(ab, ab, uidOf(i), nothingForgotten)).toBe(ab)
            expect(ab.seen.has(uidOf(i))).toBe(true)
            expectNoStatusGoesBack(a, ab)
            expectNoStatusGoesBack(b, ab)
          }
        }
      }),
      { numRuns: 300 },
    )
    // The generator does reach every case of the merge.
    expect(sorted(kinds)).toEqual(sorted(['same', 'before', 'after', 'concurrent']))
  })
})

// ── convergence ──────────────────────────────────────────────────────────────

describe('clusters formed apart', () => {
  const one = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'up', 3)], vv({ [A]: 3 }), [A])

  it('one cluster: views that differ only by joiners, removals or members the other has not heard of yet', () => {
    const later = state([...one.members.values(), mem(3, 'joining')], vv({ [A]: 4 }), [A])
    expect(clusterMeeting(one, later, nothingForgotten)).toBe('one-cluster')
    expect(clusterMeeting(later, one, nothingForgotten)).toBe('one-cluster')
    // A newcomer moved up here, before the other view heard of it: the other has nothing we lack.
    const grown = state([...one.members.values(), mem(3, 'up', 4)], vv({ [A]: 5 }), [A])
    expect(clusterMeeting(grown, one, nothingForgotten)).toBe('one-cluster')
    expect(clusterMeeting(one, grown, nothingForgotten)).toBe('one-cluster')
    // A fresh node that knows only itself, joining.
    expect(clusterMeeting(state([mem(5, 'joining')], vv({ [U[5]!]: 1 }), [U[5]!]), one, nothingForgotten)).toBe('one-cluster')
  })

  it('two clusters (each with up members the other never knew): the larger stays, a tie keeps the lowest address', () => {
    const island = state([mem(5, 'up', 1)], vv({ [U[5]!]: 2 }), [U[5]!])
    expect(clusterMeeting(island, one, nothingForgotten)).toBe('remote-stays')
    expect(clusterMeeting(one, island, nothingForgotten)).toBe('local-stays')
    const pairA = state([mem(0, 'up', 1), mem(1, 'up', 2)], vv({ [A]: 2 }), [A])
    const pairB = state([mem(4, 'up', 1), mem(5, 'up', 2)], vv({ [U[4]!]: 2 }), [U[4]!])
    expect(clusterMeeting(pairA, pairB, nothingForgotten)).toBe('local-stays')
    expect(clusterMeeting(pairB, pairA, nothingForgotten)).toBe('remote-stays')
  })

  it('members forgotten here are not news: a stale view of a removed member is not a second cluster', () => {
    const stale = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'up', 3), mem(6, 'up', 4)], vv({ [A]: 3 }), [A])
    const now = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'up', 3), mem(3, 'up', 5)], vv({ [A]: 6 }), [A])
    expect(clusterMeeting(now, stale, (uid) => uid === U[6])).toBe('one-cluster')
  })
})

describe('convergence', () => {
  const members = [mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'joining')]

  it('needs every present, reachable member in seen', () => {
    expect(isConverged(emptyGossip(), everyone)).toBe(true)
    expect(isConverged(state(members, vv({ [A]: 1 }), [A, B, C]), everyone)).toBe(true)
    expect(isConverged(state(members, vv({ [A]: 1 }), [A, B]), everyone)).toBe(false) // the joining one has not seen it
    expect(isConverged(state([...members, mem(3, 'leaving', 3)], vv({ [A]: 1 }), [A, B, C]), everyone)).toBe(false)
    expect(isConverged(state([...members, mem(3, 'exiting', 3)], vv({ [A]: 1 }), [A, B, C]), everyone)).toBe(false)
  })

  it('an unreachable member does not block', () => {
    expect(isConverged(state(members, vv({ [A]: 1 }), [A, C]), reachableExcept(B))).toBe(true)
    expect(isConverged(state(members, vv({ [A]: 1 }), [A, C]), reachableExcept(C))).toBe(false)
  })

  it('a down or removed member does not block', () => {
    expect(isConverged(state([...members, mem(3, 'down', 3)], vv({ [A]: 1 }), [A, B, C]), everyone)).toBe(true)
    expect(isConverged(state([...members, mem(3, 'removed', 3)], vv({ [A]: 1 }), [A, B, C]), everyone)).toBe(true)
  })
})

// ── leader ───────────────────────────────────────────────────────────────────

describe('leader', () => {
  const g = (ms: Member[]): GossipState => state(ms, vv({ [A]: 1 }), [])

  it('is the lowest address among reachable up or leaving members', () => {
    const members = [mem(2, 'up', 1), mem(1, 'leaving', 2), mem(3, 'up', 3), mem(0, 'joining')]
    expect(leaderOf(g(members), everyone)?.node.uid).toBe(B)
    // Exiting, down and removed members never lead, however low their address.
    const gone = [mem(0, 'exiting', 4), mem(1, 'down', 5), mem(2, 'removed', 6), mem(3, 'up', 1)]
    expect(leaderOf(g(gone), everyone)?.node.uid).toBe(D)
  })

  it('while none is up, is the lowest reachable joining member', () => {
    expect(leaderOf(g([mem(2, 'joining'), mem(1, 'joining'), mem(0, 'down', 1)]), everyone)?.node.uid).toBe(B)
    expect(leaderOf(g([mem(2, 'joining'), mem(1, 'joining')]), reachableExcept(B))?.node.uid).toBe(C)
    // Every up member unreachable: the reachable joining one leads.
    expect(leaderOf(g([mem(0, 'up', 1), mem(1, 'joining')]), reachableExcept(A))?.node.uid).toBe(B)
    expect(leaderOf(emptyGossip(), everyone)).toBeUndefined()
    expect(leaderOf(g([mem(0, 'up', 1)]), reachableExcept(A))).toBeUndefined()
  })

  it('skips unreachable members', () => {
    const members = [mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'up', 3)]
    expect(leaderOf(g(members), reachableExcept(A))?.node.uid).toBe(B)
    expect(leaderOf(g(members), reachableExcept(A, B))?.node.uid).toBe(C)
  })

  it('orders addresses by host, then by port as a number (9000 < 10000)', () => {
    const high = mem(0, 'up', 1, nodeOf(0, '127.0.0.1', 10000))
    const low = mem(1, 'up', 2, nodeOf(1, '127.0.0.1', 9000))
    expect(leaderOf(g([high, low]), everyone)?.node.uid).toBe(B)
    expect(leaderOf(g([low, high]), everyone)?.node.uid).toBe(B)
    expect(compareAddress(low.node, high.node)).toBeLessThan(0)
    expect(compareAddress(high.node, low.node)).toBeGreaterThan(0)
    // The host decides first, whatever the ports.
    const hostA = mem(2, 'up', 3, nodeOf(2, 'a.example', 60000))
    const hostB = mem(3, 'up', 4, nodeOf(3, 'b.example', 1))
    expect(leaderOf(g([hostB, hostA]), everyone)?.node.uid).toBe(C)
    // Same endpoint (a restarted node): the uid breaks the tie, consistently.
    expect(compareAddress(nodeOf(1, 'h', 1), nodeOf(2, 'h', 1))).toBeLessThan(0)
    expect(compareAddress(nodeOf(2, 'h', 1), nodeOf(1, 'h', 1))).toBeGreaterThan(0)
    expect(compareAddress(nodeOf(2, 'h', 1), nodeOf(2, 'h', 1))).toBe(0)
  })
})

// ── leader actions ───────────────────────────────────────────────────────────

describe('leader actions', () => {
  it('do nothing unless self is the leader', () => {
    const g = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'joining'), mem(3, 'down', 3)], vv({ [A]: 1 }), [A, B, C])
    const r = leaderActions(g, { self: B, minMembers: 1, reachable: everyone })
    expect(r.gossip).toBe(g)
    expect(r.removed).toEqual([])
    // The same state acted on by the leader does change.
    expect(leaderActions(g, { self: A, minMembers: 1, reachable: everyone }).gossip).not.toBe(g)
  })

  it('do nothing until converged', () => {
    const g = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'joining'), mem(3, 'exiting', 3)], vv({ [A]: 1 }), [A, B])
    const r = leaderActions(g, { self: A, minMembers: 1, reachable: everyone })
    expect(r.gossip).toBe(g)
    expect(r.removed).toEqual([])
  })

  it('move joining members up, numbering on from the highest up-number, in address order', () => {
    const joinLate = mem(5, 'joining', 0, nodeOf(5, '10.0.0.1', 10000))
    const joinEarly = mem(6, 'joining', 0, nodeOf(6, '10.0.0.1', 9000))
    const g = state([mem(0, 'up', 1), mem(1, 'leaving', 4), joinLate, joinEarly], vv({ [A]: 3, [B]: 1 }), [A, B, uidOf(5), uidOf(6)])
    const { gossip, removed } = leaderActions(g, { self: A, minMembers: 1, reachable: everyone })
    expect(removed).toEqual([])
    expect(gossip.members.get(uidOf(6))).toMatchObject({ status: 'up', upNumber: 5 })
    expect(gossip.members.get(uidOf(5))).toMatchObject({ status: 'up', upNumber: 6 })
    expect(gossip.members.get(A)).toMatchObject({ status: 'up', upNumber: 1 })
    expect(gossip.members.get(B)).toMatchObject({ status: 'leaving', upNumber: 4 })
    // A new version by the leader, seen only by it.
    expect(gossip.version).toEqual(vv({ [A]: 4, [B]: 1 }))
    expect(sorted(gossip.seen)).toEqual([A])
    expect(g.members.get(uidOf(5))?.status).toBe('joining') // input untouched
  })

  it('move nobody up while an up member has not been heard from lately (a leader woken from a pause; found by the cluster simulator)', () => {
    const g = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'joining')], vv({ [A]: 1 }), [A, B, C])
    // SWIM's view, stale after the pause, says B is alive; B has not answered a heartbeat lately.
    const stale = leaderActions(g, { self: A, minMembers: 1, reachable: everyone, heardLately: (uid) => uid !== B })
    expect(stale.gossip).toBe(g)
    // The joiner itself need not have answered yet; B must.
    const fresh = leaderActions(g, { self: A, minMembers: 1, reachable: everyone, heardLately: (uid) => uid !== C })
    expect(fresh.gossip.members.get(C)).toMatchObject({ status: 'up', upNumber: 3 })
  })

  it('remove a downed member only once every present member has seen the down, reachable or not (found by the cluster simulator)', () => {
    // B was counted on the leader's side when C was downed, and was cut off before it saw that.
    const g = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'down', 3)], vv({ [A]: 2 }), [A])
    const notB = (uid: string): boolean => uid !== B
    expect(leaderActions(g, { self: A, minMembers: 1, reachable: notB }).gossip).toBe(g)
    // Once B has seen it (back, or gossip reached it), C goes.
    const seenByB = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'down', 3)], vv({ [A]: 2 }), [A, B])
    expect(leaderActions(seenByB, { self: A, minMembers: 1, reachable: notB }).gossip.members.get(C)?.status).toBe('removed')
    // An exiting member handed over before it exited: it goes as soon as the reachable ones agree.
    const exiting = state([mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'exiting', 3)], vv({ [A]: 2 }), [A, C])
    expect(leaderActions(exiting, { self: A, minMembers: 1, reachable: notB }).gossip.members.get(C)?.status).toBe('removed')
  })

  it('minMembers 1: a lone joining node makes itself up with up-number 1', () => {
    const g = state([mem(0, 'joining')], vv({ [A]: 1 }), [A])
    const { gossip } = leaderActions(g, { self: A, minMembers: 1, reachable: everyone })
    expect(gossip.members.get(A)).toMatchObject({ status: 'up', upNumber: 1 })
    expect(gossip.version).toEqual(vv({ [A]: 2 }))
  })

  it('a forming cluster: every joining member goes up together, numbered 1, 2, 3 in address order', () => {
    const g = state([mem(2, 'joining'), mem(0, 'joining'), mem(1, 'joining')], vv({ [A]: 1, [B]: 1, [C]: 1 }), [A, B, C])
    const { gossip } = leaderActions(g, { self: A, minMembers: 3, reachable: everyone })
    expect(upNumbersOf(gossip)).toEqual({ [A]: 1, [B]: 2, [C]: 3 })
    expect(new Set(Object.values(statusesOf(gossip)))).toEqual(new Set(['up']))
  })

  it('minMembers 3 with 2 members: nothing', () => {
    const g = state([mem(0, 'joining'), mem(1, 'joining')], vv({ [A]: 1, [B]: 1 }), [A, B])
    const r = leaderActions(g, { self: A, minMembers: 3, reachable: everyone })
    expect(r.gossip).toBe(g)
    expect(r.removed).toEqual([])
  })

  it('move nobody up while any present member is unreachable (a partition must not grow a quorum)', () => {
    const g = state([mem(0, 'up', 1), mem(1, 'joining'), mem(2, 'joining')], vv({ [A]: 1 }), [A, C])
    const { gossip } = leaderActions(g, { self: A, minMembers: 1, reachable: reachableExcept(B) })
    expect(gossip.members.get(B)).toMatchObject({ status: 'joining', upNumber: 0 })
    expect(gossip.members.get(C)).toMatchObject({ status: 'joining', upNumber: 0 })
    // Once the unreachable one is down, the reachable joiner moves up.
    const downed = state([mem(0, 'up', 1), mem(1, 'down'), mem(2, 'joining')], vv({ [A]: 1 }), [A, C])
    const after = leaderActions(downed, { self: A, minMembers: 1, reachable: reachableExcept(B) }).gossip
    expect(after.members.get(C)).toMatchObject({ status: 'up', upNumber: 2 })
  })

  it('remove exiting and down members, and report them', () => {
    const exiting = mem(1, 'exiting', 2)
    const down = mem(2, 'down', 3)
    const g = state([mem(0, 'up', 1), exiting, down, mem(3, 'removed', 4)], vv({ [A]: 1 }), [A, B])
    const { gossip, removed } = leaderActions(g, { self: A, minMembers: 1, reachable: reachableExcept(C) })
    expect(statusesOf(gossip)).toEqual({ [A]: 'up', [B]: 'removed', [C]: 'removed', [D]: 'removed' })
    expect(removed.map((m) => m.node.uid).sort()).toEqual(sorted([B, C]))
    expect(removed).toContain(exiting)
    expect(removed).toContain(down)
    expect(gossip.version).toEqual(vv({ [A]: 2 }))
    expect(sorted(gossip.seen)).toEqual([A])
  })

  it('with nothing to do, return the same state', () => {
    const g = state([mem(0, 'up', 1), mem(1, 'leaving', 2), mem(2, 'removed', 3)], vv({ [A]: 1 }), [A, B])
    const r = leaderActions(g, { self: A, minMembers: 1, reachable: everyone })
    expect(r.gossip).toBe(g)
    expect(r.removed).toEqual([])
  })
})

// ── status changes ───────────────────────────────────────────────────────────

describe('statusChanges', () => {
  it('reports new members and changed statuses, nothing else', () => {
    const before = state([mem(0, 'up', 1), mem(1, 'joining'), mem(2, 'up', 2)], vv({ [A]: 1 }), [A])
    const after = state([mem(0, 'up', 1), mem(1, 'up', 3), mem(2, 'up', 2, nodeOf(2), ['web']), mem(3, 'joining')], vv({ [A]: 2 }), [A])
    const changes = statusChanges(before, after)
    expect(changes.map((c) => [c.member.node.uid, c.member.status, c.previous])).toEqual([
      [B, 'up', 'joining'],
      [D, 'joining', undefined],
    ])
    expect(changes[0]?.member).toBe(after.members.get(B))
    expect(statusChanges(after, after)).toEqual([])
    expect(statusChanges(emptyGossip(), before).map((c) => c.previous)).toEqual([undefined, undefined, undefined])
  })
})

// ── downing ──────────────────────────────────────────────────────────────────

/** The view from `self`: `mine` reachable (self among them), `theirs` unreachable. */
function partitionView(self: number, all: readonly Member[], mine: ReadonlySet<string>, unreachableFor = new Map<string, number>()): DowningView {
  return {
    self: uidOf(self),
    members: all.map((m) => ({ ...m, reachability: mine.has(m.node.uid) ? 'reachable' : 'unreachable' })),
    stableFor: 10_000,
    unreachableFor,
  }
}
const upMembers = (n: number): Member[] => Array.from({ length: n }, (_, i) => mem(i, 'up', i + 1))
const set = (...is: number[]): Set<string> => new Set(is.map(uidOf))
const decide = (s: DowningStrategy, v: DowningView): string[] => sorted(s.decide(v))
const uidsOf = (...is: number[]): string[] => sorted(is.map(uidOf))

describe('downing: keep-majority', () => {
  const km = keepMajority()

  it('3|2: the 3-side downs the 2 unreachable, the 2-side downs itself (even holding the lowest address)', () => {
    const all = upMembers(5)
    expect(decide(km, partitionView(2, all, set(2, 3, 4)))).toEqual(uidsOf(0, 1))
    expect(decide(km, partitionView(0, all, set(0, 1)))).toEqual(uidsOf(0, 1))
    expect(decide(km, partitionView(1, all, set(0, 1)))).toEqual(uidsOf(0, 1))
  })

  it('2|2: the side with the lowest address stays; both sides agree', () => {
    // Member 3 has the lowest address.
    const all = [
      mem(0, 'up', 1, nodeOf(0, '10.0.0.2')),
      mem(1, 'up', 2, nodeOf(1, '10.0.0.2')),
      mem(2, 'up', 3, nodeOf(2, '10.0.0.2')),
      mem(3, 'up', 4, nodeOf(3, '10.0.0.1', 9999)),
    ]
    const winners = decide(km, partitionView(0, all, set(0, 3)))
    const losers = decide(km, partitionView(1, all, set(1, 2)))
    expect(winners).toEqual(uidsOf(1, 2))
    expect(losers).toEqual(uidsOf(1, 2))
    expect(decide(km, partitionView(3, all, set(0, 3)))).toEqual(uidsOf(1, 2))
    expect(decide(km, partitionView(2, all, set(1, 2)))).toEqual(uidsOf(1, 2))
  })

  it('the other side’s joining members count as possibly up there, this side’s own do not: in doubt a side downs itself (found by the cluster simulator)', () => {
    // Y's leader may have moved its joiners up just as the partition began (it had convergence a
    // moment before; its gossip never crossed). Counting them only on its own side let both sides
    // find a majority: simulator seed 96 of --nodes 7 --faults partition.
    // Side X: 2 up + 1 joining. Side Y: 1 up + 3 joining: either side might be the larger.
    const all = [
      mem(0, 'up', 1),
      mem(1, 'up', 2),
      mem(2, 'up', 3),
      mem(3, 'joining', 0, nodeOf(3, '10.0.0.0', 1)),
      mem(4, 'joining'),
      mem(5, 'joining'),
      mem(6, 'joining'), // a joining member on X's side
    ]
    expect(decide(km, partitionView(0, all, set(0, 1, 6)))).toEqual(uidsOf(0, 1, 6))
    expect(decide(km, partitionView(2, all, set(2, 3, 4, 5)))).toEqual(uidsOf(2, 3, 4, 5))
    // Joiners that cannot swing it: X = 3 up, Y = 1 up + 1 joining; X stays, Y downs itself.
    const clear = [mem(0, 'up', 1), mem(1, 'up', 2), mem(2, 'up', 3), mem(3, 'up', 4), mem(4, 'joining')]
    expect(decide(km, partitionView(0, clear, set(0, 1, 2)))).toEqual(uidsOf(3, 4))
    expect(decide(km, partitionView(3, clear, set(3, 4)))).toEqual(uidsOf(3, 4))
    // 1 up each side, and a joiner at the lowest address on Y's side: either could win the tie.
    const tie = [mem(0, 'up', 1), mem(1, 'up', 2), mem(3, 'joining', 0, nodeOf(3, '10.0.0.0', 1))]
    expect(decide(km, partitionView(0, tie, set(0)))).toEqual(uidsOf(0))
    expect(decide(km, partitionView(1, tie, set(1, 3)))).toEqual(uidsOf(1, 3))
    // A joiner alone on its side (it crashed before it was moved up): nobody there could move it up.
    const lone = [mem(0, 'up', 1), mem(3, 'joining', 0, nodeOf(3, '10.0.0.0', 1))]
    expect(decide(km, partitionView(0, lone, set(0)))).toEqual(uidsOf(3))
  })

  it('nothing unreachable (or only members already down or exiting): nothing', () => {
    const all = upMembers(4)
    for (const s of [km, staticQuorum(3), keepOldest(), downAll()]) {
      expect(s.decide(partitionView(0, all, set(0, 1, 2, 3)))).toEqual([])
      const withGone = [...all, mem(4, 'down', 5), mem(5, 'exiting', 6)]
      expect(s.decide(partitionView(0, withGone, set(0, 1, 2, 3))), s.name).toEqual([])
    }
  })
})

describe('downing: static quorum, keep-oldest, down-all, timeout, none', () => {
  it('static-quorum 3: the 3-side downs the others, the 2-side downs itself', () => {
    const sq = staticQuorum(3)
    expect(sq.name).toBe('static-quorum')
    const all = upMembers(5)
    expect(decide(sq, partitionView(2, all, set(2, 3, 4)))).toEqual(uidsOf(0, 1))
    expect(decide(sq, partitionView(0, all, set(0, 1)))).toEqual(uidsOf(0, 1))
  })

  it('static-quorum 3 with 2|2: both sides down themselves', () => {
    const sq = staticQuorum(3)
    const all = upMembers(4)
    expect(decide(sq, partitionView(0, all, set(0, 1)))).toEqual(uidsOf(0, 1))
    expect(decide(sq, partitionView(2, all, set(2, 3)))).toEqual(uidsOf(2, 3))
  })

  it('static-quorum rejects a quorum that is not a positive integer', () => {
    for (const q of [0, -1, 1.5, Number.NaN]) expect(() => staticQuorum(q), String(q)).toThrow(ConfigError)
  })

  it('keep-oldest: the side with the lowest up-number stays, even as a minority with the highest address', () => {
    const all = [mem(0, 'up', 2), mem(1, 'up', 3), mem(2, 'up', 4), mem(3, 'up', 5), mem(4, 'up', 1, nodeOf(4, '10.9.9.9', 65000))]
    const ko = keepOldest()
    expect(ko.name).toBe('keep-oldest')
    expect(decide(ko, partitionView(4, all, set(4)))).toEqual(uidsOf(0, 1, 2, 3))
    expect(decide(ko, partitionView(0, all, set(0, 1, 2, 3)))).toEqual(uidsOf(0, 1, 2, 3))
  })

  it('down-all: everything, both sides, once anything is unreachable', () => {
    const da = downAll()
    const all = upMembers(5)
    expect(decide(da, partitionView(0, all, set(0, 1, 2, 3)))).toEqual(uidsOf(0, 1, 2, 3, 4))
    expect(decide(da, partitionView(4, all, set(4)))).toEqual(uidsOf(0, 1, 2, 3, 4))
  })

  it('timeout: only members unreachable for at least downAfter', () => {
    const t = timeoutDowning(5000)
    expect(t.name).toBe('timeout')
    const all = upMembers(4)
    const view = partitionView(
      0,
      all,
      set(0),
      new Map([
        [B, 4999],
        [C, 5000],
        [D, 60_000],
      ]),
    )
    expect(decide(t, view)).toEqual(sorted([C, D]))
    expect(decide(t, partitionView(0, all, set(0, 1, 2, 3)))).toEqual([])
  })

  it('none: never anything', () => {
    const n = noDowning()
    expect(n.name).toBe('none')
    const all = upMembers(3)
    expect(
      n.decide(
        partitionView(
          0,
          all,
          set(0),
          new Map([
            [B, 1e9],
            [C, 1e9],
          ]),
        ),
      ),
    ).toEqual([])
  })
})

describe('downingFromName', () => {
  const threeTwo = upMembers(5)

  it('parses every strategy name', () => {
    expect(downingFromName('keep-majority').name).toBe('keep-majority')
    expect(downingFromName('keep-oldest').name).toBe('keep-oldest')
    expect(downingFromName('down-all').name).toBe('down-all')
    expect(downingFromName('none').name).toBe('none')
    expect(downingFromName('timeout').name).toBe('timeout')
    expect(downingFromName('keep-majority', 1234).stableAfter).toBe(1234)
    expect(downingFromName('static-quorum:3', 777).stableAfter).toBe(777)
  })

  it('static-quorum:3 uses a quorum of 3', () => {
    const s = downingFromName('static-quorum:3')
    expect(s.name).toBe('static-quorum')
    expect(decide(s, partitionView(0, threeTwo, set(0, 1, 2)))).toEqual(uidsOf(3, 4))
    expect(decide(s, partitionView(3, threeTwo, set(3, 4)))).toEqual(uidsOf(3, 4))
    // Quorum 3 of 4 in a 2|2: both down themselves (a quorum of 2 would keep both).
    const four = upMembers(4)
    expect(decide(s, partitionView(0, four, set(0, 1)))).toEqual(uidsOf(0, 1))
  })

  it('timeout:5000 downs after 5000 ms; timeout alone defaults to 5000', () => {
    const all = upMembers(3)
    for (const s of [downingFromName('timeout:5000'), downingFromName('timeout')]) {
      expect(
        decide(
          s,
          partitionView(
            0,
            all,
            set(0),
            new Map([
              [B, 4999],
              [C, 5000],
            ]),
          ),
        ),
      ).toEqual([C])
    }
    expect(decide(downingFromName('timeout:100'), partitionView(0, all, set(0), new Map([[B, 100]])))).toEqual([B])
  })

  it('throws ConfigError on unknown names and bad quorums', () => {
    for (const spec of [
      '',
      'majority',
      'KEEP-MAJORITY',
      'keep_majority',
      'static-quorum',
      'static-quorum:',
      'static-quorum:0',
      'static-quorum:-2',
      'static-quorum:abc',
      'static-quorum:2.5',
    ]) {
      expect(() => downingFromName(spec), JSON.stringify(spec)).toThrow(ConfigError)
    }
  })

  it('throws ConfigError on a timeout that is not a number of ms (instead of never downing)', () => {
    // `timeout:5s` would otherwise become timeoutDowning(NaN): `ms >= NaN` is always false.
    for (const spec of ['timeout:5s', 'timeout:abc', 'timeout:-1']) expect(() => downingFromName(spec), spec).toThrow(ConfigError)
  })
})

describe('downing: partition safety', () => {
  const HOSTS = ['10.0.0.1', '10.0.0.2', 'node-a.local']
  const clusterArb = fc.integer({ min: 2, max: 9 }).chain((n) =>
    fc.record({
      upNumbers: fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: n, maxLength: n }),
      addresses: fc.array(fc.tuple(fc.constantFrom(...HOSTS), fc.integer({ min: 1, max: 65535 })), { minLength: n, maxLength: n }),
      sides: fc.array(fc.boolean(), { minLength: n, maxLength: n }).filter((s) => s.includes(true) && s.includes(false)),
    }),
  )

  /** Each side's decision, seen from each of its members (every one of them may be its side's leader). */
  function outcome(s: DowningStrategy, c: { upNumbers: number[]; addresses: [string, number][]; sides: boolean[] }): { survivors: number } {
    const all = c.upNumbers.map((up, i) => mem(i, 'up', up, nodeOf(i, c.addresses[i]![0], c.addresses[i]![1])))
    const side = (flag: boolean): Set<string> => new Set(all.filter((_, i) => c.sides[i] === flag).map((m) => m.node.uid))
    let survivors = 0
    for (const flag of [true, false]) {
      const mine = side(flag)
      const theirs = side(!flag)
      const decisions = [...mine].map((self) => sorted(s.decide({ ...partitionView(0, all, mine), self })))
      // Every member of a side decides the same, and it is either "down them" or "down us".
      for (const d of decisions) expect(d).toEqual(decisions[0])
      const d = decisions[0]!
      expect([sorted(mine), sorted(theirs)]).toContainEqual(d)
      if (!d.some((uid) => mine.has(uid))) survivors++
    }
    return { survivors }
  }

  it('keep-majority: exactly one side survives', () => {
    fc.assert(
      fc.property(clusterArb, (c) => {
        expect(outcome(keepMajority(), c).survivors).toBe(1)
      }),
      { numRuns: 500 },
    )
  })

  it('keep-oldest: at most one side survives (in fact exactly one)', () => {
    fc.assert(
      fc.property(clusterArb, (c) => {
        expect(outcome(keepOldest(), c).survivors).toBe(1)
      }),
      { numRuns: 500 },
    )
  })

  it('static-quorum (floor(n/2) + 1): at most one side survives', () => {
    fc.assert(
      fc.property(clusterArb, (c) => {
        const n = c.sides.length
        expect(outcome(staticQuorum(Math.floor(n / 2) + 1), c).survivors).toBeLessThanOrEqual(1)
      }),
      { numRuns: 500 },
    )
  })
})

// ── codec ────────────────────────────────────────────────────────────────────

describe('gossip codec', () => {
  const packr = new Packr({ useRecords: false, moreTypes: false })
  const wire = (m: Member): unknown[] => [m.node.uid, m.node.endpoint.name, m.node.endpoint.host, m.node.endpoint.port, m.status, m.upNumber, [...m.roles]]
  const validMember = wire(mem(1, 'up', 1, nodeOf(1), ['web']))
  const raw = (over: { version?: unknown; from?: unknown; members?: unknown; vector?: unknown; seen?: unknown } = {}): Buffer =>
    packr.pack([
      'version' in over ? over.version : 1,
      'from' in over ? over.from : A,
      'members' in over ? over.members : [validMember],
      'vector' in over ? over.vector : [[A, 1]],
      'seen' in over ? over.seen : [A],
    ])
  const memberWith = (index: number, value: unknown): unknown[] => {
    const m = [...validMember]
    m[index] = value
    return m
  }
  const rejects = (bytes: Buffer): void => {
    expect(() => decodeGossip(bytes)).toThrow(GossipDecodeError)
  }

  const memberArb: fc.Arbitrary<Member> = fc.record({
    node: fc.record({
      endpoint: fc.record({
        name: fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/),
        host: fc.oneof(fc.ipV4(), fc.constantFrom('localhost', '::1', 'fe80::1%eth0', 'node-1.shoal.svc')),
        port: fc.integer({ min: 1, max: 65535 }),
      }),
      uid: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((x) => x.toString(16).padStart(16, '0')),
    }),
    status: fc.constantFrom(...STATUSES),
    upNumber: fc.nat(1_000_000),
    roles: fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/), { maxLength: 5 }),
  })
  const gossipArb: fc.Arbitrary<GossipState> = fc.array(memberArb, { maxLength: 12 }).chain((ms) => {
    const uids = ms.map((m) => m.node.uid)
    const pick = uids.length > 0 ? fc.constantFrom(...uids) : fc.constant(A)
    return fc
      .record({
        version: fc.array(fc.tuple(pick, fc.nat(1_000_000)), { maxLength: 12 }).map((es) => new Map(es)),
        seen: fc.array(pick, { maxLength: 12 }).map((s) => new Set(s)),
      })
      .map(({ version, seen }): GossipState => ({ members: new Map(ms.map((m) => [m.node.uid, m])), version, seen }))
  })

  it('round-trips', () => {
    const g = state([mem(0, 'up', 1, nodeOf(0), ['web', 'db']), mem(1, 'joining'), mem(2, 'removed', 7, nodeOf(2, '::1', 65535))], vv({ [A]: 3, [B]: 1 }), [
      A,
      C,
    ])
    expect(decodeGossip(encodeGossip(B, g))).toEqual({ from: B, gossip: g })
    expect(decodeGossip(encodeGossip(A, emptyGossip()))).toEqual({ from: A, gossip: emptyGossip() })
    fc.assert(
      fc.property(fc.constantFrom(A, B, C), gossipArb, (from, gs) => {
        expect(decodeGossip(encodeGossip(from, gs))).toEqual({ from, gossip: gs })
      }),
    )
  })

  it('the hand-built frame the other tests mutate is itself valid', () => {
    expect(decodeGossip(raw()).gossip.members.get(uidOf(1))).toMatchObject({ status: 'up', upNumber: 1, roles: ['web'] })
    const big = Array.from({ length: 10_000 }, (_, i) => wire(mem(i, 'up', i + 1)))
    expect(decodeGossip(raw({ members: big })).gossip.members.size).toBe(10_000)
  })

  it('rejects random bytes with GossipDecodeError only', () => {
    rejects(Buffer.alloc(0))
    rejects(Buffer.from([0xc1])) // never-used msgpack byte
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeGossip(Buffer.from(bytes))
        } catch (e) {
          expect(e).toBeInstanceOf(GossipDecodeError)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('rejects mutated and truncated valid frames with GossipDecodeError only', () => {
    const frame = raw()
    fc.assert(
      fc.property(fc.nat(frame.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(frame.length), (at, byte, cut) => {
        const bytes = Buffer.from(frame)
        bytes[at] = byte
        for (const b of [bytes, bytes.subarray(0, cut)]) {
          try {
            decodeGossip(b)
          } catch (e) {
            expect(e).toBeInstanceOf(GossipDecodeError)
          }
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('rejects a frame that is not a 5-element array', () => {
    rejects(packr.pack({ version: 1 }))
    rejects(packr.pack([1, A, [], []]))
    rejects(packr.pack([1, A, [], [], [], []]))
    rejects(packr.pack(null))
  })

  it('rejects a wrong version', () => {
    for (const version of [0, 2, '1', null, 1.5, [1], { v: 1 }]) rejects(raw({ version }))
  })

  it('rejects a version that is an object with its own toString or valueOf with GossipDecodeError (not TypeError)', () => {
    // msgpack maps decode to plain objects; `String(version)` in the error message then throws
    // "Cannot convert object to primitive value" for these.
    for (const version of [{ toString: 0 }, { valueOf: 1, toString: 2 }]) rejects(raw({ version }))
  })

  it('rejects bad uids (sender, member, vector, seen)', () => {
    for (const bad of ['0123456789ABCDEF', '0123456789abcde', '0123456789abcdef0', 'g123456789abcdef', 42, null]) {
      rejects(raw({ from: bad }))
      rejects(raw({ members: [memberWith(0, bad)] }))
      rejects(raw({ vector: [[bad, 1]] }))
      rejects(raw({ seen: [bad] }))
    }
  })

  it('rejects bad statuses', () => {
    for (const status of ['alive', 'UP', '', '__proto__', 'toString', 'hasOwnProperty', 1, null]) rejects(raw({ members: [memberWith(4, status)] }))
  })

  it('rejects more than 10,000 members', () => {
    const tooMany = Array.from({ length: 10_001 }, (_, i) => wire(mem(i, 'up', i + 1)))
    rejects(raw({ members: tooMany }))
  })

  it('rejects bad roles', () => {
    for (const roles of ['web', [1], [''], ['a b'], ['x'.repeat(65)], Array.from({ length: 33 }, (_, i) => `r${i}`), null, { 0: 'web' }]) {
      rejects(raw({ members: [memberWith(6, roles)] }))
    }
  })

  it('rejects port 0 and other bad ports, names, hosts and up-numbers', () => {
    for (const port of [0, -1, 65536, 80.5, '80', null]) rejects(raw({ members: [memberWith(3, port)] }))
    for (const name of ['', 'a b', 'x'.repeat(65), 1]) rejects(raw({ members: [memberWith(1, name)] }))
    for (const host of ['', 'a b', 'h/x', 7]) rejects(raw({ members: [memberWith(2, host)] }))
    for (const upNumber of [-1, 1.5, Number.NaN, '1', 2 ** 53]) rejects(raw({ members: [memberWith(5, upNumber)] }))
    rejects(raw({ members: [validMember.slice(0, 6)] }))
    rejects(raw({ members: ['member'] }))
  })

  it('rejects bad vectors and seen sets', () => {
    for (const vector of [{}, [[A]], [[A, -1]], [[A, 1.5]], [[A, '1']], [A]]) rejects(raw({ vector }))
    for (const seen of [{}, A, [[A]]]) rejects(raw({ seen }))
  })

  it('property: any value in any slot is decoded or rejected with GossipDecodeError', () => {
    const anyValue = fc.anything({ key: fc.constantFrom('toString', 'valueOf', 'length', 'constructor', 'a', '0'), maxDepth: 2 })
    const slot = <T>(valid: T): fc.Arbitrary<unknown> => fc.oneof(fc.constant(valid), anyValue)
    fc.assert(
      fc.property(slot(1), slot(A), slot([validMember]), slot([[A, 1]]), slot([A]), (version, from, members, vector, seen) => {
        let bytes: Buffer
        try {
          bytes = packr.pack([version, from, members, vector, seen])
        } catch {
          return // not representable in msgpack: not a frame a peer could send
        }
        try {
          decodeGossip(bytes)
        } catch (e) {
          expect(e).toBeInstanceOf(GossipDecodeError)
        }
      }),
      { numRuns: 1000 },
    )
  })
})
