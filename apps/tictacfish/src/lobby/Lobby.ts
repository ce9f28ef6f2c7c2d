/**
 * The lobby's decisions (seed-system.md §5.5), as a pure state machine: who is waiting, ready or
 * playing, matchmaking, and what each player is told. Inputs carry the time; outputs are
 * directives the GameLobby actor applies in order (`record` an event in the journal, `send` a line
 * to a player). No timers, sockets or journal here: the tests drive it with a fake clock and a
 * seeded random source.
 *
 * Two kinds of state:
 * - **The record** (LobbyRecord, journaled): games in progress and completed games. It survives a
 *   failover of the lobby.
 * - **Presence** (here, in memory): who is connected and whether waiting, ready or playing. After
 *   a failover it is rebuilt as players' streams touch the new lobby (every few seconds), as the
 *   seed intends; a player whose stream stopped touching is dropped after `presenceTimeout`.
 *
 * Decisions the seed leaves open (G20, G23, G24), made here:
 * - A match removes both players from `ready` and stops both their retries (G20).
 * - A completed game is recorded once, keyed by its session id, however often it is reported (G23).
 * - Every connected lobby player is told when any game starts and finishes (G24): the line shapes
 *   allow it, and it lets a lobby show who is playing instead of leaving them listed as ready.
 */
import { playerKey } from '../game/GameRules.ts'
import type { GameState, LobbyMessage, Player } from '../protocol/Messages.ts'

/** Completed games kept (and listed in LobbyState): the newest. */
export const MAX_COMPLETED = 100

/** What the lobby journals. */
export type LobbyEvent = { readonly type: 'started'; readonly game: GameState } | { readonly type: 'ended'; readonly game: GameState }

/** The lobby's journaled state: games in progress, and the last MAX_COMPLETED completed games (oldest first). */
export interface LobbyRecord {
  readonly inProgress: readonly GameState[]
  readonly completed: readonly GameState[]
}

export const emptyRecord: LobbyRecord = { inProgress: [], completed: [] }

/** The record after an event; pure (it runs again at every recovery). Ending a game twice changes nothing. */
export function applyLobbyEvent(record: LobbyRecord, event: LobbyEvent): LobbyRecord {
  const id = event.game.sessionId
  const inProgress = record.inProgress.filter((g) => g.sessionId !== id)
  if (event.type === 'started') return { inProgress: [...inProgress, event.game], completed: record.completed }
  if (record.completed.some((g) => g.sessionId === id)) return { inProgress, completed: record.completed }
  return { inProgress, completed: [...record.completed, event.game].slice(-MAX_COMPLETED) }
}

/**
 * What the lobby shell does: `record` an event (before the directives after it), `send` a line to
 * one player, or `broadcast` a line to every player in the lobby but the `except` ones (player keys).
 * A broadcast is one message per gateway, which writes it to its own streams: the seed's "every
 * other player hears of it" would otherwise be a message per player per event, N² for N players.
 */
export type LobbyDirective =
  | { readonly kind: 'record'; readonly event: LobbyEvent }
  | { readonly kind: 'send'; readonly to: Player; readonly message: LobbyMessage }
  | { readonly kind: 'broadcast'; readonly message: LobbyMessage; readonly except: readonly string[] }

export interface LobbySettings {
  /** How long a ready player without an opponent waits before matchmaking tries again (ms). The seed's 5 s. */
  readonly matchRetry: number
  /** A player whose stream has not touched the lobby for this long is dropped (ms). */
  readonly presenceTimeout: number
}

export const LOBBY_DEFAULTS: LobbySettings = { matchRetry: 5000, presenceTimeout: 45_000 }

type Phase = 'waiting' | 'ready' | 'playing'

interface Presence {
  player: Player
  phase: Phase
  lastSeen: number
  /** When matchmaking tries again for a ready player. */
  nextMatch: number
  /** Arrival order (the lists keep it). */
  readonly since: number
}

export class Lobby {
  readonly #settings: LobbySettings
  readonly #random: () => number
  readonly #newSessionId: () => string
  readonly #present = new Map<string, Presence>()
  #arrivals = 0

