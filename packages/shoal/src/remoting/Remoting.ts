/**
 * Remoting: calls between this node and others. It owns the transport, the peers (pending calls
 * and decoder caches), the outbound engine (remote calls and one-way messages through a
 * RemoteRoute) and the inbound one (envelopes decoded, the target and method resolved once by
 * LocalActors, arguments decoded, the invocation delivered, the outcome sent back in a Reply).
 *
 * Rules: what fails before anything is sent is `notDelivered` (safe to retry); an inbound call
 * refused before its method ran is answered with status "refused"; a reply goes only to the
 * incarnation that called; a lost association fails the calls waiting on it.
 * @module
 */
import type { Logger } from 'pino'
import type { ActorId } from '../actor/ActorId.ts'
import { type ClusterNode, formatNode } from '../actor/ClusterNode.ts'
import type { MethodInfo } from '../actor/DistributedActor.ts'
import type { Invocation, LocalTarget } from '../actor/Invocation.ts'
import { OneWayInvocation } from '../actor/Invocation.ts'
import type { LocalActors, Refusal } from '../actor/LocalActors.ts'
import { type CallLedger, PendingCall, promiseOf, type TimeoutSource } from '../actor/PendingCall.ts'
import type { CallRetry } from '../actor/Route.ts'
import type { ControlTarget } from '../control/ControlChannel.ts'
import type { ControlRouter } from '../control/ControlRouter.ts'
import { isNotDelivered, markNotDelivered, NodeDownError, NodeUnreachableError, SerializationError, ShoalError, SystemShutDownError } from '../errors.ts'
import type { CallTrace } from '../observability/CallTracing.ts'
import type { Serialization } from '../serialization/Serialization.ts'
import type { Association } from '../transport/Association.ts'
import type { InboundBudget, InboundCredit } from '../transport/InboundBudget.ts'
import { supportsHeaders, Transport, type TransportHandler, type TransportSettings } from '../transport/Transport.ts'
import {
  EnvelopeError,
  type EnvelopeHeaders,
  encodeCallHeadWith,
  encodeOneWayHeadWith,
  encodeReplyHead,
  REPLY_PAYLOAD_AT,
  type ReadCall,
  type ReadOneWay,
  readCall,
  readOneWay,
  readReply,
} from '../wire/Envelope.ts'
import { FrameType } from '../wire/Frame.ts'
import { Peer, RemoteRoute } from './Peer.ts'

/** What remoting needs from its system. */
export interface RemotingHost {
  /** This node incarnation (read at use: final once the listener is bound). */
  node(): ClusterNode
  readonly log: Logger
  readonly ledger: CallLedger
  readonly serialization: Serialization
  readonly actors: LocalActors
  readonly control: ControlRouter
  /** False once shutdown began: inbound calls are refused. */
  running(): boolean
  /** The system's monotonic clock, ms: inbound calls' deadlines are on it. */
  now(): number
  /** A peer incarnation is gone for good (shut down or replaced): watches of its actors fire. */
  nodeGone(node: ClusterNode): void
  /** A peer refused our handshake, saying why (a zombie may learn it was downed). */
  refusedByPeer(reason: string): void
}

const NO_ARGS: unknown[] = []

/** What a target in a peer's decoder cache resolved to (see `Remoting.#known`). */
export interface Resolved {
  readonly target: LocalTarget
  /** Undefined for a target without a class (a proxy, a virtual actor's router: its actor checks). */
  readonly method: MethodInfo | undefined
  readonly incarnation: number
  /** The local actors' registrations when it was resolved (`LocalActors.generation`): a change forgets it. */
  readonly generation: number
}

/** Calls between this node and others (see the module comment); built and owned by the system. */
export class Remoting {
  readonly transport: Transport
  readonly #host: RemotingHost
  /** Keyed weakly: a peer lives as long as the transport keeps its association. */
  readonly #peers = new WeakMap<Association, Peer>()
  #callIds = 0

