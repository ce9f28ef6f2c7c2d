/**
 * A rolling restart of a TicTacFish cluster of real processes, the way a Kubernetes Deployment
 * with maxSurge 1 and maxUnavailable 0 does it: for each node, start its replacement, wait until
 * it is ready (up in the cluster), SIGTERM the old one (a graceful leave: the lobby singleton and
 * the node's virtual actors hand over), wait for it to exit, go on. Bots play all along.
 *
 * What it checks: every old node exits 0; no move of any game is lost, relayed twice or
 * contradicted; the lobby singleton never runs on two nodes at once (from the nodes' own log
 * lines, one machine clock); games moved (sessions activated again, with their moves, on other
 * nodes); and the calls the gateway made that failed (`shoal_calls_total` outcomes other than ok
 * on the gateway, which stays up as the cluster's front door) while the nodes behind it rolled.
 */
import { writeFileSync } from 'node:fs'
import type { NodeProcess } from 'shoal/testkit'
import { Bot, type BotStats } from '../bots/Bot.ts'
import { ProcessCluster } from './ProcessCluster.ts'

export interface RollingOptions {
  /** Bots playing throughout. Default 40. */
  readonly players?: number
  /** Pause after each step, ms. Default 3000. */
  readonly settle?: number
  /** Progress lines. */
  readonly log?: (line: string) => void
}

export interface RollingReport {
  readonly steps: ReadonlyArray<{
    readonly node: string
    readonly replacement: string
    readonly readyMs: number
    readonly leaveMs: number
    readonly exitCode: number | null
  }>
  readonly bots: BotStats
  /** Failed calls made by the gateway while the nodes behind it rolled, by outcome. */
  readonly gatewayFailures: Readonly<Record<string, number>>
  /** Times the lobby singleton was active on two nodes at once (0 is the target). */
  readonly singletonOverlaps: number
  /** Lobby activations over the run (one per hand-over, plus the first). */
  readonly singletonActivations: number
  /** Game sessions activated again with moves (recovered elsewhere mid-game). */
  readonly sessionsMoved: number
  /** Bots that did not finish a game in the 20 s after the last step (a stalled game shows here). */
  readonly stuck: number
  readonly ok: boolean
}

const NODES: ReadonlyArray<readonly [string, string]> = [
  ['gateway', 'gateway'],
  ['lobby-a', 'lobby'],
  ['lobby-b', 'lobby'],
  ['players-a', 'players'],
  ['players-b', 'players'],
  ['players-c', 'players'],
]

