/**
 * The management endpoint: a small HTTP server (node:http, no framework) that exposes a node's
 * cluster membership, liveness and readiness probes and Prometheus metrics, and accepts the two
 * operator commands `leave` and `down`.
 *
 * | Route                  | Answer                                                             |
 * | ---------------------- | ------------------------------------------------------------------ |
 * | `GET /cluster/members` | 200 membership as seen from this node (see {@link MembersResponse}) |
 * | `GET /dashboard`        | the live cluster dashboard (read-only; `/dashboard/state` is its JSON) |
 * | `GET /cluster/events`  | Server-Sent Events: a membership snapshot, then member, reachability and leader changes (ClusterEventStream) |
 * | `GET /health`          | 200 `{"status":"alive"}` while the system runs, then 503            |
 * | `GET /ready`           | 200 `{"status":"up"}` once this member is up, else 503 + its status |
 * | `GET /metrics`         | 200 Prometheus text exposition of `system.metrics.registry`        |
 * | `GET /receptionist`    | 200 `{ keys: [{ key, actors: [id…] }] }`, the receptionist as seen here |
 * | `POST /cluster/leave`  | 202, then leaves gracefully (bearer token required)                |
 * | `POST /cluster/down`   | `{"node":"host:port"}` → 200 / 404 (bearer token required)          |
 *
 * Errors are JSON `{ "error": message, "code": CODE }` with a stable {@link ManagementErrorCode}.
 * The server binds 127.0.0.1 unless told otherwise. The POST routes need the management token, its
 * own (never the cluster secret): they answer 403 `NO_TOKEN` while none is configured, 401 (with
 * `WWW-Authenticate: Bearer`) without the right `Authorization: Bearer <token>`, and 429 (with
 * `Retry-After`) to a source that sent wrong tokens, for a wait that doubles with each one (1 s, 2 s…
 * at most 60 s). Failed attempts are counted in `shoal_refused_total{reason="management-auth"}`
 * and logged once per source per 10 s, with counts.
 *
 * ```ts
 * const mgmt = await ManagementServer.start(system, { port: 8558, token: process.env.SHOAL_HTTP_TOKEN })
 * // curl -s localhost:8558/cluster/members
 * // curl -s -X POST -H "Authorization: Bearer $SHOAL_HTTP_TOKEN" -d '{"node":"10.0.0.7:7337"}' localhost:8558/cluster/down
 * await mgmt.close()
 * ```
 * @module
 */

import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ClusterMember, compareAddress, type MembershipStatus, memberAddress, type Reachability } from '../cluster/Member.ts'
import { ConfigError } from '../errors.ts'
import { metricsText } from '../observability/ProcessMetrics.ts'
import type { ClusterSystem } from '../system/ClusterSystem.ts'
import { LogAggregator } from '../util/LogAggregator.ts'
import { AuthThrottle, type AuthThrottleOptions } from './AuthThrottle.ts'
import { ClusterEventStream } from './ClusterEventStream.ts'
import { DASHBOARD_HTML, DASHBOARD_JS } from './DashboardPage.ts'
import { dashboardState } from './DashboardState.ts'

/** Options of {@link ManagementServer.start}. */
export interface ManagementServerOptions {
  /** Interface to bind. Default `127.0.0.1`: only local processes (probes, sidecars, the CLI) reach it. */
  readonly host?: string
  /** TCP port; 0 picks a free one (then read {@link ManagementServer.port}). */
  readonly port: number
  /**
   * Bearer token for the POST routes (`Authorization: Bearer <token>`): at least
   * {@link MIN_TOKEN_LENGTH} characters (128 bits as hex; `npx shoal secret` prints one), and not
   * the cluster secret (a leaked token should not let anyone join the cluster). Without one (or
   * with an empty one) the POST routes answer 403 `NO_TOKEN`; the GET routes never need it.
   */
  readonly token?: string | Buffer
  /** @deprecated The management token under its old name: use {@link token}. */
  readonly secret?: string | Buffer
  /** Backoff of sources that send wrong tokens. Default: 1 s after the first, doubling, at most 60 s; 10 000 sources tracked. */
  readonly authBackoff?: AuthThrottleOptions
  /**
   * What `POST /cluster/leave` does once it has answered 202. Default: leave the cluster
   * gracefully, then shut the system down. Failures are logged, not reported to the client.
   */
  readonly onLeave?: () => Promise<void>
}

