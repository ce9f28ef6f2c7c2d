/**
 * `npm run demo:bots -- --players N [--url http://127.0.0.1:8080] [--games G] [--think MIN,MAX]`:
 * bot players that play legal random games through the JSONL API, half fish and half rodents (one
 * bot plays whichever team has fewer humans: start one to have someone to play in the browser).
 * Prints what they did every 5 s; Ctrl-C stops them.
 */
import { parseArgs } from 'node:util'
import { Bot } from './Bot.ts'

const { values } = parseArgs({
  options: {
    players: { type: 'string', default: '2' },
    url: { type: 'string', default: process.env.TTF_URL ?? 'http://127.0.0.1:8080' },
    games: { type: 'string', default: '0' },
    think: { type: 'string', default: '300,1200' },
    team: { type: 'string' },
  },
})
const n = Number.parseInt(values.players, 10)
const [min, max] = values.think.split(',').map(Number) as [number, number]
const bots = Array.from({ length: n }, (_, i) => {
  const team = (values.team as 'fish' | 'rodents' | undefined) ?? (i % 2 === 0 ? 'rodents' : 'fish')
  return new Bot({ url: values.url, team, name: `bot-${i + 1}`, think: [min, max], games: Number(values.games) })
})
for (const b of bots) b.start()
console.log(`${n} bots playing on ${values.url} (Ctrl-C stops them)`)

const totals = (): string => {
  const t = { games: 0, moves: 0, lost: 0, duplicated: 0, inconsistent: 0 }
  for (const b of bots) for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] += b.stats[k]
  return `games ${t.games / 2} · moves ${t.moves} · lost ${t.lost} · duplicated ${t.duplicated} · inconsistent ${t.inconsistent}`
}
const ticker = setInterval(() => console.log(totals()), 5000)
const stop = (): void => {
  clearInterval(ticker)
  for (const b of bots) b.stop()
  console.log(`stopped: ${totals()}`)
  setTimeout(() => process.exit(0), 200).unref()
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
await Promise.all(bots.map((b) => b.finished))
stop()
