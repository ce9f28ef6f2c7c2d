/**
 * A player, as a virtual actor keyed by its player id (lower case): the one place its streams meet
 * the lobby and its game. It relays its lobby stream's lines to the lobby and the lobby's lines to
 * that stream, and its game stream's moves to its game session and the opponent's moves back.
 *
 * It keeps nothing that cannot be rebuilt: if its node dies, the next activation learns its
 * streams from their keep-alive (every few seconds, `first: false`) and its game from the lobby.
 * The newest stream of each kind wins; the one it replaces is closed (the seed ignores the second
 * stream, so a client that reconnects after a network blip is shut out until the old one times out).
 */
import { type ActorRef, DistributedActor, distributed } from 'shoal'
import { samePlayer } from '../game/GameRules.ts'
import type { GameSession, MoveOutcome } from '../game/GameSession.ts'
import type { PlayerStream } from '../gateway/PlayerStream.ts'
import type { GameLobby } from '../lobby/GameLobby.ts'
import type { GameMove, GameState, LobbyMessage, LobbyState, Player, PlayerStatusUpdate } from '../protocol/Messages.ts'

/** What a player needs from the rest of the game. */
export interface PlayerLinks {
  readonly lobby: ActorRef<GameLobby>
  session(sessionId: string): ActorRef<GameSession>
}

/** What the lobby stream last asked for, kept by the gateway so that a new activation can be told. */
export interface LobbyIntent {
  readonly joined: boolean
  readonly ready: boolean
  /** The session ids of the last `started` and `finished` lines the stream sent its client. */
  readonly seen?: { readonly started?: string | undefined; readonly finished?: string | undefined }
}

/** Session updates kept for a lobby stream not attached yet (a player is in one game at a time). */
const MAX_UNDELIVERED = 8

export class NetworkPlayer extends DistributedActor {
  #lobbyStream: ActorRef<PlayerStream> | undefined
  #gameStream: ActorRef<PlayerStream> | undefined
  #player: Player | undefined
  #game: GameState | undefined
  /**
   * This player's game starts and ends that came while no lobby stream was attached: a fresh
   * activation (after a move or a crash) learns its stream only from the stream's next keep-alive,
   * and the lobby tells a game's end once. Delivered when a stream attaches; the newest few kept.
   */
  readonly #undelivered: LobbyMessage[] = []
  /**
   * The newest LobbyState that came while no lobby stream was attached: the lobby sends it once,
   * in answer to `connect`, and a shard move between the stream's attach and that answer lands it
   * on a fresh activation that does not know the stream yet.
   */
  #unsentState: LobbyState | undefined

  constructor(
    readonly playerKey: string,
    private readonly links: PlayerLinks,
  ) {
    super()
  }

