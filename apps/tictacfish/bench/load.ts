/**
 * `npm run bench:demo [-- --players 1000 --measure 20 --think 1000,3000]`: N simulated players
 * (bots in this process) play complete games through the JSONL API of a TicTacFish cluster of real
 * processes (lobby, two players nodes, gateway). Each move is scheduled a think time after the
 * bot's turn began, and its latency is counted from that scheduled time to the opponent receiving
 * it (so a slow server cannot hide its queueing: the coordinated-omission lesson of wrk2).
 *
 * Two windows: steady play, then the same with the players node that hosts the most game sessions
 * killed (kill -9) at the window's start. Prints a table: moves/s, p50/p99/max latency, games
 * completed, lost and duplicated moves (target 0).
 */

import { execSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { Bot, type BotStats } from '../src/bots/Bot.ts'
import { ProcessCluster } from '../src/node/ProcessCluster.ts'

const { values } = parseArgs({
  options: {
    players: { type: 'string', default: '1000' },
    measure: { type: 'string', default: '20' },
    'kill-window': { type: 'string', default: '30' },
    warmup: { type: 'string', default: '10' },
    think: { type: 'string', default: '1000,3000' },
    kill: { type: 'boolean', default: true },
    'no-kill': { type: 'boolean', default: false },
  },
})
const N = Number(values.players)
const measureS = Number(values.measure)
const [thinkMin, thinkMax] = values.think.split(',').map(Number) as [number, number]
const log = (s: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`)

interface Window {
  name: string
  moves: number
  hist: RecordableHistogram
  games: number
  startedAt: number
}
let current: Window | undefined
const scheduled = new Map<string, number>()

log(`starting the cluster (lobby, players-a, players-b, gateway: each its own process)…`)
const cluster = await ProcessCluster.start({
  nodes: [
    ['lobby', 'lobby'],
    ['players-a', 'players'],
    ['players-b', 'players'],
    ['gateway', 'gateway'],
  ],
  // Shoal's default down margin: with a 2 s margin (the crash tests' setting) a lobby host whose
  // heartbeats are delayed past 1.6 s on this saturated 2-core machine fences itself (by design).
})
log(`serving at ${cluster.url}; starting ${N} players (think ${thinkMin}–${thinkMax} ms)…`)

const bots: Bot[] = []
for (let i = 0; i < N; i++) {
  const bot = new Bot({
    url: cluster.url,
    team: i % 2 ? 'fish' : 'rodents',
    name: `p${i}`,
    think: [thinkMin, thinkMax],
    heartbeat: 10_000,
    onSend: (sessionId, index, at) => scheduled.set(`${sessionId}:${index}`, at),
    onReceive: (sessionId, index, at) => {
      const key = `${sessionId}:${index}`
      const t = scheduled.get(key)
      scheduled.delete(key)
      if (t === undefined || !current) return
      current.moves++
      current.hist.record(Math.max(1, Math.round((at - t) * 1000)))
    },
  })
  bots.push(bot)
  bot.start()
  // A gentle ramp: the lobby tells everyone of every arrival.
  if (i % 50 === 49) await new Promise((r) => setTimeout(r, 100))
}
const totals = (): BotStats => {
  const t: BotStats = { games: 0, wins: 0, draws: 0, moves: 0, lost: 0, duplicated: 0, inconsistent: 0 }
  for (const b of bots) for (const k of Object.keys(t) as (keyof BotStats)[]) t[k] += b.stats[k]
  return t
}
log(`players connected; warming up ${values.warmup} s…`)
await sleep(Number(values.warmup) * 1000)

async function measure(name: string, windowS: number, before?: () => Promise<void>): Promise<Window & { stats: BotStats; seconds: number }> {
  const start = totals()
  current = { name, moves: 0, hist: createHistogram(), games: 0, startedAt: performance.now() }
  await before?.()
  const w = current
  for (let s = 0; s < windowS; s += 5) {
    await sleep(5000)
    log(`${name}: ${w.moves} moves so far`)
  }
  const seconds = (performance.now() - w.startedAt) / 1000
  current = undefined
  const end = totals()
  const stats = Object.fromEntries(Object.keys(end).map((k) => [k, end[k as keyof BotStats] - start[k as keyof BotStats]])) as unknown as BotStats
  return { ...w, stats, seconds }
}

const steady = await measure('steady', measureS)
// Flow control and mailboxes after the steady window: a stalled run shows where work piles up.
for (const [name, lines] of await cluster.metrics(/^shoal_(inbound_paused_total|inbound_bytes|mailbox_depth)|unavailable/))
  log(`${name}: ${lines.join(' · ') || '–'}`)
const windows = [steady]
if (values.kill && !values['no-kill']) {
  windows.push(
    await measure('players node killed', Number(values['kill-window']), async () => {
      const victim = [...cluster.nodes.entries()]
        .filter(([name]) => name.startsWith('players'))
        .map(([name, n]) => ({ name, sessions: n.lines.filter((l) => l.msg === 'game session activated').length }))
        .sort((a, b) => b.sessions - a.sessions)[0]
      log(`kill -9 ${victim?.name}`)
      if (victim) await cluster.kill(victim.name)
    }),
  )
}
for (const b of bots) b.stop()
const final = totals()
if (process.env.TTF_NODE_LOGS)
  writeFileSync(process.env.TTF_NODE_LOGS, [...cluster.all.entries()].flatMap(([name, n]) => n.lines.map((l) => `${name} ${JSON.stringify(l)}`)).join('\n'))
await cluster.stop()

const ms = (h: RecordableHistogram, p: number): string => (h.count === 0 ? '–' : (h.percentile(p) / 1000).toFixed(1))
console.log(`\nTicTacFish load, ${N} players, think ${thinkMin}–${thinkMax} ms, ${measureS} s steady window, ${values['kill-window']} s from the kill`)
console.log(
  `commit ${commit()} · ${cpus().length} cores · load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} · ${new Date().toISOString()}\n`,
)
console.log('| window | moves/s | p50 ms | p99 ms | max ms | games completed | lost moves | duplicated moves |')
console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
for (const w of windows)
  console.log(
    `| ${w.name} | ${(w.moves / w.seconds).toFixed(0)} | ${ms(w.hist, 50)} | ${ms(w.hist, 99)} | ${w.hist.count ? (w.hist.max / 1000).toFixed(1) : '–'} | ${w.stats.games / 2} | ${w.stats.lost} | ${w.stats.duplicated} |`,
  )
console.log(
  `\nwhole run: ${final.games / 2} games, ${final.moves} moves, lost ${final.lost}, duplicated ${final.duplicated}, inconsistent ${final.inconsistent}`,
)
process.exit(final.lost + final.duplicated + final.inconsistent === 0 ? 0 : 1)

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function commit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim()
  } catch {
    return '?'
  }
}
