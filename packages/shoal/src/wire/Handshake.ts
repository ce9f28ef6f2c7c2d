/**
 * Handshake: the pure state machines that open an association (protocol 2).
 *
 * ```
 * dialer (client)                                      acceptor (server)
 *   preamble + Hello{node, cluster, target, nonce, auth}    ->
 *                         <- preamble + Challenge{node, cluster, nonce, auth, share: Yb}
 *   Proof{share: Ya, confirm: confirmD}                     ->
 *                         <- Accept{confirm: confirmA}      (or Reject{reason} at any step)
 * ```
 * Hello and Challenge name the sender's cluster; each side refuses a peer of another cluster.
 * `auth` says whether the sender has a cluster secret (`cpace`) or not (`none`): a node with a
 * secret never establishes an association without proving it, so the flag only lets a node
 * refuse with a precise reason ("X has a cluster secret, Y has none").
 *
 * With a secret on both sides the handshake is CPace, a balanced PAKE, over ristretto255
 * (`@noble/curves`): both sides derive the generator `G = hash-to-group(secret, cluster, both
 * nonces, both node identities)`, pick fresh scalars `ya`/`yb` from the injected randomness and
 * exchange `Ya = ya·G`, `Yb = yb·G`. The shared point `K = ya·Yb = yb·Ya` (only equal when the
 * secrets are) keys an intermediate session key `ISK = SHA-512(K, transcript)`, where the
 * transcript covers both preambles, the Hello and Challenge bodies and `Ya`. The dialer confirms
 * first (`confirmD = HMAC(ISK, dialer)`); the acceptor verifies it before it sends its own
 * (`confirmA`), and the dialer verifies that before it calls the association established. What a
 * peer without the secret sees (`Yb`, `Ya`, a confirmation MAC) depends on a Diffie-Hellman value
 * it cannot compute: it can test one guess per handshake, online, and nothing offline. Protocol 1
 * sent `HMAC(secret, nonces)` to anyone who said Hello, which could be brute-forced offline.
 *
 * Without a secret on both sides the shares and confirmations are empty. A secret on only one
 * side is refused with a reason naming which node has one; two different secrets fail the
 * dialer's confirmation, refused by the acceptor as "secrets differ" ({@link SECRET_PROBLEM}).
 *
 * Both preambles carry the sender's protocol version: a major mismatch is refused ("upgrade every
 * node"), and an established association speaks the lower of the two minors (the `established`
 * directive's `minor`), which decides the optional features a side may send.
 *
 * Inputs are decoded items (preamble, frames); outputs are directives for the shell. No sockets,
 * timers or clocks: randomness is injected.
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js'
import { type ClusterNode, formatNode, isValidHost, isValidSystemName, isValidUid } from '../actor/ClusterNode.ts'
import { encodeFrame, FrameType, PROTOCOL_MAJOR, PROTOCOL_MINOR, preamble } from './Frame.ts'
import type { DecodedItem } from './FrameDecoder.ts'

export type HandshakeDirective =
  | { readonly type: 'send'; readonly bytes: Buffer }
  /** `minor`: the negotiated protocol minor, the lower of both sides' (what the peer can read). */
  | { readonly type: 'established'; readonly peer: ClusterNode; readonly minor: number }
  /** `byPeer`: the peer refused us (its reason); otherwise we refused or gave up. */
  | { readonly type: 'failed'; readonly reason: string; readonly byPeer: boolean }

export interface HandshakeConfig {
  readonly self: ClusterNode
  /** This node's cluster name; a peer of another cluster is refused. Default `shoal`. */
  readonly clusterName?: string
  readonly secret: Buffer | undefined
  readonly random: (bytes: number) => Buffer
  /** Protocol version this side speaks (tests override it to provoke mismatches). */
  readonly major?: number
  readonly minor?: number
}

export interface ServerHandshakeConfig extends HandshakeConfig {
  /** Decides on a peer that proved itself: undefined to accept, or a reason to refuse. */
  readonly admit: (peer: ClusterNode) => string | undefined
}

/**
 * Start of the Reject reason for the losing connection of a simultaneous connect. Part of the
 * protocol: the refused side recognises it and waits for the winner's connection instead of failing.
 */
export const SIMULTANEOUS_CONNECT = 'simultaneous connect'

const NONCE_BYTES = 16
const MAX_BODY = 4096
/** Domain separation of protocol 2's CPace: generator, session key and the two confirmations. */
const CPACE_DST = 'shoal/2/cpace-ristretto255-sha512'
const SHARE_HEX = 64
const CONFIRM_HEX = 64

