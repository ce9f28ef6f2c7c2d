/**
 * Transport: the node's TCP (or TLS) listener and its associations, one per peer endpoint.
 *
 * Responsibilities: accept and dial connections, run handshakes, collapse simultaneous connects
 * into one association (the connection dialed by the lower node wins, the same decision on both
 * sides), replace a peer whose endpoint now runs a new incarnation, refuse tombstoned (down)
 * incarnations, and route established frames to the system. It knows nothing about actors.
 * @module
 */

import { randomBytes } from 'node:crypto'
import net, { type Server, type Socket } from 'node:net'
import tls from 'node:tls'
import type { Logger } from 'pino'
import { type ClusterNode, endpointKey, formatNode } from '../actor/ClusterNode.ts'
import { NodeUnreachableError, ProtocolError } from '../errors.ts'
import { type ConnectionDirection, handshakeFailedChannel, transportCloseChannel, transportConnectChannel } from '../observability/Channels.ts'
import { LogAggregator } from '../util/LogAggregator.ts'
import { HEADERS_MIN_MINOR } from '../wire/Envelope.ts'
import { FrameType } from '../wire/Frame.ts'
import { ClientHandshake, ServerHandshake, SIMULTANEOUS_CONNECT } from '../wire/Handshake.ts'
import { Association, type AssociationSettings, type Lane, type OutboundMessage } from './Association.ts'
import { Connection, type ConnectionEvents } from './Connection.ts'
import type { InboundBudget } from './InboundBudget.ts'
import { Tombstones } from './Tombstones.ts'

/** TLS settings: node:tls options for both server and client sides; mutual authentication is on. */
export interface TlsSettings extends tls.SecureContextOptions {
  /** Verify the peer's certificate against the node's endpoint host name or IP (default true). */
  readonly verifyHost?: boolean
}

export interface TransportSettings extends AssociationSettings {
  readonly host: string
  readonly port: number
  readonly secret: Buffer | undefined
  /** Cluster name, checked in the handshake both ways. */
  readonly clusterName: string
  readonly tls: TlsSettings | undefined
  readonly handshakeTimeoutMs: number
  /**
   * Frame bytes of inbound calls and one-way messages a peer may have outstanding on this node
   * (delivered, turn not finished) before its connection stops reading. Default: unbounded.
   */
  readonly maxInboundBytes?: number
  /** Protocol version override, for tests only. */
  readonly protocolMajor?: number
  /** Protocol minor override, for tests only (an older peer). */
  readonly protocolMinor?: number
}

/** What the transport reports to its owner (remoting). */
export interface TransportHandler {
  /**
   * A frame from an established connection, its body `buf[start, end)` (no view per frame: see
   * FrameSink); `inbound` is that connection's inbound byte budget.
   */
  frame(assoc: Association, type: number, buf: Buffer, start: number, end: number, inbound: InboundBudget): void
  /** A queued message will not be sent. */
  dropped(assoc: Association, msg: OutboundMessage, error: Error): void
  /** The established connection to `peer` was lost; `gone` if the peer said it shut down for good. */
  associationLost(assoc: Association, peer: ClusterNode, reason: string, gone: boolean): void
  /** A peer refused our handshake; `reason` is its explanation. */
  refusedByPeer?(reason: string): void
  /** A peer incarnation was replaced by a new one at the same endpoint. */
  incarnationReplaced(assoc: Association, old: ClusterNode, now: ClusterNode): void
  metrics: TransportMetrics
}

export interface TransportMetrics {
  bytes(direction: 'in' | 'out', n: number): void
  frames(direction: 'in' | 'out', n: number): void
  /** One batch written to a socket. */
  write(): void
  associations(n: number): void
  refused(reason: 'handshake' | 'protocol'): void
  /** A connection stopped reading: its peer's outstanding inbound work exceeded maxInboundBytes. */
  inboundPaused?(): void
}

/**
 * Whether a message for peer incarnation `uid` may carry envelope headers: the association is
 * established with exactly that incarnation, over a connection that negotiated protocol ≥ 1.2.
 * Decide when encoding the message. Safe for a message that waits in the queue: a reconnect either
 * reaches the same incarnation (the same process, the same version) or drops the messages for
 * `uid`. Not yet associated (first calls to a peer): false, send without headers.
 */
