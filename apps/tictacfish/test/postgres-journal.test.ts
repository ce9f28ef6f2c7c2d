/**
 * TicTacFish on PostgreSQL (`--journal postgres://…`) instead of the embedded SQLite file: a whole
 * game is journaled there (the lobby's started/ended, the session's moves) and replayed by a
 * fresh lobby. Against `SHOAL_TEST_PG_URL` (the local server by default), in a schema of its own.
 */
import { randomBytes } from 'node:crypto'
import { PostgresEventStore } from '@shoal/journal-postgres'
import postgres from 'postgres'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { StreamClient } from '../src/client/StreamClient.ts'
import { lobbyState, newPlayer, play, session, startAllInOne, startGame } from './support/game.ts'

const URL = process.env.SHOAL_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const schema = `ttf_${randomBytes(4).toString('hex')}`
let store: PostgresEventStore

beforeAll(async () => {
  store = await PostgresEventStore.open(URL, { schema })
})

afterAll(async () => {
  await store?.close()
  const sql = postgres(URL, { max: 1, onnotice: () => undefined })
  await sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  await sql.end()
})

it('a game journaled in PostgreSQL; a new node replays the lobby and the session from it', async () => {
  const first = await startAllInOne({ journal: store })
  const g = await startGame(first.url, 500)
  await play(g, g.game, [0, 3, 1, 4, 2])
  for (const l of g.lobbies.values()) await l.next(session('finished', g.game.sessionId))
  g.close()
  await first.stop()

  const events = await store.read(`session-${g.game.sessionId}`, 1)
  expect(events.map((e) => e.type)).toEqual(['started', 'moved', 'moved', 'moved', 'moved', 'moved'])

  // A new node on the same journal: its lobby replays the completed game.
  const second = await startAllInOne({ journal: store })
  const c = newPlayer('Cy', 'fish')
  const lc = StreamClient.lobby({ url: second.url, player: c })
  lc.status$(c, 'connect')
  const state = (await lc.next(lobbyState)).value
  expect(state.completedSessions.map((s) => s.sessionId)).toEqual([g.game.sessionId])
  lc.close()
  await second.stop()
}, 60_000)
