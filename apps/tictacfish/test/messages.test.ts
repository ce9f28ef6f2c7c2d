/**
 * The JSONL line contract (seed-system.md §5.2): lines are told apart by their required keys (G28),
 * bad lines are refused with a LineError that says what is wrong, the seed's own example lines
 * parse, and the server-line parsers read back what formatLine writes.
 */

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  formatLine,
  type GameMove,
  type GameState,
  LineError,
  type LobbyState,
  MAX_NAME_LENGTH,
  type Player,
  type PlayerStatusUpdate,
  parseGameLine,
  parseLobbyLine,
  parseServerGameLine,
  parseServerLobbyLine,
  type SessionStatusUpdate,
} from '../src/protocol/Messages.ts'

// The Swift client's ids are upper case (UUID().uuidString).
const ANN_ID = '3F2504E0-4F89-41D3-9A0C-0305E82C3301'
const BOB_ID = '9b2e4c1a-7d3f-4e5a-8b6c-1d2e3f4a5b6c'
const SESSION_ID = 'C56A4180-65AA-42EC-A945-5FD21DEC0538'
const ann: Player = { playerId: ANN_ID, name: 'Ann', team: 'fish' }
const bob: Player = { playerId: BOB_ID, name: 'Bob', team: 'rodents' }
const move: GameMove = { playerId: BOB_ID, position: 4, team: 'rodents', teamCharacterId: 1 }
const started: GameState = { sessionId: SESSION_ID, playerOne: ann, playerTwo: bob, currentPlayerId: ANN_ID, moves: [] }
const won: GameState = {
  ...started,
  currentPlayerId: BOB_ID,
  moves: [
    { playerId: ANN_ID, position: 0, team: 'fish', teamCharacterId: 0 },
    { playerId: BOB_ID, position: 3, team: 'rodents', teamCharacterId: 0 },
    { playerId: ANN_ID, position: 1, team: 'fish', teamCharacterId: 1 },
    { playerId: BOB_ID, position: 4, team: 'rodents', teamCharacterId: 1 },
    { playerId: ANN_ID, position: 2, team: 'fish', teamCharacterId: 2 },
  ],
  result: { result: { player: ann } },
}
const drawn: GameState = {
  ...started,
  moves: [0, 1, 2, 4, 3, 5, 7, 6, 8].map((position, i) => ({
    playerId: i % 2 ? BOB_ID : ANN_ID,
    position,
    team: i % 2 ? 'rodents' : 'fish',
    teamCharacterId: Math.floor(i / 2) % 3,
  })),
  result: { result: {} },
}

const line = (message: unknown): string => JSON.stringify({ message })
const statusLine = (status: string, p: unknown = ann) => line({ player: p, status })
const moveLine = (patch: Record<string, unknown> = {}) => line({ ...move, ...patch })

