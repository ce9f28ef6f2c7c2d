/**
 * One client stream on the gateway (a `/matchmaking` or `/game` request, or its WebSocket twin),
 * from open to end, independent of the transport: lines in are parsed, checked and handed to the
 * player's NetworkPlayer in arrival order; lines out come from the stream's PlayerStream actor.
 *
 * - **Heartbeats (G18).** A stream that sent nothing for `idleTimeout` (30 s) is ended.
 * - **Ends once (G19).** Whatever ends it first (the request body ends, the socket closes, idle,
 *   replaced, a flood of bad lines, a client too slow to read) ends the response, detaches it from
 *   the player and stops its actor, exactly once.
 * - **Keep-alive.** Every `keepAlive` (5 s) the stream re-attaches to its NetworkPlayer, so a
 *   player re-activated on another node after a crash learns its streams within seconds; a game
 *   stream also catches up on the opponent's moves it missed meanwhile.
 * - **Bad lines lose nothing.** A line that does not parse is dropped and logged; the stream goes
 *   on. More than `maxBadLines` of them end it.
 */

import type { Logger } from 'pino'
import type { ActorRef } from 'shoal'
import { samePlayer } from '../game/GameRules.ts'
import type { NetworkPlayer } from '../player/NetworkPlayer.ts'
import { formatLine, type GameMove, type GameState, LineError, type LobbyMessage, type Player, parseGameLine, parseLobbyLine } from '../protocol/Messages.ts'
import type { PlayerStream, StreamSink } from './PlayerStream.ts'

export type StreamKind = 'lobby' | 'game'

/** How a StreamSession writes to its client and ends it (HTTP response or WebSocket). */
export interface StreamTransport {
  /** Queues one line; false if the client is not reading (its buffer is over the limit). */
  write(line: string): boolean
  /** Ends the response or closes the socket. */
  end(): void
}

/** What a StreamSession needs from its node. */
export interface StreamLinks {
  player(playerKey: string): ActorRef<NetworkPlayer>
  spawnStream(sink: StreamSink): ActorRef<PlayerStream>
  stopStream(ref: ActorRef<PlayerStream>): void
}

export interface StreamSettings {
  /** A stream that sent no line (a heartbeat will do) for this long is ended (ms). The seed's 30 s. */
  readonly idleTimeout: number
  /** How often a stream re-attaches to its player (ms). */
  readonly keepAlive: number
  /** Bad lines a stream may send before it is ended. */
  readonly maxBadLines: number
  /** Lines waiting to be handled before a stream counts as flooding and is ended. */
  readonly maxPendingLines: number
  /** How long a line's call to its player is tried again while the player's node is failing over (ms). */
  readonly retryFor: number
}

export const STREAM_DEFAULTS: StreamSettings = { idleTimeout: 30_000, keepAlive: 5_000, maxBadLines: 20, maxPendingLines: 64, retryFor: 30_000 }

export class StreamSession implements StreamSink {
  readonly #kind: StreamKind
  readonly #player: Player
  readonly #key: string
  readonly #transport: StreamTransport
  readonly #links: StreamLinks
  readonly #settings: StreamSettings
  readonly #log: Logger
  readonly #onEnd: (why: string) => void
  #ref: ActorRef<PlayerStream> | undefined
  #ended = false
  #idle: NodeJS.Timeout | undefined
  #keepAlive: NodeJS.Timeout | undefined
  #inbound: Promise<void> = Promise.resolve()
  #pending = 0
  #attaching = false
  #badLines = 0
  /** What the client last asked the lobby for (told to a re-activated player). */
  #joined = false
  #ready = false
  /** The last game start and end this lobby stream sent (a repeat from a player's catch-up is dropped). */
  #started: string | undefined
  #finished: string | undefined
  /** The game whose moves the client has, by index (own moves and relayed ones). */
  #sessionId: string | undefined
  #known: boolean[] = []
  /** The stream's game is over (as far as this stream has seen). */
  #gameOver = false