  constructor(host: RemotingHost, settings: TransportSettings) {
    this.#host = host
    this.transport = new Transport(settings, this.#transportHandler(), host.log)
  }

  /** The route of refs to remote actor `id`. */
  route(id: ActorId): RemoteRoute {
    const { host, port } = id.node.endpoint
    return new RemoteRoute(this, this.#peer(this.transport.association(host, port)), id)
  }

  /** Sends a framed control message (see ControlRouter). */
  sendControl(to: ControlTarget, frame: Buffer): void {
    const assoc = this.transport.association(to.host, to.port)
    this.transport.send(assoc, 'control', { type: FrameType.Control, body: frame, uid: to.uid, callId: undefined })
  }

  #peer(assoc: Association): Peer {
    // Frames come in runs from one connection: remember the last answer (a peer is its association's for life).
    if (assoc === this.#lastPeer?.assoc) return this.#lastPeer
    let peer = this.#peers.get(assoc)
    if (!peer) this.#peers.set(assoc, (peer = new Peer(assoc)))
    this.#lastPeer = peer
    return peer
  }

  /** The peer `#peer` returned last. */
  #lastPeer: Peer | undefined

  // ---- outbound ----------------------------------------------------------------------------

  /**
   * Fails fast for an incarnation known to be gone. An association to another incarnation at the
   * same endpoint is not proof either way (the target may be the newer one), so such calls go out
   * and the receiving node answers for its own incarnation.
   */
  #gone(id: ActorId): Error | undefined {
    if (!this.transport.isTombstoned(id.node.uid)) return undefined
    return markNotDelivered(new NodeDownError(`Node ${formatNode(id.node)} is down (it shut down or was replaced); actor ${id.path} is gone with it.`))
  }

  /** A remote call through `route`. */
  call(
    route: RemoteRoute,
    method: string,
    args: unknown[],
    chain: string,
    timeout: number,
    timeoutFrom: TimeoutSource,
    trace: CallTrace | undefined,
    retry?: CallRetry,
  ): Promise<unknown> {
    const id = route.id
    const problem = this.#gone(id)
    if (problem) return retry?.retry(problem, method, args, chain, timeout, timeoutFrom) ?? rejected(problem, trace)
    const { ledger, serialization } = this.#host
    const headers = trace?.headersFor(false)
    const callId = (this.#callIds = (this.#callIds + 1) >>> 0)
    let head: Buffer
    let body: Buffer
    try {
      body = serialization.encode(args)
      head = this.#callHead(route, method, callId, chain, timeout, headers)
    } catch (e) {
      return rejected(markNotDelivered(e as Error), trace)
    }
    const peer = route.peer
    // Arguments are on the wire now; the pending call does not keep them alive.
    const call = new PendingCall(
      ledger,
      method,
      NO_ARGS,
      chain,
      timeout,
      timeoutFrom,
      id,
      ledger.metrics.callStarted(true),
      peer.pending,
      callId,
      headers,
      trace,
    )
    if (retry) {
      call.retry = retry
      call.args = args // kept for the retry
    }
    const promise = promiseOf(call)
    peer.pending.set(callId, call)
    ledger.deadlines.add(call, timeout)
    try {
      this.transport.send(peer.assoc, 'user', { type: FrameType.Call, head, body, uid: id.node.uid, callId })
    } catch (e) {
      call.fail(markNotDelivered(e))
    }
    return promise
  }

  /**
   * The Call header; trace headers go only to a peer that takes them (protocol 1.2, this
   * incarnation), and headers past the limits are left out rather than failing the call.
   */
  #callHead(route: RemoteRoute, method: string, callId: number, chain: string, timeoutMs: number, headers: EnvelopeHeaders | undefined): Buffer {
    const segment = route.segment(method)
    const head = { callId, incarnation: route.id.incarnation, chain, timeoutMs, headers: undefined as EnvelopeHeaders | undefined }
    if (headers !== undefined && supportsHeaders(route.peer.assoc, route.id.node.uid)) {
      try {
        return encodeCallHeadWith(segment, { ...head, headers })
      } catch (e) {
        if (!(e instanceof EnvelopeError)) throw e
        this.#host.log.debug({ reason: e.message }, 'trace headers left out of a call: over the limits')
      }
    }
    return encodeCallHeadWith(segment, head)
  }

  /** The OneWay header: the cached one when there is no chain and no trace headers (the common case). */
  #oneWayHead(route: RemoteRoute, method: string, chain: string, headers: EnvelopeHeaders | undefined): Buffer {
    const id = route.id
    if (headers !== undefined && supportsHeaders(route.peer.assoc, id.node.uid)) {
      try {
        return encodeOneWayHeadWith(route.segment(method), { incarnation: id.incarnation, chain, headers })
      } catch (e) {
        if (!(e instanceof EnvelopeError)) throw e
        this.#host.log.debug({ reason: e.message }, 'trace headers left out of a one-way message: over the limits')
      }
    }
    return chain === '' ? route.oneWayHead(method) : encodeOneWayHeadWith(route.segment(method), { incarnation: id.incarnation, chain })
  }

