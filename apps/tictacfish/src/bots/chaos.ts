/**
 * `npm run demo:chaos [-- --players 20 --seconds 60]`: bots play on a cluster of real processes
 * (two lobby nodes, three players nodes, a gateway) while the lobby's host and then a players node
 * are killed with kill -9 in the middle of games. The games finish; every bot checks that each
 * move of its games reached it exactly once. Prints what happened; exits 1 if a move was lost,
 * relayed twice or contradicted its game.
 */
import { parseArgs } from 'node:util'
import { ProcessCluster } from '../node/ProcessCluster.ts'
import { Bot, type BotStats } from './Bot.ts'

const { values } = parseArgs({ options: { players: { type: 'string', default: '20' }, seconds: { type: 'string', default: '60' } } })
const seconds = Number(values.seconds)
const t0 = performance.now()
const log = (s: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${s}`)

log('starting lobby-a, lobby-b, players-a, players-b, players-c and a gateway, each its own process…')
const cluster = await ProcessCluster.start({
  nodes: [
    ['lobby-a', 'lobby'],
    ['lobby-b', 'lobby'],
    ['players-a', 'players'],
    ['players-b', 'players'],
    ['players-c', 'players'],
    ['gateway', 'gateway'],
  ],
  args: ['--stable-after', '1000', '--down-margin', '2000'],
})
const bots = Array.from(
  { length: Number(values.players) },
  (_, i) => new Bot({ url: cluster.url, team: i % 2 ? 'fish' : 'rodents', think: [100, 600], heartbeat: 5000 }),
)
for (const b of bots) b.start()
const totals = (): BotStats => {
  const t: BotStats = { games: 0, wins: 0, draws: 0, moves: 0, lost: 0, duplicated: 0, inconsistent: 0 }
  for (const b of bots) for (const k of Object.keys(t) as (keyof BotStats)[]) t[k] += b.stats[k]
  return t
}
const report = (): string => {
  const t = totals()
  return `games finished ${t.games / 2}, moves ${t.moves}, lost ${t.lost}, duplicated ${t.duplicated}, inconsistent ${t.inconsistent}`
}
log(`${bots.length} bots playing on ${cluster.url}`)
const ticker = setInterval(() => log(report()), 5000)

await sleep(seconds * 250)
const lobbyHost = cluster.lobbyHost()!
log(`kill -9 ${lobbyHost} (the lobby's host), games in progress`)
await cluster.kill(lobbyHost)
await sleep(seconds * 250)
const busiest = [...cluster.nodes.entries()]
  .filter(([name]) => name.startsWith('players'))
  .map(([name, n]) => ({ name, sessions: n.lines.filter((l) => l.msg === 'game session activated').length }))
  .sort((a, b) => b.sessions - a.sessions)[0]!
log(`kill -9 ${busiest.name} (hosted ${busiest.sessions} game sessions), games in progress`)
await cluster.kill(busiest.name)
await sleep(seconds * 400)
log('stopping the bots after their current games…')
const before = totals().games
await Promise.race([Promise.all(bots.map((b) => finishCurrent(b))), sleep(20_000)])
for (const b of bots) b.stop()
clearInterval(ticker)
await cluster.stop()
const t = totals()
log(`done: ${report()} (${t.games / 2 - before / 2} finished while stopping)`)
console.log(
  t.lost + t.duplicated + t.inconsistent === 0
    ? 'PASS: every move of every game reached the opponent exactly once, through both crashes'
    : 'FAIL: moves were lost, relayed twice or contradicted their game',
)
process.exit(t.lost + t.duplicated + t.inconsistent === 0 ? 0 : 1)

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Resolves once the bot has finished one more game (or stopped). */
async function finishCurrent(b: Bot): Promise<void> {
  const n = b.stats.games
  while (b.stats.games === n) await sleep(200)
}
