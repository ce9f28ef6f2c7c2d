/**
 * The UDP shell: drives a {@link SwimInstance} with real datagrams, timers and a stream link, and
 * tells subscribers about membership changes.
 *
 * Use it on its own (`SwimMember.start({ port, seeds, secret })`) or let a `ClusterSystem` start
 * one on its port (`ClusterSystem.start({ swim: {} })`), where the TCP fallback and push-pull ride
 * the system's authenticated transport.
 *
 * Every datagram is authenticated (HMAC-SHA256 tag keyed from the cluster secret); datagrams that
 * are oversized, unauthenticated or malformed are dropped and counted by reason
 * (`shoal_swim_dropped_total`) and change nothing. Timers that fire late (the event loop was
 * blocked) are run after pending I/O, so acks that arrived meanwhile count first; the loop's
 * delay also feeds Lifeguard's local health.
 * @module
 */
import { createSocket, type Socket, type SocketType } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import { checkNodeHost, newNodeUid } from '../actor/ClusterNode.ts'
import { ConfigError } from '../errors.ts'
import { swimChangeChannel } from '../observability/Channels.ts'
import { defaultLogger } from '../observability/Logging.ts'
import { registerSwimMetrics, type SwimTraffic } from '../observability/SwimMetrics.ts'
import { EventStream } from '../util/EventStream.ts'
import { checkSecretStrength } from '../util/secretStrength.ts'
import { decodeMessage, decodePushPull, deriveKey, encodeMessage, encodePushPull, type Message, MessageType, open, SwimCodecError, seal } from './Codec.ts'
import { onLoopDelay } from './LoopMonitor.ts'
import { type StreamLink, TcpStreamLink } from './StreamLink.ts'
import { type Directive, SwimInstance } from './SwimInstance.ts'
import { addressKey, nodeKey, type SwimAddress, type SwimMemberState, type SwimNode, type SwimStatus } from './SwimNode.ts'
import type { SwimSettings } from './SwimSettings.ts'

/** A member's status changed, as seen by this node. `previous` is undefined for a newcomer. */
export interface MembershipChange {
  readonly member: SwimMemberState
  readonly previous: SwimStatus | undefined
}

/** Options of a UDP SWIM member; defaults suit a LAN and loopback tests. */
export interface SwimMemberOptions {
  /**
   * Host to bind and advertise: an IP address (no IPv6 zone) or a host name (`checkNodeHost`). Default 127.0.0.1.
   * A name is bound with its IPv4 address if it has one, else its IPv6 one (`localhost`: IPv4).
   */
  readonly host?: string
  /** UDP port (and TCP port of the own stream link). Default 7946; 0 picks one free for both. */
  readonly port?: number
  /** This incarnation's uid (16 hex digits). Default: random. */
  readonly uid?: string
  /** Cluster secret; default `SHOAL_SECRET`. Every member of a cluster needs the same one. */
  readonly secret?: string | Buffer
  /** Cluster name, mixed into the datagram key: members of another cluster drop each other's datagrams. Default `SHOAL_CLUSTER_NAME`, else `shoal`. */
  readonly clusterName?: string
  /** Addresses to join through (`host:port` strings or objects). */
  readonly seeds?: readonly (string | SwimAddress)[]
  /** Opaque metadata spread with this member (≤ 512 bytes). */
  readonly meta?: Uint8Array
  readonly settings?: SwimSettings
  readonly logger?: Logger
  /** Registry for the `shoal_swim_*` metrics. Default: a new one (see `member.registry`). */
  readonly registry?: Registry
  /** Stream link for push-pull and TCP pings; the member owns it and closes it. Default: an own TCP listener on the same port. */
  readonly stream?: StreamLink
  /** Allow a non-loopback host without a secret. Default false: anyone could then join and accuse. */
  readonly insecure?: boolean
}

const PUSH_PULL_TIMEOUT = 10_000
const RECV_BUFFER = 2 * 1024 * 1024
const LOOPBACK = /^(127\.|::1$|localhost$)/