  constructor(settings: Partial<LobbySettings>, random: () => number, newSessionId: () => string) {
    this.#settings = { ...LOBBY_DEFAULTS, ...settings }
    this.#random = random
    this.#newSessionId = newSessionId
  }

  /**
   * A player's lobby stream says `connect`: it waits (a ready player cancels back to waiting; a
   * playing one stays in its game). Others hear of it if that changed anything; it gets the state.
   */
  connect(player: Player, record: LobbyRecord, now: number): LobbyDirective[] {
    const out: LobbyDirective[] = []
    const p = this.#presence(player, record, now, out)
    this.#cancelReady(p, out)
    out.push({ kind: 'send', to: p.player, message: this.state(record) })
    return out
  }

  /** `ready`: a waiting player becomes ready and matchmaking tries at once. */
  ready(player: Player, record: LobbyRecord, now: number): LobbyDirective[] {
    const out: LobbyDirective[] = []
    const p = this.#presence(player, record, now, out)
    if (p.phase !== 'waiting') return out
    p.phase = 'ready'
    this.#tellOthers(p, 'ready', out)
    this.#match(p, now, out)
    return out
  }

  /** `disconnect`, or the lobby stream ended: the player is gone from every list; others hear of it. */
  disconnect(playerId: string): LobbyDirective[] {
    const key = playerKey(playerId)
    const p = this.#present.get(key)
    if (!p) return []
    this.#present.delete(key)
    const out: LobbyDirective[] = []
    this.#tellOthers(p, 'disconnect', out)
    return out
  }

  /**
   * A heartbeat from a player's lobby stream (`ready`: what the stream last asked for, cleared by
   * a match). Keeps it present; a player this lobby does not know (it just took over) is added back
   * as it was. A known player whose stream asked for something the lobby never heard (a line lost
   * with a node that died) is set to it, as its line would have: a playing player stays in its game.
   */
  touch(player: Player, ready: boolean, record: LobbyRecord, now: number): LobbyDirective[] {
    const known = this.#present.get(playerKey(player.playerId))
    if (known) {
      known.lastSeen = now
      if (ready && known.phase === 'waiting') return this.ready(player, record, now)
      const out: LobbyDirective[] = []
      if (!ready) this.#cancelReady(known, out)
      return out
    }
    const out = this.connect(player, record, now)
    return ready ? [...out, ...this.ready(player, record, now)] : out
  }

