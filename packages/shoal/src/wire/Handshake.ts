/**
 * Handshake: the pure state machines that open an association.
 *
 * ```
 * client                                   server
 *   preamble + Hello{node, target, nonceC}  ->
 *                                         <- preamble + Challenge{node, nonceS, proofS}
 *   Proof{proofC}                          ->
 *                                         <- Accept                (or Reject{reason} at any step)
 * ```
 * Hello and Challenge also name the sender's cluster; each side refuses a peer of another cluster
 * (a missing name, from a node before protocol 1.1, counts as the default `shoal`).
 *
 * `proofS = HMAC(secret, "shoal/server" | nonceC | nonceS | clientUid | serverUid)` and
 * `proofC = HMAC(secret, "shoal/client" | …)`: each side proves it knows the cluster secret without
 * sending it, and the fresh nonces stop replays. Without a secret on both sides the proofs are empty;
 * a secret on only one side, or two different secrets, is refused by the client (the first to see
 * the server's proof), with a reason that names which node has a secret and which has none, or that
 * both have one and they differ ({@link SECRET_PROBLEM}).
 *
 * Both preambles carry the sender's protocol version: a major mismatch is refused, and an
 * established association speaks the lower of the two minors (the `established` directive's
 * `minor`), which decides the optional features a side may send (1.2: envelope headers).
 *
 * Inputs are decoded items (preamble, frames); outputs are directives for the shell. No sockets,
 * timers or clocks: randomness is injected.
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
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

function proof(secret: Buffer | undefined, role: string, a: string, b: string, clientUid: string, serverUid: string): string {
  if (!secret) return ''
  return createHmac('sha256', secret).update(`shoal/${role}|${a}|${b}|${clientUid}|${serverUid}`).digest('hex')
}

function proofMatches(expected: string, actual: unknown): boolean {
  if (typeof actual !== 'string') return false
  // Compare byte lengths, not string lengths: timingSafeEqual throws on unequal buffers.
  const want = Buffer.from(expected, 'utf8')
  const got = Buffer.from(actual, 'utf8')
  return want.length === got.length && timingSafeEqual(want, got)
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

function nodeJson(n: ClusterNode): unknown {
  return { name: n.endpoint.name, host: n.endpoint.host, port: n.endpoint.port, uid: n.uid }
}

/** The default cluster name, assumed for peers that do not send one. */
const DEFAULT_CLUSTER = 'shoal'

