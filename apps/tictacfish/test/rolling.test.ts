/**
 * A rolling restart the way Kubernetes does one (start the new node, wait until it is ready,
 * SIGTERM the old one), of five real processes behind the gateway while bots play: every old node
 * leaves and exits 0, no move is lost or relayed twice, every bot finishes its game, the lobby
 * singleton never runs on two nodes at once, games move between nodes, and the gateway sees no
 * failed call. `npm run demo:rolling` is the same with more bots and its progress printed.
 */
import { describe, expect, it } from 'vitest'
import { rollingRestart } from '../src/node/RollingRestart.ts'

describe('TicTacFish through a rolling restart', () => {
  it('five nodes replaced one by one under play: nothing lost, nothing doubled, one lobby at a time', async () => {
    const lines: string[] = []
    const r = await rollingRestart({ players: 20, settle: 2000, log: (l) => lines.push(l) })
    const context = JSON.stringify({ ...r, lines }, null, 1)
    expect(
      r.steps.map((s) => s.exitCode),
      context,
    ).toEqual([0, 0, 0, 0, 0])
    expect(r.bots.games, context).toBeGreaterThan(0)
    expect({ lost: r.bots.lost, duplicated: r.bots.duplicated, inconsistent: r.bots.inconsistent }, context).toEqual({
      lost: 0,
      duplicated: 0,
      inconsistent: 0,
    })
    expect(r.stuck, context).toBe(0)
    expect(r.singletonOverlaps, context).toBe(0)
    expect(r.singletonActivations, context).toBeGreaterThanOrEqual(2) // the lobby moved
    expect(r.gatewayFailures, context).toEqual({})
    expect(r.ok, context).toBe(true)
  }, 150_000)
})
