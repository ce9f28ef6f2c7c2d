/**
 * The seed's end-to-end script (seed-system.md §5.6) through the HTTP API of one in-process node
 * with all three roles, both lobby streams kept open throughout; then the negative cases.
 */

import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StreamClient } from '../src/client/StreamClient.ts'
import { moveFor } from '../src/game/GameRules.ts'
import { startTicTacFishNode, type TicTacFishNode } from '../src/node/TicTacFishNode.ts'
import { type GameState, type Player, parseServerGameLine, parseServerLobbyLine } from '../src/protocol/Messages.ts'

let node: TicTacFishNode
let url: string
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ttf-'))
  node = await startTicTacFishNode({
    roles: ['gateway', 'players', 'lobby'],
    system: { port: 0, insecure: true, logLevel: 'silent' },
    journal: `sqlite:${join(dir, 'journal.db')}`,
    gateway: { port: 0 },
  })
  url = `http://127.0.0.1:${node.gateway!.address.port}`
})

afterAll(async () => {
  await node?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const newPlayer = (name: string, team: Player['team'], upper = false): Player => {
  const id = randomUUID()
  return { playerId: upper ? id.toUpperCase() : id, name, team }
}

const lobbyState = (l: unknown) => {
  const p = parseServerLobbyLine(JSON.stringify(l))
  return p.kind === 'lobby' ? p.state : undefined
}
const status = (who: Player, s: string) => (l: unknown) => {
  const p = parseServerLobbyLine(JSON.stringify(l))
  return p.kind === 'status' && p.update.player.playerId === who.playerId && p.update.status === s ? p.update : undefined
}
const session = (type: 'started' | 'finished', sessionId?: string) => (l: unknown) => {
  const p = parseServerLobbyLine(JSON.stringify(l))
  return p.kind === 'session' && p.update.type === type && (sessionId === undefined || p.update.game.sessionId === sessionId) ? p.update.game : undefined
}
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
