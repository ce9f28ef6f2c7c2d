/**
 * The seed's wire contract (seed-system.md §5.2): every line of `/matchmaking` and `/game`, both
 * ways, is `{"message": <payload>}`. These zod schemas validate every line that arrives and generate
 * the OpenAPI document (OpenApi.ts), so the document cannot drift from what is enforced.
 *
 * Payloads are told apart by their required keys, not by trying the alternatives in order (the
 * seed's `oneOf` has no discriminator, and a heartbeat `{}` matches any object: G28).
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi'
import { z } from 'zod'

extendZodWithOpenApi(z)

/** Longest line a client may send, in bytes (its largest honest line, a status update, is ~200 B). */
export const MAX_CLIENT_LINE_BYTES = 4096
/** Longest player name, in characters. */
export const MAX_NAME_LENGTH = 64

export const Team = z.enum(['fish', 'rodents']).openapi('Team')
export type Team = z.infer<typeof Team>

const Uuid = z.uuid()

export const Player = z
  .object({
    playerId: Uuid,
    name: z.string().min(1).max(MAX_NAME_LENGTH),
    team: Team,
  })
  .openapi('Player')
export type Player = z.infer<typeof Player>

export const PlayerStatusUpdate = z
  .object({
    player: Player,
    status: z.enum(['connect', 'ready', 'disconnect']),
  })
  .openapi('PlayerStatusUpdate')
export type PlayerStatusUpdate = z.infer<typeof PlayerStatusUpdate>

export const GameMove = z
  .object({
    playerId: Uuid,
    position: z.number().int().min(0).max(8),
    team: Team,
    teamCharacterId: z.number().int().min(0).max(2),
  })
  .openapi('GameMove')
export type GameMove = z.infer<typeof GameMove>

export const Win = z.object({ player: Player }).openapi('Win')
export const Draw = z.strictObject({}).openapi('Draw')
export const GameResult = z.object({ result: z.union([Win, Draw]).optional() }).openapi('GameResult')
export type GameResult = { result?: { player: Player } | Record<string, never> }

export const GameState = z
  .object({
    sessionId: Uuid,
    playerOne: Player,
    playerTwo: Player,
    result: GameResult.optional(),
    currentPlayerId: Uuid,
    moves: z.array(GameMove).max(9),
  })
  .openapi('GameState')
export interface GameState {
  sessionId: string
  playerOne: Player
  playerTwo: Player
  result?: GameResult
  currentPlayerId: string
  moves: GameMove[]
}

export const SessionStatusUpdate = z
  .object({
    type: z.enum(['started', 'finished']),
    game: GameState,
  })
  .openapi('SessionStatusUpdate')
export type SessionStatusUpdate = { type: 'started' | 'finished'; game: GameState }

export const LobbyState = z
  .object({
    waitingPlayers: z.array(Player),
    readyPlayers: z.array(Player),
    completedSessions: z.array(GameState),
  })
  .openapi('LobbyState')
export type LobbyState = { waitingPlayers: Player[]; readyPlayers: Player[]; completedSessions: GameState[] }

export const Heartbeat = z.strictObject({}).openapi('Heartbeat')
export type Heartbeat = Record<string, never>

// The four line wrappers, as documented (`oneOf`, in the seed's order). Incoming lines are parsed by
// `parse*Line` below, which picks the one alternative by its keys first.
export const PlayerLobbyMessage = z.object({ message: z.union([PlayerStatusUpdate, Heartbeat]) }).openapi('PlayerLobbyMessage')
export const LobbyMessage = z.object({ message: z.union([PlayerStatusUpdate, SessionStatusUpdate, LobbyState]) }).openapi('LobbyMessage')
export const PlayerSessionMessage = z.object({ message: z.union([GameMove, Heartbeat]) }).openapi('PlayerSessionMessage')
export const SessionMessage = z.object({ message: z.union([GameMove]) }).openapi('SessionMessage')

export type LobbyMessage = PlayerStatusUpdate | SessionStatusUpdate | LobbyState
export type SessionMessage = GameMove

/** What a client sent on `/matchmaking`. */
export type ClientLobbyLine = { kind: 'status'; update: PlayerStatusUpdate } | { kind: 'heartbeat' }
/** What a client sent on `/game`. */
export type ClientGameLine = { kind: 'move'; move: GameMove } | { kind: 'heartbeat' }

/** A line that is not valid JSON, not `{"message": …}`, or whose payload fails its schema. */
export class LineError extends Error {
  readonly code = 'TTF_BAD_LINE'
  override readonly name = 'LineError'
}

/** Parses one `/matchmaking` line from a client; throws LineError with what is wrong. */
export function parseLobbyLine(line: string): ClientLobbyLine {
  const message = messageOf(line)
  if (isEmpty(message)) return { kind: 'heartbeat' }
  if ('status' in message) return { kind: 'status', update: check(PlayerStatusUpdate, message, 'PlayerStatusUpdate') }
  throw new LineError('A /matchmaking line carries a PlayerStatusUpdate ({"player":…,"status":…}) or a heartbeat ({}).')
}

/** Parses one `/game` line from a client; throws LineError with what is wrong. */
export function parseGameLine(line: string): ClientGameLine {
  const message = messageOf(line)
  if (isEmpty(message)) return { kind: 'heartbeat' }
  if ('position' in message) return { kind: 'move', move: check(GameMove, message, 'GameMove') }
  throw new LineError('A /game line carries a GameMove ({"playerId":…,"position":…,"team":…,"teamCharacterId":…}) or a heartbeat ({}).')
}

/**
 * Parses one line the server sent on `/matchmaking` (for clients and tests): by its keys, `status`
 * ⇒ PlayerStatusUpdate, `type` ⇒ SessionStatusUpdate, `waitingPlayers` ⇒ LobbyState.
 */
export function parseServerLobbyLine(
  line: string,
): { kind: 'status'; update: PlayerStatusUpdate } | { kind: 'session'; update: SessionStatusUpdate } | { kind: 'lobby'; state: LobbyState } {
  const message = messageOf(line)
  if ('status' in message) return { kind: 'status', update: check(PlayerStatusUpdate, message, 'PlayerStatusUpdate') }
  if ('type' in message) return { kind: 'session', update: check(SessionStatusUpdate, message, 'SessionStatusUpdate') as SessionStatusUpdate }
  if ('waitingPlayers' in message) return { kind: 'lobby', state: check(LobbyState, message, 'LobbyState') as LobbyState }
  throw new LineError('A /matchmaking server line carries a PlayerStatusUpdate, a SessionStatusUpdate or a LobbyState.')
}

/** Parses one line the server sent on `/game` (for clients and tests). */
export function parseServerGameLine(line: string): GameMove {
  return check(GameMove, messageOf(line), 'GameMove')
}

/** One line: `{"message":…}` and a newline. */
export function formatLine(message: LobbyMessage | SessionMessage | Heartbeat): string {
  return `${JSON.stringify({ message })}\n`
}

function messageOf(line: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw new LineError('A line must be one JSON object: {"message": …}.')
  }
  if (!isObject(value) || !('message' in value)) throw new LineError('A line must be an object with a "message" key: {"message": …}.')
  const message = value.message
  if (!isObject(message)) throw new LineError('"message" must be an object.')
  return message
}

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  throw new LineError(`Invalid ${what}: ${issue.path.join('.') || '(root)'}: ${issue.message}.`)
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isEmpty = (v: Record<string, unknown>): boolean => {
  for (const _ in v) return false
  return true
}