/** Runs the whole demo: starts the cluster and the bots, rolls every node but the gateway, stops, reports. */
export async function rollingRestart(o: RollingOptions = {}): Promise<RollingReport> {
  const log = o.log ?? (() => undefined)
  const settle = o.settle ?? 3000
  // The gateway first: it is the seed of the others, and the front door that stays.
  const cluster = await ProcessCluster.start({ nodes: NODES, ...(process.env.TTF_NODE_LOG_LEVEL === 'debug' ? { logLevel: 'debug' as const } : {}) })
  try {
    const bots = Array.from(
      { length: o.players ?? 40 },
      (_, i) => new Bot({ url: cluster.url, team: i % 2 ? 'fish' : 'rodents', think: [100, 600], heartbeat: 5000 }),
    )
    for (const b of bots) b.start()
    log(`${bots.length} bots playing on ${cluster.url}`)
    await sleep(settle)
    const before = await gatewayOutcomes(cluster)
    const steps: RollingReport['steps'][number][] = []
    for (const [name, roles] of NODES.slice(1)) {
      const replacement = `${name}-2`
      let t = performance.now()
      await cluster.add(replacement, roles)
      const readyMs = performance.now() - t
      log(`${replacement} is ready (${(readyMs / 1000).toFixed(1)} s); SIGTERM ${name}`)
      t = performance.now()
      const exitCode = await cluster.terminate(name)
      const leaveMs = performance.now() - t
      log(`${name} left and exited ${exitCode} (${(leaveMs / 1000).toFixed(1)} s); ${summary(bots)}`)
      steps.push({ node: name, replacement, readyMs, leaveMs, exitCode })
      await sleep(settle)
    }
    const after = await gatewayOutcomes(cluster)
    log('every node but the gateway replaced; letting the bots finish their games…')
    const counts = bots.map((b) => b.stats.games)
    await Promise.race([Promise.all(bots.map((b) => finishCurrent(b))), sleep(20_000)])
    const stuck = bots.filter((b, i) => b.stats.games === counts[i])
    if (stuck.length > 0) log(`${stuck.length} bots did not finish a game in 20 s: ${JSON.stringify(stuck.map((b) => b.status))}`)
    for (const b of bots) b.stop()
    const gatewayFailures: Record<string, number> = {}
    for (const [outcome, n] of after)
      if (outcome !== 'ok' && outcome !== 'retried' && n - (before.get(outcome) ?? 0) > 0) gatewayFailures[outcome] = n - (before.get(outcome) ?? 0)
    const singleton = singletonIntervals(cluster)
    const sessionsMoved = [...cluster.all.values()].flatMap((n) => n.lines).filter((l) => l.msg === 'game session activated' && (l.moves as number) > 0).length
    const stats = totals(bots)
    const report = {
      steps,
      bots: stats,
      gatewayFailures,
      singletonOverlaps: singleton.overlaps,
      singletonActivations: singleton.activations,
      sessionsMoved,
      stuck: stuck.length,
      ok:
        steps.every((s) => s.exitCode === 0) &&
        stats.lost + stats.duplicated + stats.inconsistent === 0 &&
        singleton.overlaps === 0 &&
        stuck.length === 0 &&
        Object.keys(gatewayFailures).length === 0,
    }
    return report
  } finally {
    if (process.env.TTF_NODE_LOGS)
      writeFileSync(process.env.TTF_NODE_LOGS, [...cluster.all.entries()].flatMap(([name, n]) => n.lines.map((l) => `${name} ${JSON.stringify(l)}`)).join('\n'))
    await cluster.stop()
  }
}

/** The gateway's `shoal_calls_total` by outcome. */
async function gatewayOutcomes(cluster: ProcessCluster): Promise<Map<string, number>> {
  const lines = (await cluster.metrics(/^shoal_calls_total\{/)).get('gateway') ?? []
  const out = new Map<string, number>()
  for (const l of lines) {
    const outcome = /outcome="([^"]+)"/.exec(l)?.[1]
    if (outcome) out.set(outcome, Number(l.slice(l.lastIndexOf(' ') + 1)))
  }
  return out
}

/** The lobby singleton's activity per process, from its log lines; overlaps counted pairwise. */
function singletonIntervals(cluster: ProcessCluster): { overlaps: number; activations: number } {
  const intervals: { from: number; to: number }[] = []
  for (const n of cluster.all.values()) intervals.push(...activeSpans(n))
  let overlaps = 0
  for (let i = 0; i < intervals.length; i++)
    for (let j = i + 1; j < intervals.length; j++) if (intervals[i]!.from < intervals[j]!.to && intervals[j]!.from < intervals[i]!.to) overlaps++
  return { overlaps, activations: intervals.length }
}

function activeSpans(n: NodeProcess): { from: number; to: number }[] {
  const spans: { from: number; to: number }[] = []
  let from: number | undefined
  for (const l of n.lines) {
    if (l.msg === 'singleton activated') from = l.time
    // Passivating: the instance takes no more calls; activation elsewhere waits for `passivated`.
    if (l.msg === 'singleton passivated' && from !== undefined) {
      spans.push({ from, to: l.time })
      from = undefined
    }
  }
  if (from !== undefined) spans.push({ from, to: n.lines.at(-1)?.time ?? Number.POSITIVE_INFINITY })
  return spans
}

function totals(bots: readonly Bot[]): BotStats {
  const t: BotStats = { games: 0, wins: 0, draws: 0, moves: 0, lost: 0, duplicated: 0, inconsistent: 0 }
  for (const b of bots) for (const k of Object.keys(t) as (keyof BotStats)[]) t[k] += b.stats[k]
  return t
}

function summary(bots: readonly Bot[]): string {
  const t = totals(bots)
  return `games ${t.games / 2}, moves ${t.moves}, lost ${t.lost}, duplicated ${t.duplicated}`
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

async function finishCurrent(b: Bot): Promise<void> {
  const n = b.stats.games
  while (b.stats.games === n) await sleep(200)
}
