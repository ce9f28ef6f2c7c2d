/**
 * The generated OpenAPI document is the seed's contract (seed-system.md §5.2): the seed's own
 * document (test/fixtures/seed-openapi.json) must be contained in ours, and everything we add is
 * listed below. Also: the 3.2 variant, and lines our parsers accept are valid by the document.
 */

import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { MAX_NAME_LENGTH, parseGameLine, parseLobbyLine, parseServerGameLine, parseServerLobbyLine } from '../src/protocol/Messages.ts'
import { openApi31, openApi32 } from '../src/protocol/OpenApi.ts'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type JsonObject = { [key: string]: Json }

const seed = JSON.parse(readFileSync(new URL('./fixtures/seed-openapi.json', import.meta.url), 'utf8')) as JsonObject
const ours = JSON.parse(JSON.stringify(openApi31())) as JsonObject

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)
const at = (doc: Json, ...keys: string[]): Json => keys.reduce<Json>((v, k) => (isObject(v) ? v[k]! : null), doc)

const PATHS = ['/matchmaking', '/game'] as const
const JSONL = 'application/jsonl'

/** Constraints our schemas add to the seed's (each a key the seed's document does not have, with its value). */
const KNOWN_ADDITIONS: Record<string, Json> = {
  // Player names are bounded (the seed's are free text).
  'components.schemas.Player.properties.name.minLength': 1,
  'components.schemas.Player.properties.name.maxLength': MAX_NAME_LENGTH,
  // A game has at most nine moves.
  'components.schemas.GameState.properties.moves.maxItems': 9,
  // The generator writes empty objects with an explicit empty `properties`.
  'components.schemas.Draw.properties': {},
  'components.schemas.Heartbeat.properties': {},
  // Heartbeat and Draw take no other keys, so every `oneOf` holds under JSON Schema's strict
  // "exactly one" (in the seed's, a status line fits both PlayerStatusUpdate and Heartbeat).
  'components.schemas.Draw.additionalProperties': false,
  'components.schemas.Heartbeat.additionalProperties': false,
  // The player_name header is bounded like Player.name.
  'paths./matchmaking.post.parameters[player_name].schema.minLength': 1,
  'paths./matchmaking.post.parameters[player_name].schema.maxLength': MAX_NAME_LENGTH,
  'paths./game.post.parameters[player_name].schema.minLength': 1,
  'paths./game.post.parameters[player_name].schema.maxLength': MAX_NAME_LENGTH,
  // Empty sections the generator always writes.
  'components.parameters': {},
  webhooks: {},
}

/** Values we replace: the player_team header is a Team (the seed's handler throws on anything else), not any string. */
const KNOWN_REPLACEMENTS: Record<string, { seed: Json; ours: Json }> = Object.fromEntries(
  PATHS.map((p) => [`paths.${p}.post.parameters[player_team].schema`, { seed: { type: 'string' }, ours: { $ref: '#/components/schemas/Team' } }]),
)

/**
 * Walks the seed's document and ours side by side: everything in the seed must be in ours, equal
 * (`required` as a set, `parameters` by name, other arrays in order); keys only ours has are collected.
 */
function contains(s: Json, o: Json, path: string, problems: string[], added: Record<string, Json>): void {
  const replaced = KNOWN_REPLACEMENTS[path]
  if (replaced) {
    if (JSON.stringify(s) !== JSON.stringify(replaced.seed)) problems.push(`${path}: the seed now has ${JSON.stringify(s)}`)
    if (JSON.stringify(o) !== JSON.stringify(replaced.ours)) problems.push(`${path}: ours is ${JSON.stringify(o)}`)
    return
  }
  const key = path.split('.').at(-1)
  if (Array.isArray(s)) {
    if (!Array.isArray(o)) return void problems.push(`${path}: expected an array, got ${JSON.stringify(o)}`)
    if (key === 'required') {
      if (JSON.stringify([...(s as string[])].sort()) !== JSON.stringify([...(o as string[])].sort()))
        problems.push(`${path}: required ${JSON.stringify(s)} in the seed, ${JSON.stringify(o)} in ours`)
      return
    }
    if (key === 'parameters') {
      const name = (p: Json) => String(at(p, 'name'))
      if (JSON.stringify(s.map(name).sort()) !== JSON.stringify(o.map(name).sort()))
        problems.push(`${path}: parameters ${s.map(name)} in the seed, ${o.map(name)} in ours`)
      for (const p of s) {
        const mine = o.find((q) => name(q) === name(p))
        if (mine !== undefined) contains(p, mine, `${path}[${name(p)}]`, problems, added)
      }
      return
    }
    if (s.length !== o.length) return void problems.push(`${path}: ${s.length} items in the seed, ${o.length} in ours`)
    s.forEach((item, i) => contains(item, o[i]!, `${path}[${i}]`, problems, added))
    return
  }
  if (isObject(s)) {
    if (!isObject(o)) return void problems.push(`${path}: expected an object, got ${JSON.stringify(o)}`)
    for (const k of Object.keys(s)) {
      const sub = path ? `${path}.${k}` : k
      if (!(k in o)) problems.push(`${sub}: missing in ours`)
      else contains(s[k]!, o[k]!, sub, problems, added)
    }
    for (const k of Object.keys(o)) if (!(k in s)) added[path ? `${path}.${k}` : k] = o[k]!
    return
  }
  if (s !== o) problems.push(`${path}: ${JSON.stringify(s)} in the seed, ${JSON.stringify(o)} in ours`)
}

