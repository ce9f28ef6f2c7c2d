/**
 * CallTracing: the `shoal.call` TracingChannel around every call, local and remote, on the caller
 * and on the callee. Nothing is published, and nothing allocated, unless someone subscribes.
 *
 * Events follow Node's TracingChannel contract: `start` (stores bound with `bindStore` are entered
 * for the synchronous part), `end` when the synchronous part returns, then `asyncStart` and
 * `asyncEnd` when the call settles; `error` before them when it fails (with `context.error`).
 * `context.outcome` is `'ok'` or the error's stable code (`'error'` for errors without one) by the
 * time `asyncStart` (or, for a synchronous callee method, `end`) is published.
 *
 * Gotchas: on the caller a `start` subscriber may add entries to `context.headers` (a trace
 * context such as `traceparent`); they travel with a remote call in its envelope and reach the
 * callee's context as `headers`. Subscribers run on the call path: keep them short.
 * @module
 */
import { type CallTraceContext, callTracing, tracingActive } from './Channels.ts'

export type { CallTraceContext }

/** `diagnostics_channel.tracingChannel('shoal.call')`. */
export const callChannel = callTracing

/** True while anyone subscribes to any `shoal.call` event: the one check on the untraced path. */
export const callTracingActive = tracingActive

/** An error's stable code, or 'error'. */
export function outcomeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : 'error'
}

/**
 * Runs `fn` as the traced call `ctx`: start (with bound stores entered), end, and when its result
 * settles error/asyncStart/asyncEnd. Works for synchronous results too (end carries the outcome).
 */
export function traceCall<R>(ctx: CallTraceContext, fn: () => R): R {
  return callChannel.start.runStores(ctx, () => {
    let result: R
    try {
      result = fn()
    } catch (e) {
      ctx.error = e
      ctx.outcome = outcomeOf(e)
      callChannel.error.publish(ctx)
      callChannel.end.publish(ctx)
      throw e
    }
    if (!isThenable(result)) {
      ctx.result = result
      ctx.outcome = 'ok'
      callChannel.end.publish(ctx)
      return result
    }
    callChannel.end.publish(ctx)
    return result.then(
      (value) => {
        ctx.result = value
        ctx.outcome = 'ok'
        callChannel.asyncStart.publish(ctx)
        callChannel.asyncEnd.publish(ctx)
        return value
      },
      (error: unknown) => {
        ctx.error = error
        ctx.outcome = outcomeOf(error)
        callChannel.error.publish(ctx)
        callChannel.asyncStart.publish(ctx)
        callChannel.asyncEnd.publish(ctx)
        throw error
      },
    ) as R
  })
}

/** Publishes a call refused before it ran (no live actor, undeclared method) as a failed traced call. */
export function traceRefusal(ctx: CallTraceContext, error: unknown): void {
  callChannel.start.runStores(ctx, () => {
    ctx.error = error
    ctx.outcome = outcomeOf(error)
    callChannel.error.publish(ctx)
    callChannel.end.publish(ctx)
  })
}

function isThenable(value: unknown): value is Promise<unknown> {
  return value instanceof Promise || (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function')
}
