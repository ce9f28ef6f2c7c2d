/** Repeated log events aggregated per key and window, as pure logic: the time is passed in. */
import { describe, expect, it } from 'vitest'
import { LogAggregator } from '../src/util/LogAggregator.ts'

type F = { source: string }

describe('LogAggregator', () => {
  const make = (maxKeys = 100): LogAggregator<F> => new LogAggregator<F>({ windowMs: 10_000, maxKeys, overflow: { source: 'other sources' } })

  it('says to log the first event of a key per window and counts the others, reported once the window ends', () => {
    const agg = make()
    const logged = [0, 1, 2, 3, 9_999].map((t) => agg.record('a', { source: 'a' }, t))
    expect(logged).toEqual([true, false, false, false, false])
    expect(agg.record('b', { source: 'b' }, 5)).toBe(true)
    expect(agg.flush(9_999)).toEqual([])
    expect(agg.pending).toBe(true)
    expect(agg.flush(10_000)).toEqual([{ fields: { source: 'a' }, count: 4, since: 0, until: 10_000 }])
    // b had nothing more to say: forgotten without a summary.
    expect(agg.flush(10_005)).toEqual([])
    expect(agg.size).toBe(0)
    expect(agg.pending).toBe(false)
  })

  it('an event after the window without a flush starts a new window and keeps the old count', () => {
    const agg = make()
    agg.record('a', { source: 'a' }, 0)
    agg.record('a', { source: 'a' }, 1)
    expect(agg.record('a', { source: 'a' }, 10_001)).toBe(true)
    agg.record('a', { source: 'a' }, 10_002)
    expect(agg.flush(10_003)).toEqual([{ fields: { source: 'a' }, count: 1, since: 0, until: 10_001 }])
    expect(agg.flush(10_003, true)).toEqual([{ fields: { source: 'a' }, count: 1, since: 10_001, until: 10_003 }])
  })

  it('keeps every event counted while bounding keys: past maxKeys new keys share the overflow key', () => {
    const agg = make(10)
    let logged = 0
    for (let i = 0; i < 1_000; i++) if (agg.record(`k${i}`, { source: `k${i}` }, i)) logged++
    expect(agg.size).toBeLessThanOrEqual(11)
    // 10 keys and the overflow's first event logged; the other 989 counted in the overflow.
    expect(logged).toBe(11)
    const summaries = agg.flush(1_000, true)
    expect(summaries).toEqual([{ fields: { source: 'other sources' }, count: 989, since: 10, until: 1_000 }])
    expect(logged + summaries.reduce((n, s) => n + s.count, 0)).toBe(1_000)
  })

  it('frees the slots of keys whose window ended, so new keys get their own line again', () => {
    const agg = make(2)
    agg.record('a', { source: 'a' }, 0)
    agg.record('a', { source: 'a' }, 1)
    agg.record('b', { source: 'b' }, 2)
    expect(agg.record('c', { source: 'c' }, 10_001)).toBe(true)
    expect(agg.flush(10_001).map((s) => [s.fields.source, s.count])).toEqual([['a', 1]])
    expect(agg.size).toBe(2)
  })
})