type Auth = 'cpace' | 'none'
const Point = ristretto255.Point
type Point = InstanceType<typeof Point>

/** Length-prefixed concatenation: no two different part lists give the same bytes. */
function lp(...parts: (string | Uint8Array)[]): Buffer {
  const out: Buffer[] = []
  for (const part of parts) {
    const b = typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part)
    const len = Buffer.allocUnsafe(4)
    len.writeUInt32BE(b.length, 0)
    out.push(len, b)
  }
  return Buffer.concat(out)
}

/**
 * One side's CPace state: the generator bound to the secret and the session, and this side's
 * ephemeral scalar (from the injected randomness) and share.
 */
class Cpace {
  readonly #scalar: bigint
  readonly share: string

  constructor(secret: Buffer, cluster: string, sid: string, dialer: ClusterNode, acceptor: ClusterNode, random: (bytes: number) => Buffer) {
    const generator = ristretto255_hasher.hashToCurve(
      lp('generator', secret, cluster, sid, formatNode(dialer), dialer.uid, formatNode(acceptor), acceptor.uid),
      { DST: CPACE_DST },
    )
    // 64 random bytes reduced modulo the group order: uniform; zero (probability 2^-252) redrawn.
    let scalar = 0n
    while (scalar === 0n) scalar = Point.Fn.create(BigInt(`0x${Buffer.from(random(64)).toString('hex')}`))
    this.#scalar = scalar
    this.share = Buffer.from(generator.multiply(scalar).toBytes()).toString('hex')
  }

