/**
 * The gateway's HTTP server: the seed's two streaming operations, their WebSocket twins for
 * browsers, the OpenAPI documents and the browser UI.
 *
 * | Route | What |
 * |---|---|
 * | `POST /matchmaking`, `POST /game` | the seed's contract: `player_id`, `player_name`, `player_team` headers; JSONL both ways on one HTTP/1.1 request; `200` at once |
 * | `GET /ws/matchmaking`, `GET /ws/game` (WebSocket) | the same lines, one per text frame, the three values as query parameters (browsers cannot set WebSocket headers, nor stream a request body over HTTP/1.1) |
 * | `GET /openapi.json`, `GET /openapi-3.2.json` | the contract |
 * | `GET /`, `GET /app.js` | the browser UI |
 * | `GET /healthz` | 200 while serving |
 *
 * Node's `requestTimeout` (300 s by default) would cut every game at five minutes; it is off here,
 * and the streams' own heartbeat timeout takes its place.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { type WebSocket, WebSocketServer } from 'ws'
import { formatLine, type LobbyMessage, MAX_CLIENT_LINE_BYTES, type Player } from '../protocol/Messages.ts'
import { openApi31, openApi32, PlayerHeaders } from '../protocol/OpenApi.ts'
import { LineSplitter } from './LineSplitter.ts'
import { STREAM_DEFAULTS, type StreamKind, type StreamLinks, StreamSession, type StreamSettings } from './StreamSession.ts'

export interface GatewaySettings extends Partial<StreamSettings> {
  readonly host?: string
  /** 8080 by default, as the seed; 0 picks a free port. */
  readonly port?: number
  /** Bytes queued for a client that does not read before its stream is ended. */
  readonly maxBufferedBytes?: number
  /** How long lobby broadcasts are gathered before they are written (ms; 50: a status line may wait that long, a move never does). */
  readonly broadcastDelay?: number
  /** Static files of the browser UI, by path (`/` and `/app.js`); none: no UI. */
  readonly ui?: ReadonlyMap<string, { readonly type: string; readonly body: string | Buffer }>
}

