/**
 * Dispatcher: where every call through a ref enters the system. It makes the local/remote decision
 * once per ref (a Route, kept on the ref), attaches the call chain (re-entrancy) and the timeout,
 * and wraps the call in the `shoal.call` tracing channel when someone listens.
 * @module
 */
import type { ActorId } from '../actor/ActorId.ts'
import type { ActorRefImpl } from '../actor/ActorRef.ts'
import { outgoingChain } from '../actor/CallContext.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { LocalActors } from '../actor/LocalActors.ts'
import type { Invoker, Route } from '../actor/Route.ts'
import { markNotDelivered, SystemShutDownError } from '../errors.ts'
import { type CallTraceContext, traceCall } from '../observability/CallTracing.ts'
import { tracingActive } from '../observability/Channels.ts'
import type { Remoting } from '../remoting/Remoting.ts'

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

  /** The route to `id`: the one place that decides local or remote. */
  routeTo(id: ActorId): Route {
    return id.node.uid === this.#host.node().uid ? this.#host.actors.route(id) : this.#host.remoting.route(id)
  }

  invoke(ref: ActorRefImpl, method: string, args: unknown[]): Promise<unknown> {
    if (!this.#host.running()) return Promise.reject(new SystemShutDownError())
    return this.#send(ref, method, args, outgoingChain(), ref.timeout ?? this.#host.callTimeout)
  }

  tell(ref: ActorRefImpl, method: string, args: unknown[]): void {
    if (!this.#host.running()) throw new SystemShutDownError()
    const route = (ref.route ??= this.routeTo(ref.id))
    route.tell(method, args, outgoingChain())
  }

  /** A call on behalf of an invocation received elsewhere: its chain, an explicit timeout. */
  forward(ref: ActorRefImpl, method: string, args: unknown[], chain: string, timeout: number): Promise<unknown> {
    if (!this.#host.running()) return Promise.reject(markNotDelivered(new SystemShutDownError()))
    return this.#send(ref, method, args, chain, timeout)
  }

  #send(ref: ActorRefImpl, method: string, args: unknown[], chain: string, timeout: number): Promise<unknown> {
    const route = (ref.route ??= this.routeTo(ref.id))
    if (!tracingActive()) return route.call(method, args, chain, timeout, undefined)
    const headers: Record<string, string> = {}
    const ctx: CallTraceContext = {
      side: 'caller',
      actorType: ref.info?.name,
      method,
      target: ref.id.toString(),
      targetNode: ref.id.node,
      local: route.local,
      headers,
    }
    // A start subscriber may have added trace context: it travels in the envelope.
    return traceCall(ctx, () => route.call(method, args, chain, timeout, hasKeys(headers) ? sent(headers, route.local) : undefined))
  }
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true
  return false
}

/** Headers as the callee sees them: a remote call's travel encoded; a local call gets a frozen copy, as a remote callee would. */
function sent(headers: Record<string, string>, local: boolean): Record<string, string> {
  return local ? Object.freeze(Object.assign(Object.create(null) as Record<string, string>, headers)) : headers
}