  /** A one-way message through `route`; delivery failures are logged, encoding errors throw. */
  tell(route: RemoteRoute, method: string, args: unknown[], chain: string, trace: CallTrace | undefined): void {
    const id = route.id
    const log = this.#host.log
    const problem = this.#gone(id)
    if (problem) {
      log.debug({ target: id.toString(), method, reason: problem.message }, 'one-way message dropped')
      return
    }
    const body = this.#host.serialization.encode(args)
    const head = this.#oneWayHead(route, method, chain, trace?.headersFor(false))
    try {
      this.transport.send(route.peer.assoc, 'user', { type: FrameType.OneWay, head, body, uid: id.node.uid, callId: undefined })
    } catch (e) {
      log.debug({ target: id.toString(), method, err: e }, 'one-way message dropped')
    }
  }

  /** Sends the outcome of an inbound call back to its caller (that incarnation only). */
  reply(peer: Peer, callerUid: string, callId: number, ok: boolean, value: unknown): void {
    const assoc = peer.assoc
    const log = this.#host.log
    if (assoc.peer?.uid !== callerUid) {
      log.debug({ callId }, 'reply dropped: the calling node incarnation is gone')
      return
    }
    const serialization = this.#host.serialization
    let payload: Buffer
    try {
      payload = serialization.encode(value)
    } catch (e) {
      // The result (or error) cannot cross the wire: tell the caller why instead of leaving it to time out.
      ok = false
      payload = serialization.encode(e instanceof SerializationError ? e : new SerializationError(`Could not encode the reply: ${(e as Error).message}`))
    }
    if (!ok && !(value instanceof ShoalError)) log.debug({ err: value }, 'distributed method threw')
    const refused = !ok && isNotDelivered(value)
    try {
      this.transport.send(assoc, 'user', {
        type: FrameType.Reply,
        head: encodeReplyHead({ callId, ok, refused }),
        body: payload,
        uid: callerUid,
        callId: undefined,
      })
    } catch (e) {
      log.warn({ err: e, peer: formatNode(assoc.peer) }, 'could not send a reply')
    }
  }

  // ---- inbound -----------------------------------------------------------------------------

