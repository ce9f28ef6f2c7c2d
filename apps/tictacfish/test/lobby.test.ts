/**
 * The lobby's decisions (seed-system.md §5.5) as a pure state machine: a seeded random source,
 * explicit times, and a little driver that applies `record` directives to the journaled record as
 * the GameLobby actor does. No timers, sockets or journal.
 */

import { seededRandom } from 'shoal/testkit'
import { describe, expect, it } from 'vitest'
import { applyMove, moveFor, playerOf } from '../src/game/GameRules.ts'
import {
  applyLobbyEvent,
  emptyRecord,
  LOBBY_DEFAULTS,
  Lobby,
  type LobbyDirective,
  type LobbyEvent,
  type LobbyRecord,
  type LobbySettings,
  MAX_COMPLETED,
} from '../src/lobby/Lobby.ts'
import type { GameState, LobbyMessage, LobbyState, Player, SessionStatusUpdate } from '../src/protocol/Messages.ts'

const RETRY = 5000
const PRESENCE = 45_000

const uuid = (n: number, tag = 0): string => `${tag.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`
const player = (n: number, name: string, team: Player['team']): Player => ({ playerId: uuid(n, 0xa), name, team })

const ann = player(1, 'Ann', 'fish')
const bob = player(2, 'Bob', 'rodents')
const cat = player(3, 'Cat', 'fish')
const dan = player(4, 'Dan', 'rodents')
const eli = player(5, 'Eli', 'fish')

const seeded = seededRandom

/** Session ids, unique across lobbies (a lobby after failover must not reuse one). */
let sessions = 0

/**
 * A lobby with its record, applying `record` directives as GameLobby does, and expanding each
 * `broadcast` into the `send`s a gateway would write: to every player whose stream joined (here:
 * connected, readied or touched, and not disconnected), in arrival order, but the `except` ones.
 */
class Driver {
  record: LobbyRecord
  readonly events: LobbyEvent[] = []
  readonly lobby: Lobby
  readonly #roster = new Map<string, Player>()

  constructor(opts: { seed?: number; random?: () => number; record?: LobbyRecord; settings?: Partial<LobbySettings> } = {}) {
    this.record = opts.record ?? emptyRecord
    this.lobby = new Lobby(opts.settings ?? {}, opts.random ?? seeded(opts.seed ?? 1), () => uuid(++sessions, 0x5e55))
  }

  #run(ds: LobbyDirective[]): LobbyDirective[] {
    const out: LobbyDirective[] = []
    for (const d of ds) {
      if (d.kind === 'record') {
        this.events.push(d.event)
        this.record = applyLobbyEvent(this.record, d.event)
      }
      if (d.kind !== 'broadcast') out.push(d)
      else {
        for (const [key, to] of this.#roster) if (!d.except.includes(key)) out.push({ kind: 'send', to, message: d.message })
        // A player the lobby dropped (silent too long) is taken as gone here too.
        if ('status' in d.message && d.message.status === 'disconnect') this.#roster.delete(d.message.player.playerId.toLowerCase())
      }
    }
    return out
  }

  #join(p: Player): void {
    const key = p.playerId.toLowerCase()
    if (!this.#roster.has(key)) this.#roster.set(key, p)
  }

  connect = (p: Player, now: number) => {
    this.#join(p)
    return this.#run(this.lobby.connect(p, this.record, now))
  }
  ready = (p: Player, now: number) => {
    this.#join(p)
    return this.#run(this.lobby.ready(p, this.record, now))
  }
  disconnect = (id: string) => {
    this.#roster.delete(id.toLowerCase())
    return this.#run(this.lobby.disconnect(id))
  }
  touch = (p: Player, ready: boolean, now: number) => {
    this.#join(p)
    return this.#run(this.lobby.touch(p, ready, this.record, now))
  }
  tick = (now: number) => this.#run(this.lobby.tick(now))
  completed = (g: GameState) => this.#run(this.lobby.sessionCompleted(g, this.record))
  state = () => this.lobby.state(this.record) as LobbyState
}

