/**
 * The OpenAPI documents served at `GET /openapi.json` (3.1, the seed's document: same operations,
 * headers and schemas) and `GET /openapi-3.2.json` (the same with `itemSchema`, OpenAPI 3.2's way of
 * saying "each line of this stream is one of these"), generated from the schemas in Messages.ts.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi'
import { z } from 'zod'
import { LobbyMessage, MAX_NAME_LENGTH, PlayerLobbyMessage, PlayerSessionMessage, SessionMessage, Team } from './Messages.ts'

/** The seed's three request headers (player_team is validated as a Team, which the seed's handler also requires). */
export const PlayerHeaders = z.object({
  player_id: z.uuid(),
  player_name: z.string().min(1).max(MAX_NAME_LENGTH),
  player_team: Team,
})

type Document = ReturnType<OpenApiGeneratorV31['generateDocument']>

/** The OpenAPI 3.1 document of the seed's contract. */
export function openApi31(serverUrl = 'http://localhost:8080'): Document {
  const registry = new OpenAPIRegistry()
  const operation = (path: '/matchmaking' | '/game', operationId: string, summary: string, request: z.ZodType, response: z.ZodType, description: string) =>
    registry.registerPath({
      method: 'post',
      path,
      operationId,
      summary,
      request: { headers: PlayerHeaders, body: { required: true, content: { 'application/jsonl': { schema: request } } } },
      responses: { 200: { description, content: { 'application/jsonl': { schema: response } } } },
    })
  operation('/matchmaking', 'connectToLobby', 'Subscribe to lobby updates', PlayerLobbyMessage, LobbyMessage, 'A stream of lobby updates')
  operation('/game', 'joinGameSession', 'Subscribe to game session updates', PlayerSessionMessage, SessionMessage, 'A stream of session updates')
  return new OpenApiGeneratorV31(registry.definitions, { unionPreferredType: 'oneOf' }).generateDocument({
    openapi: '3.1.0',
    info: { title: 'TicTacToe API', version: '1.0.0' },
    servers: [{ url: serverUrl }],
  })
}

/** The same document as OpenAPI 3.2: each stream's line schema under `itemSchema`. */
export function openApi32(serverUrl?: string): Record<string, unknown> {
  const doc = structuredClone(openApi31(serverUrl)) as unknown as { openapi: string; paths: Record<string, Record<string, OperationShape>> }
  doc.openapi = '3.2.0'
  for (const item of Object.values(doc.paths))
    for (const op of Object.values(item)) {
      toItemSchema(op.requestBody?.content)
      for (const r of Object.values(op.responses ?? {})) toItemSchema(r.content)
    }
  return doc
}

interface OperationShape {
  requestBody?: { content?: Record<string, { schema?: unknown; itemSchema?: unknown }> }
  responses?: Record<string, { content?: Record<string, { schema?: unknown; itemSchema?: unknown }> }>
}

function toItemSchema(content: Record<string, { schema?: unknown; itemSchema?: unknown }> | undefined): void {
  const media = content?.['application/jsonl']
  if (!media || media.schema === undefined) return
  media.itemSchema = media.schema
  delete media.schema
}