/** A client error before the stream starts: status, stable code and what to do. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export class Gateway {
  readonly #server: Server
  readonly #wss: WebSocketServer
  readonly #links: StreamLinks
  readonly #settings: StreamSettings
  readonly #maxBuffered: number
  readonly #log: Logger
  readonly #ui: GatewaySettings['ui']
  readonly #sessions = new Set<StreamSession>()
  readonly #broadcastDelay: number
  #pending: { readonly line: string; readonly except: readonly string[] }[] = []
  #flushTimer: NodeJS.Timeout | undefined
  #openapi31: string | undefined
  #openapi32: string | undefined

  private constructor(server: Server, links: StreamLinks, settings: GatewaySettings, log: Logger) {
    this.#server = server
    this.#links = links
    this.#settings = { ...STREAM_DEFAULTS, ...settings }
    this.#maxBuffered = settings.maxBufferedBytes ?? 1 << 20
    this.#log = log
    this.#ui = settings.ui
    this.#broadcastDelay = settings.broadcastDelay ?? 50
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_LINE_BYTES })
  }

  /** Starts serving; resolves once listening. */
  static async start(links: StreamLinks, settings: GatewaySettings, log: Logger): Promise<Gateway> {
    const server = createServer({ requestTimeout: 0 })
    const gateway = new Gateway(server, links, settings, log)
    server.on('request', (req, res) => gateway.#request(req, res))
    server.on('upgrade', (req, socket, head) => gateway.#upgrade(req, socket as import('node:net').Socket, head))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(settings.port ?? 8080, settings.host ?? '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
    return gateway
  }

  /** Where it listens. */
  get address(): AddressInfo {
    return this.#server.address() as AddressInfo
  }

  /** Node's request timeout on this server: 0 (off), or it would cut every game at 300 s. */
  get requestTimeout(): number {
    return this.#server.requestTimeout
  }

  /** Open streams (both kinds, both transports). */
  get streams(): number {
    return this.#sessions.size
  }

  /**
   * Writes a lobby broadcast to every lobby stream here whose player is in the lobby, but the
   * `except` players'. Broadcasts are gathered for `broadcastDelay` ms and each stream gets its
   * share in one write: with N players every event is N writes, so this saves syscalls in
   * proportion to the event rate (a status line may wait that long; moves never do).
   */
  broadcast(message: LobbyMessage, except: readonly string[]): void {
    this.#pending.push({ line: formatLine(message), except })
    this.#flushTimer ??= setTimeout(() => this.#flushBroadcasts(), this.#broadcastDelay)
  }

  #flushBroadcasts(): void {
    this.#flushTimer = undefined
    const pending = this.#pending
    this.#pending = []
    for (const s of this.#sessions) {
      if (!s.inLobby) continue
      let text = ''
      for (const b of pending) if (!b.except.includes(s.playerKey)) text += b.line
      if (text) s.writeLine(text)
    }
  }

  /** Ends every stream and stops listening. */
  async close(): Promise<void> {
    clearTimeout(this.#flushTimer)
    for (const s of [...this.#sessions]) s.end('gateway stopping')
    for (const ws of this.#wss.clients) ws.terminate()
    this.#wss.close()
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    try {
      const path = (req.url ?? '/').split('?')[0]!
      if (req.method === 'POST' && (path === '/matchmaking' || path === '/game')) return this.#stream(path === '/game' ? 'game' : 'lobby', req, res)
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new RequestError(405, 'TTF_METHOD', `${req.method} ${path} is not served here.`)
      if (path === '/openapi.json') return json(res, 200, (this.#openapi31 ??= JSON.stringify(openApi31(this.#origin(req)))))
      if (path === '/openapi-3.2.json') return json(res, 200, (this.#openapi32 ??= JSON.stringify(openApi32(this.#origin(req)))))
      if (path === '/healthz') return json(res, 200, JSON.stringify({ ok: true, streams: this.#sessions.size }))
      const file = this.#ui?.get(path === '/' ? '/index.html' : path)
      if (file) {
        res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-cache' })
        return void res.end(file.body)
      }
      throw new RequestError(404, 'TTF_NOT_FOUND', `Nothing at ${path}: the API is POST /matchmaking and POST /game (see /openapi.json).`)
    } catch (e) {
      this.#refuse(res, e)
    }
  }

  #origin(req: IncomingMessage): string {
    return `http://${req.headers.host ?? 'localhost:8080'}`
  }

  /** A JSONL stream: headers checked, 200 sent at once, then lines both ways until either side ends. */
  #stream(kind: StreamKind, req: IncomingMessage, res: ServerResponse): void {
    const type = req.headers['content-type']
    if (type !== undefined && !/^application\/(jsonl|x-ndjson|json)\b/i.test(type))
      throw new RequestError(415, 'TTF_CONTENT_TYPE', `The request body is application/jsonl (one {"message": …} per line), not ${type}.`)
    const player = playerFrom((name) => header(req, name))
    res.writeHead(200, { 'content-type': 'application/jsonl', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    res.flushHeaders()
    req.socket.setNoDelay(true)
    const session = this.#open(kind, player, {
      write: (line) => {
        res.write(line)
        return res.writableLength <= this.#maxBuffered
      },
      end: () => {
        if (!res.writableEnded) res.end()
      },
    })
    const splitter = new LineSplitter(MAX_CLIENT_LINE_BYTES)
    const feed = (items: ReturnType<LineSplitter['push']>): void => {
      for (const item of items) {
        if ('line' in item) session.line(item.line)
        else session.tooLong(item.tooLong)
      }
    }
    req.on('data', (chunk: Buffer) => feed(splitter.push(chunk)))
    req.on('end', () => {
      feed(splitter.end())
      session.end('request body ended')
    })
    req.on('error', () => session.end('request failed'))
    res.on('close', () => session.end('connection closed'))
  }

  #upgrade(req: IncomingMessage, socket: import('node:net').Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://gateway')
    const kind: StreamKind | undefined = url.pathname === '/ws/matchmaking' ? 'lobby' : url.pathname === '/ws/game' ? 'game' : undefined
    let player: Player
    try {
      if (!kind) throw new RequestError(404, 'TTF_NOT_FOUND', `No WebSocket at ${url.pathname}: use /ws/matchmaking or /ws/game.`)
      player = playerFrom((name) => url.searchParams.get(name) ?? undefined)
    } catch (e) {
      const err = e instanceof RequestError ? e : new RequestError(400, 'TTF_BAD_REQUEST', 'Bad request.')
      socket.end(
        `HTTP/1.1 ${err.status} ${err.code}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: { code: err.code, message: err.message } })}`,
      )
      return
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#socket(kind!, player, ws))
  }

  #socket(kind: StreamKind, player: Player, ws: WebSocket): void {
    const session = this.#open(kind, player, {
      write: (line) => {
        // One line per text frame (a write may carry several gathered broadcast lines).
        for (const one of line.split('\n')) if (one) ws.send(one)
        return ws.bufferedAmount <= this.#maxBuffered
      },
      end: () => ws.close(1000),
    })
    ws.on('message', (data, isBinary) => {
      if (isBinary) return session.tooLong(0)
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8')
      for (const line of text.split('\n')) if (line.trim() !== '') session.line(line)
    })
    ws.on('close', () => session.end('socket closed'))
    ws.on('error', () => session.end('socket failed'))
  }

  #open(kind: StreamKind, player: Player, transport: { write(line: string): boolean; end(): void }): StreamSession {
    const session = new StreamSession(kind, player, transport, this.#links, this.#settings, this.#log, (why) => {
      this.#sessions.delete(session)
      this.#log.debug({ player: player.playerId, stream: kind, why }, 'stream ended')
    })
    this.#sessions.add(session)
    session.start()
    return session
  }

  #refuse(res: ServerResponse, e: unknown): void {
    const err = e instanceof RequestError ? e : new RequestError(500, 'TTF_INTERNAL', 'The gateway failed to handle this request.')
    if (!(e instanceof RequestError)) this.#log.error({ err: e }, 'request failed')
    if (res.headersSent) return void res.end()
    json(res, err.status, JSON.stringify({ error: { code: err.code, message: err.message } }))
  }
}

/** The player a stream is for, from its three values; RequestError (400) naming what is wrong. */
function playerFrom(get: (name: string) => string | undefined): Player {
  const parsed = PlayerHeaders.safeParse({ player_id: get('player_id'), player_name: get('player_name'), player_team: get('player_team') })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new RequestError(
      400,
      'TTF_BAD_PLAYER',
      `${String(issue.path[0])}: ${issue.message}. Send player_id (a UUID), player_name (1–64 characters) and player_team (fish or rodents).`,
    )
  }
  return { playerId: parsed.data.player_id, name: parsed.data.player_name, team: parsed.data.player_team }
}

/** A header's value; names arrive in UTF-8 from most clients, which Node reads as Latin-1. */
function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  const s = Array.isArray(v) ? v[0] : v
  if (s === undefined) return undefined
  const utf8 = Buffer.from(s, 'latin1').toString('utf8')
  return utf8.includes('\uFFFD') ? s : utf8
}

function json(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(body)
}
