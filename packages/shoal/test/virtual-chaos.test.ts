/**
 * One short seeded virtual-actor chaos round (test/support/virtualChaos.ts): five processes in
 * network namespaces under a fixed schedule of faults, then the offline checker: no id active
 * twice, no call served outside its activation, every id served again after the heal.
 * `npm run chaos:virtual -- --minutes 30` runs many such rounds. Needs root, iproute2 and nftables;
 * otherwise skipped, saying why.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { NetnsLab, netnsAvailable, nftAvailable } from './support/netns.ts'
import { describeVirtualRound, virtualChaosRound } from './support/virtualChaos.ts'

const netns = await netnsAvailable()
const nft = netns.ok ? await nftAvailable() : netns
const why = nft.ok ? '' : nft.why
if (!nft.ok) console.warn(`virtual-chaos.test.ts: skipping: ${why}`)

let lab: NetnsLab | undefined
afterEach(async () => {
  await lab?.destroy()
  lab = undefined
})

describe.skipIf(!nft.ok)(`virtual actors under seeded faults${nft.ok ? '' : ` — skipped: ${why}`}`, () => {
  it('a 40 s round: one activation per id throughout, every id served again after the heal', async () => {
    lab = await NetnsLab.create(5)
    const r = await virtualChaosRound(lab, { seed: 20261206, durationMs: 40_000, logDir: process.env.SHOAL_CHAOS_LOGS })
    console.log(`virtual chaos:\n${describeVirtualRound(r)}`)
    expect(r.faults.length, describeVirtualRound(r)).toBeGreaterThanOrEqual(2)
    expect(r.check.calls.ok, describeVirtualRound(r)).toBeGreaterThan(1000)
    expect(r.check.violations, describeVirtualRound(r)).toEqual([])
    expect(r.recoveredMs, describeVirtualRound(r)).toBeDefined()
  }, 300_000)
})