type Send = Extract<LobbyDirective, { kind: 'send' }>
const sends = (ds: LobbyDirective[]): Send[] => ds.filter((d): d is Send => d.kind === 'send')
const records = (ds: LobbyDirective[]): LobbyEvent[] => ds.flatMap((d) => (d.kind === 'record' ? [d.event] : []))
const to = (ds: LobbyDirective[], p: Player): LobbyMessage[] =>
  sends(ds)
    .filter((d) => d.to.playerId === p.playerId)
    .map((d) => d.message)
const names = (ps: readonly Player[]) => ps.map((p) => p.name)
const isSession = (m: LobbyMessage): m is SessionStatusUpdate => 'type' in m
const isState = (m: LobbyMessage): m is LobbyState => 'waitingPlayers' in m
const started = (ds: LobbyDirective[]) => sends(ds).filter((d) => isSession(d.message) && d.message.type === 'started')

/** The game as finished after a quick win by the player to move first (0, 3, 1, 4, 2). */
function finish(game: GameState): GameState {
  let g = game
  for (const position of [0, 3, 1, 4, 2]) g = applyMove(g, moveFor(g, playerOf(g, g.currentPlayerId)!, position))
  expect(g.result).toBeDefined()
  return g
}

/** Ann (fish) and Bob (rodents) connect at 0 and are matched at 1000 (Cat waiting if `withCat`). */
function matched(withCat = false): { d: Driver; game: GameState; ds: LobbyDirective[] } {
  const d = new Driver({ seed: 7 })
  d.connect(ann, 0)
  d.connect(bob, 0)
  if (withCat) d.connect(cat, 0)
  d.ready(ann, 0)
  const ds = d.ready(bob, 1000)
  const game = records(ds)[0]!.game
  return { d, game, ds }
}

describe('connect', () => {
  it('the newcomer gets a LobbyState listing itself; others hear {player, connect}', () => {
    const d = new Driver()
    const first = d.connect(ann, 0)
    expect(first).toEqual([{ kind: 'send', to: ann, message: { waitingPlayers: [ann], readyPlayers: [], completedSessions: [] } }])

    const second = d.connect(bob, 10)
    expect(records(second)).toEqual([])
    expect(to(second, ann)).toEqual([{ player: bob, status: 'connect' }])
    expect(to(second, bob)).toEqual([{ waitingPlayers: [ann, bob], readyPlayers: [], completedSessions: [] }])
    expect(sends(second)).toHaveLength(2)

    const third = d.connect(cat, 20)
    expect(to(third, ann)).toEqual([{ player: cat, status: 'connect' }])
    expect(to(third, bob)).toEqual([{ player: cat, status: 'connect' }])
    const state = to(third, cat)[0]!
    expect(isState(state) && names(state.waitingPlayers)).toEqual(['Ann', 'Bob', 'Cat'])
    expect(d.lobby.counts()).toEqual({ waiting: 3, ready: 0, playing: 0 })
  })

  it('a second connect of a waiting player tells nobody else and sends the state again', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 0)
    const again = d.connect(ann, 5)
    expect(again).toEqual([{ kind: 'send', to: ann, message: { waitingPlayers: [ann, bob], readyPlayers: [], completedSessions: [] } }])
  })

  it('the same player with an upper-case id (the Swift client) is one player', () => {
    const d = new Driver()
    d.connect(ann, 0)
    const upper: Player = { ...ann, playerId: ann.playerId.toUpperCase() }
    d.connect(upper, 1)
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 0, playing: 0 })
    d.ready(upper, 2)
    expect(d.lobby.counts()).toEqual({ waiting: 0, ready: 1, playing: 0 })
    expect(sends(d.disconnect(ann.playerId))).toEqual([])
    expect(d.lobby.counts()).toEqual({ waiting: 0, ready: 0, playing: 0 })
  })

  it("a reconnect with a new name updates the player's entry", () => {
    const d = new Driver()
    d.connect(ann, 0)
    const renamed = { ...ann, name: 'Annie' }
    const ds = d.connect(renamed, 1)
    expect(to(ds, ann)).toEqual([{ waitingPlayers: [renamed], readyPlayers: [], completedSessions: [] }])
  })
})

