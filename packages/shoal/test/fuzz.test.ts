/**
 * A short run of every decoder fuzz target (test/fuzz/): each throws only its documented errors,
 * leaves prototypes alone and takes bounded time per input. The long run is
 * `npm run fuzz -- --minutes N` (docs/fuzzing.md).
 */
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { targets } from './fuzz/targets.ts'

const RUNS = Number(process.env.SHOAL_FUZZ_RUNS ?? 400)

describe('decoder fuzzing (short run)', () => {
  for (const t of targets) {
    it(t.name, { timeout: 60_000 }, () => {
      fc.assert(t.property, { numRuns: RUNS })
    })
  }
})