  /** The session key from the peer's share and the transcript, or undefined if the share is not a valid non-identity point. */
  sessionKey(peerShare: unknown, transcript: Buffer): Buffer | undefined {
    if (typeof peerShare !== 'string' || peerShare.length !== SHARE_HEX || !/^[0-9a-f]+$/.test(peerShare)) return undefined
    let point: Point
    try {
      point = Point.fromHex(peerShare)
    } catch {
      return undefined
    }
    if (point.is0()) return undefined
    const k = point.multiply(this.#scalar).toBytes()
    return createHash('sha512')
      .update(lp('session key', CPACE_DST, k, transcript))
      .digest()
  }
}

/** The key confirmation MAC of `role`, hex. */
function confirmation(isk: Buffer, role: 'dialer' | 'acceptor'): string {
  return createHmac('sha256', isk).update(`${CPACE_DST}/confirm/${role}`).digest('hex')
}

function confirms(expected: string, actual: unknown): boolean {
  if (typeof actual !== 'string' || actual.length !== CONFIRM_HEX) return false
  // Equal lengths in bytes too (checked above, ASCII hex expected): timingSafeEqual throws otherwise.
  const got = Buffer.from(actual, 'utf8')
  return got.length === CONFIRM_HEX && timingSafeEqual(Buffer.from(expected, 'utf8'), got)
}

/**
 * What both sides hash into the session key: both preambles (so a downgrade of the minor by a
 * man in the middle fails the confirmation), the Hello and Challenge bodies as sent, and `Ya`.
 */
function transcript(dialerVersion: string, acceptorVersion: string, hello: Buffer, challenge: Buffer, dialerShare: string): Buffer {
  return createHash('sha512')
    .update(lp('transcript', dialerVersion, acceptorVersion, hello, challenge, dialerShare))
    .digest()
}

function json(type: number, value: unknown): Buffer {
  return encodeFrame(type, Buffer.from(JSON.stringify(value)))
}

function reject(reason: string): Buffer {
  return encodeFrame(FrameType.Reject, Buffer.from(reason.slice(0, 512)))
}

function parseBody(body: Buffer): Record<string, unknown> | undefined {
  if (body.length > MAX_BODY) return undefined
  try {
    const v: unknown = JSON.parse(body.toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function parseNode(v: unknown): ClusterNode | undefined {
  if (typeof v !== 'object' || v === null) return undefined
  const { name, host, port, uid } = v as Record<string, unknown>
  if (typeof name !== 'string' || !isValidSystemName(name)) return undefined
  if (!isValidHost(host)) return undefined
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined
  if (typeof uid !== 'string' || !isValidUid(uid)) return undefined
  return { endpoint: { name, host, port }, uid }
}

function parseAuth(v: unknown): Auth | undefined {
  return v === 'cpace' || v === 'none' ? v : undefined
}

function nodeJson(n: ClusterNode): unknown {
  return { name: n.endpoint.name, host: n.endpoint.host, port: n.endpoint.port, uid: n.uid }
}

/** The default cluster name. */
const DEFAULT_CLUSTER = 'shoal'

/** Why a peer announcing `theirs` may not join this node's cluster, or undefined if it may. */
function clusterProblem(peer: ClusterNode, theirs: unknown, ours: string): string | undefined {
  if (typeof theirs !== 'string' || !isValidSystemName(theirs)) return `peer ${formatNode(peer)} sent an invalid cluster name`
  if (theirs === ours) return undefined
  return `peer ${formatNode(peer)} belongs to cluster ${JSON.stringify(theirs)}, this node to ${JSON.stringify(ours)}: nodes of one cluster must share its name (setting clusterName, or SHOAL_CLUSTER_NAME)`
}

/** How to fix any cluster secret problem; part of every such refusal. */
const SECRET_FIX = 'set the same cluster secret (SHOAL_SECRET, --secret-file, or the secret setting) on every node and clusterd'

/**
 * Start of the reason of every refusal over the cluster secret. Part of the protocol: a refused
 * side (clusterd's client, logs) recognises it. The reason names both nodes, never "this node" or
 * "peer", so it reads true in the logs of either side (the Reject frame carries it over).
 */
export const SECRET_PROBLEM = 'cluster secret'

/**
 * The refusal of a handshake between the dialing node `dialer` and the accepting node `acceptor`
 * over their cluster secrets, given which of them has one; undefined when both or neither have one
 * (`differ`: both have one and the dialer's key confirmation showed they are not the same).
 */
function secretMismatch(dialer: ClusterNode, dialerHas: boolean, acceptor: ClusterNode, acceptorHas: boolean, differ = false): string | undefined {
  const d = `${formatNode(dialer)} (dialing)`
  const a = `${formatNode(acceptor)} (accepting)`
  if (differ) return `${SECRET_PROBLEM}s differ: ${d} and ${a} both have a cluster secret, but not the same one: ${SECRET_FIX}`
  if (dialerHas && !acceptorHas) return `${SECRET_PROBLEM} missing: ${d} has a cluster secret, ${a} has none: ${SECRET_FIX}`
  if (!dialerHas && acceptorHas) return `${SECRET_PROBLEM} missing: ${a} has a cluster secret, ${d} has none: ${SECRET_FIX}`
  return undefined
}

function fail(reason: string, byPeer = false): HandshakeDirective {
  return { type: 'failed', reason, byPeer }
}

function versionProblem(item: DecodedItem & { kind: 'preamble' }, major: number, minor: number): string | undefined {
  if (item.major === major) return undefined
  return `protocol version mismatch: peer speaks ${item.major}.${item.minor}, this node ${major}.${minor}: nodes of different major versions cannot connect, upgrade every node (and clusterd) to the same major version`
}

/** The protocol minor both sides speak: the lower of ours and the peer's. */
function negotiated(cfg: HandshakeConfig, peerMinor: number): number {
  return Math.min(cfg.minor ?? PROTOCOL_MINOR, peerMinor)
}

function version(major: number, minor: number): string {
  return `${major}.${minor}`
}

/** The dialing side. */
export class ClientHandshake {
  readonly #cfg: HandshakeConfig
  readonly #target: { host: string; port: number }
  readonly #nonce: string
  #state: 'new' | 'hello-sent' | 'proof-sent' | 'done' = 'new'
  #peer: ClusterNode | undefined
  #peerVersion: string | undefined
  #peerMinor = 0
  #hello: Buffer = Buffer.alloc(0)
  /** The acceptor's confirmation this side expects (empty without secrets). */
  #expected = ''

  constructor(cfg: HandshakeConfig, target: { host: string; port: number }) {
    this.#cfg = cfg
    this.#target = target
    this.#nonce = cfg.random(NONCE_BYTES).toString('hex')
  }

  start(): HandshakeDirective[] {
    this.#state = 'hello-sent'
    this.#hello = Buffer.from(
      JSON.stringify({
        node: nodeJson(this.#cfg.self),
        cluster: this.#cfg.clusterName ?? DEFAULT_CLUSTER,
        target: this.#target,
        nonce: this.#nonce,
        auth: this.#cfg.secret ? 'cpace' : 'none',
      }),
    )
    return [{ type: 'send', bytes: Buffer.concat([preamble(this.#cfg.major, this.#cfg.minor), encodeFrame(FrameType.Hello, this.#hello)]) }]
  }

  receive(item: DecodedItem): HandshakeDirective[] {
    if (this.#state === 'done') return []
    if (item.kind === 'preamble') {
      this.#peerVersion = version(item.major, item.minor)
      this.#peerMinor = item.minor
      const problem = versionProblem(item, this.#cfg.major ?? PROTOCOL_MAJOR, this.#cfg.minor ?? PROTOCOL_MINOR)
      return problem ? this.#done([fail(problem)]) : []
    }
    if (this.#peerVersion === undefined) return this.#done([fail('peer sent a frame before its preamble')])
    if (item.type === FrameType.Reject) return this.#done([fail(item.body.toString('utf8').slice(0, 512), true)])
    if (item.type === FrameType.Challenge && this.#state === 'hello-sent') return this.#challenge(item.body)
    if (item.type === FrameType.Accept && this.#state === 'proof-sent') return this.#accept(item.body)
    return this.#done([fail(`unexpected frame type ${item.type} during handshake`)])
  }

  #challenge(body: Buffer): HandshakeDirective[] {
    const msg = parseBody(body)
    const peer = msg && parseNode(msg.node)
    const auth = parseAuth(msg?.auth)
    if (!msg || !peer || !auth || typeof msg.nonce !== 'string' || msg.nonce.length !== NONCE_BYTES * 2) {
      return this.#done([fail('malformed challenge')])
    }
    const { secret, self } = this.#cfg
    const cluster = this.#cfg.clusterName ?? DEFAULT_CLUSTER
    const foreign = clusterProblem(peer, msg.cluster, cluster)
    if (foreign) return this.#refuse(foreign)
    const missing = secretMismatch(self, Boolean(secret), peer, auth === 'cpace')
    if (missing) return this.#refuse(missing)
    this.#peer = peer
    this.#state = 'proof-sent'
    if (!secret) return [{ type: 'send', bytes: json(FrameType.Proof, { share: '', confirm: '' }) }]
    const cpace = new Cpace(secret, cluster, `${this.#nonce}|${msg.nonce}`, self, peer, this.#cfg.random)
    const ownVersion = version(this.#cfg.major ?? PROTOCOL_MAJOR, this.#cfg.minor ?? PROTOCOL_MINOR)
    const isk = cpace.sessionKey(msg.share, transcript(ownVersion, this.#peerVersion!, this.#hello, body, cpace.share))
    if (!isk) return this.#refuse('malformed challenge: the key share is not a valid ristretto255 point')
    this.#expected = confirmation(isk, 'acceptor')
    return [{ type: 'send', bytes: json(FrameType.Proof, { share: cpace.share, confirm: confirmation(isk, 'dialer') }) }]
  }

  #accept(body: Buffer): HandshakeDirective[] {
    const msg = parseBody(body)
    const peer = this.#peer!
    if (this.#cfg.secret && !confirms(this.#expected, msg?.confirm)) {
      // A real acceptor with another secret refuses the dialer's confirmation first: only an
      // impostor (or a man in the middle altering the handshake) gets here.
      const reason = `${SECRET_PROBLEM} not proven: ${formatNode(peer)} (accepting) accepted without proving the cluster secret (an impostor, or the handshake was altered in transit): ${SECRET_FIX}`
      return this.#done([fail(reason)])
    }
    return this.#done([{ type: 'established', peer, minor: negotiated(this.#cfg, this.#peerMinor) }])
  }

  #refuse(reason: string): HandshakeDirective[] {
    return this.#done([{ type: 'send', bytes: reject(reason) }, fail(reason)])
  }

  #done(ds: HandshakeDirective[]): HandshakeDirective[] {
    this.#state = 'done'
    return ds
  }
}

/** The accepting side. */
export class ServerHandshake {
  readonly #cfg: ServerHandshakeConfig
  readonly #nonce: string
  #state: 'new' | 'await-hello' | 'challenged' | 'done' = 'new'
  #peer: ClusterNode | undefined
  #peerVersion = ''
  #peerMinor = 0
  #cpace: Cpace | undefined
  #hello: Buffer = Buffer.alloc(0)
  #challengeBody: Buffer = Buffer.alloc(0)

  constructor(cfg: ServerHandshakeConfig) {
    this.#cfg = cfg
    this.#nonce = cfg.random(NONCE_BYTES).toString('hex')
  }

  receive(item: DecodedItem): HandshakeDirective[] {
    if (this.#state === 'done') return []
    const pre = preamble(this.#cfg.major, this.#cfg.minor)
    if (item.kind === 'preamble') {
      this.#peerVersion = version(item.major, item.minor)
      this.#peerMinor = item.minor
      const problem = versionProblem(item, this.#cfg.major ?? PROTOCOL_MAJOR, this.#cfg.minor ?? PROTOCOL_MINOR)
      if (problem) return this.#done([{ type: 'send', bytes: Buffer.concat([pre, reject(problem)]) }, fail(problem)])
      this.#state = 'await-hello'
      return []
    }
    if (this.#state === 'new') return this.#done([fail('peer sent a frame before its preamble')])
    if (item.type === FrameType.Reject) return this.#done([fail(item.body.toString('utf8').slice(0, 512), true)])
    if (item.type === FrameType.Hello && this.#state === 'await-hello') return this.#helloFrame(item.body, pre)
    if (item.type === FrameType.Proof && this.#state === 'challenged') return this.#proof(item.body)
    return this.#refuse(`unexpected frame type ${item.type} during handshake`)
  }

  #helloFrame(body: Buffer, pre: Buffer): HandshakeDirective[] {
    const msg = parseBody(body)
    const peer = msg && parseNode(msg.node)
    const target = msg?.target as { port?: unknown } | undefined
    const auth = parseAuth(msg?.auth)
    if (!msg || !peer || !auth || typeof msg.nonce !== 'string' || msg.nonce.length !== NONCE_BYTES * 2 || typeof target?.port !== 'number') {
      return this.#refuse('malformed hello', pre)
    }
    const { self, secret } = this.#cfg
    if (target.port !== self.endpoint.port) return this.#refuse(`hello addressed to port ${target.port}, but this node is ${formatNode(self)}`, pre)
    const cluster = this.#cfg.clusterName ?? DEFAULT_CLUSTER
    const foreign = clusterProblem(peer, msg.cluster, cluster)
    if (foreign) return this.#refuse(foreign, pre)
    const missing = secretMismatch(peer, auth === 'cpace', self, Boolean(secret))
    if (missing) return this.#refuse(missing, pre)
    this.#peer = peer
    this.#hello = body
    this.#state = 'challenged'
    this.#cpace = secret && new Cpace(secret, cluster, `${msg.nonce}|${this.#nonce}`, peer, self, this.#cfg.random)
    this.#challengeBody = Buffer.from(
      JSON.stringify({ node: nodeJson(self), cluster, nonce: this.#nonce, auth: secret ? 'cpace' : 'none', share: this.#cpace?.share ?? '' }),
    )
    return [{ type: 'send', bytes: Buffer.concat([pre, encodeFrame(FrameType.Challenge, this.#challengeBody)]) }]
  }

  #proof(body: Buffer): HandshakeDirective[] {
    const msg = parseBody(body)
    if (!msg) return this.#refuse('malformed proof')
    const peer = this.#peer!
    let confirm = ''
    if (this.#cpace) {
      const ownVersion = version(this.#cfg.major ?? PROTOCOL_MAJOR, this.#cfg.minor ?? PROTOCOL_MINOR)
      const isk = this.#cpace.sessionKey(msg.share, transcript(this.#peerVersion, ownVersion, this.#hello, this.#challengeBody, String(msg.share)))
      if (!isk) return this.#refuse('malformed proof: the key share is not a valid ristretto255 point')
      // Verify the dialer's confirmation before sending anything derived from the secret.
      if (!confirms(confirmation(isk, 'dialer'), msg.confirm)) return this.#refuse(secretMismatch(peer, true, this.#cfg.self, true, true)!)
      confirm = confirmation(isk, 'acceptor')
    }
    const refusal = this.#cfg.admit(peer)
    if (refusal !== undefined) return this.#refuse(refusal)
    return this.#done([
      { type: 'send', bytes: json(FrameType.Accept, { confirm }) },
      { type: 'established', peer, minor: negotiated(this.#cfg, this.#peerMinor) },
    ])
  }

  #refuse(reason: string, pre?: Buffer): HandshakeDirective[] {
    return this.#done([{ type: 'send', bytes: pre ? Buffer.concat([pre, reject(reason)]) : reject(reason) }, fail(reason)])
  }

  #done(ds: HandshakeDirective[]): HandshakeDirective[] {
    this.#state = 'done'
    return ds
  }
}
