/**
 * The rules of tic-tac-toe as the seed plays them (seed-system.md §5.4), as pure functions over the
 * wire's GameState: positions 0–8 row-major; a move is checked before anything is journaled or
 * relayed (the seed journals first and relays even refused moves: G21, G22); the result is
 * evaluated in the seed's order (player one wins, player two wins, draw after nine moves).
 */
import type { GameMove, GameState, Player, Team } from '../protocol/Messages.ts'

const LINES: readonly (readonly [number, number, number])[] = [
  [0, 1, 2],
  [3, 4, 5],
  [6, 7, 8],
  [0, 3, 6],
  [1, 4, 7],
  [2, 5, 8],
  [0, 4, 8],
  [2, 4, 6],
]

/** Player ids are UUIDs, compared without regard to case (the Swift client sends upper case). */
export const playerKey = (playerId: string): string => playerId.toLowerCase()
export const samePlayer = (a: string, b: string): boolean => playerKey(a) === playerKey(b)

/** Why a move was refused; each has a stable code (see MoveRefusedError in GameSession.ts). */
export type MoveRefusal = 'GAME_OVER' | 'NOT_A_PLAYER' | 'NOT_YOUR_TURN' | 'WRONG_TEAM' | 'SQUARE_TAKEN'

/** A new game: no moves, `first` to play. */
export function newGame(sessionId: string, playerOne: Player, playerTwo: Player, first: Player): GameState {
  return { sessionId, playerOne, playerTwo, currentPlayerId: first.playerId, moves: [] }
}

/** Why `move` may not be played on `state` now, or undefined if it may. */
export function checkMove(state: GameState, move: GameMove): MoveRefusal | undefined {
  if (state.result) return 'GAME_OVER'
  const mover = playerOf(state, move.playerId)
  if (!mover) return 'NOT_A_PLAYER'
  if (!samePlayer(state.currentPlayerId, move.playerId)) return 'NOT_YOUR_TURN'
  if (mover.team !== move.team) return 'WRONG_TEAM'
  if (state.moves.some((m) => m.position === move.position)) return 'SQUARE_TAKEN'
  return undefined
}

/** The state after a move that `checkMove` allowed: the move appended, the turn passed, the result recomputed. */
export function applyMove(state: GameState, move: GameMove): GameState {
  const mover = playerOf(state, move.playerId)!
  const other = mover === state.playerOne ? state.playerTwo : state.playerOne
  // The move is recorded with the player's id as the game knows it (one spelling per player).
  const moves = [...state.moves, { ...move, playerId: mover.playerId }]
  const next: GameState = { ...state, moves, currentPlayerId: other.playerId }
  const result = resultOf(next)
  return result ? { ...next, result } : next
}

/** The result of a game, or undefined while it goes on. */
export function resultOf(state: GameState): GameState['result'] {
  for (const player of [state.playerOne, state.playerTwo]) if (hasLine(state.moves, player.playerId)) return { result: { player } }
  if (state.moves.length === 9) return { result: {} }
  return undefined
}

/** The winner's id, 'draw', or undefined while the game goes on. */
export function outcome(state: GameState): string | 'draw' | undefined {
  const r = state.result?.result
  if (!r) return undefined
  return 'player' in r ? r.player.playerId : 'draw'
}

/** The player of the game with this id, if any. */
export function playerOf(state: GameState, playerId: string): Player | undefined {
  if (samePlayer(state.playerOne.playerId, playerId)) return state.playerOne
  if (samePlayer(state.playerTwo.playerId, playerId)) return state.playerTwo
  return undefined
}

/** The other player of the game. */
export function opponentOf(state: GameState, playerId: string): Player {
  return samePlayer(state.playerOne.playerId, playerId) ? state.playerTwo : state.playerOne
}

/** The cosmetic character index the seed's client sends: moves made so far by that player, mod 3. */
export function characterFor(state: GameState, playerId: string): number {
  return state.moves.filter((m) => samePlayer(m.playerId, playerId)).length % 3
}

/** A move for `player` at `position` with the character the seed's client would send. */
export function moveFor(state: GameState, player: Player, position: number): GameMove {
  return { playerId: player.playerId, position, team: player.team as Team, teamCharacterId: characterFor(state, player.playerId) }
}

function hasLine(moves: readonly GameMove[], playerId: string): boolean {
  const mine = new Set(moves.filter((m) => samePlayer(m.playerId, playerId)).map((m) => m.position))
  return LINES.some(([a, b, c]) => mine.has(a) && mine.has(b) && mine.has(c))
}