  /** Time passes: drops silent players, retries matchmaking that is due. */
  tick(now: number): LobbyDirective[] {
    const out: LobbyDirective[] = []
    for (const p of [...this.#present.values()]) {
      if (now - p.lastSeen <= this.#settings.presenceTimeout) continue
      out.push(...this.disconnect(p.player.playerId))
    }
    for (const p of this.#sorted())
      if (p.phase === 'ready' && p.nextMatch <= now && this.#present.get(playerKey(p.player.playerId)) === p) this.#match(p, now, out)
    return out
  }

  /**
   * A game ended (reported by its session, perhaps more than once): recorded once; everyone
   * connected hears `finished`; its players wait again.
   */
  sessionCompleted(game: GameState, record: LobbyRecord): LobbyDirective[] {
    if (record.completed.some((g) => g.sessionId === game.sessionId)) return []
    const out: LobbyDirective[] = [{ kind: 'record', event: { type: 'ended', game } }]
    // Its two players hear of it even if not (yet) present here: this lobby may have just taken
    // over, and their streams touch it only every few seconds.
    this.#tellGame(game, { type: 'finished', game }, out)
    for (const player of [game.playerOne, game.playerTwo]) {
      const p = this.#present.get(playerKey(player.playerId))
      if (!p || p.phase !== 'playing') continue
      p.phase = 'waiting'
      this.#tellOthers(p, 'connect', out)
    }
    return out
  }

  /** The game in progress a player is in, if any (from the record: survives failover). */
  gameOf(playerId: string, record: LobbyRecord): GameState | undefined {
    const key = playerKey(playerId)
    return record.inProgress.find((g) => playerKey(g.playerOne.playerId) === key || playerKey(g.playerTwo.playerId) === key)
  }

  /** The last completed game a player played (if the record still lists it). */
  lastCompletedOf(playerId: string, record: LobbyRecord): GameState | undefined {
    const key = playerKey(playerId)
    for (let i = record.completed.length - 1; i >= 0; i--) {
      const g = record.completed[i]!
      if (playerKey(g.playerOne.playerId) === key || playerKey(g.playerTwo.playerId) === key) return g
    }
    return undefined
  }

  /** The LobbyState line: waiting and ready players in arrival order, completed games oldest first. */
  state(record: LobbyRecord): LobbyMessage {
    const sorted = this.#sorted()
    return {
      waitingPlayers: sorted.filter((p) => p.phase === 'waiting').map((p) => p.player),
      readyPlayers: sorted.filter((p) => p.phase === 'ready').map((p) => p.player),
      completedSessions: [...record.completed],
    }
  }

  /** When `tick` next has something to do, if ever. */
  nextDeadline(): number | undefined {
    let next: number | undefined
    for (const p of this.#present.values()) {
      const at = Math.min(p.lastSeen + this.#settings.presenceTimeout + 1, p.phase === 'ready' ? p.nextMatch : Number.POSITIVE_INFINITY)
      if (next === undefined || at < next) next = at
    }
    return next
  }

  /** Players present, by phase (for status pages and tests). */
  counts(): Record<Phase, number> {
    const counts = { waiting: 0, ready: 0, playing: 0 }
    for (const p of this.#present.values()) counts[p.phase]++
    return counts
  }

  #presence(player: Player, record: LobbyRecord, now: number, out: LobbyDirective[]): Presence {
    const key = playerKey(player.playerId)
    const known = this.#present.get(key)
    if (known) {
      known.player = player
      known.lastSeen = now
      return known
    }
    const phase: Phase = this.gameOf(player.playerId, record) ? 'playing' : 'waiting'
    const p: Presence = { player, phase, lastSeen: now, nextMatch: now, since: this.#arrivals++ }
    this.#present.set(key, p)
    this.#tellOthers(p, 'connect', out)
    return p
  }

  #match(p: Presence, now: number, out: LobbyDirective[]): void {
    const candidates = this.#sorted().filter((o) => o.phase === 'ready' && o.player.team !== p.player.team)
    if (candidates.length === 0) {
      p.nextMatch = now + this.#settings.matchRetry
      return
    }
    const opponent = candidates[Math.floor(this.#random() * candidates.length)]!
    const first = this.#random() < 0.5 ? p.player : opponent.player
    const game: GameState = { sessionId: this.#newSessionId(), playerOne: p.player, playerTwo: opponent.player, currentPlayerId: first.playerId, moves: [] }
    p.phase = 'playing'
    opponent.phase = 'playing'
    out.push({ kind: 'record', event: { type: 'started', game } })
    this.#tellGame(game, { type: 'started', game }, out)
  }

  /** A ready player waits again (others hear `connect`, as the seed's cancel says). */
  #cancelReady(p: Presence, out: LobbyDirective[]): void {
    if (p.phase !== 'ready') return
    p.phase = 'waiting'
    this.#tellOthers(p, 'connect', out)
  }

  #tellOthers(p: Presence, status: 'connect' | 'ready' | 'disconnect', out: LobbyDirective[]): void {
    out.push({ kind: 'broadcast', message: { player: p.player, status }, except: [playerKey(p.player.playerId)] })
  }

  /** A game's start or end: to its two players, and to everyone else in the lobby. */
  #tellGame(game: GameState, message: LobbyMessage, out: LobbyDirective[]): void {
    for (const to of [game.playerOne, game.playerTwo]) out.push({ kind: 'send', to, message })
    out.push({ kind: 'broadcast', message, except: [playerKey(game.playerOne.playerId), playerKey(game.playerTwo.playerId)] })
  }

  #sorted(): Presence[] {
    return [...this.#present.values()].sort((a, b) => a.since - b.since)
  }
}
