/**
 * Crashes, each node its own OS process (seed-system.md §9 scenario 22): kill -9 the lobby's host
 * in the middle of a game (the lobby comes back on the other lobby node with its completed games
 * replayed, the game goes on and is recorded once), then kill -9 a players node in the middle of
 * another (its players and sessions are re-activated elsewhere from the journal, the streams
 * re-attach, no move is lost or relayed twice).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeProcess } from 'shoal/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StreamClient } from '../src/client/StreamClient.ts'
import { lobbyState, newPlayer, play, type StartedGame, session, startGame } from './support/game.ts'

const MAIN = fileURLToPath(new URL('../src/node/main.ts', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'ttf-recovery-'))
const SECRET = randomBytes(32).toString('hex')
const nodes = new Map<string, NodeProcess>()
const all = new Map<string, NodeProcess>()
let url = ''

const start = (name: string, roles: string, extra: string[]): Promise<NodeProcess> =>
  NodeProcess.startScript(MAIN, {
    args: [
      '--name',
      name,
      '--roles',
      roles,
      '--stable-after',
      '1000',
      '--down-margin',
      '2000',
      '--journal',
      `sqlite:${join(dir, 'journal.db')}`,
      '--log-level',
      process.env.TTF_NODE_LOG_LEVEL ?? 'info',
      ...extra,
    ],
    env: { SHOAL_SECRET: SECRET },
    readyWhen: (l) => l.msg === 'tictacfish node started',
    timeout: 60_000,
  }).then((p) => {
    nodes.set(name, p)
    all.set(name, p)
    return p
  })

beforeAll(async () => {
  const first = await start('lobby-a', 'lobby', ['--port', '0'])
  const seed = ['--seed', first.address]
  await Promise.all([
    start('lobby-b', 'lobby', ['--port', '0', ...seed]),
    start('players-a', 'players', ['--port', '0', ...seed]),
    start('players-b', 'players', ['--port', '0', ...seed]),
    start('gateway', 'gateway', ['--port', '0', '--http', '0', ...seed]),
  ])
  const gw = nodes.get('gateway')!.lines.find((l) => l.msg === 'gateway listening')!
  url = `http://127.0.0.1:${gw.port as number}`
  // Serving once a probe gets its lobby (the whole path: gateway → player → lobby).
  const deadline = Date.now() + 60_000
  for (;;) {
    const p = newPlayer('probe', 'fish')
    const probe = StreamClient.lobby({ url, player: p })
    try {
      probe.status$(p, 'connect')
      await probe.next(lobbyState, 3000)
      break
    } catch (e) {
      if (Date.now() > deadline) throw e
    } finally {
      probe.destroy()
    }
  }
}, 120_000)

afterAll(async () => {
  if (process.env.TTF_NODE_LOGS)
    writeFileSync(process.env.TTF_NODE_LOGS, [...all.entries()].flatMap(([name, n]) => n.lines.map((l) => `${name} ${JSON.stringify(l)}`)).join('\n'))
  await Promise.all([...nodes.values()].map((n) => n.kill()))
  rmSync(dir, { recursive: true, force: true })
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
    const host = [...nodes.entries()].find(([name, n]) => name.startsWith('lobby') && n.lines.some((l) => l.msg === 'singleton activated'))
    expect(host, 'a lobby node runs the lobby').toBeDefined()
    await host![1].kill()
    nodes.delete(host![0])

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
    const victim = nodes.get('players-a')!
    await victim.kill()
    nodes.delete('players-a')
    await play(g, state, [1, 8, 2, 0], 60_000) // X wins on 0-4-8
    for (const l of g.lobbies.values()) await l.next(session('finished', g.game.sessionId), 60_000)
    for (const [p, stream] of g.games) {
      const positions = stream.lines.map((line) => (JSON.parse(line) as { message: { position: number; playerId: string } }).message)
      expect(positions.every((m) => m.playerId !== p.playerId)).toBe(true)
      expect(new Set(positions.map((m) => m.position)).size).toBe(positions.length)
    }
  }, 150_000)
})
