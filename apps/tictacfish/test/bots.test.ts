/** Bot players (what `npm run demo:bots` runs) play whole games against each other: nothing lost, nothing twice. */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { Bot } from '../src/bots/Bot.ts'
import { startAllInOne } from './support/game.ts'

let app: Awaited<ReturnType<typeof startAllInOne>>
beforeAll(async () => {
  app = await startAllInOne()
})
afterAll(() => app?.stop())

it('eight bots play three games each through the JSONL API', async () => {
  const bots = Array.from({ length: 8 }, (_, i) => new Bot({ url: app.url, team: i % 2 ? 'fish' : 'rodents', think: [5, 30], games: 3, heartbeat: 1000 }))
  for (const b of bots) b.start()
  await Promise.all(bots.map((b) => b.finished))
  const sum = (k: keyof Bot['stats']) => bots.reduce((n, b) => n + b.stats[k], 0)
  expect(sum('games')).toBe(24)
  expect(sum('wins') * 2 + sum('draws')).toBe(24)
  expect({ lost: sum('lost'), duplicated: sum('duplicated'), inconsistent: sum('inconsistent') }).toEqual({ lost: 0, duplicated: 0, inconsistent: 0 })
}, 60_000)