/** One member in {@link MembersResponse}. */
export interface MemberJson {
  /** `host:port` of the member. */
  readonly node: string
  /** Incarnation uid of the member (a restarted process at the same address has a new one). */
  readonly uid: string
  /** `joining`, `up`, `leaving`, `exiting`, `down` or `removed`. */
  readonly status: MembershipStatus
  /** As seen from the answering node. */
  readonly reachability: Reachability
  /** Age: 1 for the first member ever up, 2 for the next…; 0 until up. */
  readonly upNumber: number
  /** Roles of the member (settings `cluster.roles`). */
  readonly roles: string[]
}

/** The body of `GET /cluster/members`. */
export interface MembersResponse {
  /** `host:port` of the answering node. */
  readonly self: string
  /** `host:port` of the leader as seen from the answering node, or null while there is none. */
  readonly leader: string | null
  /** Every member known here (removed ones stay listed for a while), sorted by host then port. */
  readonly members: MemberJson[]
}

/** The stable `code` of every error body the management server sends. */
export const ManagementErrorCode = {
  /** 400: the request body is not the JSON expected. */
  BadRequest: 'BAD_REQUEST',
  /** 401: missing or wrong `Authorization: Bearer` token. */
  Unauthorized: 'UNAUTHORIZED',
  /** 403: a POST route was called but the server has no management token configured. */
  NoToken: 'NO_TOKEN',
  /** 404: no such route, or no such member to down. */
  NotFound: 'NOT_FOUND',
  /** 405: known route, wrong method (see the `Allow` header). */
  MethodNotAllowed: 'METHOD_NOT_ALLOWED',
  /** 413: request body above 4 KiB. */
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** 429: this source sent wrong tokens; wait `Retry-After` seconds before the next attempt. */
  TooManyAttempts: 'TOO_MANY_ATTEMPTS',
  /** 503: a `/cluster/*` route on a system started without cluster membership. */
  NotClustered: 'NOT_CLUSTERED',
  /** 503: `GET /cluster/events` while the most event streams this node serves are open. */
  TooManyStreams: 'TOO_MANY_STREAMS',
  /** 500: the server failed to answer (logged on the node). */
  Internal: 'INTERNAL',
} as const
/** One of the {@link ManagementErrorCode} values. */
export type ManagementErrorCode = (typeof ManagementErrorCode)[keyof typeof ManagementErrorCode]

/** Largest request body accepted (POST /cluster/down), bytes. */
const MAX_BODY = 4 * 1024
/** Time allowed to send the request headers, ms. */
const HEADERS_TIMEOUT = 5_000
/** Time allowed to send the whole request, ms. */
const REQUEST_TIMEOUT = 10_000
/** Shortest management token, characters: 32 hex digits are 128 bits. */
export const MIN_TOKEN_LENGTH = 32
/** Failed authentications are logged once per source per window, then as a count, ms. */
const AUTH_LOG_WINDOW = 10_000
/** Sources whose failures are counted for the log at once (the rest share one line). */
const AUTH_LOG_SOURCES = 1_000
/** `host:port` or `[v6]:port`. */
const ADDRESS = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: ManagementErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void

/**
 * HTTP management endpoint of one {@link ClusterSystem}. Start with {@link ManagementServer.start};
 * stop with {@link ManagementServer.close} (shutting the system down does not close it: `/health`
 * then answers 503).
 */
