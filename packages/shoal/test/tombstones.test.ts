/** Tombstones of gone node incarnations: kept for their time-to-live, bounded in number. */
import { describe, expect, it } from 'vitest'
import { Tombstones } from '../src/transport/Tombstones.ts'

describe('Tombstones', () => {
  it('keeps a uid for the time-to-live, then forgets it', () => {
    let now = 0
    const t = new Tombstones(() => now, 1000)
    t.add('a')
    now = 999
    expect(t.has('a')).toBe(true)
    now = 1000
    expect(t.has('a')).toBe(false)
    expect(t.size).toBe(0)
  })

  it('marking again renews the time; expired entries are dropped as others are added', () => {
    let now = 0
    const t = new Tombstones(() => now, 1000)
    t.add('a')
    t.add('b')
    now = 600
    t.add('a') // renewed: now the newest
    now = 1200
    t.add('c') // b (marked at 0) expires here
    expect(t.size).toBe(2)
    expect(t.has('b')).toBe(false)
    expect(t.has('a')).toBe(true)
    expect(t.has('c')).toBe(true)
  })

  it('holds at most max entries, dropping the oldest', () => {
    let now = 0
    const t = new Tombstones(() => now, 1_000_000, 3)
    for (const uid of ['a', 'b', 'c', 'd', 'e']) {
      now++
      t.add(uid)
    }
    expect(t.size).toBe(3)
    expect(['a', 'b', 'c', 'd', 'e'].filter((u) => t.has(u))).toEqual(['c', 'd', 'e'])
  })
})
