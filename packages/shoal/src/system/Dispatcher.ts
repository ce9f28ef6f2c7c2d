/**
 * Dispatcher: where every call through a ref enters the system. It makes the local/remote decision
 * once per ref (a Route, kept on the ref), attaches the call chain (re-entrancy) and the timeout,
 * and wraps the call in the `shoal.call` tracing channel when someone listens.
 * @module
 */
import type { ActorId } from '../actor/ActorId.ts'
import { type ActorRefImpl, makeRef } from '../actor/ActorRef.ts'
import { outgoingChain } from '../actor/CallContext.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { ActorClassInfo } from '../actor/DistributedActor.ts'
import { ANYWHERE_UID, type LocalActors } from '../actor/LocalActors.ts'
import type { TimeoutSource } from '../actor/PendingCall.ts'
import type { Invoker, Route } from '../actor/Route.ts'
import { markNotDelivered, SystemShutDownError } from '../errors.ts'
import { CallTrace } from '../observability/CallTracing.ts'
import { callTracing, startHasStores, tracingActive } from '../observability/Channels.ts'
import type { Remoting } from '../remoting/Remoting.ts'
import type { EnvelopeHeaders } from '../wire/Envelope.ts'

export interface DispatcherHost {
  node(): ClusterNode
  running(): boolean
  readonly callTimeout: number
  readonly actors: LocalActors
  readonly remoting: Remoting
}

/** The system's `Invoker`: every ref's calls and one-way messages enter here. */
export class Dispatcher implements Invoker {
  readonly #host: DispatcherHost

  constructor(host: DispatcherHost) {
    this.#host = host
  }

  /** A ref to `id` (typed when `info` is given) whose calls enter here; its route is chosen on the first call. */
  refTo(id: ActorId, info: ActorClassInfo | undefined): ActorRefImpl {
    return makeRef(this, id, info, undefined, undefined)
  }

  /** The route to `id`: the one place that decides local or remote. */
  routeTo(id: ActorId): Route {
    const uid = id.node.uid
    return uid === this.#host.node().uid || uid === ANYWHERE_UID ? this.#host.actors.route(id) : this.#host.remoting.route(id)
  }

  invoke(ref: ActorRefImpl, method: string, args: unknown[]): Promise<unknown> {
    if (!this.#host.running()) return Promise.reject(new SystemShutDownError())
    const own = ref.timeout
    return own === undefined
      ? this.#send(ref, method, args, outgoingChain(), this.#host.callTimeout, 'callTimeout')
      : this.#send(ref, method, args, outgoingChain(), own, 'ref')
  }

  tell(ref: ActorRefImpl, method: string, args: unknown[]): void {
    if (!this.#host.running()) throw new SystemShutDownError()
    const route = (ref.route ??= this.routeTo(ref.id))
    if (!tracingActive()) return route.tell(method, args, outgoingChain(), undefined)
    // Traced, the sender's side of a one-way message ends once it is handed to the transport.
    const trace = this.#trace(ref, route, method, true, undefined)
    try {
      if (startHasStores()) callTracing.start.runStores(trace, route.tell, route, method, args, outgoingChain(), trace)
      else {
        callTracing.start.publish(trace)
        route.tell(method, args, outgoingChain(), trace)
      }
    } catch (e) {
      trace.settled(false, e)
      trace.dispatched()
      throw e
    }
    trace.settled(true, undefined)
    trace.dispatched()
  }

  /**
   * A call on behalf of an invocation received elsewhere (a proxy's hop): its chain, an explicit
   * timeout, and the trace headers it arrived with (a tracer parents the hop to them).
   */
  forward(ref: ActorRefImpl, method: string, args: unknown[], chain: string, timeout: number, headers?: EnvelopeHeaders): Promise<unknown> {
    if (!this.#host.running()) return Promise.reject(markNotDelivered(new SystemShutDownError()))
    return this.#send(ref, method, args, chain, timeout, 'forward', headers)
  }

  #send(
    ref: ActorRefImpl,
    method: string,
    args: unknown[],
    chain: string,
    timeout: number,
    timeoutFrom: TimeoutSource,
    forwarded?: EnvelopeHeaders,
  ): Promise<unknown> {
    const route = (ref.route ??= this.routeTo(ref.id))
    if (!tracingActive()) return route.call(method, args, chain, timeout, timeoutFrom, undefined)
    // The route sends what a start subscriber put in the trace's headers and tells it when the call settles.
    const trace = this.#trace(ref, route, method, false, forwarded)
    let promise: Promise<unknown>
    if (startHasStores()) promise = callTracing.start.runStores(trace, route.call, route, method, args, chain, timeout, timeoutFrom, trace)
    else {
      callTracing.start.publish(trace)
      promise = route.call(method, args, chain, timeout, timeoutFrom, trace)
    }
    trace.dispatched()
    return promise
  }

  /** The caller's side of a traced call or one-way message; a forwarded hop starts with the headers it arrived with. */
  #trace(ref: ActorRefImpl, route: Route, method: string, oneWay: boolean, forwarded: EnvelopeHeaders | undefined): CallTrace {
    const id = ref.id
    // Its headers are made if a subscriber reads them (from `forwarded`), not per call.
    return new CallTrace('caller', ref.info?.name, method, id.toString(), id.node, route.local, oneWay, forwarded, undefined)
  }
}
