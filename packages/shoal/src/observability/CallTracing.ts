/**
 * CallTracing: runs one call as a traced call on the `shoal.call` TracingChannel (see
 * Channels.ts), on the caller and on the callee, and publishes refusals. The call path calls it
 * only while `tracingActive()`: nothing is allocated or published otherwise.
 *
 * Every traced call publishes `start` (stores bound with `bindStore` entered for the synchronous
 * part), `end` when the synchronous part returns, `error` if it failed, then `asyncStart` and
 * `asyncEnd` once it settled: always, also for a synchronous callee method and for a refusal, so a
 * subscriber ends its span on `asyncEnd` whatever happened. `context.outcome` is `'ok'` or the
 * error's stable code (`'error'` without one) from `error`, or from `asyncStart` on success.
 *
 * Gotchas: on the caller a `start` subscriber may add entries to `context.headers` (a trace
 * context such as `traceparent`); they travel with a remote call in its envelope and reach the
 * callee's context as `headers`. Subscribers run on the call path: keep them short.
 * @module
 */
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { EnvelopeHeaders } from '../wire/Envelope.ts'
import { type CallTraceContext, callTracing } from './Channels.ts'

export type { CallTraceContext }

/** An error's stable code, or 'error'. */
export function outcomeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : 'error'
}

/**
 * One traced call in progress, and itself the context published on `shoal.call` (one object per
 * traced call and side, not two), without a promise of its own: the call path tells it
 * when the synchronous dispatch returned (`dispatched`: publishes `end`) and when the call settled
 * (`settled`: `error`, `asyncStart`, `asyncEnd`). A call that settles while still being dispatched
 * (a synchronous local method, a refusal) has its settlement published after `end`, in the order
 * of Node's TracingChannel contract. It adds no promise to the call.
 */
export class CallTrace implements CallTraceContext {
  readonly side: 'caller' | 'callee'
  readonly actorType: string | undefined
  readonly method: string
  readonly target: string
  readonly targetNode: ClusterNode
  readonly local: boolean
  readonly oneWay: boolean
  readonly forwarded: EnvelopeHeaders | undefined
  enter: (<R>(fn: () => R) => R) | undefined = undefined
  outcome: string | undefined = undefined
  result: unknown = undefined
  error: unknown = undefined
  /** Callee: what arrived. Caller: made on first read (most subscribers never touch it), from `forwarded`. */
  #headers: Record<string, string> | EnvelopeHeaders | undefined
  /** DISPATCHING until `dispatched`; EARLY when it settled meanwhile (then `#ok`, `#value` hold how). */
  #phase = DISPATCHING
  #ok = false
  #value: unknown

  constructor(
    side: 'caller' | 'callee',
    actorType: string | undefined,
    method: string,
    target: string,
    targetNode: ClusterNode,
    local: boolean,
    oneWay: boolean,
    forwarded: EnvelopeHeaders | undefined,
    headers: EnvelopeHeaders | undefined,
  ) {
    this.side = side
    this.actorType = actorType
    this.method = method
    this.target = target
    this.targetNode = targetNode
    this.local = local
    this.oneWay = oneWay
    this.forwarded = forwarded
    this.#headers = headers
  }

  /** A subscriber read or set `headers` (until then a caller sends `forwarded` as it is). */
  #touched = false

  get headers(): Record<string, string> | EnvelopeHeaders | undefined {
    if (!this.#touched) {
      this.#touched = true
      if (this.side === 'caller') this.#headers = this.forwarded === undefined ? {} : { ...this.forwarded }
    }
    return this.#headers
  }

  set headers(value: Record<string, string> | EnvelopeHeaders | undefined) {
    this.#touched = true
    this.#headers = value
  }

  /** The headers to send: undefined when there are none; for a local callee a frozen copy, as a remote one gets. */
  headersFor(local: boolean): Record<string, string> | undefined {
    const headers = this.#touched ? this.#headers : this.forwarded
    if (headers === undefined || !hasKeys(headers)) return undefined
    return local ? Object.freeze(Object.assign(Object.create(null) as Record<string, string>, headers)) : (headers as Record<string, string>)
  }

  /** The synchronous part returned: publishes `end`, then a settlement that came meanwhile. */
  dispatched(): void {
    const early = this.#phase === EARLY
    this.#phase = DISPATCHED
    callTracing.end.publish(this)
    if (early) publishSettled(this, this.#ok, this.#value)
  }

  /** The call settled with `value` (a result, or the error when `ok` is false). */
  settled(ok: boolean, value: unknown): void {
    if (this.#phase === DISPATCHED) return publishSettled(this, ok, value)
    this.#phase = EARLY
    this.#ok = ok
    this.#value = value
  }
}

/** CallTrace phases: being dispatched, settled while being dispatched, dispatched. */
const DISPATCHING = 0
const EARLY = 1
const DISPATCHED = 2

function publishSettled(ctx: CallTraceContext, ok: boolean, value: unknown): void {
  if (ok) {
    ctx.result = value
    ctx.outcome = 'ok'
  } else failed(ctx, value)
  settled(ctx)
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true
  return false
}

/** Publishes a call refused before its method ran (no live actor, undeclared method…) as a failed traced call. */
export function traceRefusal(ctx: CallTraceContext, error: unknown): void {
  callTracing.start.runStores(ctx, () => {
    failed(ctx, error)
    callTracing.end.publish(ctx)
    settled(ctx)
  })
}

function failed(ctx: CallTraceContext, error: unknown): void {
  ctx.error = error
  ctx.outcome = outcomeOf(error)
  callTracing.error.publish(ctx)
}

function settled(ctx: CallTraceContext): void {
  callTracing.asyncStart.publish(ctx)
  callTracing.asyncEnd.publish(ctx)
}
