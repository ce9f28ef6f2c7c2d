/**
 * A bot player of the JSONL API: keeps its lobby stream open, gets ready, plays legal random moves
 * in every game it is matched into (after a think time), and gets ready again when a game ends.
 * It checks what it sees: every move of a game is seen exactly once (its own as sent, the
 * opponent's as relayed), and the lobby's final state of the game has exactly those moves.
 */
import { randomUUID } from 'node:crypto'
import { StreamClient } from '../client/StreamClient.ts'
import { applyMove, checkMove, moveFor, samePlayer } from '../game/GameRules.ts'
import { type GameMove, type GameState, type Player, parseServerGameLine, parseServerLobbyLine, type Team } from '../protocol/Messages.ts'

/** How long a bot waits for a game's last move after the lobby said the game finished (ms): longer than a stream's keep-alive, which catches up on a move lost in a crash. */
const FINAL_GRACE = 8000

export interface BotOptions {
  readonly url: string
  readonly team: Team
  readonly name?: string
  /** Think time before each move (ms): uniform in [min, max]. */
  readonly think?: readonly [number, number]
  /** Games to play before stopping (0: until stopped). */
  readonly games?: number
  readonly random?: () => number
  /** Heartbeat period of both streams (ms). */
  readonly heartbeat?: number
  /** A move of this bot's is due (its scheduled send time, performance.now()). */
  onSend?(sessionId: string, index: number, scheduledAt: number): void
  /** An opponent's move arrived. */
  onReceive?(sessionId: string, index: number, at: number): void
}

export interface BotStats {
  games: number
  wins: number
  draws: number
  moves: number
  /** Moves of the opponent never relayed (found missing when the game finished). */
  lost: number
  /** Moves relayed more than once. */
  duplicated: number
  /** Lines that contradicted the game (a relayed move that is not legal where it lands). */
  inconsistent: number
}

export class Bot {
  readonly player: Player
  readonly stats: BotStats = { games: 0, wins: 0, draws: 0, moves: 0, lost: 0, duplicated: 0, inconsistent: 0 }
  readonly #o: BotOptions
  readonly #random: () => number
  #lobby: StreamClient | undefined
  #game: StreamClient | undefined
  #state: GameState | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #final: { readonly game: GameState; readonly at: number } | undefined
  #poll: NodeJS.Timeout | undefined
  #done: () => void = () => {}
  readonly finished: Promise<void>