export class ManagementServer {
  readonly #system: ClusterSystem
  readonly #server: Server
  readonly #tokenDigest: Buffer | undefined
  readonly #throttle: AuthThrottle
  readonly #authLog = new LogAggregator<{ from: string; outcome: AuthOutcome }>({
    windowMs: AUTH_LOG_WINDOW,
    maxKeys: AUTH_LOG_SOURCES,
    overflow: { from: 'other sources', outcome: 'wrong token' },
  })
  #authLogTimer: NodeJS.Timeout | undefined
  readonly #onLeave: () => Promise<void>
  readonly #routes: ReadonlyMap<string, ReadonlyMap<string, Handler>>
  #port = 0
  #closing: Promise<void> | undefined
  /** `GET /cluster/events` streams (at most 16 at once). */
  readonly #streams = new ClusterEventStream(16, memberJson)

  private constructor(system: ClusterSystem, options: ManagementServerOptions) {
    this.#system = system
    const token = tokenOf(options)
    this.#tokenDigest = token === undefined ? undefined : digest(token)
    this.#throttle = new AuthThrottle(options.authBackoff)
    this.#onLeave = options.onLeave ?? (() => system.cluster.leave().then(() => system.shutdown()))
    const get = (h: Handler): Map<string, Handler> =>
      new Map([
        ['GET', h],
        ['HEAD', h],
      ])
    this.#routes = new Map<string, Map<string, Handler>>([
      ['/cluster/members', get((_req, res) => this.#members(res))],
      ['/cluster/events', new Map([['GET', (_req, res) => this.#events(res)]])],
      ['/dashboard', get((_req, res) => sendPage(res, 'text/html; charset=utf-8', DASHBOARD_HTML))],
      ['/dashboard/app.js', get((_req, res) => sendPage(res, 'text/javascript; charset=utf-8', DASHBOARD_JS))],
      ['/dashboard/state', get(async (_req, res) => sendJson(res, 200, await dashboardState(this.#system)))],
      ['/health', get((_req, res) => this.#health(res))],
      ['/ready', get((_req, res) => this.#ready(res))],
      ['/metrics', get((_req, res) => this.#metrics(res))],
      ['/receptionist', get((_req, res) => sendJson(res, 200, { keys: this.#system.receptionist.entries() }))],
      ['/cluster/leave', new Map([['POST', (req, res) => this.#leave(req, res)]])],
      ['/cluster/down', new Map([['POST', (req, res) => this.#down(req, res)]])],
    ])
    // The timeouts are checked every connectionsCheckingInterval (default 30 s): check every second.
    this.#server = createServer({ headersTimeout: HEADERS_TIMEOUT, requestTimeout: REQUEST_TIMEOUT, connectionsCheckingInterval: 1_000 }, (req, res) => {
      void this.#handle(req, res)
    })
    this.#server.keepAliveTimeout = 5_000
  }

  /**
   * Starts the management server of `system` and resolves once it listens.
   * Rejects with `ConfigError` for an invalid port, a token shorter than {@link MIN_TOKEN_LENGTH},
   * or when the address cannot be bound.
   */
  static async start(system: ClusterSystem, options: ManagementServerOptions): Promise<ManagementServer> {
    const { port } = options
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`Management port ${port} is invalid: use 0..65535 (0 picks a free port).`)
    const token = tokenOf(options)
    if (token !== undefined && token.length < MIN_TOKEN_LENGTH) {
      throw new ConfigError(
        `The management token has ${token.length} characters: use at least ${MIN_TOKEN_LENGTH} random ones (128 bits), e.g. the output of \`npx shoal secret\`.`,
      )
    }
    const host = options.host ?? '127.0.0.1'
    const server = new ManagementServer(system, options)
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(new ConfigError(`Management server could not listen on ${host}:${port} (${e.code ?? e.message}): pick another port, or port 0 for a free one.`))
      }
      server.#server.once('error', onError)
      server.#server.listen(port, host, () => {
        server.#server.off('error', onError)
        resolve()
      })
    })
    server.#server.on('error', (e) => system.log.error({ err: e }, 'management server error'))
    server.#port = (server.#server.address() as AddressInfo).port
    system.log.debug(
      { management: `${host.includes(':') ? `[${host}]` : host}:${server.#port}`, token: server.#tokenDigest !== undefined },
      'management server listening',
    )
    return server
  }

  /** The port the server listens on (the one picked when started with port 0). */
  get port(): number {
    return this.#port
  }

  /**
   * Stops listening and closes every connection, idle or not. Resolves once closed; logs the counts
   * of failed authentications not yet logged. Idempotent.
   */
  close(): Promise<void> {
    return (this.#closing ??= new Promise<void>((resolve) => {
      clearTimeout(this.#authLogTimer)
      this.#logAuthCounts(true)
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    }))
  }

  // ── dispatch ───────────────────────────────────────────────────────────────

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?', 1)[0]!
      const methods = this.#routes.get(path)
      if (!methods)
        throw new HttpError(404, ManagementErrorCode.NotFound, `No route ${path}; try GET /cluster/members, /receptionist, /health, /ready or /metrics.`)
      const handler = methods.get(req.method ?? '')
      if (!handler) {
        const allow = [...methods.keys()].join(', ')
        throw new HttpError(405, ManagementErrorCode.MethodNotAllowed, `${req.method} is not allowed on ${path}; use ${allow}.`, { Allow: allow })
      }
      await handler(req, res)
    } catch (e) {
      if (e instanceof HttpError) {
        sendError(res, e)
      } else {
        this.#system.log.error({ err: e, method: req.method, url: req.url }, 'management request failed')
        sendError(res, new HttpError(500, ManagementErrorCode.Internal, 'Internal error; see the node log.'))
      }
    }
  }

  // ── routes ─────────────────────────────────────────────────────────────────

  #members(res: ServerResponse): void {
    this.#requireCluster()
    const { self, leader, members } = this.#system.cluster.membership
    const body: MembersResponse = {
      self: memberAddress(self),
      leader: leader ? memberAddress(leader) : null,
      members: [...members].sort((a, b) => compareAddress(a.node, b.node)).map(memberJson),
    }
    sendJson(res, 200, body)
  }

  #events(res: ServerResponse): void {
    this.#requireCluster()
    if (!this.#streams.accepts())
      throw new HttpError(
        503,
        ManagementErrorCode.TooManyStreams,
        `${this.#streams.open} event streams are open on this node already; close one, or ask another node.`,
      )
    this.#streams.serve(this.#system, res)
  }

  #health(res: ServerResponse): void {
    if (this.#system.running) sendJson(res, 200, { status: 'alive' })
    else sendJson(res, 503, { status: 'shutting-down' })
  }

  /** Up means ready; a system without cluster membership is ready while it runs. */
  #ready(res: ServerResponse): void {
    const system = this.#system
    const status = system.clustered ? system.cluster.status : system.running ? 'up' : 'shutting-down'
    if (status === 'up' && system.running) sendJson(res, 200, { status })
    else sendJson(res, 503, { status: status === 'up' ? 'shutting-down' : status })
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const registry = this.#system.metrics.registry
    const text = await metricsText(registry)
    res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' })
    res.end(text)
  }

  #leave(req: IncomingMessage, res: ServerResponse): void {
    this.#authorize(req)
    this.#requireCluster()
    sendJson(res, 202, { status: 'leaving' })
    this.#system.log.info({ from: req.socket.remoteAddress }, 'leave requested through the management endpoint')
    Promise.resolve()
      .then(() => this.#onLeave())
      .catch((e: unknown) => this.#system.log.error({ err: e }, 'leaving the cluster (management request) failed'))
  }

  async #down(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#authorize(req)
    this.#requireCluster()
    const node = parseDownBody(await readBody(req))
    if (!this.#system.cluster.down(node)) throw new HttpError(404, ManagementErrorCode.NotFound, `No member at ${node} that is not already down or removed.`)
    this.#system.log.info({ member: node, from: req.socket.remoteAddress }, 'member downed through the management endpoint')
    sendJson(res, 200, { downed: node })
  }

  // ── checks ─────────────────────────────────────────────────────────────────

  #requireCluster(): void {
    if (!this.#system.clustered) {
      throw new HttpError(
        503,
        ManagementErrorCode.NotClustered,
        'This system runs without cluster membership: start it with `cluster: {}` (and seeds or discovery) to use /cluster routes.',
      )
    }
  }

  /**
   * Throws 403 without a configured token, 429 while the source must wait after wrong tokens (the
   * token sent is not even checked), 401 without the right bearer token (a wrong one adds to the
   * source's wait).
   */
  #authorize(req: IncomingMessage): void {
    if (!this.#tokenDigest) {
      throw new HttpError(
        403,
        ManagementErrorCode.NoToken,
        `${req.method} ${(req.url ?? '').split('?', 1)[0]} needs a management token and this node has none: start it with SHOAL_HTTP_TOKEN or --http-token-file F (at least ${MIN_TOKEN_LENGTH} random characters, e.g. from \`npx shoal secret\`; not the cluster secret), or pass \`token\` to ManagementServer.start, then send "Authorization: Bearer <token>".`,
      )
    }
    const from = req.socket.remoteAddress ?? 'unknown'
    const now = performance.now()
    const wait = this.#throttle.retryAfter(from, now)
    if (wait > 0) {
      this.#authFailed(req, from, 'throttled', wait)
      throw new HttpError(429, ManagementErrorCode.TooManyAttempts, `Too many wrong tokens from ${from}: retry in ${retrySeconds(wait)} s.`, {
        'Retry-After': String(retrySeconds(wait)),
      })
    }
    const header = req.headers.authorization
    const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
    // Digests have equal lengths whatever was sent: the comparison leaks neither content nor length.
    if (match && timingSafeEqual(digest(Buffer.from(match[1]!)), this.#tokenDigest)) {
      this.#throttle.succeeded(from)
      return
    }
    const headers: Record<string, string> = { 'WWW-Authenticate': 'Bearer realm="shoal"' }
    // No bearer at all guesses nothing: no wait for it.
    if (header !== undefined) {
      const imposed = this.#throttle.failed(from, now)
      this.#authFailed(req, from, 'wrong token', imposed)
      headers['Retry-After'] = String(retrySeconds(imposed))
    }
    throw new HttpError(
      401,
      ManagementErrorCode.Unauthorized,
      'Missing or wrong "Authorization: Bearer <token>" (the management token, not the cluster secret).',
      headers,
    )
  }

  /** Counts a failed authentication; logs the first per source and outcome per window, the rest as counts. */
  #authFailed(req: IncomingMessage, from: string, outcome: AuthOutcome, waitMs: number): void {
    this.#system.metrics.refused.inc({ reason: outcome === 'throttled' ? 'management-throttled' : 'management-auth' })
    if (this.#authLog.record(`${from}|${outcome}`, { from, outcome }, performance.now())) {
      this.#system.log.warn(
        { from, outcome, route: `${req.method} ${(req.url ?? '').split('?', 1)[0]}`, retryAfterS: retrySeconds(waitMs) },
        outcome === 'throttled' ? 'management request refused: too many wrong tokens from this source' : 'management authentication failed: wrong token',
      )
    } else {
      this.#scheduleAuthLog()
    }
  }

  /** The counts are logged when their window ends: one timer at a time, not holding the process open. */
  #scheduleAuthLog(): void {
    this.#authLogTimer ??= setTimeout(() => {
      this.#authLogTimer = undefined
      this.#logAuthCounts(false)
    }, AUTH_LOG_WINDOW).unref()
  }

  /** Logs the counts of failed authentications whose window ended (every one if `all`). */
  #logAuthCounts(all: boolean): void {
    for (const s of this.#authLog.flush(performance.now(), all)) {
      const seconds = Math.max(1, Math.round((s.until - s.since) / 1000))
      this.#system.log.warn(
        { from: s.fields.from, outcome: s.fields.outcome, count: s.count, seconds },
        `management authentication failed ${s.count} more time${s.count === 1 ? '' : 's'} from ${s.fields.from} in ${seconds} s (${s.fields.outcome})`,
      )
    }
    if (!all && this.#authLog.pending && !this.#closing) this.#scheduleAuthLog()
  }
}

/** Why an authentication failed: a wrong (or malformed) bearer, or sent while the source must wait. */
type AuthOutcome = 'wrong token' | 'throttled'

/** The configured token (`token`, else the deprecated `secret`); undefined when none or empty. */
function tokenOf(options: ManagementServerOptions): Buffer | undefined {
  const raw = options.token ?? options.secret
  const token = raw === undefined ? undefined : Buffer.from(raw)
  return token === undefined || token.length === 0 ? undefined : token
}

/** A wait in whole seconds for `Retry-After`, at least 1. */
function retrySeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000))
}

function digest(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest()
}

function memberJson(m: ClusterMember): MemberJson {
  return { node: memberAddress(m), uid: m.node.uid, status: m.status, reachability: m.reachability, upNumber: m.upNumber, roles: [...m.roles] }
}

/** Reads at most {@link MAX_BODY} bytes; 413 beyond (without reading the rest). */
function readBody(req: IncomingMessage): Promise<string> {
  if (Number(req.headers['content-length']) > MAX_BODY) return Promise.reject(tooLarge())
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (): void => {
      req.off('data', onData).off('end', onEnd).off('error', onFail).off('close', onClose)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size <= MAX_BODY) return void chunks.push(chunk)
      done()
      req.pause()
      reject(tooLarge())
    }
    const onEnd = (): void => {
      done()
      resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const onFail = (e: Error): void => {
      done()
      reject(e instanceof HttpError ? e : new HttpError(400, ManagementErrorCode.BadRequest, `Could not read the request body: ${e.message}`))
    }
    const onClose = (): void => onFail(new HttpError(400, ManagementErrorCode.BadRequest, 'The request ended before its body was complete.'))
    req.on('data', onData).on('end', onEnd).on('error', onFail).on('close', onClose)
  })
}

function tooLarge(): HttpError {
  // Stop here and close the connection rather than drain a large body.
  return new HttpError(413, ManagementErrorCode.PayloadTooLarge, `Request body above ${MAX_BODY} bytes.`, { Connection: 'close' })
}

/** `{"node":"host:port"}` → `host:port`; 400 for anything else. */
function parseDownBody(text: string): string {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new HttpError(400, ManagementErrorCode.BadRequest, 'The body must be JSON: {"node":"host:port"}.')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, ManagementErrorCode.BadRequest, 'The body must be a JSON object: {"node":"host:port"}.')
  const node = (body as { node?: unknown }).node
  if (typeof node !== 'string') throw new HttpError(400, ManagementErrorCode.BadRequest, 'Missing "node": send {"node":"host:port"}.')
  const m = ADDRESS.exec(node)
  const port = m ? Number(m[1]) : NaN
  if (!m || !(port > 0 && port < 65536))
    throw new HttpError(400, ManagementErrorCode.BadRequest, `"node" must be host:port (e.g. 10.0.0.7:7337), got ${JSON.stringify(node.slice(0, 100))}.`)
  return node
}

/** The dashboard's page or script: same-origin only, never cached. */
function sendPage(res: ServerResponse, type: string, body: string): void {
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    'X-Content-Type-Options': 'nosniff',
  })
  res.end(body)
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  })
  res.end(text)
}

function sendError(res: ServerResponse, e: HttpError): void {
  if (res.destroyed || res.writableEnded) return
  if (res.headersSent) {
    res.destroy()
    return
  }
  sendJson(res, e.status, { error: e.message, code: e.code }, e.headers)
}