describe('ready and matchmaking', () => {
  it('a ready player without an opponent is listed as ready and others hear {player, ready}', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 0)
    const ds = d.ready(ann, 100)
    expect(ds).toEqual([{ kind: 'send', to: bob, message: { player: ann, status: 'ready' } }])
    expect(d.state()).toEqual({ waitingPlayers: [bob], readyPlayers: [ann], completedSessions: [] })
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 1, playing: 0 })
  })

  it('only a ready player of the other team is a match (same team or merely waiting is not)', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(cat, 0)
    d.connect(bob, 0) // rodents, but only waiting
    expect(records(d.ready(ann, 0))).toEqual([])
    expect(records(d.ready(cat, 0))).toEqual([])
    for (let t = RETRY; t <= 4 * RETRY; t += RETRY) expect(records(d.tick(t))).toEqual([])
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 2, playing: 0 })
    // Bob gets ready: matched at once with one of the fish.
    const ds = d.ready(bob, 4 * RETRY + 1)
    const [event] = records(ds)
    expect(event?.type).toBe('started')
    expect(event!.game.playerOne).toEqual(bob)
    expect([ann.playerId, cat.playerId]).toContain(event!.game.playerTwo.playerId)
  })

  it('retries every matchRetry through tick while nobody fits', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.ready(ann, 1000)
    expect(d.lobby.nextDeadline()).toBe(1000 + RETRY)
    expect(d.tick(1000 + RETRY - 1)).toEqual([])
    expect(d.lobby.nextDeadline()).toBe(1000 + RETRY)
    expect(d.tick(1000 + RETRY)).toEqual([])
    expect(d.lobby.nextDeadline()).toBe(1000 + 2 * RETRY)
  })

  it('a retry due in tick makes the match when a fitting ready player is there', () => {
    // Cat is ready as fish next to Ann (fish): no match. Cat's `ready` comes again as rodents
    // (already ready: no attempt then); Ann's retry in tick finds it.
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(cat, 0)
    d.ready(ann, 0)
    d.ready(cat, 1000)
    const catRodent: Player = { ...cat, team: 'rodents' }
    expect(records(d.ready(catRodent, 2000))).toEqual([])
    const ds = d.tick(RETRY)
    const [event] = records(ds)
    expect(event?.type).toBe('started')
    expect(event!.game.playerOne).toEqual(ann)
    expect(event!.game.playerTwo).toEqual(catRodent)
    expect(d.lobby.counts()).toEqual({ waiting: 0, ready: 0, playing: 2 })
    // Cat's own retry (at 6000) makes nothing more.
    expect(d.tick(1000 + RETRY)).toEqual([])
  })

  it('honours custom settings', () => {
    const d = new Driver({ settings: { matchRetry: 250, presenceTimeout: 1000 } })
    d.connect(ann, 0)
    d.ready(ann, 0)
    expect(d.lobby.nextDeadline()).toBe(250)
    d.tick(250)
    expect(d.lobby.nextDeadline()).toBe(500)
    expect(LOBBY_DEFAULTS).toEqual({ matchRetry: RETRY, presenceTimeout: PRESENCE })
  })

  it('ready is ignored unless the player is waiting', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 0)
    d.ready(ann, 0)
    expect(d.ready(ann, 10)).toEqual([])
    const { d: m } = matched()
    expect(m.ready(ann, 2000)).toEqual([])
    expect(m.ready(bob, 2000)).toEqual([])
  })

  it('ready from a player never connected connects it first (others hear connect, then ready)', () => {
    const d = new Driver()
    d.connect(bob, 0)
    const ds = d.ready(ann, 10)
    const toBob = to(ds, bob)
    // Bob is rodents and waiting (not ready): no match; he hears Ann connect then get ready.
    expect(toBob).toEqual([
      { player: ann, status: 'connect' },
      { player: ann, status: 'ready' },
    ])
    expect(records(ds)).toEqual([])
  })

  it('picks the opponent uniformly among the fitting ready players, and who starts at random', () => {
    const script = (values: number[]) => {
      const d = new Driver({ random: () => values.shift()! })
      for (const p of [ann, cat, eli]) {
        d.connect(p, 0)
        d.ready(p, 0)
      }
      d.connect(bob, 0)
      return records(d.ready(bob, 0))[0]!.game
    }
    // Candidates in arrival order: Ann, Cat, Eli.
    let g = script([0, 0.2])
    expect([g.playerTwo, g.currentPlayerId]).toEqual([ann, bob.playerId])
    g = script([0.5, 0.7])
    expect([g.playerTwo, g.currentPlayerId]).toEqual([cat, cat.playerId])
    g = script([0.99, 0.49])
    expect([g.playerTwo, g.currentPlayerId]).toEqual([eli, bob.playerId])

    // With seeded randoms every candidate gets picked, and either player starts.
    const picked = new Map<string, number>()
    let bobFirst = 0
    for (let seed = 1; seed <= 300; seed++) {
      const d = new Driver({ seed })
      for (const p of [ann, cat, eli]) {
        d.connect(p, 0)
        d.ready(p, 0)
      }
      d.connect(bob, 0)
      const game = records(d.ready(bob, 0))[0]!.game
      picked.set(game.playerTwo.name, (picked.get(game.playerTwo.name) ?? 0) + 1)
      if (game.currentPlayerId === bob.playerId) bobFirst++
    }
    expect([...picked.keys()].sort()).toEqual(['Ann', 'Cat', 'Eli'])
    for (const n of picked.values()) expect(n).toBeGreaterThan(60)
    expect(bobFirst).toBeGreaterThan(100)
    expect(bobFirst).toBeLessThan(200)
  })
})