  constructor(options: BotOptions) {
    this.#o = options
    this.#random = options.random ?? Math.random
    this.player = { playerId: randomUUID(), name: options.name ?? `bot-${randomUUID().slice(0, 4)}`, team: options.team }
    this.finished = new Promise((resolve) => (this.#done = resolve))
  }

  /** Where the bot is: its game in progress (session id and moves so far) or none, and whether it stopped. */
  get status(): {
    readonly player: string
    readonly opponent: string | undefined
    readonly session: string | undefined
    readonly moves: number
    readonly stopped: boolean
    readonly lobbyEnded: boolean
  } {
    const g = this.#state
    return {
      player: this.player.playerId,
      opponent: g && (samePlayer(g.playerOne.playerId, this.player.playerId) ? g.playerTwo.playerId : g.playerOne.playerId),
      session: this.#state?.sessionId,
      moves: this.#state?.moves.length ?? 0,
      stopped: this.#stopped,
      lobbyEnded: this.#lobby?.ended ?? false,
    }
  }

  /** Connects and gets ready; plays until stopped (or its number of games). */
  start(): void {
    this.#lobby = StreamClient.lobby({ url: this.#o.url, player: this.player, heartbeat: this.#o.heartbeat ?? 10_000, only: '"type":"' })
    this.#lobby.status$(this.player, 'connect')
    this.#lobby.status$(this.player, 'ready')
    this.#lobby.listen(() => this.#read())
    // The lobby's `finished` may come before the last move: look again until that move arrives or is given up on.
    this.#poll = setInterval(() => this.#final && this.#read(), 500)
  }

  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    clearInterval(this.#poll)
    this.#lobby?.close()
    this.#game?.close()
    this.#done()
  }

  #read(): void {
    const lobby = this.#lobby!
    const game = this.#game
    if (game) for (const line of game.drain()) this.#onMove(parseServerGameLine(line))
    // Only session updates matter to a bot (the stream keeps no other lines): most lobby lines are other players' comings and goings.
    for (const line of lobby.drain()) this.#onLobby(line)
    // The lobby's `finished` may overtake the opponent's last move on the other stream: wait for it a little.
    const f = this.#final
    if (f && (f.game.moves.length === this.#state?.moves.length || performance.now() - f.at > FINAL_GRACE)) this.#end(f.game)
    if (lobby.ended && !this.#stopped) this.stop()
  }

  #onLobby(line: string): void {
    const p = parseServerLobbyLine(line)
    if (p.kind !== 'session') return
    const g = p.update.game
    if (!samePlayer(g.playerOne.playerId, this.player.playerId) && !samePlayer(g.playerTwo.playerId, this.player.playerId)) return
    if (p.update.type === 'finished') {
      if (g.sessionId === this.#state?.sessionId) this.#final = { game: g, at: performance.now() }
      return
    }
    // A repeat of the game in play (a re-attached stream's catch-up) changes nothing.
    if (g.sessionId === this.#state?.sessionId) return
    // A new game while the last one waits for its final move: that one is over, as far as it will get.
    if (this.#final) this.#end(this.#final.game, false)
    this.#begin(g)
  }

  #begin(g: GameState): void {
    this.#state = g
    this.#game?.close()
    this.#game = StreamClient.game({ url: this.#o.url, player: this.player, heartbeat: this.#o.heartbeat ?? 10_000 })
    this.#game.listen(() => this.#read())
    this.#maybeMove()
  }

  #onMove(move: GameMove): void {
    const s = this.#state
    if (!s) return
    const index = s.moves.length
    if (s.moves.some((m) => m.position === move.position)) {
      this.stats.duplicated++
      return
    }
    if (checkMove(s, move)) {
      this.stats.inconsistent++
      return
    }
    this.#o.onReceive?.(s.sessionId, index, performance.now())
    this.#state = applyMove(s, move)
    this.#maybeMove()
  }

  #maybeMove(): void {
    const s = this.#state
    if (!s || s.result || !samePlayer(s.currentPlayerId, this.player.playerId)) return
    const [min, max] = this.#o.think ?? [200, 800]
    const delay = min + this.#random() * (max - min)
    const scheduledAt = performance.now() + delay
    this.#timer = setTimeout(() => {
      const now = this.#state
      if (!now || now !== s || this.#stopped) return
      const free = [...Array(9).keys()].filter((p) => !now.moves.some((m) => m.position === p))
      const move = moveFor(now, this.player, free[Math.floor(this.#random() * free.length)]!)
      this.#o.onSend?.(now.sessionId, now.moves.length, scheduledAt)
      this.#game!.move(move)
      this.stats.moves++
      this.#state = applyMove(now, move)
    }, delay)
  }

  /** The game is over: counted, and (`again`) the bot gets ready for the next one. */
  #end(final: GameState, again = true): void {
    const seen = this.#state!
    // Every move of the final game, seen here once: the missing ones were lost on the way.
    this.stats.lost += final.moves.filter((m) => !seen.moves.some((s) => s.position === m.position && samePlayer(s.playerId, m.playerId))).length
    this.stats.games++
    const r = final.result?.result
    if (r && 'player' in r) {
      if (samePlayer(r.player.playerId, this.player.playerId)) this.stats.wins++
    } else this.stats.draws++
    this.#state = undefined
    this.#final = undefined
    clearTimeout(this.#timer)
    this.#game?.close()
    this.#game = undefined
    if (this.#o.games && this.stats.games >= this.#o.games) return this.stop()
    if (again) this.#lobby!.status$(this.player, 'ready')
  }
}