/** Why a peer announcing `theirs` may not join this node's cluster, or undefined if it may. */
function clusterProblem(peer: ClusterNode, theirs: unknown, ours: string): string | undefined {
  const cluster = theirs === undefined ? DEFAULT_CLUSTER : theirs
  if (typeof cluster !== 'string' || !isValidSystemName(cluster)) return `peer ${formatNode(peer)} sent an invalid cluster name`
  if (cluster === ours) return undefined
  return `peer ${formatNode(peer)} belongs to cluster ${JSON.stringify(cluster)}, this node to ${JSON.stringify(ours)}: nodes of one cluster must share its name (setting clusterName, or SHOAL_CLUSTER_NAME)`
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
 * (`differ`: both have one and the proofs showed they are not the same).
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

function versionProblem(item: DecodedItem & { kind: 'preamble' }, major: number): string | undefined {
  return item.major === major ? undefined : `protocol version mismatch: peer speaks ${item.major}.${item.minor}, this node ${major}.${PROTOCOL_MINOR}`
}

/** The protocol minor both sides speak: the lower of ours and the peer's. */
function negotiated(cfg: HandshakeConfig, peerMinor: number): number {
  return Math.min(cfg.minor ?? PROTOCOL_MINOR, peerMinor)
}

/** The dialing side. */
export class ClientHandshake {
  readonly #cfg: HandshakeConfig
  readonly #target: { host: string; port: number }
  readonly #nonce: string
  #state: 'new' | 'hello-sent' | 'proof-sent' | 'done' = 'new'
  #peer: ClusterNode | undefined
  #sawPreamble = false
  #peerMinor = 0

  constructor(cfg: HandshakeConfig, target: { host: string; port: number }) {
    this.#cfg = cfg
    this.#target = target
    this.#nonce = cfg.random(NONCE_BYTES).toString('hex')
  }

  start(): HandshakeDirective[] {
    this.#state = 'hello-sent'
    const hello = json(FrameType.Hello, {
      node: nodeJson(this.#cfg.self),
      cluster: this.#cfg.clusterName ?? DEFAULT_CLUSTER,
      target: this.#target,
      nonce: this.#nonce,
    })
    return [{ type: 'send', bytes: Buffer.concat([preamble(this.#cfg.major, this.#cfg.minor), hello]) }]
  }

  receive(item: DecodedItem): HandshakeDirective[] {
    if (this.#state === 'done') return []
    if (item.kind === 'preamble') {
      this.#sawPreamble = true
      this.#peerMinor = item.minor
      const problem = versionProblem(item, this.#cfg.major ?? PROTOCOL_MAJOR)
      return problem ? this.#done([fail(problem)]) : []
    }
    if (!this.#sawPreamble) return this.#done([fail('peer sent a frame before its preamble')])
    if (item.type === FrameType.Reject) return this.#done([fail(item.body.toString('utf8').slice(0, 512), true)])
    if (item.type === FrameType.Challenge && this.#state === 'hello-sent') return this.#challenge(item.body)
    if (item.type === FrameType.Accept && this.#state === 'proof-sent')
      return this.#done([{ type: 'established', peer: this.#peer!, minor: negotiated(this.#cfg, this.#peerMinor) }])
    return this.#done([fail(`unexpected frame type ${item.type} during handshake`)])
  }

  #challenge(body: Buffer): HandshakeDirective[] {
    const msg = parseBody(body)
    const peer = msg && parseNode(msg.node)
    if (!msg || !peer || typeof msg.nonce !== 'string' || msg.nonce.length !== NONCE_BYTES * 2) {
      return this.#done([fail('malformed challenge')])
    }
    const { secret, self } = this.#cfg
    const foreign = clusterProblem(peer, msg.cluster, this.#cfg.clusterName ?? DEFAULT_CLUSTER)
    if (foreign) return this.#done([{ type: 'send', bytes: reject(foreign) }, fail(foreign)])
    const secretProblem = secretMismatch(self, Boolean(secret), peer, msg.proof !== '')
    if (secretProblem || !proofMatches(proof(secret, 'server', this.#nonce, msg.nonce, self.uid, peer.uid), msg.proof)) {
      const reason = secretProblem ?? secretMismatch(self, true, peer, true, true)!
      return this.#done([{ type: 'send', bytes: reject(reason) }, fail(reason)])
    }
    this.#peer = peer
    this.#state = 'proof-sent'
    return [{ type: 'send', bytes: json(FrameType.Proof, { proof: proof(secret, 'client', msg.nonce, this.#nonce, self.uid, peer.uid) }) }]
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
  #peerNonce = ''
  #peerMinor = 0

  constructor(cfg: ServerHandshakeConfig) {
    this.#cfg = cfg
    this.#nonce = cfg.random(NONCE_BYTES).toString('hex')
  }

  receive(item: DecodedItem): HandshakeDirective[] {
    if (this.#state === 'done') return []
    const pre = preamble(this.#cfg.major, this.#cfg.minor)
    if (item.kind === 'preamble') {
      this.#peerMinor = item.minor
      const problem = versionProblem(item, this.#cfg.major ?? PROTOCOL_MAJOR)
      if (problem) return this.#done([{ type: 'send', bytes: Buffer.concat([pre, reject(problem)]) }, fail(problem)])
      this.#state = 'await-hello'
      return []
    }
    if (this.#state === 'new') return this.#done([fail('peer sent a frame before its preamble')])
    if (item.type === FrameType.Reject) return this.#done([fail(item.body.toString('utf8').slice(0, 512), true)])
    if (item.type === FrameType.Hello && this.#state === 'await-hello') return this.#hello(item.body, pre)
    if (item.type === FrameType.Proof && this.#state === 'challenged') return this.#proof(item.body)
    const reason = `unexpected frame type ${item.type} during handshake`
    return this.#done([{ type: 'send', bytes: reject(reason) }, fail(reason)])
  }

  #hello(body: Buffer, pre: Buffer): HandshakeDirective[] {
    const msg = parseBody(body)
    const peer = msg && parseNode(msg.node)
    const target = msg?.target as { port?: unknown } | undefined
    if (!msg || !peer || typeof msg.nonce !== 'string' || msg.nonce.length !== NONCE_BYTES * 2 || typeof target?.port !== 'number') {
      const reason = 'malformed hello'
      return this.#done([{ type: 'send', bytes: Buffer.concat([pre, reject(reason)]) }, fail(reason)])
    }
    const self = this.#cfg.self
    if (target.port !== self.endpoint.port) {
      const reason = `hello addressed to port ${target.port}, but this node is ${formatNode(self)}`
      return this.#done([{ type: 'send', bytes: Buffer.concat([pre, reject(reason)]) }, fail(reason)])
    }
    const foreign = clusterProblem(peer, msg.cluster, this.#cfg.clusterName ?? DEFAULT_CLUSTER)
    if (foreign) return this.#done([{ type: 'send', bytes: Buffer.concat([pre, reject(foreign)]) }, fail(foreign)])
    this.#peer = peer
    this.#peerNonce = msg.nonce
    this.#state = 'challenged'
    const challenge = json(FrameType.Challenge, {
      node: nodeJson(self),
      cluster: this.#cfg.clusterName ?? DEFAULT_CLUSTER,
      nonce: this.#nonce,
      proof: proof(this.#cfg.secret, 'server', msg.nonce, this.#nonce, peer.uid, self.uid),
    })
    return [{ type: 'send', bytes: Buffer.concat([pre, challenge]) }]
  }

  #proof(body: Buffer): HandshakeDirective[] {
    const msg = parseBody(body)
    const peer = this.#peer!
    const { secret, self } = this.#cfg
    const expected = proof(secret, 'client', this.#nonce, this.#peerNonce, peer.uid, self.uid)
    if (!msg || !proofMatches(expected, msg.proof)) {
      // Only a client that ignored this node's proof gets here (a real one refuses first).
      const claimed = typeof msg?.proof === 'string' && msg.proof !== ''
      const reason = !msg
        ? 'malformed proof'
        : (secretMismatch(peer, claimed, self, Boolean(secret)) ?? (secret ? secretMismatch(peer, true, self, true, true)! : 'malformed proof'))
      return this.#done([{ type: 'send', bytes: reject(reason) }, fail(reason)])
    }
    const refusal = this.#cfg.admit(peer)
    if (refusal !== undefined) return this.#done([{ type: 'send', bytes: reject(refusal) }, fail(refusal)])
    return this.#done([
      { type: 'send', bytes: encodeFrame(FrameType.Accept, Buffer.alloc(0)) },
      { type: 'established', peer, minor: negotiated(this.#cfg, this.#peerMinor) },
    ])
  }

  #done(ds: HandshakeDirective[]): HandshakeDirective[] {
    this.#state = 'done'
    return ds
  }
}
