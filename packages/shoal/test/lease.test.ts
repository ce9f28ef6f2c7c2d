/** Leases: the holder's pure view of its term, and the memory store against the shared suite. */

import { LeaseTerm, MemoryLeaseStore } from 'shoal'
import { leaseStoreConformance } from 'shoal/testkit'
import { describe, expect, it } from 'vitest'

leaseStoreConformance('memory', () => new MemoryLeaseStore(), { describe, it, expect })

describe('LeaseTerm', () => {
  it('is valid from a grant for the ttl less its safety share, counted from when the request was sent', () => {
    const term = new LeaseTerm(10_000, 0.1)
    expect(term.valid(0)).toBe(false)
    term.granted(1000) // sent at 1000, answered later: the store's expiry is ≥ 11,000
    expect(term.valid(9_999)).toBe(true)
    expect(term.remaining(5000)).toBe(5000)
    expect(term.valid(10_000)).toBe(false)
  })

  it('a renewal extends it; a late answer to an older request never shortens it', () => {
    const term = new LeaseTerm(1000, 0)
    term.granted(500)
    term.granted(200) // an older request answered after the newer one
    expect(term.valid(1499)).toBe(true)
    expect(term.valid(1500)).toBe(false)
  })

  it('a holder frozen past its term sees it lapsed the moment it runs again', () => {
    let now = 0
    const term = new LeaseTerm(3000)
    term.granted(now)
    now += 60_000 // SIGSTOP, GC pause: the monotonic clock kept running
    expect(term.valid(now)).toBe(false)
    expect(term.remaining(now)).toBe(0)
  })

  it('lost() ends it at once', () => {
    const term = new LeaseTerm(3000)
    term.granted(0)
    term.lost()
    expect(term.valid(1)).toBe(false)
  })
})
