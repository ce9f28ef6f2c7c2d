/**
 * The browser UI's state machine, pure (no DOM, no sockets): menu → lobby → game → result → lobby.
 * Lines from the two streams and the user's clicks are events; `reduce` gives the next state, and
 * the moves to send come out of `play`. main.ts renders the state and wires the WebSockets.
 */
import { applyMove, checkMove, moveFor, outcome, samePlayer } from '../game/GameRules.ts'
import type { GameMove, GameState, LobbyMessage, Player } from '../protocol/Messages.ts'

export interface UiState {
  readonly screen: 'menu' | 'lobby' | 'game'
  readonly me: Player | undefined
  /** Players in the lobby by id (lower case), with whether they are ready, in arrival order. */
  readonly lobby: ReadonlyMap<string, { readonly player: Player; readonly ready: boolean }>
  readonly completed: readonly GameState[]
  /** The game being played or just finished. */
  readonly game: GameState | undefined
  readonly ready: boolean
}

export const initialUi: UiState = { screen: 'menu', me: undefined, lobby: new Map(), completed: [], game: undefined, ready: false }

export type UiEvent =
  | { readonly kind: 'join'; readonly me: Player }
  | { readonly kind: 'lobbyLine'; readonly message: LobbyMessage }
  | { readonly kind: 'gameLine'; readonly move: GameMove }
  | { readonly kind: 'ready'; readonly ready: boolean }
  | { readonly kind: 'moved'; readonly move: GameMove }
  | { readonly kind: 'backToLobby' }

export function reduce(s: UiState, e: UiEvent): UiState {
  switch (e.kind) {
    case 'join':
      return { ...s, screen: 'lobby', me: e.me }
    case 'ready':
      return { ...s, ready: e.ready }
    case 'backToLobby':
      return { ...s, screen: 'lobby', game: undefined, ready: false }
    case 'moved':
    case 'gameLine':
      return s.game && !checkMove(s.game, e.move) ? { ...s, game: applyMove(s.game, e.move) } : s
    case 'lobbyLine':
      return lobbyLine(s, e.message)
  }
}

function lobbyLine(s: UiState, m: LobbyMessage): UiState {
  if ('waitingPlayers' in m) {
    const lobby = new Map<string, { player: Player; ready: boolean }>()
    for (const p of m.waitingPlayers) lobby.set(p.playerId.toLowerCase(), { player: p, ready: false })
    for (const p of m.readyPlayers) lobby.set(p.playerId.toLowerCase(), { player: p, ready: true })
    return { ...s, lobby, completed: m.completedSessions }
  }
  if ('status' in m) {
    const lobby = new Map(s.lobby)
    const key = m.player.playerId.toLowerCase()
    if (m.status === 'disconnect') lobby.delete(key)
    else lobby.set(key, { player: m.player, ready: m.status === 'ready' })
    return { ...s, lobby }
  }
  const mine = s.me !== undefined && [m.game.playerOne, m.game.playerTwo].some((p) => samePlayer(p.playerId, s.me!.playerId))
  const lobby = new Map(s.lobby)
  // Players in a game are neither waiting nor ready (they come back with `connect` when it ends).
  if (m.type === 'started') for (const p of [m.game.playerOne, m.game.playerTwo]) lobby.delete(p.playerId.toLowerCase())
  if (m.type === 'finished') {
    const completed = s.completed.some((g) => g.sessionId === m.game.sessionId) ? s.completed : [...s.completed, m.game]
    const game = mine && s.game?.sessionId === m.game.sessionId ? m.game : s.game
    return { ...s, lobby, completed, game }
  }
  if (!mine) return { ...s, lobby }
  // A repeat of the game being played (a re-attached stream's catch-up) keeps its moves.
  if (s.game?.sessionId === m.game.sessionId) return { ...s, lobby, screen: 'game' }
  return { ...s, lobby, screen: 'game', game: m.game, ready: false }
}

/** The move to send for a click on `position`, if it is a legal move of mine now. */
export function play(s: UiState, position: number): GameMove | undefined {
  if (!s.game || !s.me) return undefined
  const move = moveFor(s.game, s.me, position)
  return checkMove(s.game, move) ? undefined : move
}

/** Wins per team over the completed games (the lobby's score line). */
export function score(completed: readonly GameState[]): { fish: number; rodents: number } {
  const score = { fish: 0, rodents: 0 }
  for (const g of completed) {
    const r = g.result?.result
    if (r && 'player' in r) score[r.player.team]++
  }
  return score
}

/** Wins per player id (lower case). */
export function wins(completed: readonly GameState[]): Map<string, number> {
  const wins = new Map<string, number>()
  for (const g of completed) {
    const winner = outcome(g)
    if (winner && winner !== 'draw') wins.set(winner.toLowerCase(), (wins.get(winner.toLowerCase()) ?? 0) + 1)
  }
  return wins
}

/** What the game screen says under the board. */
export function caption(s: UiState): string {
  const g = s.game
  if (!g || !s.me) return ''
  const o = outcome(g)
  if (o === 'draw') return 'Game ended in a Draw!'
  if (o) return samePlayer(o, s.me.playerId) ? 'You win!' : 'Opponent won!'
  return samePlayer(g.currentPlayerId, s.me.playerId) ? 'Your turn' : "Opponent's turn"
}

export const PIECES = { fish: ['🐟', '🐠', '🐡'], rodents: ['🐹', '🐭', '🐰'] } as const