export function supportsHeaders(assoc: Association, uid: string): boolean {
  const conn = assoc.connection
  return conn !== undefined && conn.protocolMinor >= HEADERS_MIN_MINOR && assoc.peer?.uid === uid
}

const direction = (conn: Connection): ConnectionDirection => (conn.initiator === 'self' ? 'outbound' : 'inbound')
const remoteAddress = (conn: Connection): string => `${conn.socket.remoteAddress}:${conn.socket.remotePort}`

/** A dial not connected after this long is replaced by a fresh one when its peer's heartbeats stall, ms. */
const STALE_DIAL_MS = 1000

/** Inbound connections allowed in their handshake at once. */
const MAX_PENDING_HANDSHAKES = 256

/** An endpoint that stays unreachable is logged when first seen, then at most this often. */
export const UNREACHABLE_LOG_INTERVAL_MS = 30_000

/** Refused and failed connections are logged once per source and reason per window, then counted, ms. */
export const REFUSAL_LOG_WINDOW_MS = 10_000

/** Sources and reasons of refusals tracked at once for logging (the rest share one line). */
const MAX_REFUSAL_KEYS = 1_000

/** A refusal's log fields kept for its window's count line. */
interface Refusal {
  readonly source: string
  readonly reason: string
  /** What was refused, for the count line: "handshake failed". */
  readonly what: string
}

/** Unreachable endpoints remembered for rate-limited logging. */
const MAX_UNREACHABLE = 10_000

/** Plain words for the socket errors of a dial that never connected. */
const DIAL_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
}

/** `connect ECONNREFUSED 127.0.0.1:7351` → `connection refused`; other reasons as they are. */
function dialError(reason: string): string {
  const code = /\b(E[A-Z_]{3,})\b/.exec(reason)?.[1]
  return (code && DIAL_ERRORS[code]) ?? reason
}

/** An endpoint whose dials fail before connecting: when that was first and last logged. */
interface Unreachable {
  readonly since: number
  loggedAt: number
  attempts: number
}

