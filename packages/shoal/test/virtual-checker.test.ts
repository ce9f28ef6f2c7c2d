/**
 * The virtual-actor chaos checker (test/support/virtualChecker.ts) on hand-made logs: it must pass
 * a clean hand-over and catch every kind of double activation it claims to catch, so that a chaos
 * run that reports no violation means something.
 */
import { describe, expect, it } from 'vitest'
import { checkVirtualRun, type Line, type ProcessLog } from './support/virtualChecker.ts'

const activated = (time: number, id: string, act: string): Line => ({ time, msg: 'tally activated', id, act, table: 1 })
const deactivated = (time: number, id: string, act: string): Line => ({ time, msg: 'tally deactivated', id, act })
const call = (at: number, id: string, act: string): Line => ({ time: at + 1, msg: 'call', ok: true, id, act, at, started: at - 1, ms: 2 })
const failedCall = (time: number, code: string): Line => ({ time, msg: 'call', ok: false, id: 'x', code })
const proc = (name: string, lines: Line[], more: Partial<ProcessLog> = {}): ProcessLog => ({ name, lines, frozen: [], ...more })

describe('the virtual-actor chaos checker', () => {
  it('passes a clean hand-over: one activation stops, the next starts later', () => {
    const r = checkVirtualRun(
      [
        proc('a', [activated(0, 'x', 'a1'), call(10, 'x', 'a1'), deactivated(20, 'x', 'a1'), failedCall(25, 'SHOAL_TIMEOUT')]),
        proc('b', [activated(30, 'x', 'b1'), call(40, 'x', 'b1')]),
      ],
      100,
    )
    expect(r.violations).toEqual([])
    expect(r.activations.map((a) => [a.act, a.from, a.to])).toEqual([
      ['a1', 0, 20],
      ['b1', 30, 100],
    ])
    expect(r.calls).toEqual({ ok: 2, failed: 1, failedBy: { SHOAL_TIMEOUT: 1 } })
  })

  it('catches two activations of one id alive at once, and both serving', () => {
    const r = checkVirtualRun(
      [proc('a', [activated(0, 'x', 'a1'), call(10, 'x', 'a1'), call(50, 'x', 'a1')]), proc('b', [activated(30, 'x', 'b1'), call(40, 'x', 'b1')])],
      100,
    )
    expect(r.violations.some((v) => v.includes('active together'))).toBe(true)
    expect(r.violations.some((v) => v.includes('both served calls'))).toBe(true)
  })

  it('catches an answer outside its activation, and one from an activation never logged', () => {
    const r = checkVirtualRun([proc('a', [activated(0, 'x', 'a1'), deactivated(20, 'x', 'a1'), call(25, 'x', 'a1'), call(30, 'x', 'ghost')])], 100)
    expect(r.violations).toHaveLength(2)
    expect(r.violations[0]).toContain('outside its interval')
    expect(r.violations[1]).toContain('never logged')
  })

  it('ends an interval at the process exit, at a fence, and at a freeze it never served after', () => {
    const r = checkVirtualRun(
      [
        proc('killed', [activated(0, 'x', 'k1')], { exitedAt: 20 }),
        proc('fenced', [activated(0, 'y', 'f1'), { time: 15, msg: 'not confirmed by a side that stays: deactivating every virtual actor here' }]),
        proc('frozen', [activated(0, 'z', 'z1'), call(5, 'z', 'z1'), deactivated(60, 'z', 'z1')], { frozen: [[10, 50]] }),
        proc('frozen-then-served', [activated(0, 'w', 'w1'), call(55, 'w', 'w1')], { frozen: [[10, 50]] }),
        // A call answered just after the harness stamped the freeze, before SIGSTOP took hold.
        proc('served-as-frozen', [activated(0, 'v', 'v1'), call(11, 'v', 'v1'), deactivated(60, 'v', 'v1')], { frozen: [[10, 50]] }),
        proc('next', [activated(30, 'x', 'k2'), activated(30, 'y', 'f2'), activated(30, 'z', 'z2'), activated(30, 'v', 'v2')]),
      ],
      100,
    )
    const to = Object.fromEntries(r.activations.map((a) => [a.act, a.to]))
    expect(to).toMatchObject({ k1: 20, f1: 15, z1: 10, w1: 100, v1: 11 })
    expect(r.violations).toEqual([])
  })
})
