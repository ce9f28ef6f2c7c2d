/** The management endpoint's backoff of wrong tokens, as pure logic: the time is passed in. */
import { describe, expect, it } from 'vitest'
import { AuthThrottle } from '../src/management/AuthThrottle.ts'
import { KeyedBackoff } from '../src/util/KeyedBackoff.ts'

describe('AuthThrottle', () => {
  it('doubles the wait with each consecutive failure, up to the cap', () => {
    const t = new AuthThrottle({ baseMs: 1_000, maxMs: 60_000 })
    let now = 0
    const waits: number[] = []
    for (let i = 0; i < 9; i++) {
      expect(t.retryAfter('10.0.0.9', now)).toBe(0)
      const wait = t.failed('10.0.0.9', now)
      waits.push(wait)
      expect(t.retryAfter('10.0.0.9', now)).toBe(wait)
      expect(t.retryAfter('10.0.0.9', now + wait - 1)).toBe(1)
      now += wait
    }
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000])
    expect(t.failures('10.0.0.9')).toBe(9)
  })

  it('holds back only the failing source; a success or a quiet period starts it over', () => {
    const t = new AuthThrottle({ baseMs: 1_000, maxMs: 8_000 })
    t.failed('a', 0)
    t.failed('a', 1_000)
    expect(t.retryAfter('a', 1_000)).toBe(2_000)
    expect(t.retryAfter('b', 1_000)).toBe(0)
    t.succeeded('a')
    expect(t.retryAfter('a', 1_000)).toBe(0)
    expect(t.failed('a', 1_000)).toBe(1_000)
    // Quiet for maxMs after the wait ended: the next failure counts as a first one.
    expect(t.failed('a', 2_000 + 8_000)).toBe(1_000)
    expect(t.failed('a', 11_000)).toBe(2_000)
  })

  it('tracks at most maxSources, forgetting the least recently failed', () => {
    const t = new AuthThrottle({ maxSources: 3 })
    for (const s of ['a', 'b', 'c']) t.failed(s, 0)
    t.failed('a', 1_000) // a is now the most recent
    t.failed('d', 1_000)
    expect(t.size).toBe(3)
    expect(t.failures('b')).toBe(0)
    expect(t.failures('a')).toBe(2)
    expect(t.failures('c')).toBe(1)
    expect(t.failures('d')).toBe(1)
    for (let i = 0; i < 10_000; i++) t.failed(`10.1.${i >> 8}.${i & 255}`, 2_000)
    expect(t.size).toBe(3)
  })

  it('keeps what the last failure of a key carried, until its next failure or success (KeyedBackoff)', () => {
    const b = new KeyedBackoff<string>({ baseMs: 200, maxMs: 10_000, maxKeys: 10 })
    expect(b.detail('a')).toBeUndefined()
    b.failed('a', 0, 'journal down')
    expect(b.detail('a')).toBe('journal down')
    b.failed('a', 200, 'constructor threw')
    expect([b.detail('a'), b.failures('a'), b.retryAfter('a', 200)]).toEqual(['constructor threw', 2, 400])
    b.succeeded('a')
    expect(b.detail('a')).toBeUndefined()
  })
})