/** Expects `f` to throw a LineError (code TTF_BAD_LINE) whose message matches `what`. */
function refused(f: () => unknown, what?: RegExp): LineError {
  let error: unknown
  try {
    f()
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(LineError)
  const e = error as LineError
  expect(e).toBeInstanceOf(Error)
  expect(e.code).toBe('TTF_BAD_LINE')
  expect(e.name).toBe('LineError')
  if (what) expect(e.message).toMatch(what)
  return e
}

describe('discrimination by required keys (G28)', () => {
  it('{} is a heartbeat on both client streams', () => {
    expect(parseLobbyLine('{"message":{}}')).toEqual({ kind: 'heartbeat' })
    expect(parseGameLine('{"message":{}}')).toEqual({ kind: 'heartbeat' })
  })

  it('status ⇒ PlayerStatusUpdate on /matchmaking', () => {
    for (const status of ['connect', 'ready', 'disconnect'] as const)
      expect(parseLobbyLine(statusLine(status))).toEqual({ kind: 'status', update: { player: ann, status } })
  })

  it('position ⇒ GameMove on /game', () => {
    expect(parseGameLine(moveLine())).toEqual({ kind: 'move', move })
  })

  it('a status line is never taken for a heartbeat, even when it is invalid', () => {
    refused(() => parseLobbyLine(line({ status: 'ready' })), /PlayerStatusUpdate: player/)
    refused(() => parseLobbyLine(statusLine('sleep')), /PlayerStatusUpdate: status/)
    refused(() => parseGameLine(line({ position: 4 })), /GameMove/)
  })

  it('unknown keys ⇒ LineError (not a heartbeat)', () => {
    refused(() => parseLobbyLine(line({ hello: 1 })), /PlayerStatusUpdate/)
    refused(() => parseGameLine(line({ hello: 1 })), /GameMove/)
    // A line of the other stream.
    refused(() => parseLobbyLine(moveLine()), /matchmaking/)
    refused(() => parseGameLine(statusLine('ready')), /\/game/)
    // A server line sent by a client.
    refused(() => parseLobbyLine(line({ type: 'started', game: started })))
    refused(() => parseLobbyLine(line({ waitingPlayers: [], readyPlayers: [], completedSessions: [] })))
  })

  it('extra keys beside the required ones are dropped from the result', () => {
    const r = parseLobbyLine(line({ player: { ...ann, avatar: 'x' }, status: 'ready', extra: true }))
    expect(r).toEqual({ kind: 'status', update: { player: ann, status: 'ready' } })
    const m = parseGameLine(line({ ...move, note: 'hi' }))
    expect(m.kind === 'move' && Object.keys(m.move).sort()).toEqual(['playerId', 'position', 'team', 'teamCharacterId'])
  })

  it('server lines: status, type and waitingPlayers decide', () => {
    expect(parseServerLobbyLine(statusLine('connect'))).toEqual({ kind: 'status', update: { player: ann, status: 'connect' } })
    expect(parseServerLobbyLine(line({ type: 'started', game: started }))).toEqual({ kind: 'session', update: { type: 'started', game: started } })
    const state: LobbyState = { waitingPlayers: [ann], readyPlayers: [bob], completedSessions: [won, drawn] }
    expect(parseServerLobbyLine(line(state))).toEqual({ kind: 'lobby', state })
    expect(parseServerGameLine(moveLine())).toEqual(move)
    // The server sends no heartbeats.
    refused(() => parseServerLobbyLine('{"message":{}}'), /PlayerStatusUpdate, a SessionStatusUpdate or a LobbyState/)
    refused(() => parseServerGameLine('{"message":{}}'), /GameMove/)
    refused(() => parseServerLobbyLine(line({ type: 'paused', game: started })), /SessionStatusUpdate: type/)
  })
})

describe('bad lines are refused with a clear LineError', () => {
  it('not JSON', () => {
    for (const bad of ['', 'hello', '{"message":', '{message:{}}', "{'message':{}}", '{"message":{}}}'])
      for (const parse of [parseLobbyLine, parseGameLine, parseServerLobbyLine, parseServerGameLine]) refused(() => parse(bad), /JSON object/)
  })

  it('not an object with a "message" key', () => {
    for (const bad of ['[]', '[{"message":{}}]', 'null', '42', '"message"', 'true', '{}', '{"Message":{}}', '{"msg":{}}'])
      for (const parse of [parseLobbyLine, parseGameLine]) refused(() => parse(bad), /"message" key/)
  })

  it('a message that is not an object', () => {
    for (const bad of ['"hi"', 'null', '[]', '[{}]', '0', 'true'])
      for (const parse of [parseLobbyLine, parseGameLine, parseServerLobbyLine, parseServerGameLine])
        refused(() => parse(`{"message":${bad}}`), /"message" must be an object/)
  })

  it('position out of range or not an integer', () => {
    for (const position of [-1, 9, 100, 1.5, '4', null, true]) refused(() => parseGameLine(moveLine({ position })), /GameMove: position/)
    refused(() => parseGameLine(line({ playerId: BOB_ID, position: 4, team: 'rodents' })), /teamCharacterId/)
    for (const position of [0, 8]) expect(parseGameLine(moveLine({ position })).kind).toBe('move')
  })

  it('teamCharacterId out of range', () => {
    for (const teamCharacterId of [-1, 3, 0.5, '1']) refused(() => parseGameLine(moveLine({ teamCharacterId })), /GameMove: teamCharacterId/)
    for (const teamCharacterId of [0, 1, 2]) expect(parseGameLine(moveLine({ teamCharacterId })).kind).toBe('move')
  })

  it('a team other than fish or rodents (case matters)', () => {
    for (const team of ['cats', 'Fish', 'RODENTS', '', 1]) {
      refused(() => parseGameLine(moveLine({ team })), /GameMove: team/)
      refused(() => parseLobbyLine(statusLine('ready', { ...ann, team })), /PlayerStatusUpdate: player\.team/)
    }
  })

  it('ids that are not UUIDs; upper- and lower-case UUIDs are fine', () => {
    for (const id of ['abc', '', '3F2504E04F8941D39A0C0305E82C3301', `${ANN_ID}0`, '{3F2504E0-4F89-41D3-9A0C-0305E82C3301}', 42]) {
      refused(() => parseGameLine(moveLine({ playerId: id })), /GameMove: playerId/)
      refused(() => parseLobbyLine(statusLine('ready', { ...ann, playerId: id })), /player\.playerId/)
      refused(() => parseServerLobbyLine(line({ type: 'started', game: { ...started, sessionId: id } })), /game\.sessionId/)
    }
    expect(parseGameLine(moveLine({ playerId: ANN_ID.toLowerCase(), team: 'fish' })).kind).toBe('move')
    expect(parseGameLine(moveLine({ playerId: BOB_ID.toUpperCase() })).kind).toBe('move')
  })

  it('names: empty or over-long are refused; up to MAX_NAME_LENGTH is fine', () => {
    expect(MAX_NAME_LENGTH).toBe(64)
    const long = 'x'.repeat(MAX_NAME_LENGTH)
    expect(parseLobbyLine(statusLine('connect', { ...ann, name: long }))).toEqual({
      kind: 'status',
      update: { player: { ...ann, name: long }, status: 'connect' },
    })
    refused(() => parseLobbyLine(statusLine('connect', { ...ann, name: `${long}x` })), /player\.name/)
    refused(() => parseLobbyLine(statusLine('connect', { ...ann, name: 'x'.repeat(10_000) })), /player\.name/)
    refused(() => parseLobbyLine(statusLine('connect', { ...ann, name: '' })), /player\.name/)
    refused(() => parseLobbyLine(statusLine('connect', { ...ann, name: 7 })), /player\.name/)
  })

  it('a missing required field', () => {
    for (const key of ['playerId', 'position', 'team', 'teamCharacterId'] as const) {
      const { [key]: _, ...rest } = move
      if (key === 'position') refused(() => parseGameLine(line(rest)), /GameMove/)
      else refused(() => parseGameLine(line(rest)), new RegExp(`GameMove: ${key}`))
    }
    for (const key of ['sessionId', 'playerOne', 'playerTwo', 'currentPlayerId', 'moves'] as const) {
      const { [key]: _, ...rest } = started
      refused(() => parseServerLobbyLine(line({ type: 'started', game: rest })), new RegExp(`game\\.${key}`))
    }
  })
})

describe('__proto__ in a line', () => {
  it('does not pollute Object.prototype and is not in the result', () => {
    const lines = [
      `{"message":{"player":${JSON.stringify(ann)},"status":"ready","__proto__":{"polluted":1,"status":"x"}}}`,
      `{"message":{"player":{"playerId":"${ANN_ID}","name":"Ann","team":"fish","__proto__":{"polluted":2}},"status":"ready"}}`,
      `{"__proto__":{"polluted":3},"message":{"player":${JSON.stringify(ann)},"status":"ready"}}`,
    ]
    for (const l of lines) {
      const r = parseLobbyLine(l)
      expect(r).toEqual({ kind: 'status', update: { player: ann, status: 'ready' } })
      if (r.kind !== 'status') throw new Error('unreachable')
      for (const o of [r.update, r.update.player]) {
        expect(Object.hasOwn(o, '__proto__')).toBe(false)
        expect(Object.getPrototypeOf(o)).toBe(Object.prototype)
        expect('polluted' in o).toBe(false)
      }
    }
    const m = parseGameLine(`{"message":{"playerId":"${BOB_ID}","position":4,"team":"rodents","teamCharacterId":1,"__proto__":{"polluted":4}}}`)
    expect(m.kind === 'move' && Object.hasOwn(m.move, '__proto__')).toBe(false)
    expect('polluted' in {}).toBe(false)
    expect(Object.prototype).not.toHaveProperty('polluted')
    expect(Object.prototype).not.toHaveProperty('status')
  })

  it('keys found only through __proto__ do not count for discrimination', () => {
    // `status` / `position` / `message` appear only inside a "__proto__" key: not a status, move or line.
    refused(() => parseLobbyLine('{"message":{"__proto__":{"status":"ready"}}}'))
    refused(() => parseGameLine('{"message":{"__proto__":{"position":4}}}'))
    refused(() => parseLobbyLine('{"__proto__":{"message":{}}}'), /"message" key/)
    expect('status' in {}).toBe(false)
  })
})

describe("the seed's example lines (§5.2)", () => {
  // Verbatim from seed-system.md §5.2, with its placeholders filled in below.
  const EXAMPLES = {
    heartbeat: '{"message":{}}',
    status: '{"message":{"player":{"playerId":"…","name":"Ann","team":"fish"},"status":"ready"}}',
    started: '{"message":{"type":"started","game":{"sessionId":"…","playerOne":{…},"playerTwo":{…},"currentPlayerId":"…","moves":[]}}}',
    lobby: '{"message":{"waitingPlayers":[…],"readyPlayers":[…],"completedSessions":[…]}}',
    move: '{"message":{"playerId":"…","position":4,"team":"rodents","teamCharacterId":1}}',
  }
  const WIN = '"result":{"result":{"player":{"playerId":"…","name":"Ann","team":"fish"}}}'
  const DRAW = '"result":{"result":{}}'
  const fill = (s: string, arrays = '[]') => s.replaceAll('"…"', JSON.stringify(ANN_ID)).replaceAll('{…}', JSON.stringify(ann)).replaceAll('[…]', arrays)

  it('the heartbeat, status and move lines parse as client lines', () => {
    expect(parseLobbyLine(fill(EXAMPLES.heartbeat))).toEqual({ kind: 'heartbeat' })
    expect(parseGameLine(fill(EXAMPLES.heartbeat))).toEqual({ kind: 'heartbeat' })
    expect(parseLobbyLine(fill(EXAMPLES.status))).toEqual({ kind: 'status', update: { player: ann, status: 'ready' } })
    expect(parseGameLine(fill(EXAMPLES.move))).toEqual({ kind: 'move', move: { ...move, playerId: ANN_ID } })
  })

  it('the status, started, LobbyState and move lines parse as server lines', () => {
    expect(parseServerLobbyLine(fill(EXAMPLES.status)).kind).toBe('status')
    const s = parseServerLobbyLine(fill(EXAMPLES.started))
    expect(s).toEqual({ kind: 'session', update: { type: 'started', game: { ...started, sessionId: ANN_ID, playerTwo: ann } } })
    expect(parseServerLobbyLine(fill(EXAMPLES.lobby))).toEqual({ kind: 'lobby', state: { waitingPlayers: [], readyPlayers: [], completedSessions: [] } })
    const withPlayers = parseServerLobbyLine(
      fill(EXAMPLES.lobby, `[${JSON.stringify(ann)}]`).replace(/"completedSessions":\[[^\]]*\]/, '"completedSessions":[]'),
    )
    expect(withPlayers).toEqual({ kind: 'lobby', state: { waitingPlayers: [ann], readyPlayers: [ann], completedSessions: [] } })
    expect(parseServerGameLine(fill(EXAMPLES.move))).toEqual({ ...move, playerId: ANN_ID })
  })

  it("a finished game's result shapes: win and draw", () => {
    for (const [shape, result] of [
      [WIN, { result: { player: ann } }],
      [DRAW, { result: {} }],
    ] as const) {
      const l = fill(EXAMPLES.started)
        .replace('"type":"started"', '"type":"finished"')
        .replace('"moves":[]', `"moves":[],${fill(shape)}`)
      const r = parseServerLobbyLine(l)
      expect(r.kind === 'session' && r.update.type).toBe('finished')
      expect(r.kind === 'session' && r.update.game.result).toEqual(result)
    }
  })
})

