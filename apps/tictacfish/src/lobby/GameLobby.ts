/**
 * The lobby: a cluster singleton and an event-sourced actor. It applies the directives of the pure
 * Lobby core: journals games started and ended (so games in progress and completed games survive a
 * failover), and sends lines to players through their NetworkPlayers. Presence is rebuilt after a
 * failover as players' streams touch it.
 */
import { randomUUID } from 'node:crypto'
import { type ActorRef, distributed, EventSourcedActor } from 'shoal'
import type { LobbyFeed } from '../gateway/LobbyFeed.ts'
import type { GameState, LobbyMessage, Player } from '../protocol/Messages.ts'
import { applyLobbyEvent, emptyRecord, Lobby, type LobbyDirective, type LobbyEvent, type LobbyRecord, type LobbySettings } from './Lobby.ts'

/** What the lobby needs from the rest of the game. */
export interface LobbyLinks {
  /** Sends one lobby line to a player (one-way; lost if the player is gone). */
  send(to: Player, message: LobbyMessage): void
  /** Starts a game's session (in the background: its first move starts it otherwise). Never rejects. */
  startSession(game: GameState): Promise<void>
  /** The lobby's clock (monotonic, ms). */
  now(): number
  /** Random numbers in [0, 1) for matchmaking. */
  random(): number
}

/** A feed that was not renewed for this long is dropped (its gateway is gone), ms. */
const FEED_TTL = 20_000

export class GameLobby extends EventSourcedActor<LobbyRecord, LobbyEvent> {
  readonly #lobby: Lobby
  /** Gateways' feeds by actor id, with when each last subscribed. */
  readonly #feeds = new Map<string, { readonly ref: ActorRef<LobbyFeed>; seen: number }>()
  #timer: NodeJS.Timeout | undefined
  #timerAt = Number.POSITIVE_INFINITY

  constructor(
    private readonly links: LobbyLinks,
    settings: Partial<LobbySettings> = {},
  ) {
    super()
    this.#lobby = new Lobby(settings, () => links.random(), randomUUID)
  }

  get persistenceId(): string {
    return 'matchmaking_lobby'
  }

  initialState(): LobbyRecord {
    return emptyRecord
  }

  applyEvent(record: LobbyRecord, event: LobbyEvent): LobbyRecord {
    return applyLobbyEvent(record, event)
  }

  override onStop(): void {
    clearTimeout(this.#timer)
  }

  /** A player's lobby stream connected (or sent `connect` again: cancels `ready`). */
  @distributed async connect(player: Player): Promise<void> {
    const out = this.#lobby.connect(player, this.state, this.links.now())
    this.log.debug({ player: player.playerId, input: 'connect', directives: out.length }, 'lobby input')
    await this.#apply(out)
  }

  /** A player is ready to play. */
  @distributed async ready(player: Player): Promise<void> {
    const out = this.#lobby.ready(player, this.state, this.links.now())
    this.log.debug({ player: player.playerId, input: 'ready', directives: out.length }, 'lobby input')
    await this.#apply(out)
  }

  /** A player left the lobby (its `disconnect` line, or its stream ended). */
  @distributed async disconnect(playerId: string): Promise<void> {
    await this.#apply(this.#lobby.disconnect(playerId))
  }

  /** A player's lobby stream is alive (`ready`: what it last asked for). */
  @distributed async touch(player: Player, ready: boolean): Promise<void> {
    const out = this.#lobby.touch(player, ready, this.state, this.links.now())
    this.log.debug({ player: player.playerId, input: 'touch', ready, directives: out.length }, 'lobby input')
    await this.#apply(out)
  }

  /** A session reports its finished game (perhaps more than once). */
  @distributed async sessionCompleted(game: GameState): Promise<void> {
    await this.#apply(this.#lobby.sessionCompleted(game, this.state))
  }

  /** The game in progress a player is in, if any. */
  /** A player's game in progress and its last completed game: what a re-attaching lobby stream may have missed. */
  @distributed async gamesOf(playerId: string): Promise<{ inProgress: GameState | undefined; lastCompleted: GameState | undefined }> {
    return { inProgress: this.#lobby.gameOf(playerId, this.state), lastCompleted: this.#lobby.lastCompletedOf(playerId, this.state) }
  }

  @distributed async gameOf(playerId: string): Promise<GameState | undefined> {
    return this.#lobby.gameOf(playerId, this.state)
  }

  /** The lobby as a LobbyState line shows it. */
  @distributed async lobbyState(): Promise<LobbyMessage> {
    return this.#lobby.state(this.state)
  }

  /** A gateway's feed subscribes (and renews its subscription every few seconds). */
  @distributed async subscribe(feed: ActorRef<LobbyFeed>): Promise<void> {
    this.#feeds.set(feed.id.toString(), { ref: feed, seen: this.links.now() })
  }

  /** Matchmaking retries and presence expiry; runs as a turn of the lobby (sent by its own timer). */
  @distributed async tick(): Promise<void> {
    this.#timerAt = Number.POSITIVE_INFINITY
    await this.#apply(this.#lobby.tick(this.links.now()))
  }

  async #apply(directives: LobbyDirective[]): Promise<void> {
    for (const d of directives) {
      if (d.kind === 'send') this.links.send(d.to, d.message)
      else if (d.kind === 'broadcast') this.#broadcast(d.message, d.except)
      else {
        await this.emit(d.event)
        // Not awaited: the lobby's turn must not wait on one session's activation (a shard moving
        // to a node that just joined holds it for seconds); a player's first move starts it if need be.
        if (d.event.type === 'started') void this.links.startSession(d.event.game)
      }
    }
    this.#schedule()
  }

  #broadcast(message: LobbyMessage, except: readonly string[]): void {
    const now = this.links.now()
    for (const [id, f] of this.#feeds) {
      if (now - f.seen > FEED_TTL) this.#feeds.delete(id)
      else f.ref.tell('broadcast', message, except)
    }
  }

  #schedule(): void {
    const at = this.#lobby.nextDeadline()
    if (at === undefined || at >= this.#timerAt) return
    clearTimeout(this.#timer)
    this.#timerAt = at
    this.#timer = setTimeout(() => this.self.tell('tick'), Math.max(0, at - this.links.now()))
    this.#timer.unref()
  }
}
