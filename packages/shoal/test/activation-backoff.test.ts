/** ActivationBackoff (pure): waits that double from the base to the max, forgetting on success, a bounded memory. */

import { describe, expect, it } from 'vitest'
import { ActivationBackoff } from '../src/virtual/ActivationBackoff.ts'

describe('ActivationBackoff', () => {
  it('lets an id activate until it fails; then waits base, 2×base, … up to max', () => {
    const b = new ActivationBackoff({ base: 100, max: 350 })
    expect(b.check('a', 0)).toBeUndefined()
    const boom = new Error('journal down')
    b.failed('a', boom, 1000)
    expect(b.check('a', 1000)).toEqual({ failures: 1, error: boom, waitMs: 100 })
    expect(b.check('a', 1099.5)?.waitMs).toBe(1)
    expect(b.check('a', 1100)).toBeUndefined()
    b.failed('a', boom, 1100)
    expect(b.check('a', 1100)?.waitMs).toBe(200)
    b.failed('a', boom, 1300)
    expect(b.check('a', 1300)).toMatchObject({ failures: 3, waitMs: 350 }) // 400, capped
    expect(b.check('other', 1300)).toBeUndefined()
  })

  it('forgets an id once it activated', () => {
    const b = new ActivationBackoff()
    b.failed('a', 'x', 0)
    b.succeeded('a')
    expect(b.check('a', 0)).toBeUndefined()
    b.failed('a', 'x', 0)
    expect(b.check('a', 0)?.failures).toBe(1)
  })

  it('remembers at most capacity ids, dropping the least recently failed', () => {
    const b = new ActivationBackoff({ capacity: 3 })
    for (const k of ['a', 'b', 'c']) b.failed(k, 'x', 0)
    b.failed('a', 'x', 0) // a is now the most recent
    b.failed('d', 'x', 0)
    expect(b.size).toBe(3)
    expect(b.check('b', 0)).toBeUndefined()
    expect(b.check('a', 0)?.failures).toBe(2)
  })
})
