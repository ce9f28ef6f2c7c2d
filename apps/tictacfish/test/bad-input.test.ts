/**
 * What the seed gets wrong, and hostile or broken clients: refused moves (G21, G22, G27), idle
 * streams (G18), responses that end (G19), bad headers, bad and over-long lines, prototype
 * pollution, floods, a second stream of one player.
 */
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { StreamClient } from '../src/client/StreamClient.ts'
import { moveFor } from '../src/game/GameRules.ts'
import { MAX_CLIENT_LINE_BYTES } from '../src/protocol/Messages.ts'
import { lobbyState, moveAt, newPlayer, type StartedGame, sleep, startAllInOne, startGame } from './support/game.ts'

let app: Awaited<ReturnType<typeof startAllInOne>>
let url: string

beforeAll(async () => {
  app = await startAllInOne({ gateway: { idleTimeout: 1500, maxBadLines: 5 } })
  url = app.url
})
afterAll(() => app?.stop())

async function post(path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method: 'POST', headers }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode!, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('requests the gateway refuses before streaming', () => {
  it('missing or invalid player headers: 400 with a stable code and what to send', async () => {
    const ok = { 'content-type': 'application/jsonl', player_id: newPlayer('A', 'fish').playerId, player_name: 'A', player_team: 'fish' }
    for (const headers of [
      { ...ok, player_id: 'not-a-uuid' },
      { ...ok, player_team: 'cats' },
      { ...ok, player_name: '' },
      { ...ok, player_name: 'x'.repeat(65) },
      { 'content-type': 'application/jsonl' },
    ]) {
      const res = await post('/matchmaking', headers)
      expect(res.status).toBe(400)
      const body = JSON.parse(res.body) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('TTF_BAD_PLAYER')
      expect(body.error.message).toMatch(/player_id \(a UUID\)/)
    }
    expect((await post('/game', { ...ok, 'content-type': 'text/plain' })).status).toBe(415)
    expect((await fetch(`${url}/nowhere`)).status).toBe(404)
    expect((await fetch(`${url}/openapi.json`, { method: 'DELETE' })).status).toBe(405)
  })

  it('a WebSocket without its player: 400 before the upgrade', async () => {
    for (const [path, expected] of [
      ['/ws/matchmaking?player_id=x', 400],
      ['/ws/elsewhere', 404],
    ] as const) {
      const ws = new WebSocket(url.replace('http', 'ws') + path)
      const code = await new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('error', () => resolve(-1))
      })
      expect(code).toBe(expected)
    }
  })
})

describe('streams', () => {
  it('a stream silent for the idle timeout is ended (G18), and its response ends (G19)', async () => {
    const p = newPlayer('Idle', 'fish')
    const l = StreamClient.lobby({ url, player: p })
    expect(await l.opened).toBe(200)
    l.status$(p, 'connect')
    await l.next(lobbyState)
    const t0 = Date.now()
    await l.closed(10_000)
    expect(Date.now() - t0).toBeGreaterThan(1000)
  })

  it("Node's 300 s request timeout is off: the heartbeat timeout takes its place", () => {
    expect(app.node.gateway!.requestTimeout).toBe(0)
  })

  it('heartbeats keep a stream open past the idle timeout', async () => {
    const p = newPlayer('Beat', 'fish')
    const l = StreamClient.lobby({ url, player: p, heartbeat: 500 })
    l.status$(p, 'connect')
    await l.next(lobbyState)
    await sleep(3000)
    expect(l.ended).toBe(false)
    l.close()
    await l.closed() // the request body ended: so does the response
  })

  it('bad lines are dropped and the stream goes on; over-long lines too; no prototype pollution', async () => {
    const p = newPlayer('Messy', 'rodents')
    const l = StreamClient.lobby({ url, player: p, heartbeat: 500 })
    l.send('not json')
    l.send('{"message": 3}')
    l.send(`{"message":{"player":${JSON.stringify(p)},"status":"connect","pad":"${'x'.repeat(MAX_CLIENT_LINE_BYTES)}"}}`)
    l.send(`{"message":{"__proto__":{"polluted":true},"player":${JSON.stringify(p)},"status":"connect"}}`)
    const s = await l.next(lobbyState)
    expect(s.value.waitingPlayers.map((q) => q.playerId)).toContain(p.playerId)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    l.close()
  })

  it('a status update about another player is dropped', async () => {
    const p = newPlayer('Me', 'fish')
    const other = newPlayer('Other', 'fish')
    const l = StreamClient.lobby({ url, player: p, heartbeat: 500 })
    l.status$(other, 'connect')
    l.status$(p, 'connect')
    const s = await l.next(lobbyState)
    expect(s.value.waitingPlayers.map((q) => q.playerId)).not.toContain(other.playerId)
    l.close()
  })

  it('too many bad lines end the stream', async () => {
    const p = newPlayer('Flood', 'fish')
    const l = StreamClient.lobby({ url, player: p })
    await l.opened
    for (let i = 0; i < 10; i++) l.send('{}')
    await l.closed()
  })

  it("a player's second lobby stream replaces the first, which is ended", async () => {
    const p = newPlayer('Twice', 'fish')
    const first = StreamClient.lobby({ url, player: p, heartbeat: 500 })
    first.status$(p, 'connect')
    await first.next(lobbyState)
    const second = StreamClient.lobby({ url, player: p, heartbeat: 500 })
    second.status$(p, 'connect')
    await second.next(lobbyState)
    await first.closed()
    expect(second.ended).toBe(false)
    second.close()
  })
})

describe('moves the game refuses (seed §5.6 step 6, G21, G22, G27)', () => {
  let g: StartedGame
  beforeAll(async () => {
    g = await startGame(url, 500)
  })
  afterAll(() => g?.close())

  it('out of turn, on a taken square, for another player, after the end: refused, not relayed, streams kept', async () => {
    const { x, o, games } = g
    let state = g.game
    const gx = games.get(x)!
    const go = games.get(o)!
    // O out of turn: refused; X sees nothing.
    go.move(moveFor(state, o, 4))
    // X plays 0.
    const m0 = moveFor(state, x, 0)
    gx.move(m0)
    await go.next(moveAt(0))
    state = { ...state, moves: [m0], currentPlayerId: o.playerId }
    // O on X's square: refused.
    go.move(moveFor(state, o, 0))
    // O moves in X's name (G27): refused.
    go.move({ ...moveFor(state, o, 8), playerId: x.playerId, team: x.team })
    // A legal move goes through, and it is the first line X got: none of the refused ones was relayed.
    const m3 = moveFor(state, o, 3)
    go.move(m3)
    const got = await gx.next(moveAt(3))
    expect(gx.lines).toHaveLength(1)
    expect(got.value).toEqual(m3)
    state = { ...state, moves: [m0, m3], currentPlayerId: x.playerId }
    for (const [who, pos] of [
      [x, 1],
      [o, 4],
      [x, 2],
    ] as const) {
      const mv = moveFor(state, who, pos)
      games.get(who)!.move(mv)
      await games.get(who === x ? o : x)!.next(moveAt(pos))
      state = { ...state, moves: [...state.moves, mv], currentPlayerId: (who === x ? o : x).playerId }
    }
    // The game is over: O's move is refused.
    go.move(moveFor(state, o, 5))
    await sleep(300)
    expect(gx.lines.filter((l) => l.includes('"position":5'))).toHaveLength(0)
    expect(gx.ended || go.ended).toBe(false)
  })
})
