/**
 * A move is played in the game its stream shows: after a crash the gateway retries a move whose
 * first try may have gone in, and a retried winning move must not land in the player's next game.
 * The NetworkPlayer is driven directly; its lobby and sessions are small in-memory stand-ins that
 * apply the real rules. Also: a repeated `started` (a re-attached stream's catch-up) leaves the
 * game in play alone, in the browser UI's state as in the bot.
 */
import type { ActorRef } from 'shoal'
import { eventually, startNodes, type TestNodes } from 'shoal/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyMove, checkMove, moveFor } from '../src/game/GameRules.ts'
import type { GameSession, MoveOutcome } from '../src/game/GameSession.ts'
import { PlayerStream } from '../src/gateway/PlayerStream.ts'
import type { GameLobby } from '../src/lobby/GameLobby.ts'
import { NetworkPlayer } from '../src/player/NetworkPlayer.ts'
import type { GameMove, GameState, LobbyMessage, LobbyState, Player } from '../src/protocol/Messages.ts'
import { initialUi, reduce } from '../src/ui/UiState.ts'

const ann: Player = { playerId: '1c0a8e9e-5b6f-4f1e-8d3a-2b4c6d8e0f11', name: 'Ann', team: 'fish' }
const bob: Player = { playerId: '2d1b9f0f-6c7a-4a2f-9e4b-3c5d7e9f1a22', name: 'Bob', team: 'rodents' }
const newGame = (sessionId: string): GameState => ({ sessionId, playerOne: ann, playerTwo: bob, currentPlayerId: ann.playerId, moves: [] })

let nodes: TestNodes
beforeAll(async () => {
  nodes = await startNodes(1)
})
afterAll(() => nodes.shutdown())

/** Sessions that apply the rules, a lobby naming Ann's current game, and Ann's NetworkPlayer (spawned on a one-node system, called through its ref). */
function world() {
  const games = new Map<string, GameState>()
  let current: GameState | undefined
  const move = async (id: string, m: GameMove): Promise<MoveOutcome> => {
    const g = games.get(id)
    if (!g) return { accepted: false, reason: 'NOT_STARTED' }
    const refusal = checkMove(g, m)
    if (refusal) return { accepted: false, reason: refusal }
    const after = applyMove(g, m)
    games.set(id, after)
    if (after.result && current?.sessionId === id) current = undefined
    return { accepted: true, index: after.moves.length - 1, game: after }
  }
  const links = {
    lobby: { gameOf: async () => current } as unknown as ActorRef<GameLobby>,
    session: (id: string) => ({ move: (m: GameMove) => move(id, m), game: async () => games.get(id) }) as unknown as ActorRef<GameSession>,
  }
  return {
    games,
    ann: nodes.systems[0]!.spawn(NetworkPlayer, ann.playerId, links),
    /** Bob plays straight into the session. */
    bob: (id: string, position: number) => move(id, moveFor(games.get(id)!, bob, position)),
    start(id: string): void {
      current = newGame(id)
      games.set(id, current)
    },
  }
}

describe('NetworkPlayer.move', () => {
  it('a retried winning move is refused in its own game, not played in the next one', async () => {
    const w = world()
    w.start('a')
    const win = async (): Promise<GameMove> => moveFor(w.games.get('a')!, ann, 2)
    await w.ann.move(moveFor(w.games.get('a')!, ann, 0), 'a')
    await w.bob('a', 3)
    await w.ann.move(moveFor(w.games.get('a')!, ann, 1), 'a')
    await w.bob('a', 4)
    const last = await win()
    expect((await w.ann.move(last, 'a')).accepted).toBe(true)
    expect(w.games.get('a')!.result).toBeDefined()
    // The next game starts; the gateway retries the winning move (its reply was lost with a node).
    w.start('b')
    expect(await w.ann.move(last, 'a')).toEqual({ accepted: false, reason: 'GAME_OVER' })
    expect(w.games.get('b')!.moves).toEqual([])
    // Unbound (a stream that shows no game in play), the move goes to the current game.
    expect((await w.ann.move(last)).accepted).toBe(true)
    expect(w.games.get('b')!.moves.map((m) => m.position)).toEqual([2])
  })

  it('a move for a game this activation does not know yet is played there once the lobby names it', async () => {
    const w = world()
    w.start('a')
    await w.ann.move(moveFor(w.games.get('a')!, ann, 4), 'a')
    w.start('c') // a started line that never reached this activation
    expect((await w.ann.move(moveFor(w.games.get('c')!, ann, 0), 'c')).accepted).toBe(true)
    // A game the lobby does not name and no session knows: not started.
    expect(await w.ann.move(moveFor(newGame('z'), ann, 0), 'z')).toEqual({ accepted: false, reason: 'NOT_STARTED' })
  })
})

describe('NetworkPlayer lobby lines', () => {
  it('a LobbyState that reaches an activation before its stream does is delivered when the stream attaches', async () => {
    const w = world()
    const got: LobbyMessage[] = []
    const sink = { lobbyLine: (m: LobbyMessage) => void got.push(m), opponentMove: () => undefined, close: () => undefined }
    const stream = nodes.systems[0]!.spawn(PlayerStream, sink)
    const state: LobbyState = { waitingPlayers: [ann], readyPlayers: [], completedSessions: [] }
    // The lobby's answer to `connect` (sent once) and someone else's coming: the state is kept, the status is not.
    await w.ann.lobbyMessage(state)
    await w.ann.lobbyMessage({ player: bob, status: 'connect' })
    await w.ann.attachLobby(stream, ann, true, { joined: false, ready: false })
    await eventually(() => expect(got).toEqual([state]))
  })
})

describe('a repeated started line', () => {
  it('keeps the moves of the game in play in the browser UI', () => {
    const g = newGame('a')
    let s = reduce(initialUi, { kind: 'join', me: ann })
    s = reduce(s, { kind: 'lobbyLine', message: { type: 'started', game: g } })
    s = reduce(s, { kind: 'moved', move: moveFor(g, ann, 4) })
    expect(s.game!.moves).toHaveLength(1)
    s = reduce(s, { kind: 'lobbyLine', message: { type: 'started', game: g } })
    expect(s.game!.moves).toHaveLength(1)
    // A new game replaces it.
    s = reduce(s, { kind: 'lobbyLine', message: { type: 'started', game: newGame('b') } })
    expect(s.game!.sessionId).toBe('b')
    expect(s.game!.moves).toHaveLength(0)
  })
})
