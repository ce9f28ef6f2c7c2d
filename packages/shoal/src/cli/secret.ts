/**
 * `shoal secret`: prints a fresh cluster secret, 32 random bytes (256 bits) from the OS's CSPRNG,
 * as 64 hex characters (or 43 base64url characters with `--base64url`), and a newline.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'

export const SECRET_USAGE = `Usage: shoal secret [--base64url]

Prints a fresh cluster secret: 32 random bytes (256 bits), as 64 hex characters (default) or 43
base64url characters. Give the same one to every node and clusterd, e.g.
  export SHOAL_SECRET=$(npx shoal secret)
or keep it in a file readable only by the node's user and pass --secret-file.
`

/** Runs `shoal secret`; resolves with the exit code. */
export function secretCommand(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { base64url: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  })
  if (values.help) {
    process.stdout.write(SECRET_USAGE)
    return 0
  }
  const bytes = randomBytes(32)
  process.stdout.write(`${values.base64url ? bytes.toString('base64url') : bytes.toString('hex')}\n`)
  return 0
}
