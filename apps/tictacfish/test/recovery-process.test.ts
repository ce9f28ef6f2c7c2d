/**
 * Crashes, each node its own OS process (seed-system.md §9 scenario 22): kill -9 the lobby's host
 * in the middle of a game (the lobby comes back on the other lobby node with its completed games
 * replayed, the game goes on and is recorded once), then kill -9 a players node in the middle of
 * another (its players and sessions are re-activated elsewhere from the journal, the streams
 * re-attach, no move is lost or relayed twice).
 */
import { writeFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StreamClient } from '../src/client/StreamClient.ts'
import { ProcessCluster } from '../src/node/ProcessCluster.ts'
import { lobbyState, newPlayer, play, type StartedGame, session, startGame } from './support/game.ts'

let cluster: ProcessCluster
let url = ''

beforeAll(async () => {
  cluster = await ProcessCluster.start({
    nodes: [
      ['lobby-a', 'lobby'],
      ['lobby-b', 'lobby'],
      ['players-a', 'players'],
      ['players-b', 'players'],
      ['gateway', 'gateway'],
    ],
    args: ['--stable-after', '1000', '--down-margin', '2000'],
    logLevel: process.env.TTF_NODE_LOG_LEVEL === 'debug' ? 'debug' : 'info',
  })
  url = cluster.url
}, 120_000)

afterAll(async () => {
  if (process.env.TTF_NODE_LOGS && cluster)
    writeFileSync(process.env.TTF_NODE_LOGS, [...cluster.all.entries()].flatMap(([name, n]) => n.lines.map((l) => `${name} ${JSON.stringify(l)}`)).join('\n'))
  await cluster?.stop()
})

describe('TicTacFish across processes, through crashes', () => {
  let g: StartedGame
  afterAll(() => g?.close())

  it('kill -9 the lobby host mid-game: completed games are replayed, the game goes on and is recorded once', async () => {
    const first = await startGame(url, 1000)
    await play(first, first.game, [0, 3, 1, 4, 2])
    for (const l of first.lobbies.values()) await l.next(session('finished', first.game.sessionId))
    first.close()

    g = await startGame(url, 1000)
    const state = await play(g, g.game, [4, 1])
    const host = cluster.lobbyHost()
    expect(host, 'a lobby node runs the lobby').toMatch(/^lobby-/)
    await cluster.kill(host!)

    // Moves go through the players and the session, not the lobby: the game goes on at once.
    await play(g, state, [8, 2, 0]) // X wins on 0-4-8
    const [w, l] = [...g.lobbies.values()]
    // The finished game reaches the new lobby (reported until it has it) and both lobby streams.
    const fw = await w!.next(session('finished', g.game.sessionId), 60_000)
    await l!.next(session('finished', g.game.sessionId), 60_000)
    expect(fw.value.moves).toHaveLength(5)

    const c = newPlayer('Cy', 'fish')
    const lc = StreamClient.lobby({ url, player: c })
    lc.status$(c, 'connect')
    const sc = (await lc.next(lobbyState, 30_000)).value
    for (const id of [first.game.sessionId, g.game.sessionId]) expect(sc.completedSessions.filter((s) => s.sessionId === id)).toHaveLength(1)
    lc.close()
    g.close()
  }, 150_000)

  it('kill -9 a players node mid-game: the streams re-attach and every move arrives exactly once', async () => {
    g = await startGame(url, 1000)
    const state = await play(g, g.game, [4])
    // The players node that hosts the game's session (it logs its activation) dies.
    const host = [...cluster.nodes.entries()].find(([, n]) => n.lines.some((l) => l.msg === 'game session activated' && l.session === g.game.sessionId))
    expect(host?.[0]).toMatch(/^players-/)
    await cluster.kill(host![0])
    await play(g, state, [1, 8, 2, 0], 60_000) // X wins on 0-4-8
    for (const l of g.lobbies.values()) await l.next(session('finished', g.game.sessionId), 60_000)
    for (const [p, stream] of g.games) {
      const positions = stream.lines.map((line) => (JSON.parse(line) as { message: { position: number; playerId: string } }).message)
      expect(positions.every((m) => m.playerId !== p.playerId)).toBe(true)
      expect(new Set(positions.map((m) => m.position)).size).toBe(positions.length)
    }
  }, 150_000)
})
