/** Helpers of the TicTacFish tests: an in-process node, players, line matchers, a started game. */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StreamClient } from '../../src/client/StreamClient.ts'
import { moveFor } from '../../src/game/GameRules.ts'
import { startTicTacFishNode, type TicTacFishNode, type TicTacFishNodeOptions } from '../../src/node/TicTacFishNode.ts'
import { type GameState, type Player, parseServerGameLine, parseServerLobbyLine } from '../../src/protocol/Messages.ts'

/** One node with all three roles, its journal in a fresh directory, the gateway on a free port. */
export async function startAllInOne(options: Partial<TicTacFishNodeOptions> = {}): Promise<{ node: TicTacFishNode; url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ttf-'))
  const node = await startTicTacFishNode({
    roles: ['gateway', 'players', 'lobby'],
    system: { port: 0, insecure: true, logLevel: 'silent' },
    journal: `sqlite:${join(dir, 'journal.db')}`,
    ...options,
    gateway: { port: 0, ...options.gateway },
  })
  return {
    node,
    url: `http://127.0.0.1:${node.gateway!.address.port}`,
    stop: async () => {
      await node.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const newPlayer = (name: string, team: Player['team'], upper = false): Player => {
  const id = randomUUID()
  return { playerId: upper ? id.toUpperCase() : id, name, team }
}

export const lobbyState = (l: unknown) => {
  const p = parseServerLobbyLine(JSON.stringify(l))
  return p.kind === 'lobby' ? p.state : undefined
}

export const status = (who: Player, s: string) => (l: unknown) => {
  const p = parseServerLobbyLine(JSON.stringify(l))
  return p.kind === 'status' && p.update.player.playerId === who.playerId && p.update.status === s ? p.update : undefined
}

export const session = (type: 'started' | 'finished', sessionId?: string) => (l: unknown) => {
  const p = parseServerLobbyLine(JSON.stringify(l))
  return p.kind === 'session' && p.update.type === type && (sessionId === undefined || p.update.game.sessionId === sessionId) ? p.update.game : undefined
}

/** A `started` line of a game `player` plays in (a lobby stream also hears of everyone else's games). */
export const startedFor = (player: Player) => (l: unknown) => {
  const g = session('started')(l)
  return g && [g.playerOne, g.playerTwo].some((p) => p.playerId === player.playerId) ? g : undefined
}

export const moveAt = (position: number) => (l: unknown) => {
  const m = parseServerGameLine(JSON.stringify(l))
  return m.position === position ? m : undefined
}

export interface StartedGame {
  readonly game: GameState
  /** The player to move first, and the other. */
  readonly x: Player
  readonly o: Player
  readonly lobbies: Map<Player, StreamClient>
  readonly games: Map<Player, StreamClient>
  close(): void
}

/** Two players (fish and rodents) connect, ready up, are matched, and open their game streams. */
export async function startGame(url: string, heartbeat = 0): Promise<StartedGame> {
  const a = newPlayer('Ann', 'fish')
  const b = newPlayer('Bob', 'rodents')
  const lobbies = new Map<Player, StreamClient>()
  for (const p of [a, b]) {
    const l = StreamClient.lobby({ url, player: p, heartbeat })
    l.status$(p, 'connect')
    await l.next(lobbyState)
    lobbies.set(p, l)
  }
  for (const p of [a, b]) lobbies.get(p)!.status$(p, 'ready')
  // A fresh cluster may still be moving shards to its second players node: allow for the hand-over.
  const game = (await lobbies.get(a)!.next(startedFor(a), 30_000)).value
  await lobbies.get(b)!.next(session('started', game.sessionId), 30_000)
  const [x, o] = game.currentPlayerId === a.playerId ? [a, b] : [b, a]
  const games = new Map<Player, StreamClient>()
  for (const p of [x, o]) {
    const g = StreamClient.game({ url, player: p, heartbeat })
    await g.opened
    games.set(p, g)
  }
  return {
    game,
    x,
    o,
    lobbies,
    games,
    close: () => {
      for (const c of [...lobbies.values(), ...games.values()]) c.close()
    },
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Plays `positions` in turn from `state` (whoever's turn it is first); each move is awaited on the
 * opponent's game stream (its line at or after the stream's current end). Returns the state after.
 */
export async function play(g: StartedGame, state: GameState, positions: readonly number[], timeout = 15_000): Promise<GameState> {
  let s = state
  for (const pos of positions) {
    const mover = s.currentPlayerId === g.x.playerId ? g.x : g.o
    const other = mover === g.x ? g.o : g.x
    const mv = moveFor(s, mover, pos)
    const stream = g.games.get(other)!
    const from = stream.lines.length
    g.games.get(mover)!.move(mv)
    await stream.next(moveAt(pos), timeout, from)
    s = { ...s, moves: [...s.moves, mv], currentPlayerId: other.playerId }
  }
  return s
}
