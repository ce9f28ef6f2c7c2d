/**
 * The default logger of a library node: quiet and out of the way of the program's own output.
 * @module
 */
import { hostname } from 'node:os'
import { type Logger, pino } from 'pino'

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