describe('openApi31() is the seed contract', () => {
  it("contains all of the seed's document; the only additions are the known ones", () => {
    const problems: string[] = []
    const added: Record<string, Json> = {}
    contains(seed, ours, '', problems, added)
    expect(problems).toEqual([])
    expect(added).toEqual(KNOWN_ADDITIONS)
  })

  it('version, info and server', () => {
    expect(ours.openapi).toBe('3.1.0')
    expect(ours.info).toEqual(seed.info)
    expect(ours.servers).toEqual([{ url: 'http://localhost:8080' }])
    expect(openApi31('http://example.test:9000').servers).toEqual([{ url: 'http://example.test:9000' }])
  })

  it('same paths, methods and operationIds', () => {
    expect(Object.keys(at(ours, 'paths') as JsonObject).sort()).toEqual(Object.keys(at(seed, 'paths') as JsonObject).sort())
    expect(Object.keys(at(seed, 'paths') as JsonObject).sort()).toEqual([...PATHS].sort())
    for (const p of PATHS) {
      expect(Object.keys(at(ours, 'paths', p) as JsonObject)).toEqual(['post'])
      expect(Object.keys(at(seed, 'paths', p) as JsonObject)).toEqual(['post'])
      expect(at(ours, 'paths', p, 'post', 'operationId')).toBe(at(seed, 'paths', p, 'post', 'operationId'))
    }
    expect(at(ours, 'paths', '/matchmaking', 'post', 'operationId')).toBe('connectToLobby')
    expect(at(ours, 'paths', '/game', 'post', 'operationId')).toBe('joinGameSession')
  })

  it('the three header parameters, all required', () => {
    for (const doc of [seed, ours])
      for (const p of PATHS) {
        const params = at(doc, 'paths', p, 'post', 'parameters') as JsonObject[]
        expect(params.map((x) => x.name).sort()).toEqual(['player_id', 'player_name', 'player_team'])
        for (const x of params) {
          expect(x.in).toBe('header')
          expect(x.required).toBe(true)
        }
        const id = params.find((x) => x.name === 'player_id')!
        expect(id.schema).toEqual({ type: 'string', format: 'uuid' })
      }
  })

  it('request and response bodies are application/jsonl with the same line schemas', () => {
    const expected = { '/matchmaking': ['PlayerLobbyMessage', 'LobbyMessage'], '/game': ['PlayerSessionMessage', 'SessionMessage'] }
    for (const doc of [seed, ours])
      for (const p of PATHS) {
        const op = at(doc, 'paths', p, 'post')
        expect(at(op, 'requestBody', 'required')).toBe(true)
        expect(Object.keys(at(op, 'requestBody', 'content') as JsonObject)).toEqual([JSONL])
        expect(Object.keys(at(op, 'responses') as JsonObject)).toEqual(['200'])
        expect(Object.keys(at(op, 'responses', '200', 'content') as JsonObject)).toEqual([JSONL])
        expect(at(op, 'requestBody', 'content', JSONL, 'schema')).toEqual({ $ref: `#/components/schemas/${expected[p][0]}` })
        expect(at(op, 'responses', '200', 'content', JSONL, 'schema')).toEqual({ $ref: `#/components/schemas/${expected[p][1]}` })
        expect(at(op, 'responses', '200', 'description')).toBe(at(seed, 'paths', p, 'post', 'responses', '200', 'description'))
      }
  })

  it('same component schema names', () => {
    const names = (doc: Json) => Object.keys(at(doc, 'components', 'schemas') as JsonObject).sort()
    expect(names(ours)).toEqual(names(seed))
    expect(names(seed)).toHaveLength(15)
  })

  describe('each component', () => {
    const components = Object.keys(at(seed, 'components', 'schemas') as JsonObject).sort()
    /** Every $ref under a schema, with where it is (so oneOf order counts). */
    const refs = (v: Json, path = ''): string[] =>
      Array.isArray(v)
        ? v.flatMap((x, i) => refs(x, `${path}[${i}]`))
        : isObject(v)
          ? Object.entries(v).flatMap(([k, x]) => (k === '$ref' ? [`${path} → ${String(x)}`] : refs(x, `${path}.${k}`)))
          : []
    const enums = (v: Json, path = ''): string[] =>
      Array.isArray(v)
        ? v.flatMap((x, i) => enums(x, `${path}[${i}]`))
        : isObject(v)
          ? Object.entries(v).flatMap(([k, x]) => (k === 'enum' ? [`${path} = ${JSON.stringify(x)}`] : enums(x, `${path}.${k}`)))
          : []

    for (const name of components)
      it(`${name}: type, properties, required, enums and $refs`, () => {
        const s = at(seed, 'components', 'schemas', name)
        const o = at(ours, 'components', 'schemas', name)
        expect(at(o, 'type')).toBe(at(s, 'type'))
        expect(Object.keys((at(o, 'properties') ?? {}) as JsonObject).sort()).toEqual(Object.keys((at(s, 'properties') ?? {}) as JsonObject).sort())
        expect([...((at(o, 'required') ?? []) as string[])].sort()).toEqual([...((at(s, 'required') ?? []) as string[])].sort())
        expect(enums(o).sort()).toEqual(enums(s).sort())
        expect(refs(o).sort()).toEqual(refs(s).sort())
        for (const [prop, v] of Object.entries((at(s, 'properties') ?? {}) as JsonObject)) {
          expect(at(o, 'properties', prop, 'type'), `${name}.${prop}.type`).toBe(at(v, 'type'))
          expect(at(o, 'properties', prop, 'format'), `${name}.${prop}.format`).toBe(at(v, 'format'))
        }
      })

    it('oneOf alternatives in the seed order', () => {
      expect(refs(at(ours, 'components', 'schemas', 'LobbyMessage'))).toEqual([
        '.properties.message.oneOf[0] → #/components/schemas/PlayerStatusUpdate',
        '.properties.message.oneOf[1] → #/components/schemas/SessionStatusUpdate',
        '.properties.message.oneOf[2] → #/components/schemas/LobbyState',
      ])
      expect(refs(at(ours, 'components', 'schemas', 'GameResult'))).toEqual([
        '.properties.result.oneOf[0] → #/components/schemas/Win',
        '.properties.result.oneOf[1] → #/components/schemas/Draw',
      ])
      for (const name of ['PlayerLobbyMessage', 'LobbyMessage', 'PlayerSessionMessage', 'SessionMessage', 'GameResult'])
        expect(refs(at(ours, 'components', 'schemas', name))).toEqual(refs(at(seed, 'components', 'schemas', name)))
    })

    it('every $ref of our document resolves', () => {
      const all = refs(ours).map((r) => r.split(' → ')[1]!)
      expect(all.length).toBeGreaterThan(20)
      for (const r of new Set(all)) {
        expect(r).toMatch(/^#\/components\/schemas\//)
        expect(at(ours, 'components', 'schemas', r.split('/').at(-1)!)).toBeTruthy()
      }
    })
  })
})

describe('openApi32()', () => {
  it('is 3.1 with each jsonl body schema moved to itemSchema, and says 3.2.0', () => {
    const doc32 = JSON.parse(JSON.stringify(openApi32())) as JsonObject
    expect(doc32.openapi).toBe('3.2.0')
    for (const p of PATHS) {
      const bodies = [at(doc32, 'paths', p, 'post', 'requestBody', 'content', JSONL), at(doc32, 'paths', p, 'post', 'responses', '200', 'content', JSONL)]
      const bodies31 = [at(ours, 'paths', p, 'post', 'requestBody', 'content', JSONL), at(ours, 'paths', p, 'post', 'responses', '200', 'content', JSONL)]
      bodies.forEach((b, i) => {
        expect(b).toEqual({ itemSchema: at(bodies31[i]!, 'schema') })
        expect(at(b, 'itemSchema')).toBeTruthy()
      })
      // Header parameters keep `schema`.
      for (const x of at(doc32, 'paths', p, 'post', 'parameters') as JsonObject[]) expect(x.schema).toBeTruthy()
    }
    // Everything else is the 3.1 document: moving itemSchema back gives it.
    const back = structuredClone(doc32)
    back.openapi = '3.1.0'
    for (const p of PATHS)
      for (const media of [
        at(back, 'paths', p, 'post', 'requestBody', 'content', JSONL),
        at(back, 'paths', p, 'post', 'responses', '200', 'content', JSONL),
      ] as JsonObject[]) {
        media.schema = media.itemSchema!
        delete media.itemSchema
      }
    expect(back).toEqual(ours)
  })

  it('leaves openApi31() untouched', () => {
    openApi32()
    expect(JSON.parse(JSON.stringify(openApi31()))).toEqual(ours)
  })
})

/**
 * A small JSON Schema validator for the keywords these documents use (an unknown keyword fails the
 * test, so nothing goes unchecked). `oneOf` is read as the seed's Swift generator reads it: the
 * first alternative that fits wins (the seed's `oneOf`s have no discriminator and a Heartbeat `{}`
 * fits any object, so under strict JSON Schema "exactly one" a status line would fit two: G28).
 */
function validate(doc: JsonObject, schema: Json, value: unknown, path = '$'): string[] {
  if (!isObject(schema)) return [`${path}: bad schema`]
  const errors: string[] = []
  for (const [k, v] of Object.entries(schema)) {
    switch (k) {
      case '$ref': {
        const name = String(v).replace('#/components/schemas/', '')
        errors.push(...validate(doc, at(doc, 'components', 'schemas', name), value, path))
        break
      }
      case 'type': {
        const ok =
          v === 'object'
            ? isObject(value)
            : v === 'array'
              ? Array.isArray(value)
              : v === 'integer'
                ? Number.isInteger(value)
                : v === 'string'
                  ? typeof value === 'string'
                  : v === 'number'
                    ? typeof value === 'number'
                    : false
        if (!ok) errors.push(`${path}: not ${String(v)}`)
        break
      }
      case 'properties':
        if (isObject(value)) for (const [p, s] of Object.entries(v as JsonObject)) if (p in value) errors.push(...validate(doc, s, value[p], `${path}.${p}`))
        break
      case 'additionalProperties':
        if (v !== false) errors.push(`${path}: the test validator only knows additionalProperties: false`)
        else if (isObject(value)) {
          const known = new Set(Object.keys((schema as JsonObject).properties ?? {}))
          for (const p of Object.keys(value)) if (!known.has(p)) errors.push(`${path}: ${p} not allowed`)
        }
        break
      case 'required':
        if (isObject(value)) for (const p of v as string[]) if (!(p in value)) errors.push(`${path}: ${p} missing`)
        break
      case 'enum':
        if (!(v as Json[]).includes(value as Json)) errors.push(`${path}: not one of ${JSON.stringify(v)}`)
        break
      case 'oneOf':
        if (!(v as Json[]).some((alt) => validate(doc, alt, value, path).length === 0)) errors.push(`${path}: fits no alternative`)
        break
      case 'items':
        if (Array.isArray(value)) value.forEach((x, i) => errors.push(...validate(doc, v, x, `${path}[${i}]`)))
        break
      case 'minimum':
        if (typeof value === 'number' && value < (v as number)) errors.push(`${path}: < ${String(v)}`)
        break
      case 'maximum':
        if (typeof value === 'number' && value > (v as number)) errors.push(`${path}: > ${String(v)}`)
        break
      case 'minLength':
        if (typeof value === 'string' && [...value].length < (v as number)) errors.push(`${path}: too short`)
        break
      case 'maxLength':
        if (typeof value === 'string' && [...value].length > (v as number)) errors.push(`${path}: too long`)
        break
      case 'maxItems':
        if (Array.isArray(value) && value.length > (v as number)) errors.push(`${path}: too many items`)
        break
      case 'format':
        if (v !== 'uuid') errors.push(`${path}: unknown format ${String(v)}`)
        else if (typeof value === 'string' && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) errors.push(`${path}: not a uuid`)
        break
      default:
        errors.push(`${path}: the test validator does not know ${k}`)
    }
  }
  return errors
}

const lineSchema = (doc: JsonObject, p: (typeof PATHS)[number], way: 'request' | 'response'): Json =>
  way === 'request'
    ? at(doc, 'paths', p, 'post', 'requestBody', 'content', JSONL, 'schema')
    : at(doc, 'paths', p, 'post', 'responses', '200', 'content', JSONL, 'schema')

describe('lines our parsers accept are valid by the document', () => {
  const A = 'C56A4180-65AA-42EC-A945-5FD21DEC0538'
  const B = '9b2e4c1a-7d3f-4e5a-8b6c-1d2e3f4a5b6c'
  const ann = { playerId: A, name: 'Ann', team: 'fish' }
  const bob = { playerId: B, name: 'Bob 🐹', team: 'rodents' }
  const move = { playerId: B, position: 8, team: 'rodents', teamCharacterId: 2 }
  const game = { sessionId: A, playerOne: ann, playerTwo: bob, currentPlayerId: B, moves: [{ ...move, position: 0, teamCharacterId: 0 }] }
  const won = { ...game, result: { result: { player: ann } } }
  const drawn = { ...game, result: { result: {} } }
  const open = { ...game, result: {} }

  const samples: { p: (typeof PATHS)[number]; way: 'request' | 'response'; parse: (l: string) => unknown; messages: unknown[] }[] = [
    { p: '/matchmaking', way: 'request', parse: parseLobbyLine, messages: [{}, { player: ann, status: 'connect' }, { player: bob, status: 'disconnect' }] },
    {
      p: '/matchmaking',
      way: 'response',
      parse: parseServerLobbyLine,
      messages: [
        { player: ann, status: 'ready' },
        { type: 'started', game },
        { type: 'finished', game: won },
        { type: 'finished', game: drawn },
        { type: 'started', game: open },
        { waitingPlayers: [ann], readyPlayers: [bob], completedSessions: [won, drawn] },
        { waitingPlayers: [], readyPlayers: [], completedSessions: [] },
      ],
    },
    { p: '/game', way: 'request', parse: parseGameLine, messages: [{}, move, { ...move, position: 0, teamCharacterId: 0, team: 'fish', playerId: A }] },
    { p: '/game', way: 'response', parse: parseServerGameLine, messages: [move] },
  ]

  for (const { p, way, parse, messages } of samples)
    it(`${p} ${way} lines`, () => {
      for (const message of messages) {
        const line = JSON.stringify({ message })
        expect(() => parse(line), line).not.toThrow()
        for (const [label, doc] of [
          ['ours', ours],
          ['seed', seed],
        ] as const)
          expect(validate(doc, lineSchema(doc, p, way), JSON.parse(line)), `${label}: ${line}`).toEqual([])
      }
    })

  it('the validator is not vacuous: lines both refuse', () => {
    const bad: [(typeof PATHS)[number], 'request' | 'response', unknown][] = [
      ['/game', 'response', { message: { ...move, position: 9 } }],
      ['/game', 'response', { message: { ...move, team: 'cats' } }],
      ['/game', 'response', { message: { ...move, playerId: 'nope' } }],
      ['/game', 'response', { message: { position: 1 } }],
      ['/matchmaking', 'response', { message: { type: 'begun', game } }],
      ['/matchmaking', 'response', { message: { player: { ...ann, name: 'x'.repeat(MAX_NAME_LENGTH + 1) }, status: 'ready' } }],
      ['/matchmaking', 'request', { message: 'hi' }],
      ['/matchmaking', 'request', {}],
    ]
    for (const [p, way, value] of bad) {
      expect(validate(ours, lineSchema(ours, p, way), value), JSON.stringify(value)).not.toEqual([])
      const parse = {
        '/game': { request: parseGameLine, response: parseServerGameLine },
        '/matchmaking': { request: parseLobbyLine, response: parseServerLobbyLine },
      }[p][way]
      expect(() => parse(JSON.stringify(value))).toThrow()
    }
  })
})
