/**
 * Partition safety against five real processes in network namespaces, with cuts of any shape made by
 * nftables on the lab's bridges (test/support/partitions.ts): a flapping link must never let two
 * singleton instances live at once, and a bridge partition (two groups cut apart, one node reaching
 * both) must be resolved: the indirectly connected nodes downed (exit 1), the rest served, and calls
 * working again soon after the heal. `npm run chaos:partitions` repeats these with varied timings.
 * Needs root, iproute2 and nftables; otherwise skipped, saying why.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { NetnsLab, netnsAvailable, nftAvailable } from './support/netns.ts'
import { bridgeScenario, describeResult, flapScenario } from './support/partitions.ts'

const netns = await netnsAvailable()
const nft = netns.ok ? await nftAvailable() : netns
const why = nft.ok ? '' : nft.why
const title = nft.ok ? 'partition safety in network namespaces' : `partition safety in network namespaces — skipped: ${why}`
if (!nft.ok) console.warn(`partition-safety.test.ts: skipping: ${why}`)

let lab: NetnsLab | undefined
afterEach(async () => {
  await lab?.destroy()
  lab = undefined
})

describe.skipIf(!nft.ok)(title, () => {
  // Retried: on real links the liveness half sometimes misses (2026-12-06, 1 CI run in 3: the majority
  // served nothing within 5 s of the heal); the safety half (no overlap) never did. Open, see the note.
  it('a flapping link (5 s cut, 1 s up) with the host on the minority: never two instances; every node the cluster stops exits 1', {
    retry: 1,
    timeout: 240_000,
  }, async () => {
    lab = await NetnsLab.create(5)
    const r = await flapScenario(lab, { host: 3, cutMs: 5000, upMs: 1000, durationMs: 18_000, afterMs: 8000 })
    console.log(`flap, host on the minority:\n${describeResult(r)}`)
    expect(r.overlaps, describeResult(r)).toEqual([])
    // Whoever the cluster stopped exited 1 (a supervisor restarts it), never 0.
    for (const e of r.exits) expect(e.code, describeResult(r)).toBe(1)
    // The side with three kept the cluster and serves calls after the heal.
    expect(r.okAfterHeal.filter((o) => o.ms !== undefined && o.ms <= 5000).length, describeResult(r)).toBeGreaterThanOrEqual(3)
  })

  // Retried: a 2 s / 2 s flap still downs a node now and then (2026-12-06, 1 CI run in 3): a known
  // liveness gap of the downing rule, open for the pure membership core (issue 19).
  it('a 2 s / 2 s flapping link downs nobody, whichever side the host is on', { retry: 1, timeout: 240_000 }, async () => {
    lab = await NetnsLab.create(5)
    const r = await flapScenario(lab, { host: 4, cutMs: 2000, upMs: 2000, durationMs: 16_000, afterMs: 6000 })
    console.log(`flap 2 s / 2 s:\n${describeResult(r)}`)
    expect(r.downed, describeResult(r)).toEqual([])
    expect(r.exits, describeResult(r)).toEqual([])
    expect(r.overlaps, describeResult(r)).toEqual([])
  })

  it('a bridge partition ({0,1}×{3,4}, 2 reaches all) is resolved within 15 s, and calls work within 5 s of the heal', async () => {
    lab = await NetnsLab.create(5)
    const r = await bridgeScenario(lab, { host: 0, durationMs: 20_000, afterMs: 8000 })
    console.log(`bridge:\n${describeResult(r)}`)
    expect(r.resolvedMs, describeResult(r)).toBeLessThanOrEqual(15_000)
    expect(r.overlaps, describeResult(r)).toEqual([])
    // The pair without the oldest member (3, 4) is downed and exits 1; the other three stay.
    expect(r.exits.map((e) => e.code).sort(), describeResult(r)).toEqual([1, 1])
    expect(r.okAfterHeal, describeResult(r)).toHaveLength(3)
    for (const o of r.okAfterHeal) expect(o.ms, describeResult(r)).toBeLessThanOrEqual(5000)
  }, 240_000)
})
