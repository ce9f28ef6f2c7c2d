/**
 * The singleton instance's lifecycle as a pure state machine: a test clock, events in, directives
 * out; no system, sockets or timers. Phases, backoff, lease retries and lapse, confirmation, stop,
 * and the `checkLease: false` mutation a simulator uses to show what the lease protects against.
 */

import type { ClusterMember } from 'shoal'
import { describe, expect, it } from 'vitest'
import { oldestMember } from '../src/singleton/Allocation.ts'
import { type Directive, type EvaluateView, type LifecycleSettings, SingletonLifecycle } from '../src/singleton/SingletonLifecycle.ts'

const base: LifecycleSettings = {
  role: undefined,
  strategy: oldestMember,
  downing: undefined,
  margin: 4000,
  fenceAfter: 1000,
  passivateTimeout: 3000,
  confirmWindow: 2000,
}
const TTL = 1000
const withLease: LifecycleSettings = { ...base, lease: { ttl: TTL, store: 'test' } }
const solo = { canHost: true, view: undefined }

const kinds = (ds: readonly Directive[]): string[] => ds.filter((d) => d.kind !== 'log').map((d) => d.kind)

const member = (i: number): ClusterMember => ({
  node: { endpoint: { name: `n${i}`, host: '127.0.0.1', port: 7000 + i }, uid: `uid-${i}` },
  status: 'up',
  upNumber: i,
  roles: [],
  reachability: 'reachable',
})
/** Node 1 (the oldest) in a cluster of three: it is the one to host. */
const clusterView: EvaluateView = { self: 'uid-1', members: [member(1), member(2), member(3)], leader: undefined, downSince: new Map(), listedElsewhere: [] }
const clustered = { canHost: true, view: clusterView }

/** A running instance without a lease, started at `now`. */
function running(now = 0, settings = base, confirmedUntil?: (notBefore: number) => number): SingletonLifecycle {
  const core = new SingletonLifecycle('counter', settings, confirmedUntil)
  expect(kinds(core.evaluate(now, confirmedUntil ? clustered : solo))).toEqual(['start-instance'])
  expect(core.phase).toBe('starting')
  expect(kinds(core.started(now))).toEqual(['activated'])
  expect(core.phase).toBe('running')
  return core
}

/** A running instance under a lease granted for a request sent at `sentAt`. */
function leased(settings: LifecycleSettings = withLease, sentAt = 0): SingletonLifecycle {
  const core = new SingletonLifecycle('counter', settings)
  expect(kinds(core.evaluate(sentAt, solo))).toEqual(['acquire-lease'])
  expect(core.phase).toBe('acquiring')
  expect(core.hosting).toBe(false)
  expect(kinds(core.leaseGranted(sentAt + 10, sentAt, 7))).toEqual(['start-instance'])
  expect(kinds(core.started(sentAt + 10))).toEqual(['activated', 'evaluate'])
  return core
}