  #transportHandler(): TransportHandler {
    const metrics = this.#host.ledger.metrics
    return {
      frame: (assoc, type, buf, start, end, inbound) => this.#onFrame(this.#peer(assoc), type, buf, start, end, inbound),
      dropped: (assoc, msg, error) => {
        if (msg.callId !== undefined) this.#peers.get(assoc)?.pending.get(msg.callId)?.fail(markNotDelivered(error))
      },
      associationLost: (assoc, peer, reason, gone) => {
        const error = gone
          ? new NodeDownError(`Node ${formatNode(peer)} shut down; the call may or may not have run.`)
          : new NodeUnreachableError(`Connection to ${formatNode(peer)} was lost (${reason}); the call may or may not have run.`)
        this.#failPending(assoc, error, () => true)
        if (gone) this.#host.nodeGone(peer)
      },
      refusedByPeer: (reason) => this.#host.refusedByPeer(reason),
      incarnationReplaced: (assoc, old) => {
        const error = new NodeDownError(`Node ${formatNode(old)} was replaced by a new incarnation; the call may or may not have run.`)
        this.#failPending(assoc, error, (call) => call.target.node.uid === old.uid)
        this.#host.nodeGone(old)
      },
      metrics: {
        bytes: (d, n) => metrics.bytes(d, n),
        frames: (d, n) => metrics.frames(d, n),
        write: () => metrics.write(),
        associations: (n) => metrics.associations.set(n),
        refused: (reason) => metrics.refused.labels(reason).inc(),
        inboundPaused: () => metrics.inboundPaused.inc(),
      },
    }
  }

  #failPending(assoc: Association, error: Error, which: (call: PendingCall) => boolean): void {
    const pending = this.#peers.get(assoc)?.pending
    if (pending) for (const call of pending.values()) if (which(call)) call.fail(error)
  }

  /** A frame whose body is `buf[start, end)` (see FrameSink: no view of it is made on the call path). */
  #onFrame(peer: Peer, type: number, buf: Buffer, start: number, end: number, inbound: InboundBudget): void {
    switch (type) {
      case FrameType.Call:
        return this.#onCall(peer, buf, start, end, inbound)
      case FrameType.Reply:
        return this.#onReply(peer, buf, start, end)
      case FrameType.OneWay:
        return this.#onOneWay(peer, buf, start, end, inbound)
      case FrameType.Control:
        return this.#host.control.dispatch(peer.assoc.peer!, buf.subarray(start, end))
      default:
        throw new Error(`unknown frame type ${type}`)
    }
  }

  // An inbound call or one-way message that reaches its target takes its frame bytes from the
  // connection's inbound budget as it is delivered and gives them back exactly once, when its
  // invocation settles (succeed or fail: its turn finished, or the mailbox refused it, or the actor
  // stopped before it started). Refusals before delivery answer at once and hold nothing.

  #onCall(peer: Peer, buf: Buffer, start: number, end: number, inbound: InboundBudget): void {
    const env = readCall(buf, start, end, peer.targets)
    const caller = peer.assoc.peer!.uid
    const resolved = this.#known(peer, env) ?? this.#resolve(peer, env, false)
    if (resolved instanceof Error) return this.reply(peer, caller, env.callId, false, resolved)
    const { target, method } = resolved
    const args = this.#args(peer, env, false)
    if (args instanceof Error) return this.reply(peer, caller, env.callId, false, this.#refused(peer, env, target, args, false))
    const credit = inbound.take(end - start + 5)
    const now = this.#host.now()
    const inv = new InboundCall(this, peer, caller, env.callId, env.method, args, env.chain, now, now + env.timeoutMs, env.headers, credit)
    target.deliver(inv, method)
  }

  #onOneWay(peer: Peer, buf: Buffer, start: number, end: number, inbound: InboundBudget): void {
    const env = readOneWay(buf, start, end, peer.targets)
    const resolved = this.#known(peer, env) ?? this.#resolve(peer, env, true)
    if (resolved instanceof Error) return this.#dropped(resolved)
    const { target, method } = resolved
    const args = this.#args(peer, env, true)
    if (args instanceof Error) return this.#dropped(this.#refused(peer, env, target, args, true))
    const credit = inbound.take(end - start + 5)
    target.deliver(new InboundOneWay(this.#host.log, env.method, args, env.chain, env.headers, peer.assoc.peer, credit), method)
  }

  #dropped(error: Error): void {
    this.#host.log.debug({ reason: error.message }, 'one-way message dropped')
  }

  /**
   * The actor and method the previous envelope from this peer resolved to, if this one has the same
   * target (the decoder cache matched: same node uid, path and method) and incarnation, that actor
   * is still alive, and the node still takes calls: the same answer `#target` and the method check
   * would give, without the table lookups. Only actors (incarnation > 0) are remembered: a
   * well-known target's path may be given to another target.
   */
  #known(peer: Peer, env: ReadCall | ReadOneWay): Resolved | undefined {
    const known = peer.targets.current?.resolved
    if (
      known === undefined ||
      known.incarnation !== env.incarnation ||
      known.generation !== this.#host.actors.generation ||
      !known.target.alive ||
      !this.#host.running()
    )
      return undefined
    return known
  }

  /**
   * The target and declared method of an envelope the cache did not know, or the refusal (no such
   * target, shutting down, an undeclared method); remembered for the next envelope when it is an
   * actor's (not a well-known target's) with a declared method.
   */
  #resolve(peer: Peer, env: ReadCall | ReadOneWay, oneWay: boolean): Resolved | Error {
    const target = this.#target(peer, env, oneWay)
    if (target instanceof Error) return target
    const method = this.#host.actors.methodOf(target, env.method)
    if (method === null) return this.#undeclared(peer, env, target, oneWay)
    const actors = this.#host.actors
    const resolved: Resolved = { target, method, incarnation: env.incarnation, generation: actors.generation }
    const entry = peer.targets.current
    if (entry !== undefined && actors.remembers(target, env.incarnation, env.path, method)) entry.resolved = resolved
    return resolved
  }

  // Inbound calls and one-way messages share three steps, in this order: the target (refused while
  // shutting down), the one method check (undeclared methods are refused before the arguments are
  // even decoded), the arguments. Each returns the refusal, `notDelivered`, instead of throwing.

  #target(peer: Peer, env: ReadCall | ReadOneWay, oneWay: boolean): LocalTarget | Error {
    const host = this.#host
    const target = host.running()
      ? host.actors.inboundTarget(env.uid, env.path, env.incarnation)
      : markNotDelivered(new SystemShutDownError(`Node ${formatNode(host.node())} is shutting down.`))
    return target instanceof Error ? this.#refused(peer, env, undefined, target, oneWay) : target
  }

  #args(peer: Peer, env: ReadCall | ReadOneWay, oneWay: boolean): unknown[] | Error {
    const host = this.#host
    try {
      const args = host.serialization.decodeFrom(env.buf, env.argsAt, env.end)
      if (Array.isArray(args)) return args
      throw new SerializationError('Call arguments must be an array.')
    } catch (e) {
      host.ledger.metrics.decodeErrors.inc()
      host.log.warn(
        { peer: peer.assoc.peer && formatNode(peer.assoc.peer), method: env.method, reason: (e as Error).message },
        oneWay ? 'refused one-way message' : 'refused call arguments',
      )
      return markNotDelivered(e as Error)
    }
  }

  #undeclared(peer: Peer, env: ReadCall | ReadOneWay, target: LocalTarget, oneWay: boolean): Error {
    const at = this.#refusal(peer, env, target, oneWay)
    return this.#publish(at, this.#host.actors.undeclared(target, at))
  }

  #refused(peer: Peer, env: ReadCall | ReadOneWay, target: LocalTarget | undefined, error: Error, oneWay: boolean): Error {
    return this.#publish(this.#refusal(peer, env, target, oneWay), error)
  }

  /** Publishes a refusal (channel and trace) and returns it. */
  #publish(at: Refusal, error: Error): Error {
    this.#host.actors.refused(at, error)
    return error
  }

  #refusal(peer: Peer, env: ReadCall | ReadOneWay, target: LocalTarget | undefined, oneWay: boolean): Refusal {
    const id = this.#host.actors.inboundId(env.uid, env.path, env.incarnation)
    return { target: id, actorType: target?.info?.name, method: env.method, from: peer.assoc.peer, headers: env.headers, oneWay }
  }

  #onReply(peer: Peer, buf: Buffer, start: number, end: number): void {
    // Validate before looking up: a malformed reply is a protocol violation even when late.
    const { callId, ok, refused } = readReply(buf, start, end)
    const call = peer.pending.get(callId)
    if (!call) {
      this.#host.log.debug({ callId }, 'late reply dropped (the call already timed out or failed)')
      return
    }
    let value: unknown
    try {
      value = this.#host.serialization.decodeFrom(buf, start + REPLY_PAYLOAD_AT, end)
    } catch (e) {
      this.#host.ledger.metrics.decodeErrors.inc()
      call.fail(e)
      return
    }
    if (ok) call.succeed(value)
    else call.fail(refused ? markNotDelivered(value) : value)
  }
}