describe('a match', () => {
  it('records started before any started line, then tells every connected player with one session id', () => {
    const { d, game, ds } = matched(true)
    expect(records(ds)).toEqual([{ type: 'started', game }])
    const recordAt = ds.findIndex((x) => x.kind === 'record')
    const firstStarted = ds.findIndex((x) => x.kind === 'send' && isSession(x.message))
    expect(recordAt).toBeGreaterThanOrEqual(0)
    expect(recordAt).toBeLessThan(firstStarted)
    // The only sends before the record are Bob's `ready` to the others.
    for (const x of ds.slice(0, recordAt)) expect(x).toMatchObject({ kind: 'send', message: { player: bob, status: 'ready' } })

    const lines = started(ds)
    expect(names(lines.map((l) => l.to)).sort()).toEqual(['Ann', 'Bob', 'Cat'])
    for (const l of lines) expect(l.message).toEqual({ type: 'started', game })
    expect(new Set(lines.map((l) => (l.message as SessionStatusUpdate).game.sessionId)).size).toBe(1)

    expect(game.playerOne).toEqual(bob) // whose matchmaking succeeded
    expect(game.playerTwo).toEqual(ann)
    expect([ann.playerId, bob.playerId]).toContain(game.currentPlayerId)
    expect(game.moves).toEqual([])
    expect(game.result).toBeUndefined()
    expect(d.record.inProgress).toEqual([game])
    expect(d.lobby.gameOf(ann.playerId, d.record)).toEqual(game)
    expect(d.lobby.gameOf(bob.playerId.toUpperCase(), d.record)).toEqual(game)
    expect(d.lobby.gameOf(cat.playerId, d.record)).toBeUndefined()
  })

  it('removes both from ready and stops both retries: no second session (G20)', () => {
    const { d } = matched(true)
    expect(d.state()).toEqual({ waitingPlayers: [cat], readyPlayers: [], completedSessions: [] })
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 0, playing: 2 })
    // Dan (rodents) gets ready too: Ann's pending retry (due at 5000) must not pair her with him.
    d.connect(dan, 2000)
    d.ready(dan, 2000)
    for (let t = 2000; t <= 30_000; t += 500) expect(records(d.tick(t))).toEqual([])
    expect(d.events).toHaveLength(1)
    expect(d.state().readyPlayers).toEqual([dan])
  })

  it('connect or ready from a playing player changes nothing', () => {
    const { d, game } = matched()
    const ds = d.connect(ann, 2000)
    expect(ds).toEqual([{ kind: 'send', to: ann, message: { waitingPlayers: [], readyPlayers: [], completedSessions: [] } }])
    expect(d.lobby.counts()).toEqual({ waiting: 0, ready: 0, playing: 2 })
    expect(d.record.inProgress).toEqual([game])
  })
})