describe('singleton lifecycle', () => {
  it('idle → starting → running → passivating → idle, counting activations and passivations', () => {
    const core = running(0)
    expect(core.admits(1)).toBe(true)
    expect(core.allocation).toEqual({ kind: 'host' })
    // No longer to host (no factory here any more: wait): a graceful passivation, onPassivate bounded.
    expect(core.evaluate(100, { canHost: false, view: undefined })).toContainEqual({ kind: 'passivate', fenced: false, boundMs: 3000 })
    expect(core.phase).toBe('passivating')
    expect(core.admits(100)).toBe(false)
    expect(kinds(core.passivated(200))).toEqual(['idle', 'passivated', 'evaluate'])
    expect(core.phase).toBe('idle')
    expect([core.activations, core.passivations]).toEqual([1, 1])
  })

  it('a failed start backs off, doubling, and an instance that stops by itself too; a normal passivation resets it', () => {
    const core = new SingletonLifecycle('counter', base)
    core.evaluate(0, solo)
    expect(kinds(core.startFailed(0, new Error('boom')))).toEqual(['idle'])
    expect(core.wakeAt(0)).toBe(100)
    expect(core.evaluate(99, solo)).toEqual([])
    expect(kinds(core.evaluate(100, solo))).toEqual(['start-instance'])
    core.startFailed(100, new Error('boom'))
    expect(core.evaluate(299, solo)).toEqual([]) // 200 ms now
    expect(kinds(core.evaluate(300, solo))).toEqual(['start-instance'])
    core.started(300)
    expect(kinds(core.instanceEnded(350))).toEqual(['idle']) // third failure: 400 ms
    expect(core.evaluate(749, solo)).toEqual([])
    expect(kinds(core.evaluate(750, solo))).toEqual(['start-instance'])
    core.started(750)
    core.evaluate(800, { canHost: false, view: undefined })
    core.passivated(800)
    expect(kinds(core.evaluate(800, solo))).toEqual(['start-instance']) // no backoff after a normal stop
    core.startFailed(800, new Error('boom'))
    expect(core.wakeAt(800)).toBe(900) // and the backoff starts over
  })

  it('a lease refused: retries a quarter ttl later, not before; a failed store too', () => {
    const core = new SingletonLifecycle('counter', withLease)
    core.evaluate(0, solo)
    expect(kinds(core.leaseRefused(5))).toEqual(['report-holder', 'idle'])
    expect(core.phase).toBe('idle')
    expect(core.evaluate(254, solo)).toEqual([])
    expect(kinds(core.evaluate(255, solo))).toEqual(['acquire-lease'])
    expect(kinds(core.leaseFailed(260, new Error('down')))).toEqual(['idle'])
    expect(core.evaluate(509, solo)).toEqual([])
    expect(kinds(core.evaluate(510, solo))).toEqual(['acquire-lease'])
  })

  it('a grant that comes back after the term already ran out is given back, and nothing starts', () => {
    const core = new SingletonLifecycle('counter', withLease)
    core.evaluate(0, solo)
    expect(kinds(core.leaseGranted(950, 0, 1))).toEqual(['release-lease', 'idle']) // term: 0.9 × 1000 from the send
    expect(core.activations).toBe(0)
  })

  it('the lease lapsing by the clock refuses calls at once and passivates, fenced, without waiting for any timer', () => {
    const core = leased()
    expect(core.leaseEpoch(100)).toBe(7)
    expect(core.guard(899)).toEqual({ refuse: undefined, directives: [] })
    // A renewal sent at 200 extends the term to 1100.
    expect(core.leaseGranted(250, 200, 7)).toEqual([])
    expect(core.admits(1099)).toBe(true)
    expect(core.admits(1100)).toBe(false) // nothing else happened: the clock alone decides
    const refused = core.guard(1100)
    expect(refused.refuse).toMatch(/lease of singleton counter may have lapsed/)
    expect(refused.directives).toContainEqual({ kind: 'passivate', fenced: true, boundMs: 0 })
    expect(core.phase).toBe('passivating')
    expect(core.leaseEpoch(1100)).toBeUndefined()
    expect(core.guard(1101).directives).toEqual([]) // already stopping: no second passivation
    expect(kinds(core.passivated(1150))).toEqual(['release-lease', 'idle', 'passivated', 'evaluate'])
  })

  it('a tick past the term passivates a running instance; a loss reported by the keeper too', () => {
    const core = leased()
    expect(core.tick(899)).toEqual([])
    expect(kinds(core.tick(900))).toEqual(['passivate'])
    const other = leased()
    expect(kinds(other.leaseLost(300, 'another owner holds it'))).toEqual(['passivate'])
    expect(other.admits(301)).toBe(false)
  })

  it('confirmation: a lapse refuses calls and re-decides; only confirmations of heartbeats sent after the lapse count', () => {
    // The cluster's answer: confirmed until `heard + window`, counting only heartbeats heard at or after notBefore.
    let heard = 0
    const window = base.confirmWindow
    const core = running(0, base, (notBefore) => (heard >= notBefore ? heard + window : Number.NEGATIVE_INFINITY))
    expect(core.admits(1999)).toBe(true)
    expect(core.admits(2000)).toBe(false)
    const refused = core.guard(2000)
    expect(refused.refuse).toMatch(/not confirmed/)
    expect(kinds(refused.directives)).toEqual(['evaluate'])
    expect(refused.directives).toContainEqual(expect.objectContaining({ kind: 'log', fields: expect.objectContaining({ event: 'unconfirmed' }) }))
    // The re-decision: waits (unconfirmed) and stops the instance, fenced.
    expect(core.evaluate(2001, clustered)).toContainEqual({ kind: 'passivate', fenced: true, boundMs: 2000 })
    expect(core.allocation).toEqual({ kind: 'wait', reason: 'unconfirmed' })
    core.passivated(2100)
    // A confirmation of a heartbeat sent before the lapse (a late answer) does not count.
    heard = 1999
    expect(core.evaluate(2200, clustered)).toEqual([])
    expect(core.allocation).toEqual({ kind: 'wait', reason: 'unconfirmed' })
    // One sent after it does: confirmed again, a new instance starts.
    heard = 2150
    const again = core.evaluate(2200, clustered)
    expect(kinds(again)).toEqual(['start-instance'])
    expect(again).toContainEqual(expect.objectContaining({ kind: 'log', fields: { event: 'confirmed' } }))
  })

  it('stop while acquiring: the grant that comes back is given back and nothing starts', () => {
    const core = new SingletonLifecycle('counter', withLease)
    core.evaluate(0, solo)
    expect(core.stop(5)).toEqual([])
    expect(core.phase).toBe('acquiring')
    expect(core.evaluate(6, solo)).toEqual([]) // nothing new after a stop
    expect(kinds(core.leaseGranted(20, 0, 1))).toEqual(['release-lease', 'idle'])
    expect(core.phase).toBe('idle')
    expect(core.activations).toBe(0)
  })

  it('stop while starting: the instance that comes up is passivated at once, gracefully; stop while running too', () => {
    const core = new SingletonLifecycle('counter', base)
    core.evaluate(0, solo)
    core.stop(1)
    expect(kinds(core.started(2))).toEqual(['activated', 'passivate'])
    expect(core.started(2)).toEqual([]) // not starting any more
    const other = running(0)
    expect(other.stop(10)).toContainEqual({ kind: 'passivate', fenced: false, boundMs: 3000 })
  })

  it('mutation checkLease: false admits calls after the term ran out (the default refuses them) and never stops for the lease', () => {
    const safe = leased()
    const mutant = leased({ ...withLease, checkLease: false })
    const afterPause = 60_000 // a frozen host wakes up long after its term
    expect(safe.admits(afterPause)).toBe(false)
    expect(safe.guard(afterPause).refuse).toBeDefined()
    expect(mutant.admits(afterPause)).toBe(true)
    expect(mutant.guard(afterPause)).toEqual({ refuse: undefined, directives: [] })
    expect(mutant.tick(afterPause)).toEqual([])
    expect(mutant.leaseLost(afterPause, 'not renewed in time')).toEqual([])
    expect(mutant.phase).toBe('running')
  })
})