/** An invocation that arrived from another node; its outcome goes back in a Reply frame. */
class InboundCall implements Invocation {
  constructor(
    readonly remoting: Remoting,
    readonly peer: Peer,
    /** The caller's node incarnation: the reply is for it only, never for a successor at its endpoint. */
    readonly callerUid: string,
    readonly callId: number,
    readonly method: string,
    readonly args: unknown[],
    readonly chain: string,
    /** When it was taken off the wire, on the system's monotonic clock (`now()`); see Invocation.receivedAt. */
    readonly receivedAt: number,
    /** When the caller gives up, on the same clock, from the timeout it sent. */
    readonly deadline: number,
    readonly headers: EnvelopeHeaders | undefined,
    /** Its bytes in the connection's inbound budget, given back as it settles. */
    readonly credit: InboundCredit,
  ) {}
  /** The calling node. */
  get from(): ClusterNode | undefined {
    return this.peer.assoc.peer
  }
  succeed(value: unknown): void {
    this.credit.release()
    this.remoting.reply(this.peer, this.callerUid, this.callId, true, value)
  }
  fail(error: unknown): void {
    this.credit.release()
    this.remoting.reply(this.peer, this.callerUid, this.callId, false, error)
  }
}

/** A one-way message that arrived from another node; it holds its bytes in the inbound budget until it settles. */
class InboundOneWay extends OneWayInvocation {
  constructor(
    log: { debug(obj: object, msg: string): void },
    method: string,
    args: unknown[],
    chain: string,
    headers: EnvelopeHeaders | undefined,
    from: ClusterNode | undefined,
    readonly credit: InboundCredit,
  ) {
    super(log, method, args, chain, headers, from)
  }
  override succeed(): void {
    this.credit.release()
  }
  override fail(error: unknown): void {
    this.credit.release()
    super.fail(error)
  }
}

/** A call that failed before it was sent: the trace hears of it, the caller gets the rejection. */
function rejected(error: Error, trace: CallTrace | undefined): Promise<never> {
  trace?.settled(false, error)
  return Promise.reject(error)
}