describe('connect while ready = cancel', () => {
  it('goes back to waiting, others hear connect, matchmaking stops', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(cat, 0)
    d.ready(ann, 0)
    const ds = d.connect(ann, 1000)
    expect(to(ds, cat)).toEqual([{ player: ann, status: 'connect' }])
    expect(to(ds, ann)).toEqual([{ waitingPlayers: [ann, cat], readyPlayers: [], completedSessions: [] }])
    expect(d.lobby.nextDeadline()).toBe(PRESENCE + 1) // Cat's presence; Ann's retry is gone.
    // A rodent getting ready is not matched with Ann any more.
    d.connect(bob, 2000)
    expect(records(d.ready(bob, 2000))).toEqual([])
    expect(records(d.tick(RETRY))).toEqual([])
    // Ann may get ready again.
    expect(records(d.ready(ann, 6000))[0]?.type).toBe('started')
  })
})

describe('disconnect', () => {
  it('removes the player from every list and tells the others', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 0)
    d.connect(cat, 0)
    d.ready(ann, 0)
    const ds = d.disconnect(ann.playerId)
    expect(ds).toEqual([
      { kind: 'send', to: bob, message: { player: ann, status: 'disconnect' } },
      { kind: 'send', to: cat, message: { player: ann, status: 'disconnect' } },
    ])
    expect(d.state()).toEqual({ waitingPlayers: [bob, cat], readyPlayers: [], completedSessions: [] })
    // Her matchmaking is gone too.
    expect(records(d.ready(bob, 1))).toEqual([])
    expect(records(d.tick(RETRY))).toEqual([])
  })

  it('of an unknown player does nothing; ids compare without regard to case', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 0)
    expect(d.disconnect(cat.playerId)).toEqual([])
    expect(to(d.disconnect(bob.playerId.toUpperCase()), ann)).toEqual([{ player: bob, status: 'disconnect' }])
    expect(d.disconnect(bob.playerId)).toEqual([])
  })

  it('of a playing player keeps its game in the record', () => {
    const { d, game } = matched()
    d.disconnect(ann.playerId)
    expect(d.record.inProgress).toEqual([game])
    expect(d.lobby.counts()).toEqual({ waiting: 0, ready: 0, playing: 1 })
  })
})

