/**
 * CallTracing: runs one call as a traced call on the `shoal.call` TracingChannel (see
 * Channels.ts), on the caller and on the callee, and publishes refusals. The call path calls it
 * only while `tracingActive()`: nothing is allocated or published otherwise.
 *
 * Every traced call publishes `start` (stores bound with `bindStore` entered for the synchronous
 * part), `end` when the synchronous part returns, `error` if it failed, then `asyncStart` and
 * `asyncEnd` once it settled: always, also for a synchronous callee method and for a refusal, so a
 * subscriber ends its span on `asyncEnd` whatever happened. `context.outcome` is `'ok'` or the
 * error's stable code (`'error'` without one) from `error`, or from `end` when the call finished
 * synchronously.
 *
 * Gotchas: on the caller a `start` subscriber may add entries to `context.headers` (a trace
 * context such as `traceparent`); they travel with a remote call in its envelope and reach the
 * callee's context as `headers`. Subscribers run on the call path: keep them short.
 * @module
 */
import { isThenable } from '../util/isThenable.ts'
import { type CallTraceContext, callTracing } from './Channels.ts'

export type { CallTraceContext }

/** An error's stable code, or 'error'. */
export function outcomeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' ? code : 'error'
}

/** Runs `fn` as the traced call `ctx` (see the module comment); returns what `fn` returns. */
export function traceCall<R>(ctx: CallTraceContext, fn: () => R): R {
  return callTracing.start.runStores(ctx, () => {
    let result: R
    try {
      result = fn()
    } catch (e) {
      failed(ctx, e)
      callTracing.end.publish(ctx)
      settled(ctx)
      throw e
    }
    if (!isThenable(result)) {
      ctx.result = result
      ctx.outcome = 'ok'
      callTracing.end.publish(ctx)
      settled(ctx)
      return result
    }
    callTracing.end.publish(ctx)
    return result.then(
      (value) => {
        ctx.result = value
        ctx.outcome = 'ok'
        settled(ctx)
        return value
      },
      (error: unknown) => {
        failed(ctx, error)
        settled(ctx)
        throw error
      },
    ) as R
  })
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