describe('formatLine', () => {
  it('writes one line {"message":…} ending in a newline', () => {
    expect(formatLine({})).toBe('{"message":{}}\n')
    expect(formatLine(move)).toBe(`${line(move)}\n`)
    const tricky = formatLine({ player: { ...ann, name: 'A\nB\r\u2028' }, status: 'ready' })
    expect(tricky.indexOf('\n')).toBe(tricky.length - 1)
    expect(tricky).not.toContain('\r')
  })

  it('client lines it writes parse back', () => {
    expect(parseLobbyLine(formatLine({}))).toEqual({ kind: 'heartbeat' })
    expect(parseGameLine(formatLine(move))).toEqual({ kind: 'move', move })
    const update: PlayerStatusUpdate = { player: bob, status: 'disconnect' }
    expect(parseLobbyLine(formatLine(update))).toEqual({ kind: 'status', update })
  })

  it('server-line parsers round-trip its output', () => {
    for (const status of ['connect', 'ready', 'disconnect'] as const) {
      const update: PlayerStatusUpdate = { player: ann, status }
      expect(parseServerLobbyLine(formatLine(update))).toEqual({ kind: 'status', update })
    }
    for (const update of [
      { type: 'started', game: started },
      { type: 'finished', game: won },
      { type: 'finished', game: drawn },
    ] satisfies SessionStatusUpdate[])
      expect(parseServerLobbyLine(formatLine(update))).toEqual({ kind: 'session', update })
    for (const state of [
      { waitingPlayers: [], readyPlayers: [], completedSessions: [] },
      { waitingPlayers: [ann, bob], readyPlayers: [bob], completedSessions: [won, drawn, started] },
    ] satisfies LobbyState[])
      expect(parseServerLobbyLine(formatLine(state))).toEqual({ kind: 'lobby', state })
    expect(parseServerGameLine(formatLine(move))).toEqual(move)
  })

  it('round-trips arbitrary valid players and moves (property)', () => {
    const team = fc.constantFrom('fish' as const, 'rodents' as const)
    // Printable ASCII and characters JSON escapes or that are one UTF-16 unit beyond ASCII.
    const nameChar = fc.oneof(
      fc.string({ minLength: 1, maxLength: 1 }),
      fc.constantFrom('"', '\\', '\n', '\r', '\t', '\u0000', '\u2028', 'é', 'ß', '中', '\uffff'),
    )
    const id = fc.uuid().chain((u) => fc.constantFrom(u, u.toUpperCase()))
    const playerArb = fc.record({ playerId: id, name: fc.string({ minLength: 1, maxLength: MAX_NAME_LENGTH, unit: nameChar }), team })
    const moveArb = fc.record({ playerId: id, position: fc.integer({ min: 0, max: 8 }), team, teamCharacterId: fc.integer({ min: 0, max: 2 }) })
    fc.assert(
      fc.property(playerArb, fc.constantFrom('connect' as const, 'ready' as const, 'disconnect' as const), moveArb, (p, status, m) => {
        expect(parseServerLobbyLine(formatLine({ player: p, status }))).toEqual({ kind: 'status', update: { player: p, status } })
        expect(parseLobbyLine(formatLine({ player: p, status }))).toEqual({ kind: 'status', update: { player: p, status } })
        expect(parseServerGameLine(formatLine(m))).toEqual(m)
        expect(parseGameLine(formatLine(m))).toEqual({ kind: 'move', move: m })
      }),
      { numRuns: 300, seed: 42 },
    )
  })
})