  /**
   * A lobby stream is open (`first`: just now; otherwise its keep-alive). A new stream replaces the
   * current one; a keep-alive re-attaches a stream this activation never saw (it is new after a
   * crash) and tells the lobby where the player stands.
   */
  @distributed async attachLobby(stream: ActorRef<PlayerStream>, player: Player, first: boolean, intent: LobbyIntent): Promise<void> {
    this.#player = player
    const current = this.#lobbyStream
    this.log.debug(
      { player: this.playerKey, first, known: current?.id.equals(stream.id) ?? false, attached: current !== undefined, ...intent },
      'lobby stream attaches',
    )
    if (current?.id.equals(stream.id)) {
      if (intent.joined) await this.links.lobby.touch(player, intent.ready)
      return
    }
    if (current && !first) return stream.tell('close', 'replaced by a newer lobby stream of this player')
    if (current) current.tell('close', 'replaced by a newer lobby stream of this player')
    this.#lobbyStream = stream
    if (this.#unsentState) stream.tell('push', this.#unsentState)
    this.#unsentState = undefined
    for (const message of this.#undelivered.splice(0)) stream.tell('push', message)
    // A stream this activation never saw (it is new after a move or a crash): a game start or end
    // sent meanwhile went to the old activation, or nowhere. Ask the lobby (the stream drops repeats).
    if (!first) await this.#catchUpLobby(stream, intent)
    if (intent.joined) await this.links.lobby.touch(player, intent.ready)
  }

  /** A status line from the current lobby stream. */
  @distributed async lobbyLine(stream: ActorRef<PlayerStream>, update: PlayerStatusUpdate): Promise<void> {
    if (!this.#lobbyStream?.id.equals(stream.id)) {
      this.log.debug(
        { player: this.playerKey, status: update.status, attached: this.#lobbyStream !== undefined },
        'status line of a stream this player does not know dropped',
      )
      return
    }
    const player = this.#player ?? update.player
    if (update.status === 'connect') await this.links.lobby.connect(player)
    else if (update.status === 'ready') await this.links.lobby.ready(player)
    else await this.links.lobby.disconnect(player.playerId)
  }

  /** The lobby stream ended: the player leaves the lobby (a replaced stream changes nothing). */
  @distributed async detachLobby(stream: ActorRef<PlayerStream>): Promise<void> {
    if (!this.#lobbyStream?.id.equals(stream.id)) return
    this.#lobbyStream = undefined
    if (this.#player) await this.links.lobby.disconnect(this.#player.playerId)
  }

  /** A line from the lobby for this player. */
  @distributed async lobbyMessage(message: LobbyMessage): Promise<void> {
    if ('type' in message && this.#player && this.#isMine(message.game)) this.#game = message.type === 'started' ? message.game : undefined
    if (this.#lobbyStream) return this.#lobbyStream.tell('push', message)
    if ('waitingPlayers' in message) this.#unsentState = message
    if (!('type' in message)) return // others' comings and goings: the newest LobbyState has them
    this.#undelivered.push(message)
    if (this.#undelivered.length > MAX_UNDELIVERED) this.#undelivered.shift()
  }

  /**
   * A game stream is open (`first`) or alive (`sessionId`: the game it last showed). Returns the
   * player's game in progress, or that one, so the stream can send the opponent's moves it has not
   * sent yet.
   */
  @distributed async attachGame(stream: ActorRef<PlayerStream>, player: Player, first: boolean, sessionId?: string): Promise<GameState | undefined> {
    this.#player = player
    const current = this.#gameStream
    if (current && !current.id.equals(stream.id)) {
      if (!first) {
        stream.tell('close', 'replaced by a newer game stream of this player')
        return undefined
      }
      current.tell('close', 'replaced by a newer game stream of this player')
    }
    this.#gameStream = stream
    // The game in progress, or else the one the stream last showed (it may have ended while a
    // relayed move was lost): the session's own view has every accepted move, to catch up with.
    const id = (await this.#currentGame())?.sessionId ?? sessionId
    return id === undefined ? undefined : this.links.session(id).game()
  }

  /** The game stream ended. */
  @distributed async detachGame(stream: ActorRef<PlayerStream>): Promise<void> {
    if (this.#gameStream?.id.equals(stream.id)) this.#gameStream = undefined
  }

  /**
   * A move from this player's game stream, played in `sessionId` (the game its stream shows) or
   * else in its current game. The move's player id must be this player's (the seed trusts the
   * payload: G27). Bound to a game, a move retried after its first try went in (and ended the game)
   * is refused there instead of landing in the player's next game.
   */
  @distributed async move(move: GameMove, sessionId?: string): Promise<MoveOutcome> {
    if (!samePlayer(move.playerId, this.playerKey)) return { accepted: false, reason: 'NOT_A_PLAYER' }
    let outcome = await this.#play(move, sessionId)
    if (!outcome.accepted && sessionId === undefined && (outcome.reason === 'GAME_OVER' || outcome.reason === 'NOT_STARTED')) {
      // The game this activation knew may be stale (the lobby's `finished` or `started` for this
      // player was lost with a node that died): ask the lobby, and play in the game it names.
      this.#game = undefined
      outcome = await this.#play(move)
    }
    if (outcome.accepted) this.#game = outcome.game.result ? undefined : outcome.game
    return outcome
  }

  async #play(move: GameMove, sessionId?: string): Promise<MoveOutcome> {
    const game = await this.#gameFor(sessionId)
    const id = sessionId ?? game?.sessionId
    if (id === undefined) return { accepted: false, reason: 'NOT_STARTED' }
    const session = this.links.session(id)
    const outcome = await session.move(move)
    if (outcome.accepted || outcome.reason !== 'NOT_STARTED' || game?.sessionId !== id) return outcome
    // The lobby journaled the match but its node died before it started the session.
    await session.start(game)
    return session.move(move)
  }

  /** The player's current game, if it is `sessionId` (when given); asks the lobby if this activation knows another. */
  async #gameFor(sessionId: string | undefined): Promise<GameState | undefined> {
    const known = await this.#currentGame()
    if (sessionId === undefined || known?.sessionId === sessionId) return known
    const current = await this.links.lobby.gameOf(this.playerKey)
    if (current?.sessionId !== sessionId) return undefined
    this.#game = current
    return current
  }

  /** The opponent moved (sent by the session): relayed to this player's game stream. */
  @distributed async opponentMoved(sessionId: string, index: number, move: GameMove): Promise<void> {
    // A late move of an earlier game is not relayed: the stream shows one game, and a move line does not say which.
    if (this.#game && this.#game.sessionId !== sessionId) return
    this.#gameStream?.tell('pushMove', sessionId, index, move)
  }

  async #catchUpLobby(stream: ActorRef<PlayerStream>, intent: LobbyIntent): Promise<void> {
    const { inProgress, lastCompleted } = await this.links.lobby.gamesOf(this.playerKey)
    if (lastCompleted && lastCompleted.sessionId !== intent.seen?.finished && lastCompleted.sessionId === intent.seen?.started)
      stream.tell('push', { type: 'finished', game: lastCompleted })
    if (inProgress && inProgress.sessionId !== intent.seen?.started) stream.tell('push', { type: 'started', game: inProgress })
  }

  async #currentGame(): Promise<GameState | undefined> {
    if (!this.#game) this.#game = await this.links.lobby.gameOf(this.playerKey)
    return this.#game
  }

  #isMine(game: GameState): boolean {
    return samePlayer(game.playerOne.playerId, this.playerKey) || samePlayer(game.playerTwo.playerId, this.playerKey)
  }
}
