/**
 * One game, as an event-sourced virtual actor keyed by its session id: wherever it is activated
 * (first move, after its node died, after idle passivation) it replays its journal and goes on with
 * every move it accepted. The seed never re-creates a session after a crash (G26).
 *
 * A move is checked by the rules first and journaled only if accepted (the seed journals refused
 * moves and relays them: G22); the opponent hears of it through its NetworkPlayer, with the move's
 * index so that its stream can drop a repeat and fetch what it missed; a finished game is reported
 * to the lobby until the lobby has it.
 */
import { type ActorRef, distributed, EventSourcedActor } from 'shoal'
import type { GameMove, GameState } from '../protocol/Messages.ts'
import { applyMove, checkMove, type MoveRefusal, opponentOf } from './GameRules.ts'

export type SessionEvent = { readonly type: 'started'; readonly game: GameState } | { readonly type: 'moved'; readonly move: GameMove }
export interface SessionState {
  readonly game: GameState | undefined
}

/** What a move came to: accepted (its index in the game's moves) or refused, with why. */
export type MoveOutcome =
  | { readonly accepted: true; readonly index: number; readonly game: GameState }
  | { readonly accepted: false; readonly reason: MoveRefusal | 'NOT_STARTED' }

/** What a session needs from the rest of the game (refs, made by the node that hosts it). */
export interface SessionLinks {
  /** Tells a player (by id) that its opponent moved. */
  opponentMoved(playerId: string, sessionId: string, index: number, move: GameMove): void
  /** Reports a finished game to the lobby; resolves once the lobby has it. */
  completed(game: GameState): Promise<void>
}

export class GameSession extends EventSourcedActor<SessionState, SessionEvent> {
  constructor(
    readonly sessionId: string,
    private readonly links: SessionLinks,
  ) {
    super()
  }

  get persistenceId(): string {
    return `session-${this.sessionId}`
  }

  initialState(): SessionState {
    return { game: undefined }
  }

  applyEvent(state: SessionState, event: SessionEvent): SessionState {
    if (event.type === 'started') return state.game ? state : { game: event.game }
    return state.game ? { game: applyMove(state.game, event.move) } : state
  }

  override onRecovered(): void {
    this.log.info({ session: this.sessionId, moves: this.state.game?.moves.length ?? 0 }, 'game session activated')
    // Finished but perhaps not yet reported (the node died in between): report again; the lobby records a game once.
    const game = this.state.game
    if (game?.result) this.#report(game)
  }

  /** Starts the game (the lobby calls it once it journaled the match); a repeat is harmless. */
  @distributed async start(game: GameState): Promise<GameState> {
    if (game.sessionId !== this.sessionId) throw new Error(`Session ${this.sessionId} cannot start game ${game.sessionId}.`)
    if (!this.state.game) await this.emit({ type: 'started', game })
    return this.state.game!
  }

  /** A move by one of the players; accepted moves are journaled before anyone hears of them. */
  @distributed async move(move: GameMove): Promise<MoveOutcome> {
    const game = this.state.game
    if (!game) return { accepted: false, reason: 'NOT_STARTED' }
    const refusal = checkMove(game, move)
    if (refusal) return { accepted: false, reason: refusal }
    await this.emit({ type: 'moved', move })
    const after = this.state.game!
    const index = after.moves.length - 1
    this.links.opponentMoved(opponentOf(after, move.playerId).playerId, this.sessionId, index, after.moves[index]!)
    if (after.result) this.#report(after)
    return { accepted: true, index, game: after }
  }

  /** The game as it stands (undefined if never started). */
  @distributed async game(): Promise<GameState | undefined> {
    return this.state.game
  }

  #report(game: GameState): void {
    void this.links.completed(game).catch((e: unknown) => this.log.warn({ session: this.sessionId, err: e }, 'could not report a finished game to the lobby'))
  }
}

/** A ref to a session by id (the virtual actors facade's `get`). */
export type SessionRef = ActorRef<GameSession>