describe('touch (heartbeats, and lobby failover)', () => {
  it('a known player: keeps it present, says nothing', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 0)
    expect(d.touch(ann, false, 40_000)).toEqual([])
    expect(d.lobby.counts()).toEqual({ waiting: 2, ready: 0, playing: 0 })
    expect(to(d.tick(PRESENCE + 1), ann)).toEqual([{ player: bob, status: 'disconnect' }])
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 0, playing: 0 })
  })

  it('a known player whose stream asked for ready (the line was lost) becomes ready; one whose stream cancelled waits again', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(cat, 0)
    const r = d.touch(ann, true, 10)
    expect(to(r, cat)).toEqual([{ player: ann, status: 'ready' }])
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 1, playing: 0 })
    expect(d.touch(ann, true, 20)).toEqual([]) // already ready: nothing to say
    const w = d.touch(ann, false, 30)
    expect(to(w, cat)).toEqual([{ player: ann, status: 'connect' }])
    expect(to(w, ann)).toEqual([]) // no LobbyState: the stream did not send connect again
    expect(d.lobby.counts()).toEqual({ waiting: 2, ready: 0, playing: 0 })
    // A ready stream of a player in a game: it stays in its game (the match cleared the stream's ready).
    d.touch(ann, true, 40)
    const b = d.ready(bob, 50)
    expect(records(b)[0]?.type).toBe('started')
    expect(d.touch(bob, true, 60)).toEqual([])
    expect(d.touch(bob, false, 60)).toEqual([])
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 0, playing: 2 })
  })

  it('after a failover: unknown players come back as they were; a player of a game in progress as playing', () => {
    const { d: before, game } = matched()
    // A new lobby with the journaled record (presence is lost).
    const d = new Driver({ record: before.record, seed: 99 })
    expect(d.lobby.counts()).toEqual({ waiting: 0, ready: 0, playing: 0 })

    const c = d.touch(cat, false, 0)
    expect(to(c, cat)).toEqual([{ waitingPlayers: [cat], readyPlayers: [], completedSessions: [] }])

    // Ann was playing: back as playing, even though her stream says ready; no match.
    const a = d.touch(ann, true, 10)
    expect(records(a)).toEqual([])
    expect(to(a, cat)).toEqual([{ player: ann, status: 'connect' }])
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 0, playing: 1 })

    // Dan (rodents) comes back ready: Eli (fish, ready) is matched with him, not Ann.
    const dn = d.touch(dan, true, 20)
    expect(records(dn)).toEqual([])
    expect(to(dn, cat)).toEqual([
      { player: dan, status: 'connect' },
      { player: dan, status: 'ready' },
    ])
    expect(d.state()).toEqual({ waitingPlayers: [cat], readyPlayers: [dan], completedSessions: [] })
    const e = d.touch(eli, true, 30)
    const [event] = records(e)
    expect(event?.type).toBe('started')
    expect(names([event!.game.playerOne, event!.game.playerTwo])).toEqual(['Eli', 'Dan'])
    expect(d.record.inProgress.map((g) => g.sessionId)).toEqual([game.sessionId, event!.game.sessionId])

    // The game from before the failover ends: Ann (present) waits again; Bob is not present yet.
    d.completed(finish(game))
    expect(d.lobby.counts()).toEqual({ waiting: 2, ready: 0, playing: 2 })
    // Bob's touch now finds no game in progress: he waits.
    d.touch(bob, false, 40)
    expect(d.state().waitingPlayers).toEqual([cat, ann, bob])
  })
})

describe('presence expiry', () => {
  it('drops a player silent for longer than presenceTimeout, telling the others', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 1000)
    d.ready(ann, 0)
    expect(d.lobby.nextDeadline()).toBe(RETRY)
    d.tick(RETRY) // Ann's retry: nothing
    d.touch(bob, false, 30_000)
    expect(d.tick(PRESENCE)).toEqual([]) // exactly presenceTimeout: still present
    const ds = d.tick(PRESENCE + 1)
    expect(ds).toEqual([{ kind: 'send', to: bob, message: { player: ann, status: 'disconnect' } }])
    expect(d.state()).toEqual({ waitingPlayers: [bob], readyPlayers: [], completedSessions: [] })
    expect(d.lobby.nextDeadline()).toBe(30_000 + PRESENCE + 1)
    expect(d.tick(30_000 + PRESENCE + 1)).toEqual([])
    expect(d.lobby.counts()).toEqual({ waiting: 0, ready: 0, playing: 0 })
    expect(d.lobby.nextDeadline()).toBeUndefined()
  })

  it('every lobby call from the player keeps it present', () => {
    const d = new Driver()
    d.connect(ann, 0)
    d.connect(bob, 0)
    d.connect(ann, 20_000)
    d.ready(bob, 30_000)
    expect(d.tick(PRESENCE + 1)).toEqual([])
    // Bob's retry ran in that tick (nobody fits): next at 45 001 + 5 000; Ann expires at 20 000 + 45 001.
    expect(d.lobby.nextDeadline()).toBe(PRESENCE + 1 + RETRY)
    expect(d.lobby.counts()).toEqual({ waiting: 1, ready: 1, playing: 0 })
  })
})