/** A SWIM member on real sockets. Start with `SwimMember.start`; `leave()` to go gracefully, `close()` to stop. */
export class SwimMember {
  readonly node: SwimNode
  readonly instance: SwimInstance
  readonly registry: Registry
  readonly log: Logger
  readonly traffic: SwimTraffic = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, largestOut: 0, dropped: new Map() }

  readonly #socket: Socket
  readonly #stream: StreamLink
  readonly #key: Buffer
  readonly #timers = new Map<string, NodeJS.Timeout>()
  readonly #changes: EventStream<MembershipChange>
  readonly #unsubscribeLoop: () => void
  #closed: Promise<void> | undefined

  private constructor(node: SwimNode, socket: Socket, stream: StreamLink, o: SwimMemberOptions) {
    this.node = node
    this.#socket = socket
    this.#stream = stream
    this.#key = deriveKey(o.secret ?? process.env.SHOAL_SECRET, o.clusterName ?? (process.env.SHOAL_CLUSTER_NAME || 'shoal'))
    this.log = (o.logger ?? defaultLogger()).child({ swim: addressKey(node) })
    this.registry = o.registry ?? new Registry()
    // A listener's bug must not cost the detector its next timers or sends.
    this.#changes = new EventStream((e) => this.log.error({ err: e }, 'a membership listener threw'))
    this.instance = new SwimInstance({
      self: node,
      meta: o.meta,
      settings: o.settings,
      now: () => performance.now(),
      random: Math.random,
      seeds: (o.seeds ?? []).map(parseAddress),
    })
    socket.on('message', (buf, rinfo) => this.#onDatagram(buf, rinfo.size))
    socket.on('error', (e) => this.log.warn({ err: e }, 'SWIM socket error'))
    stream.serve((body) => this.#onStreamRequest(body))
    registerSwimMetrics(this.registry, this.instance, this.traffic, () => (stream instanceof TcpStreamLink ? stream.refused : new Map()))
    this.#unsubscribeLoop = onLoopDelay((ms) => this.#apply(this.instance.onStall(ms)))
  }

  /**
   * Binds the UDP socket (and, unless a stream link is given, a TCP listener on the same port),
   * starts probing and joins the seeds. Throws `ConfigError` if the port is taken.
   */
  static async start(o: SwimMemberOptions = {}): Promise<SwimMember> {
    const host = o.host ?? '127.0.0.1'
    checkNodeHost(host, 'SWIM host')
    const secret = o.secret ?? process.env.SHOAL_SECRET
    checkSecretStrength(secret, o.secret === undefined ? 'SHOAL_SECRET' : 'the secret option')
    if (!secret && !LOOPBACK.test(host) && !o.insecure) {
      throw new ConfigError(
        `A SWIM member on ${host} without a cluster secret would accept anyone's gossip: set secret (or SHOAL_SECRET), or pass insecure: true to accept that.`,
      )
    }
    // A large receive buffer absorbs bursts (a join storm, push-pull replies, a stall's backlog)
    // that the default (~200 KB, ~150 datagrams on Linux) would drop; the OS caps it at rmem_max.
    const socket = createSocket({ type: await socketType(host), recvBufferSize: RECV_BUFFER })
    let stream = o.stream
    let port = o.port ?? 7946
    try {
      // Port 0: let the stream listener pick, then bind UDP to the same number.
      if (!stream) {
        const tcp = await TcpStreamLink.listen(host, port)
        port = tcp.port
        stream = tcp
      }
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(port, host, () => {
          socket.off('error', reject)
          resolve()
        })
      })
    } catch (e) {
      socket.close()
      await stream?.close()
      throw new ConfigError(`Could not bind SWIM on ${host}:${port} (${(e as { code?: string }).code ?? (e as Error).message}): pick another port, or port 0.`)
    }
    port = socket.address().port
    const node: SwimNode = { host, port, uid: o.uid ?? newNodeUid() }
    const member = new SwimMember(node, socket, stream, o)
    member.#apply(member.instance.start())
    member.log.debug({ node: nodeKey(node) }, 'SWIM member started')
    return member
  }

  /** Every member known, self first (dead and left ones until their tombstones expire). */
  members(): SwimMemberState[] {
    return this.instance.members()
  }

  /** Live (alive or suspect) members other than self. */
  liveMembers(): SwimMemberState[] {
    return this.instance
      .members()
      .slice(1)
      .filter((m) => m.status === 'alive' || m.status === 'suspect')
  }

  /** Calls `listener` on every status change; returns the unsubscribe function. */
  subscribe(listener: (c: MembershipChange) => void): () => void {
    return this.#changes.subscribe(listener)
  }

  /**
   * Membership as an async iterable: the current members first (as changes with no previous
   * status), then every change. Ends when the member closes or the loop is broken.
   */
  changes(): AsyncIterableIterator<MembershipChange> {
    return this.#changes.iterate(() =>
      this.members()
        .slice(1)
        .map((member) => ({ member, previous: undefined })),
    )
  }

  /** Joins through more seed addresses. */
  join(seeds: readonly (string | SwimAddress)[]): void {
    this.#apply(this.instance.join(seeds.map(parseAddress)))
  }

  /**
   * Leaves gracefully: others mark this member `left` (never suspect or dead). Waits `linger` ms
   * (default 1 s) so the announcement spreads, then closes.
   */
  async leave(linger = 1000): Promise<void> {
    if (this.#closed) return this.#closed
    this.#apply(this.instance.leave())
    await new Promise((r) => setTimeout(r, linger))
    await this.close()
  }

  /** Stops at once, without announcing anything (peers will find this member dead). Idempotent. */
  close(): Promise<void> {
    return (this.#closed ??= this.#close())
  }

  async #close(): Promise<void> {
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
    this.#unsubscribeLoop()
    this.#changes.close()
    await new Promise<void>((r) => this.#socket.close(() => r()))
    await this.#stream.close()
  }

  // ── directives ─────────────────────────────────────────────────────────────

  #apply(directives: readonly Directive[]): void {
    if (this.#closed) return
    for (const d of directives) {
      switch (d.type) {
        case 'send':
          this.#send(d.to, seal(this.#key, encodeMessage(d.message)))
          break
        case 'startTimer':
          this.#startTimer(d.id, d.delay)
          break
        case 'cancelTimer':
          clearTimeout(this.#timers.get(d.id))
          this.#timers.delete(d.id)
          break
        case 'streamPing':
          this.#streamPing(d.to, d.message, d.timeout)
          break
        case 'pushPull':
          this.#pushPull(d.to, seal(this.#key, encodePushPull(d.message)))
          break
        case 'changed':
          this.#changed(d.member, d.previous)
          break
      }
    }
  }

  #send(to: SwimAddress, packet: Buffer): void {
    this.traffic.messagesOut++
    this.traffic.bytesOut += packet.length
    if (packet.length > this.traffic.largestOut) this.traffic.largestOut = packet.length
    this.#socket.send(packet, to.port, to.host, (e) => {
      if (e) this.#drop('send-failed')
    })
  }

  #startTimer(id: string, delay: number): void {
    clearTimeout(this.#timers.get(id))
    const due = performance.now() + delay
    const t = setTimeout(() => {
      this.#timers.delete(id)
      // Late: the loop was blocked. Let the I/O that piled up (acks, refutations) run first.
      if (performance.now() - due > this.instance.settings.stallThreshold) setImmediate(() => this.#apply(this.instance.onTimer(id)))
      else this.#apply(this.instance.onTimer(id))
    }, delay)
    t.unref()
    this.#timers.set(id, t)
  }

  #changed(member: SwimMemberState, previous: SwimStatus | undefined): void {
    const level = member.status === 'alive' && previous !== 'suspect' ? 'info' : member.status === 'suspect' ? 'debug' : 'info'
    this.log[level]({ member: nodeKey(member.node), status: member.status, previous, incarnation: member.incarnation }, 'member status changed')
    if (swimChangeChannel.hasSubscribers)
      swimChangeChannel.publish({ self: this.node, member: member.node, from: previous, to: member.status, incarnation: member.incarnation })
    this.#changes.emit({ member, previous })
  }

  // ── inbound ────────────────────────────────────────────────────────────────

  #onDatagram(buf: Buffer, size: number): void {
    if (this.#closed) return
    this.traffic.messagesIn++
    this.traffic.bytesIn += size
    if (size > this.instance.settings.maxDatagram) return this.#drop('oversized')
    let message
    try {
      message = decodeMessage(buf, open(this.#key, buf))
    } catch (e) {
      return this.#drop(e instanceof SwimCodecError ? e.reason : 'malformed')
    }
    this.#apply(this.instance.onMessage(message))
  }

  #onStreamRequest(body: Buffer): Buffer | undefined {
    if (this.#closed) return undefined
    try {
      const end = open(this.#key, body)
      if (body[1] === MessageType.Ping) {
        const { reply, directives } = this.instance.onStreamPing(decodeMessage(body, end))
        this.#apply(directives)
        return reply && seal(this.#key, encodeMessage(reply))
      }
      const request = decodePushPull(body, this.instance.settings.maxMembers, end)
      if (request.type !== 'pushPull') throw new SwimCodecError('unknown-type', 'a push-pull reply as a request')
      const { reply, directives } = this.instance.onPushPull(request)
      this.#apply(directives)
      return seal(this.#key, encodePushPull(reply))
    } catch (e) {
      this.#drop(`stream-${e instanceof SwimCodecError ? e.reason : 'malformed'}`)
      return undefined
    }
  }

  // ── outbound streams ───────────────────────────────────────────────────────

  #streamPing(to: SwimNode, ping: Message, timeout: number): void {
    this.#stream
      .request(to, seal(this.#key, encodeMessage(ping)), timeout)
      .then(
        (reply) => {
          if (this.#closed) return
          this.#apply(this.instance.onStreamAck(decodeMessage(reply, open(this.#key, reply))))
        },
        () => undefined,
      )
      .catch(() => this.#drop('stream-malformed'))
  }

  #pushPull(to: SwimAddress, request: Buffer): void {
    this.#stream
      .request(to, request, PUSH_PULL_TIMEOUT)
      .then(
        (reply) => {
          if (this.#closed) return
          const p = decodePushPull(reply, this.instance.settings.maxMembers, open(this.#key, reply))
          this.#apply(this.instance.onPushPullReply(p))
        },
        (e: Error) => this.log.debug({ to: addressKey(to), err: e.message }, 'push-pull failed'),
      )
      .catch((e: unknown) => this.#drop(`stream-${e instanceof SwimCodecError ? e.reason : 'malformed'}`))
  }

  #drop(reason: string): void {
    this.traffic.dropped.set(reason, (this.traffic.dropped.get(reason) ?? 0) + 1)
  }
}

/**
 * The UDP socket family for `host`: an IP address's own; for a name, IPv4 if it resolves to an
 * IPv4 address (as `localhost` always counted), else IPv6. Peers' sockets of that family then
 * resolve the name to the address bound.
 */
async function socketType(host: string): Promise<SocketType> {
  const family = isIP(host)
  if (family !== 0) return family === 6 ? 'udp6' : 'udp4'
  if (host === 'localhost') return 'udp4'
  try {
    await lookup(host, { family: 4 })
    return 'udp4'
  } catch {
    try {
      await lookup(host, { family: 6 })
      return 'udp6'
    } catch (e) {
      throw new ConfigError(
        `SWIM host ${host} does not resolve (${(e as { code?: string }).code ?? (e as Error).message}): use an IP address, or a name this machine resolves.`,
      )
    }
  }
}

/** Parses `host:port` (IPv6 in brackets) or passes an address object through. */
export function parseAddress(a: string | SwimAddress): SwimAddress {
  if (typeof a !== 'string') return a
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(a) ?? /^([^:]+):(\d+)$/.exec(a)
  const port = m ? Number(m[2]) : NaN
  if (!m || !(port > 0 && port < 65536)) throw new ConfigError(`"${a}" is not host:port (IPv6 in brackets: [::1]:7337).`)
  return { host: m[1]!, port }
}
