/**
 * OpenTelemetry: spans for every call, one-way message and event-sourced emit, with W3C trace
 * context carried across nodes in the envelope's header map. Shoal depends on
 * `@opentelemetry/api` only; an application that registers an SDK gets spans, one that does not
 * subscribes nothing and pays nothing (the call path only builds trace contexts while a
 * `shoal.call` subscriber exists).
 *
 * How: a subscriber of the `shoal.call` and `shoal.emit` TracingChannels (Channels.ts), the same
 * source metrics and logs read.
 * - Caller: a CLIENT span (PRODUCER for a one-way message) under the active context, or under the
 *   trace context of the invocation a proxy forwards (singleton proxies, virtual-actor routers);
 *   `propagation.inject` writes its context into the call's headers, so user propagators work.
 * - Callee: `propagation.extract` from the headers that arrived, a SERVER span (CONSUMER), and the
 *   method runs inside it (`context.with`): calls it makes, emits and pino lines join the trace.
 * - Names `<ActorType>/<method>`, attributes of the RPC semantic conventions (`rpc.system.name`
 *   `shoal`, `rpc.method`, `server.address`/`server.port` of the target node,
 *   `rpc.response.status_code` = the outcome code, `error.type` on failure); the actor id is an
 *   attribute (`shoal.actor.id`), never part of a name.
 *
 * When to use: nothing to do beyond registering an SDK (tracer provider, context manager, W3C
 * propagator, as NodeSDK does) **before** `ClusterSystem.start`: the default `tracing: 'auto'`
 * turns this on when a provider is registered then. `tracing: true` turns it on regardless (spans
 * go to whatever provider is registered later), `false` keeps it off.
 *
 * Gotchas: channels are process-wide, so one subscription serves every system in the process; it
 * stays while any system that enabled tracing runs. A callee's span starts when its turn starts,
 * so time spent waiting in the mailbox shows as the gap between CLIENT and SERVER.
 * @module
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api'
import { type CallTraceContext, callTracing, type EmitTraceContext, emitTracing } from './Channels.ts'

/** The instrumentation scope (tracer name) of Shoal's spans. */
export const TRACER_NAME = 'shoal'

/** `ClusterSystem.start({ tracing })`: see the module comment. */
export type TracingSetting = 'auto' | boolean

const SPAN = Symbol('shoal.otel.span')
// A ProxyTracer: it follows whatever provider is registered, so it may be made once, here.
const tracer = trace.getTracer(TRACER_NAME)
type WithSpan = { [SPAN]?: Span }

const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value
  },
}
const getter: TextMapGetter<Readonly<Record<string, string>>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
}

/**
 * Whether an OpenTelemetry SDK registered a tracer provider: the API's no-op tracer answers a span
 * without a parent with an invalid span context, any SDK with a valid one (even when sampled out).
 * The probe span is not ended, so nothing is exported.
 */
export function otelSdkRegistered(): boolean {
  return trace.isSpanContextValid(trace.getTracer(TRACER_NAME).startSpan('shoal.probe', {}, ROOT_CONTEXT).spanContext())
}

/** The span name: `<ActorType>/<method>` (the type from the target's path when the caller does not know it). */
export function spanName(actorType: string | undefined, target: string, method: string): string {
  return `${actorType ?? typeFromTarget(target)}/${method}`
}

// A virtual actor's id names its type: `…/virtual/<Type>/<id>#0`.
function typeFromTarget(target: string): string {
  const m = /\/virtual\/([^/]+)\//.exec(target)
  return m ? m[1]! : 'actor'
}

function kindOf(ctx: CallTraceContext): SpanKind {
  if (ctx.side === 'caller') return ctx.oneWay ? SpanKind.PRODUCER : SpanKind.CLIENT
  return ctx.oneWay ? SpanKind.CONSUMER : SpanKind.SERVER
}