describe('sessionCompleted', () => {
  it('records once, tells everyone finished, returns both players to waiting and tells the others', () => {
    const { d, game } = matched(true)
    const final = finish(game)
    const ds = d.completed(final)
    expect(ds[0]).toEqual({ kind: 'record', event: { type: 'ended', game: final } })
    expect(records(ds)).toHaveLength(1)
    const finished = sends(ds).filter((x) => isSession(x.message))
    expect(names(finished.map((x) => x.to)).sort()).toEqual(['Ann', 'Bob', 'Cat'])
    for (const x of finished) expect(x.message).toEqual({ type: 'finished', game: final })
    // playerOne (Bob) then playerTwo (Ann) wait again; the others hear connect.
    expect(to(ds, cat).filter((m) => !isSession(m))).toEqual([
      { player: bob, status: 'connect' },
      { player: ann, status: 'connect' },
    ])
    expect(to(ds, ann).filter((m) => !isSession(m))).toEqual([{ player: bob, status: 'connect' }])
    expect(to(ds, bob).filter((m) => !isSession(m))).toEqual([{ player: ann, status: 'connect' }])
    expect(d.lobby.counts()).toEqual({ waiting: 3, ready: 0, playing: 0 })
    expect(d.record).toEqual({ inProgress: [], completed: [final] })
    expect(d.state()).toEqual({ waitingPlayers: [ann, bob, cat], readyPlayers: [], completedSessions: [final] })
    expect(d.lobby.gameOf(ann.playerId, d.record)).toBeUndefined()
  })

  it('a second report gives no directives (G23); a newcomer sees the game once', () => {
    const { d, game } = matched()
    const final = finish(game)
    d.completed(final)
    expect(d.completed(final)).toEqual([])
    expect(d.completed({ ...final })).toEqual([])
    expect(d.record.completed).toEqual([final])
    const ds = d.connect(cat, 5000)
    const state = to(ds, cat)[0]!
    expect(isState(state) && state.completedSessions).toEqual([final])
    expect(isState(state) && names(state.waitingPlayers)).toEqual(['Ann', 'Bob', 'Cat'])
  })

  it('a player who left the lobby still hears its game finished (a lobby that just took over knows no one yet); the players can play again', () => {
    const { d, game } = matched(true)
    d.disconnect(ann.playerId)
    const ds = d.completed(finish(game))
    expect(names(sends(ds).map((x) => x.to)).sort()).toEqual(['Ann', 'Bob', 'Cat', 'Cat'])
    expect(to(ds, ann)).toEqual([{ type: 'finished', game: finish(game) }])
    expect(d.lobby.counts()).toEqual({ waiting: 2, ready: 0, playing: 0 })
    d.connect(ann, 3000)
    d.ready(bob, 3000)
    const again = d.ready(ann, 3000)
    const [event] = records(again)
    expect(event?.type).toBe('started')
    expect(event!.game.sessionId).not.toBe(game.sessionId)
  })
})

describe('applyLobbyEvent', () => {
  const g = (n: number, result = false): GameState => ({
    sessionId: uuid(n, 0x9),
    playerOne: ann,
    playerTwo: bob,
    currentPlayerId: ann.playerId,
    moves: [],
    ...(result ? { result: { result: {} } } : {}),
  })

  it('started adds a game in progress (once); ended moves it to completed (once)', () => {
    let r = applyLobbyEvent(emptyRecord, { type: 'started', game: g(1) })
    r = applyLobbyEvent(r, { type: 'started', game: g(1) })
    expect(r).toEqual({ inProgress: [g(1)], completed: [] })
    r = applyLobbyEvent(r, { type: 'started', game: g(2) })
    r = applyLobbyEvent(r, { type: 'ended', game: g(1, true) })
    expect(r).toEqual({ inProgress: [g(2)], completed: [g(1, true)] })
    const again = applyLobbyEvent(r, { type: 'ended', game: g(1, true) })
    expect(again).toEqual(r)
    expect(emptyRecord).toEqual({ inProgress: [], completed: [] })
  })

  it('does not change the record it is given', () => {
    const r = applyLobbyEvent(emptyRecord, { type: 'started', game: g(1) })
    const copy = structuredClone(r)
    applyLobbyEvent(r, { type: 'ended', game: g(1, true) })
    applyLobbyEvent(r, { type: 'started', game: g(2) })
    expect(r).toEqual(copy)
  })

  it('keeps the newest MAX_COMPLETED completed games, oldest first, without duplicates', () => {
    let r = emptyRecord
    const total = MAX_COMPLETED + 7
    for (let i = 1; i <= total; i++) {
      r = applyLobbyEvent(r, { type: 'started', game: g(i) })
      r = applyLobbyEvent(r, { type: 'ended', game: g(i, true) })
      r = applyLobbyEvent(r, { type: 'ended', game: g(i, true) })
    }
    expect(r.inProgress).toEqual([])
    expect(r.completed).toHaveLength(MAX_COMPLETED)
    expect(r.completed[0]!.sessionId).toBe(g(total - MAX_COMPLETED + 1).sessionId)
    expect(r.completed.at(-1)!.sessionId).toBe(g(total).sessionId)
    expect(new Set(r.completed.map((x) => x.sessionId)).size).toBe(MAX_COMPLETED)
  })
})

