/**
 * The seed's end-to-end script (seed-system.md §5.6) through the HTTP API of one in-process node
 * with all three roles, both lobby streams kept open throughout; then the negative cases.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StreamClient } from '../src/client/StreamClient.ts'
import { moveFor } from '../src/game/GameRules.ts'
import { type GameState, type Player, parseServerGameLine } from '../src/protocol/Messages.ts'
import { lobbyState, newPlayer, session, startAllInOne, status } from './support/game.ts'

let app: Awaited<ReturnType<typeof startAllInOne>>
let url: string

beforeAll(async () => {
  app = await startAllInOne()
  url = app.url
})
afterAll(() => app?.stop())

const anyMove = (l: unknown) => parseServerGameLine(JSON.stringify(l))

describe('TicTacFish over the JSONL API (seed §5.6)', () => {
  it('two players connect, ready up, play to a win; a third sees the completed game once', async () => {
    const a = newPlayer('Ann', 'fish', true) // the Swift client's upper-case UUIDs
    const b = newPlayer('Bob', 'rodents')
    const la = StreamClient.lobby({ url, player: a })
    expect(await la.opened).toBe(200)
    la.status$(a, 'connect')
    const sa = await la.next(lobbyState)
    expect(sa.value.waitingPlayers.map((p) => p.playerId)).toContain(a.playerId)

    const lb = StreamClient.lobby({ url, player: b })
    lb.status$(b, 'connect')
    const sb = await lb.next(lobbyState)
    expect(sb.value.waitingPlayers.map((p) => p.playerId)).toEqual(expect.arrayContaining([a.playerId, b.playerId]))
    await la.next(status(b, 'connect'))

    la.status$(a, 'ready')
    lb.status$(b, 'ready')
    const ga = (await la.next(session('started'), 10_000)).value
    const gb = (await lb.next(session('started', ga.sessionId), 10_000)).value
    expect(gb.sessionId).toBe(ga.sessionId)
    expect([ga.playerOne.playerId, ga.playerTwo.playerId].sort()).toEqual([a.playerId, b.playerId].sort())
    expect([a.playerId, b.playerId]).toContain(ga.currentPlayerId)

    const [x, o] = ga.currentPlayerId === a.playerId ? [a, b] : [b, a]
    const gx = StreamClient.game({ url, player: x })
    const go = StreamClient.game({ url, player: o })
    await Promise.all([gx.opened, go.opened])
    let game: GameState = ga
    const play = async (who: Player, position: number) => {
      const mv = moveFor(game, who, position)
      ;(who === x ? gx : go).move(mv)
      const other = who === x ? go : gx
      const got = await other.next((l) => {
        const m = anyMove(l)
        return m.position === position ? m : undefined
      })
      expect(got.value).toEqual(mv)
      game = { ...game, moves: [...game.moves, mv], currentPlayerId: (who === x ? o : x).playerId }
    }
    await play(x, 0)
    await play(o, 3)
    await play(x, 1)
    await play(o, 4)
    await play(x, 2)
    const fa = (await la.next(session('finished', ga.sessionId))).value
    const fb = (await lb.next(session('finished', ga.sessionId))).value
    for (const f of [fa, fb]) {
      expect(f.moves).toHaveLength(5)
      const r = f.result?.result
      expect(r && 'player' in r ? r.player.playerId : undefined).toBe(x.playerId)
    }
    // The mover gets no echo of its own moves.
    expect(gx.lines.map((l) => JSON.parse(l).message.playerId)).not.toContain(x.playerId)

    const c = newPlayer('Cy', 'fish')
    const lc = StreamClient.lobby({ url, player: c })
    lc.status$(c, 'connect')
    const sc = (await lc.next(lobbyState)).value
    expect(sc.completedSessions.filter((g) => g.sessionId === ga.sessionId)).toHaveLength(1)
    expect(sc.waitingPlayers.map((p) => p.playerId)).toEqual(expect.arrayContaining([a.playerId, b.playerId, c.playerId]))
    for (const s of [la, lb, lc, gx, go]) s.close()
    await Promise.all([la, lb, lc, gx, go].map((s) => s.closed()))
  })
})