  constructor(
    kind: StreamKind,
    player: Player,
    transport: StreamTransport,
    links: StreamLinks,
    settings: StreamSettings,
    log: Logger,
    onEnd: (why: string) => void,
  ) {
    this.#kind = kind
    this.#player = player
    this.#key = player.playerId.toLowerCase()
    this.#transport = transport
    this.#links = links
    this.#settings = settings
    this.#log = log
    this.#onEnd = onEnd
  }

  get ended(): boolean {
    return this.#ended
  }

  /** Whether this is a lobby stream whose player has joined the lobby (sent `connect` or `ready`): it gets broadcasts. */
  get inLobby(): boolean {
    return this.#kind === 'lobby' && this.#joined && !this.#ended
  }

  /** The player's key (lower-case id). */
  get playerKey(): string {
    return this.#key
  }

  /** Spawns the stream's actor and attaches it to the player. */
  start(): void {
    this.#ref = this.#links.spawnStream(this)
    this.#resetIdle()
    this.#enqueue(() => this.#attach(true))
    this.#keepAlive = setInterval(() => {
      // One keep-alive at a time: a player that is slow to answer (its node just died) is not flooded.
      if (this.#attaching) return
      this.#attaching = true
      // A keep-alive that fails (the player's node is failing over) is simply the next one's job.
      this.#enqueue(() =>
        this.#attach(false)
          .catch((e: unknown) => this.#log.debug({ err: e, player: this.#key }, 'keep-alive failed'))
          .finally(() => (this.#attaching = false)),
      )
    }, this.#settings.keepAlive)
    this.#keepAlive.unref()
  }

  /** One line from the client. */
  line(text: string): void {
    if (this.#ended) return
    this.#resetIdle()
    try {
      if (this.#kind === 'lobby') {
        const parsed = parseLobbyLine(text)
        if (parsed.kind === 'heartbeat') return
        if (!samePlayer(parsed.update.player.playerId, this.#player.playerId))
          return this.#bad(new LineError(`A status update must be about this stream's player (${this.#player.playerId}).`))
        const update = { ...parsed.update, player: this.#player }
        if (update.status === 'connect') [this.#joined, this.#ready] = [true, false]
        else if (update.status === 'ready') [this.#joined, this.#ready] = [true, true]
        else [this.#joined, this.#ready] = [false, false]
        this.#enqueue(() => this.#retrying(() => this.#player$().lobbyLine(this.#ref!, update)))
      } else {
        const parsed = parseGameLine(text)
        if (parsed.kind === 'heartbeat') return
        this.#enqueue(() => this.#move(parsed.move))
      }
    } catch (e) {
      if (e instanceof LineError) return this.#bad(e)
      throw e
    }
  }

  /** A line longer than the limit arrived (and was skipped). */
  tooLong(bytes: number): void {
    this.#resetIdle()
    this.#bad(new LineError(`A line of ${bytes}+ bytes is over the limit.`))
  }

  /** The client's side ended (request body ended, socket closed) or the gateway stops. */
  end(why: string): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#idle)
    clearInterval(this.#keepAlive)
    this.#transport.end()
    const ref = this.#ref
    if (ref) {
      const player = this.#player$()
      const detach = this.#kind === 'lobby' ? player.detachLobby(ref) : player.detachGame(ref)
      void detach.catch((e: unknown) => this.#log.debug({ err: e, player: this.#key }, 'detach failed')).finally(() => this.#links.stopStream(ref))
    }
    this.#onEnd(why)
  }

  // ── StreamSink: lines from the cluster ──

  lobbyLine(message: LobbyMessage): void {
    if ('type' in message) {
      const id = message.game.sessionId
      if (message.type === 'started' ? id === this.#started : id === this.#finished) return
      // A match ends `ready`: after the game the client asks again (a lobby that takes over must not match it unasked).
      if (message.type === 'started') [this.#started, this.#ready] = [id, false]
      else this.#finished = id
    }
    this.#send(message)
  }

  /** A line already formatted (a broadcast, formatted once for every stream of the gateway). */
  writeLine(line: string): void {
    if (this.#ended) return
    if (!this.#transport.write(line)) this.end('client not reading its stream')
  }

  opponentMove(sessionId: string, index: number, move: GameMove): void {
    // A move line does not say which game it is of, so a stream shows one game at a time: moves
    // before its first attach (whose catch-up sends them all) and late moves of an earlier game
    // (after a crash, a re-activated player cannot tell) are dropped. A move of another game is
    // taken only once this stream's game is over; a new game is otherwise found by the next keep-alive.
    if (this.#sessionId === undefined) return
    if (sessionId !== this.#sessionId) {
      if (!this.#gameOver) return this.#log.debug({ player: this.#key, session: sessionId }, 'move of another game dropped')
      this.#forGame(sessionId, false)
    }
    if (this.#known[index]) return
    this.#known[index] = true
    this.#send(move)
  }

  close(reason: string): void {
    this.end(reason)
  }

  // ── internals ──

  #player$(): ActorRef<NetworkPlayer> {
    return this.#links.player(this.#key)
  }

  async #attach(first: boolean): Promise<void> {
    const player = this.#player$()
    if (this.#kind === 'lobby')
      return player.attachLobby(this.#ref!, this.#player, first, {
        joined: this.#joined,
        ready: this.#ready,
        seen: { started: this.#started, finished: this.#finished },
      })
    const game = await player.attachGame(this.#ref!, this.#player, first, this.#sessionId)
    if (game) this.#catchUp(game)
  }

  async #move(move: GameMove): Promise<void> {
    // The game the client sees (unless it is over: the next one is the player's current game). A
    // retry cannot play a move twice: once it is in, the same move is refused (not this player's
    // turn); bound to its game, it cannot land in the player's next one either.
    const game = this.#gameOver ? undefined : this.#sessionId
    const outcome = await this.#retrying(() => this.#player$().move(move, game))
    if (outcome.accepted) {
      this.#forGame(outcome.game.sessionId, outcome.game.result !== undefined)
      this.#known[outcome.index] = true
    } else this.#log.info({ player: this.#key, position: move.position, reason: outcome.reason }, 'move refused')
  }

  /** Sends the opponent's moves of `game` the client does not have yet, in order. */
  #catchUp(game: GameState): void {
    this.#forGame(game.sessionId, game.result !== undefined)
    game.moves.forEach((move, index) => {
      if (this.#known[index] || samePlayer(move.playerId, this.#player.playerId)) return
      this.#known[index] = true
      this.#send(move)
    })
  }

  /** Makes `sessionId` the stream's game (a new one: nothing known yet), over or not. */
  #forGame(sessionId: string, over: boolean): void {
    this.#gameOver = over
    if (sessionId === this.#sessionId) return
    this.#sessionId = sessionId
    this.#known = []
  }

  #send(message: LobbyMessage | GameMove): void {
    this.writeLine(formatLine(message))
  }

  /**
   * A call to the player, tried again while it fails (its node died: the player is re-activated
   * elsewhere once that node is downed) for up to `retryFor`; the stream's later lines wait their turn.
   */
  async #retrying<T>(call: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + this.#settings.retryFor
    for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
      try {
        return await call()
      } catch (e) {
        if (this.#ended || performance.now() + delay > deadline) throw e
        this.#log.debug({ err: e, player: this.#key }, 'call to the player failed; trying again')
        await new Promise((r) => setTimeout(r, delay))
      }
    }
  }

  /** Runs handlers one at a time in arrival order; a failure is logged, and the stream goes on. */
  #enqueue(fn: () => Promise<void>): void {
    if (++this.#pending > this.#settings.maxPendingLines) return this.end('too many lines waiting')
    this.#inbound = this.#inbound
      .then(() => (this.#ended ? undefined : fn()))
      .catch((e: unknown) => this.#log.warn({ err: e, player: this.#key, stream: this.#kind }, 'a line could not be handled'))
      .finally(() => this.#pending--)
  }

  #bad(e: LineError): void {
    this.#log.info({ player: this.#key, stream: this.#kind, reason: e.message }, 'bad line dropped')
    if (++this.#badLines > this.#settings.maxBadLines) this.end('too many bad lines')
  }

  #resetIdle(): void {
    clearTimeout(this.#idle)
    this.#idle = setTimeout(() => this.end(`no line for ${this.#settings.idleTimeout} ms`), this.#settings.idleTimeout)
    this.#idle.unref()
  }
}
