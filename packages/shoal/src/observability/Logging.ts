/**
 * The default logger of a library node: quiet and out of the way of the program's own output.
 * @module
 */
import { hostname } from 'node:os'
import { type Bindings, type Logger, pino } from 'pino'
import { traceFields } from './OpenTelemetry.ts'

/** Level of the default logger when neither `logLevel` nor `SHOAL_LOG_LEVEL` says otherwise. */
export const DEFAULT_LOG_LEVEL = 'warn'

/**
 * The logger a system (or a SWIM member) uses when it is given none: pino JSON lines on stderr,
 * at `level`, else `SHOAL_LOG_LEVEL`, else `warn`, so a library embedded in an application prints
 * nothing while all is well and never writes to its stdout. The CLI passes its own logger (info,
 * stdout).
 */
export function defaultLogger(level?: string): Logger {
  return pino(
    { level: level ?? (process.env.SHOAL_LOG_LEVEL || DEFAULT_LOG_LEVEL), base: { pid: process.pid, hostname: hostname() } },
    pino.destination({ dest: 2, sync: true }),
  )
}

type LogFormatter = (object: object) => object

/**
 * A child of `base` whose lines written inside a traced call carry `trace_id`, `span_id` and
 * `trace_flags` of the active span (after `base`'s own log formatter, if it has one).
 */
export function tracedChild(base: Logger, bindings: Bindings): Logger {
  const own = (base as unknown as Record<symbol, { log?: LogFormatter } | undefined>)[pino.symbols.formattersSym]?.log
  const log: LogFormatter = (object) => {
    const o = own ? own(object) : object
    const ids = traceFields()
    return ids.trace_id === undefined ? o : { ...o, ...ids }
  }
  return base.child(bindings, { formatters: { log } })
}