function parentOf(ctx: CallTraceContext): Context {
  if (ctx.side === 'callee') return ctx.headers ? propagation.extract(ROOT_CONTEXT, ctx.headers, getter) : ROOT_CONTEXT
  return ctx.forwarded ? propagation.extract(ROOT_CONTEXT, ctx.forwarded, getter) : context.active()
}

function onCallStart(message: unknown): void {
  const ctx = message as CallTraceContext & WithSpan
  const name = spanName(ctx.actorType, ctx.target, ctx.method)
  const parent = parentOf(ctx)
  const node = ctx.targetNode.endpoint
  const span = tracer.startSpan(
    name,
    {
      kind: kindOf(ctx),
      attributes: {
        'rpc.system.name': 'shoal',
        'rpc.method': name,
        'server.address': node.host,
        'server.port': node.port,
        'shoal.actor.id': ctx.target,
        'shoal.node': node.name,
        ...(ctx.forwarded ? { 'shoal.forwarded': true } : {}),
      },
    },
    parent,
  )
  ctx[SPAN] = span
  const active = trace.setSpan(parent, span)
  if (ctx.side === 'caller') {
    if (ctx.headers) propagation.inject(active, ctx.headers as Record<string, string>, setter)
  } else ctx.enter = (fn) => context.with(active, fn)
}

function onCallEnd(message: unknown): void {
  const ctx = message as CallTraceContext & WithSpan
  const span = ctx[SPAN]
  if (!span) return
  ctx[SPAN] = undefined
  const outcome = ctx.outcome ?? 'ok'
  span.setAttribute('rpc.response.status_code', outcome)
  if (outcome !== 'ok') {
    span.setAttribute('error.type', outcome)
    const message = (ctx.error as { message?: unknown } | undefined)?.message
    span.setStatus({ code: SpanStatusCode.ERROR, message: typeof message === 'string' ? message : outcome })
  }
  span.end()
}

function onEmitStart(message: unknown): void {
  const ctx = message as EmitTraceContext & WithSpan
  const span = tracer.startSpan(`${ctx.actorType}/emit`, {
    kind: SpanKind.INTERNAL,
    attributes: { 'shoal.persistence_id': ctx.persistenceId, 'shoal.events': ctx.events, 'shoal.event.types': [...ctx.types] },
  })
  ctx[SPAN] = span
}

function onEmitEnd(message: unknown): void {
  const ctx = message as EmitTraceContext & WithSpan
  const span = ctx[SPAN]
  if (!span) return
  ctx[SPAN] = undefined
  if (ctx.error !== undefined) {
    const code = (ctx.error as { code?: unknown }).code
    span.setAttribute('error.type', typeof code === 'string' ? code : 'error')
    span.setStatus({ code: SpanStatusCode.ERROR, message: String((ctx.error as { message?: unknown }).message ?? ctx.error) })
  }
  span.end()
}

let users = 0

/**
 * Subscribes the bridge (once per process, however many systems ask); the returned function
 * unsubscribes this system's use, and the bridge goes once the last user has gone.
 */
export function useOpenTelemetry(): () => void {
  if (users++ === 0) {
    callTracing.start.subscribe(onCallStart)
    callTracing.asyncEnd.subscribe(onCallEnd)
    emitTracing.start.subscribe(onEmitStart)
    emitTracing.asyncEnd.subscribe(onEmitEnd)
  }
  let done = false
  return () => {
    if (done) return
    done = true
    if (--users === 0) {
      callTracing.start.unsubscribe(onCallStart)
      callTracing.asyncEnd.unsubscribe(onCallEnd)
      emitTracing.start.unsubscribe(onEmitStart)
      emitTracing.asyncEnd.unsubscribe(onEmitEnd)
    }
  }
}

/**
 * The trace and span ids of the active span, for log lines (`trace_id`, `span_id`, `trace_flags`);
 * empty outside a span.
 */
export function traceFields(): Record<string, string> {
  const span = trace.getSpan(context.active())
  if (!span) return {}
  const sc = span.spanContext()
  if (!trace.isSpanContextValid(sc)) return {}
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: `0${sc.traceFlags.toString(16)}` }
}