export class Transport {
  self!: ClusterNode
  readonly #settings: TransportSettings
  readonly #handler: TransportHandler
  readonly #log: Logger
  readonly #associations = new Map<string, Association>()
  /** Node uids known gone for good (shut down, replaced, downed); their handshakes are refused. */
  readonly #tombstones = new Tombstones()
  readonly #sockets = new Set<Socket>()
  #server: Server | undefined
  #closing = false
  /** Inbound connections still in their handshake, and how to stop counting each. */
  #handshaking = 0
  readonly #handshakeDone = new WeakMap<Connection, () => void>()
  /** Outbound connections whose socket connected (the others failed to reach the endpoint at all). */
  readonly #connected = new WeakSet<Connection>()
  /** When each outbound connection's dial began (performance.now()). */
  readonly #dialStarted = new WeakMap<Connection, number>()
  /** What an endpoint is to this node, for logs ("seed", "clusterd"); "node" otherwise. */
  readonly #roles = new Map<string, string>()
  /** Endpoints dials cannot reach, by key: logged when first seen, then rate-limited. */
  readonly #unreachable = new Map<string, Unreachable>()
  /** The remote `address:port` of each connection, read when accepted or connected (it is gone once closed). */
  readonly #remote = new WeakMap<Connection, { readonly where: string; readonly source: string }>()
  /** Refusals and failed handshakes, aggregated per source and reason for the log (metrics count each). */
  readonly #refusals = new LogAggregator<Refusal>({
    windowMs: REFUSAL_LOG_WINDOW_MS,
    maxKeys: MAX_REFUSAL_KEYS,
    overflow: { source: 'other sources', reason: 'various', what: 'connections refused or failed' },
  })
  #refusalTimer: NodeJS.Timeout | undefined

  constructor(settings: TransportSettings, handler: TransportHandler, log: Logger) {
    this.#settings = settings
    this.#handler = handler
    this.#log = log
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  async listen(): Promise<number> {
    const s = this.#settings
    const server = s.tls
      ? tls.createServer({ ...s.tls, requestCert: true, rejectUnauthorized: true }, (socket) => this.#accept(socket))
      : net.createServer({ noDelay: true }, (socket) => this.#accept(socket))
    this.#server = server
    server.on('tlsClientError', (err, socket) => {
      this.#handler.metrics.refused('handshake')
      const source = socket.remoteAddress ?? 'unknown'
      this.#logRefusal({ source, reason: err.message, what: 'TLS connection refused' }, { peer: peerOf(socket), err: err.message }, 'refused a TLS connection')
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: s.host, port: s.port }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const addr = server.address()
    return typeof addr === 'object' && addr ? addr.port : s.port
  }

  isTombstoned(uid: string): boolean {
    return this.#tombstones.has(uid)
  }

  /** Marks a node incarnation as gone for good: its handshakes are refused and calls to it fail fast. */
  tombstone(node: ClusterNode): void {
    this.#tombstones.add(node.uid)
    const assoc = this.#associations.get(endpointKey(node.endpoint))
    if (assoc?.peer?.uid === node.uid && assoc.connection) assoc.connection.close('peer incarnation tombstoned')
  }

  /**
   * Names what an endpoint is to this node (`seed`, `clusterd`) in the log lines about reaching
   * it, e.g. "seed 10.0.0.5:7337 not reachable (connection refused); retrying".
   */
  describeEndpoint(host: string, port: number, role: string): void {
    this.#roles.set(endpointKey({ host, port }), role)
  }

  /** The association for an endpoint, created on demand. */
  association(host: string, port: number): Association {
    const key = endpointKey({ host, port })
    let assoc = this.#associations.get(key)
    if (!assoc) {
      assoc = new Association(key, host, port, this.#settings, {
        dropped: (msg, err) => this.#handler.dropped(assoc!, msg, err),
        bytesOut: (n, frames) => {
          this.#handler.metrics.bytes('out', n)
          this.#handler.metrics.frames('out', frames)
          this.#handler.metrics.write()
        },
        now: () => performance.now(),
        random: Math.random,
      })
      this.#associations.set(key, assoc)
    }
    return assoc
  }

  /**
   * Why the last connection attempt to `host:port` failed (refused, or the handshake refused), if
   * no connection has been established since; undefined otherwise or if it was never dialed.
   */
  connectProblem(host: string, port: number): string | undefined {
    return this.#associations.get(endpointKey({ host, port }))?.connectProblem
  }

  /**
   * Gives up on the connection to `host:port` and dials afresh on the next send, skipping any
   * reconnect backoff (a dial already in progress is left to finish). For a peer that stopped
   * answering heartbeats though SWIM sees it alive: its TCP connection may sit in retransmission
   * backoff for seconds after the network heals, while a new connection gets through at once.
   * What was in flight on the old connection fails as if the connection were lost. With
   * `keepConnection`, only the backoff is skipped (a connection made since is left alone).
   */
  replaceConnection(host: string, port: number, reason: string, keepConnection = false): void {
    const assoc = this.#associations.get(endpointKey({ host, port }))
    if (!assoc || this.#closing) return
    if (!keepConnection) assoc.connection?.fail(reason)
    // A dial whose TCP connect has not completed for a while is waiting on SYN retransmission
    // (1 s, 2 s, 4 s… after a loss): a fresh dial sends its SYN at once, so a link that comes back,
    // even briefly, is used.
    const dialing = assoc.dialing
    const started = dialing && this.#dialStarted.get(dialing)
    if (dialing && started !== undefined && !this.#connected.has(dialing) && performance.now() - started >= STALE_DIAL_MS)
      dialing.fail(`${reason}: dialing again`)
    assoc.retryNow()
  }

  /** Queues a message for a peer, dialing when needed. See {@link Association.enqueue} for errors. */
  send(assoc: Association, lane: Lane, msg: OutboundMessage): void {
    if (assoc.needsDial && !this.#closing) this.#dial(assoc)
    assoc.enqueue(lane, msg)
  }

  /** Open sockets, in any state (handshaking, established, closing). */
  get socketCount(): number {
    return this.#sockets.size
  }

  /** Outstanding inbound bytes per established association, by peer endpoint (`shoal_inbound_bytes`). */
  inboundBytes(): Array<[peer: string, bytes: number]> {
    const out: Array<[string, number]> = []
    for (const a of this.#associations.values()) if (a.state === 'associated' && a.connection) out.push([a.key, a.connection.inbound.bytes])
    return out
  }

  get associationCount(): number {
    let n = 0
    for (const a of this.#associations.values()) if (a.state === 'associated') n++
    return n
  }

  #dial(assoc: Association): void {
    assoc.state = 'connecting'
    try {
      this.#connect(assoc)
    } catch (e) {
      // net.connect throws synchronously for a bad port or host: fail like a refused connection.
      assoc.dialing = undefined
      assoc.connectFailed((e as Error).message)
    }
  }

  #connect(assoc: Association): void {
    const s = this.#settings
    const socket = s.tls
      ? tls.connect({
          ...s.tls,
          host: assoc.host,
          port: assoc.port,
          rejectUnauthorized: true,
          ...(s.tls.verifyHost === false ? { checkServerIdentity: () => undefined } : {}),
        })
      : net.connect({ host: assoc.host, port: assoc.port, noDelay: true })
    this.#track(socket)
    const handshake = new ClientHandshake(this.#handshakeConfig(), { host: assoc.host, port: assoc.port })
    const conn = new Connection(socket, 'self', handshake, s.maxFrameSize, s.handshakeTimeoutMs, this.#events(), s.maxInboundBytes)
    assoc.dialing = conn
    this.#dialStarted.set(conn, performance.now())
    socket.once(s.tls ? 'secureConnect' : 'connect', () => {
      this.#connected.add(conn)
      this.#remote.set(conn, { where: peerOf(socket), source: assoc.key })
      conn.startClient()
    })
  }

  #dialingAssociation(conn: Connection): Association | undefined {
    for (const a of this.#associations.values()) if (a.dialing === conn) return a
    return undefined
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy()
      return
    }
    if (this.#handshaking >= MAX_PENDING_HANDSHAKES) {
      // Unauthenticated connections cost memory and a timer each; past the cap, refuse at once.
      this.#handler.metrics.refused('handshake')
      this.#logRefusal(
        { source: socket.remoteAddress ?? 'unknown', reason: 'too many handshakes in progress', what: 'connection refused' },
        { peer: peerOf(socket), pending: this.#handshaking },
        'refused a connection: too many handshakes in progress',
      )
      socket.destroy()
      return
    }
    this.#handshaking++
    let counted = true
    const release = (): void => {
      if (counted) this.#handshaking--
      counted = false
    }
    socket.once('close', release)
    this.#track(socket)
    const handshake = new ServerHandshake({ ...this.#handshakeConfig(), admit: (peer) => this.#admit(peer) })
    const s = this.#settings
    const conn = new Connection(socket, 'peer', handshake, s.maxFrameSize, s.handshakeTimeoutMs, this.#events(), s.maxInboundBytes)
    this.#remote.set(conn, { where: peerOf(socket), source: socket.remoteAddress ?? 'unknown' })
    this.#handshakeDone.set(conn, release)
  }

  #handshakeConfig() {
    return {
      self: this.self,
      clusterName: this.#settings.clusterName,
      secret: this.#settings.secret,
      random: randomBytes,
      major: this.#settings.protocolMajor,
      minor: this.#settings.protocolMinor,
    }
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  /** Lower node (by endpoint, then uid) wins ties: both sides compute the same answer. */
  #selfWins(peer: ClusterNode): boolean {
    const me = `${endpointKey(this.self.endpoint)}|${this.self.uid}`
    const them = `${endpointKey(peer.endpoint)}|${peer.uid}`
    return me < them
  }

  #admit(peer: ClusterNode): string | undefined {
    if (this.#closing) return 'node is shutting down'
    if (this.#tombstones.has(peer.uid)) return `node ${formatNode(peer)} is down (tombstoned) and may not rejoin; restart it to get a new incarnation`
    if (peer.uid === this.self.uid) return 'connection to self'
    const assoc = this.#associations.get(endpointKey(peer.endpoint))
    if (!assoc || (assoc.peer && assoc.peer.uid !== peer.uid)) return undefined
    const simultaneous = assoc.state === 'connecting' || (assoc.connection?.open === true && assoc.connection.initiator === 'self')
    if (simultaneous && this.#selfWins(peer)) return `${SIMULTANEOUS_CONNECT}: keeping the connection dialed by the lower node`
    return undefined
  }

  #events(): ConnectionEvents {
    return {
      established: (conn, peer) => this.#established(conn, peer),
      handshakeFailed: (conn, reason, byPeer) => this.#handshakeFailed(conn, reason, byPeer),
      frame: (conn, type, buf, start, end) => this.#frame(conn, type, buf, start, end),
      violation: (conn, reason) => this.#violation(conn, new ProtocolError(reason)),
      closed: (conn, reason) => this.#closed(conn, reason),
      bytesIn: (n) => this.#handler.metrics.bytes('in', n),
      inboundPaused: (conn) => {
        this.#handler.metrics.inboundPaused?.()
        this.#log.debug(
          { peer: conn.peer && formatNode(conn.peer), bytes: conn.inbound.bytes, limit: conn.inbound.limit },
          'inbound work over maxInboundBytes: reading paused',
        )
      },
    }
  }

  #established(conn: Connection, peer: ClusterNode): void {
    this.#handshakeDone.get(conn)?.()
    const assoc = this.association(peer.endpoint.host, peer.endpoint.port)
    if (conn.initiator === 'self' && assoc.dialing !== conn) {
      const dialed = this.#dialingAssociation(conn)
      if (dialed && dialed !== assoc) {
        // Dialed as `localhost:7337`, the node calls itself `127.0.0.1:7337`: one association per
        // node pair needs one name, and the node's own name is the one its actor ids carry.
        dialed.dialing = undefined
        const reason = `${dialed.key} answered as ${formatNode(peer)}; address that node as ${endpointKey(peer.endpoint)} (the endpoint in its actor ids)`
        this.#log.warn({ dialed: dialed.key, peer: formatNode(peer) }, 'node answered under another address')
        dialed.connectFailed(reason)
        conn.close(reason)
        return
      }
      conn.close('superseded by an inbound connection')
      return
    }
    if (assoc.dialing && assoc.dialing !== conn) assoc.dialing.close('superseded by an inbound connection')
    assoc.dialing = undefined
    this.#reachable(assoc.key)
    const old = assoc.peer
    const oldConn = assoc.connection
    if (oldConn && oldConn !== conn) oldConn.close('superseded by a newer connection')
    if (old && old.uid !== peer.uid) {
      this.#tombstones.add(old.uid)
      this.#log.info({ old: formatNode(old), now: formatNode(peer) }, 'peer restarted with a new incarnation; the old one is gone')
      this.#handler.incarnationReplaced(assoc, old, peer)
    }
    // The replaced connection's own close event finds it no longer the association's: report it here.
    if (oldConn?.peer && oldConn !== conn && transportCloseChannel.hasSubscribers) {
      const gone = this.#tombstones.has(oldConn.peer.uid)
      transportCloseChannel.publish({ self: this.self, peer: oldConn.peer, direction: direction(oldConn), reason: 'superseded by a newer connection', gone })
    }
    // Calls written on the replaced connection may never arrive (it can sit in retransmission
    // while the new one gets through): they fail now as if the connection were lost, instead of
    // waiting out their timeout. Its own close event will find it no longer the association's.
    if (oldConn && oldConn !== conn && oldConn.peer?.uid === peer.uid) this.#handler.associationLost(assoc, peer, 'superseded by a newer connection', false)
    conn.association = assoc
    assoc.established(conn, peer)
    this.#handler.metrics.associations(this.associationCount)
    this.#log.debug({ peer: formatNode(peer), initiator: conn.initiator }, 'association established')
    if (transportConnectChannel.hasSubscribers) {
      transportConnectChannel.publish({
        self: this.self,
        peer,
        direction: direction(conn),
        remoteAddress: remoteAddress(conn),
        protocolMinor: conn.protocolMinor,
      })
    }
  }

  #handshakeFailed(conn: Connection, reason: string, byPeer: boolean): void {
    this.#handshakeDone.get(conn)?.()
    const collapsed = reason.startsWith(SIMULTANEOUS_CONNECT)
    // A dial that never connected did not reach the endpoint: not a handshake, and not refused by anyone.
    const unreached = conn.initiator === 'self' && !this.#connected.has(conn) && !byPeer
    if (!byPeer && !collapsed && !unreached) this.#handler.metrics.refused('handshake')
    // Read when accepted or connected: a closed socket no longer knows its remote address.
    const remote = this.#remote.get(conn)
    const where = remote?.where ?? this.#dialingAssociation(conn)?.key ?? 'unknown'
    if (collapsed) this.#log.debug({ peer: where, reason }, 'handshake collapsed')
    else if (unreached) this.#unreached(this.#dialingAssociation(conn), reason)
    else
      this.#logRefusal(
        { source: remote?.source ?? where, reason, what: 'handshake failed' },
        { peer: where, reason, refusedBy: byPeer ? 'peer' : 'this node' },
        'handshake failed',
      )
    if (byPeer && !collapsed) this.#handler.refusedByPeer?.(reason)
    if (!collapsed && handshakeFailedChannel.hasSubscribers) {
      // A dial that never connected has no remote address yet: name the endpoint dialed.
      handshakeFailedChannel.publish({ self: this.self, direction: direction(conn), remoteAddress: where, reason, byPeer })
    }
    if (conn.initiator !== 'self') return
    const assoc = this.#dialingAssociation(conn)
    if (!assoc) return
    assoc.dialing = undefined
    // A collapsed simultaneous connect is not a failure: the peer's connection is (or will be) ours.
    // If it never arrives (the peer's own dial failed), dial again rather than leave messages waiting.
    if (collapsed && byPeer) {
      if (assoc.state === 'connecting') assoc.state = 'idle'
      setTimeout(() => {
        if (assoc.state === 'idle' && assoc.hasQueued && !this.#closing) this.#dial(assoc)
      }, this.#settings.handshakeTimeoutMs).unref()
      return
    }
    if (assoc.state !== 'associated') assoc.connectFailed(reason)
  }

  /**
   * A dial of `assoc` failed before connecting. Logged the first time, then at most every
   * {@link UNREACHABLE_LOG_INTERVAL_MS} (each attempt at debug level), not once per retry.
   */
  #unreached(assoc: Association | undefined, reason: string): void {
    if (!assoc) return
    const now = performance.now()
    const what = `${this.#roles.get(assoc.key) ?? 'node'} ${assoc.key}`
    const why = dialError(reason)
    let u = this.#unreachable.get(assoc.key)
    this.#log.debug({ endpoint: assoc.key, reason }, 'dial failed')
    if (!u) {
      u = { since: now, loggedAt: now, attempts: 1 }
      // Bounded: past the cap the oldest is forgotten (and would be logged again, once).
      if (this.#unreachable.size >= MAX_UNREACHABLE) this.#unreachable.delete(this.#unreachable.keys().next().value!)
      this.#unreachable.set(assoc.key, u)
      this.#log.warn({ endpoint: assoc.key, reason: why }, `${what} not reachable (${why}); retrying`)
      return
    }
    u.attempts++
    if (now - u.loggedAt < UNREACHABLE_LOG_INTERVAL_MS) return
    u.loggedAt = now
    const seconds = Math.round((now - u.since) / 1000)
    this.#log.warn(
      { endpoint: assoc.key, reason: why, attempts: u.attempts, seconds },
      `${what} still not reachable (${why}) after ${u.attempts} attempts in ${seconds} s; retrying`,
    )
  }

  /**
   * Logs a refused connection or failed handshake: the first per source and reason in a window
   * with its detail, the others as one count line when the window ends (metrics count each).
   */
  #logRefusal(refusal: Refusal, fields: Record<string, unknown>, msg: string): void {
    if (this.#refusals.record(`${refusal.source}|${refusal.what}|${refusal.reason}`, refusal, performance.now())) {
      this.#log.warn(fields, msg)
      return
    }
    this.#refusalTimer ??= setTimeout(() => {
      this.#refusalTimer = undefined
      this.#logRefusalCounts(false)
    }, REFUSAL_LOG_WINDOW_MS).unref()
  }

  /** Logs the counts of refusals whose window ended (all of them if `all`, on close). */
  #logRefusalCounts(all: boolean): void {
    for (const { fields: r, count, since, until } of this.#refusals.flush(performance.now(), all)) {
      const seconds = Math.max(1, Math.round((until - since) / 1000))
      this.#log.warn({ source: r.source, reason: r.reason, count, seconds }, `${r.what}: ${count} more from ${r.source} in ${seconds} s (${r.reason})`)
    }
    if (!all && this.#refusals.pending) {
      this.#refusalTimer ??= setTimeout(() => {
        this.#refusalTimer = undefined
        this.#logRefusalCounts(false)
      }, REFUSAL_LOG_WINDOW_MS).unref()
    }
  }

  /** A connection to `key` was established: say so once if it had been logged unreachable. */
  #reachable(key: string): void {
    const u = this.#unreachable.get(key)
    if (!u) return
    this.#unreachable.delete(key)
    const seconds = Math.round((performance.now() - u.since) / 1000)
    this.#log.info({ endpoint: key, attempts: u.attempts, seconds }, `${this.#roles.get(key) ?? 'node'} ${key} reachable after ${u.attempts} failed attempts`)
  }

  #frame(conn: Connection, type: number, buf: Buffer, start: number, end: number): void {
    this.#handler.metrics.frames('in', 1)
    const peer = conn.peer!
    const assoc = conn.association!
    if (type === FrameType.Goodbye) {
      // Act now rather than on the socket's close event: calls made meanwhile must already fail fast.
      this.#tombstones.add(peer.uid)
      conn.close('peer said goodbye')
      this.#closed(conn, 'peer shut down')
      return
    }
    if (type >= FrameType.Hello) return this.#violation(conn, new ProtocolError(`handshake frame ${type} after the handshake`))
    try {
      if (type === FrameType.Fragment) {
        const inner = conn.reassemble(buf.subarray(start, end), this.#settings.maxFrameSize)
        if (inner) {
          if (inner.type === FrameType.Fragment || inner.type >= FrameType.Goodbye) throw new ProtocolError(`frame type ${inner.type} cannot be fragmented`)
          this.#handler.frame(assoc, inner.type, inner.body, 0, inner.body.length, conn.inbound)
        }
        return
      }
      this.#handler.frame(assoc, type, buf, start, end, conn.inbound)
    } catch (e) {
      this.#violation(conn, e as Error)
    }
  }

  #violation(conn: Connection, e: Error): void {
    this.#handler.metrics.refused('protocol')
    this.#log.warn({ peer: conn.peer && formatNode(conn.peer), reason: e.message }, 'protocol violation: closing the association')
    conn.fail(`protocol violation: ${e.message}`)
  }

  #closed(conn: Connection, reason: string | undefined): void {
    const peer = conn.peer
    if (!peer) return
    const assoc = this.#associations.get(endpointKey(peer.endpoint))
    if (!assoc || assoc.connection !== conn) return
    assoc.lost()
    this.#handler.metrics.associations(this.associationCount)
    const gone = this.#tombstones.has(peer.uid)
    // Unsent messages were meant for the lost connection's peer; failing them now keeps callers' view
    // consistent with the calls that were in flight.
    assoc.dropAll(new NodeUnreachableError(`Connection to ${formatNode(peer)} was lost (${reason ?? 'closed'}) before the message was sent.`))
    if (transportCloseChannel.hasSubscribers)
      transportCloseChannel.publish({ self: this.self, peer, direction: direction(conn), reason: reason ?? 'connection closed', gone })
    this.#handler.associationLost(assoc, peer, reason ?? 'connection closed', gone)
  }

  /** Says goodbye to every peer, closes the listener and all sockets; resolves when all are closed. */
  async close(goodbye: string): Promise<void> {
    this.#closing = true
    for (const assoc of this.#associations.values()) {
      assoc.dialing?.fail('node is shutting down')
      assoc.connection?.close('node is shutting down', goodbye)
    }
    const serverClosed = new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()))
    const socketsClosed = Promise.all(
      [...this.#sockets].map((s) => new Promise<void>((resolve) => (s.destroyed && s.closed ? resolve() : s.once('close', () => resolve())))),
    )
    const forced = setTimeout(() => {
      for (const s of this.#sockets) s.destroy()
    }, 3000)
    await Promise.all([serverClosed, socketsClosed])
    clearTimeout(forced)
    clearTimeout(this.#refusalTimer)
    this.#refusalTimer = undefined
    this.#logRefusalCounts(true)
  }
}

/** `address:port` of the remote end (`[v6]:port`), read while the socket is open. */
function peerOf(socket: Socket): string {
  return socket.remoteAddress === undefined ? 'unknown' : endpointKey({ host: socket.remoteAddress, port: socket.remotePort ?? 0 })
}