describe('nextDeadline', () => {
  it('is undefined with nobody, else the earliest presence expiry or retry of a ready player', () => {
    const d = new Driver()
    expect(d.lobby.nextDeadline()).toBeUndefined()
    d.connect(ann, 100)
    expect(d.lobby.nextDeadline()).toBe(100 + PRESENCE + 1)
    d.connect(bob, 50) // an earlier clock reading (the lobby never looks at order)
    expect(d.lobby.nextDeadline()).toBe(50 + PRESENCE + 1)
    d.connect(cat, 200)
    d.ready(cat, 200)
    expect(d.lobby.nextDeadline()).toBe(200 + RETRY)
    d.ready(bob, 300) // matched with Cat: no retries left
    expect(d.lobby.counts().playing).toBe(2)
    expect(d.lobby.nextDeadline()).toBe(100 + PRESENCE + 1)
  })
})

describe('replay', () => {
  it('applying the recorded events to emptyRecord reproduces the record', () => {
    const d = new Driver({ seed: 3 })
    for (const p of [ann, bob, cat, dan, eli]) d.connect(p, 0)
    d.ready(ann, 0)
    d.ready(bob, 0) // game 1: Bob v Ann
    d.ready(cat, 0)
    d.ready(dan, 0) // game 2: Dan v Cat
    const [g1, g2] = d.record.inProgress
    d.completed(finish(g1!))
    d.completed(finish(g1!)) // reported twice
    d.ready(ann, 100)
    d.ready(eli, 100)
    d.ready(bob, 100) // game 3: Bob v Ann or Eli
    d.completed(finish(g2!))
    expect(d.events.map((e) => e.type)).toEqual(['started', 'started', 'ended', 'started', 'ended'])
    expect(d.record.inProgress).toHaveLength(1)
    expect(d.record.completed.map((g) => g.sessionId)).toEqual([g1!.sessionId, g2!.sessionId])

    const replayed = d.events.reduce(applyLobbyEvent, emptyRecord)
    expect(replayed).toEqual(d.record)
    // Replaying twice (an event store delivering the log again) changes nothing either.
    expect(d.events.reduce(applyLobbyEvent, replayed)).toEqual(d.record)

    // A lobby recovered from the replayed record knows who is playing.
    const recovered = new Driver({ record: replayed })
    const g3 = replayed.inProgress[0]!
    recovered.touch(g3.playerOne, true, 0)
    recovered.touch(g3.playerTwo, true, 0)
    expect(recovered.lobby.counts()).toEqual({ waiting: 0, ready: 0, playing: 2 })
    expect(recovered.state().completedSessions).toEqual(d.record.completed)
  })
})

describe('broadcasts', () => {
  it('a status change is one broadcast to everyone but the player, not one line per player', () => {
    const lobby = new Lobby({}, seeded(3), () => uuid(++sessions, 0x5e55))
    for (const p of [ann, bob, cat, dan]) lobby.connect(p, emptyRecord, 0)
    const ds = lobby.ready(eli, emptyRecord, 10)
    expect(ds.filter((d) => d.kind === 'broadcast')).toEqual([
      { kind: 'broadcast', message: { player: eli, status: 'connect' }, except: [eli.playerId.toLowerCase()] },
      { kind: 'broadcast', message: { player: eli, status: 'ready' }, except: [eli.playerId.toLowerCase()] },
    ])
    expect(ds.filter((d) => d.kind === 'send')).toEqual([])
  })
})
