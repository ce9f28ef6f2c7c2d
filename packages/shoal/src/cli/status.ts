/**
 * `shoal status`: asks a node's management endpoint (see `ManagementServer`) for the cluster
 * membership it sees and prints it as a table.
 * @module
 */
import { parseArgs } from 'node:util'

/** Help text of `shoal status`. */
export const STATUS_USAGE = `Usage: shoal status --http [host:]port [--json]

Prints the cluster membership as seen by one node, from its management endpoint
(GET /cluster/members).

  --http [host:]port management endpoint of the node to ask (also http://host:port); a bare
                     port means 127.0.0.1:port, as for shoal node --http PORT
  --json             print the JSON answer as received instead of a table
  -h, --help         show this help

Exit code 0 on success, 1 if the node cannot be asked or answers wrongly, 2 on bad usage.
`

/** How long to wait for the management endpoint, ms. */
const TIMEOUT = 5_000
const STATUSES = new Set(['joining', 'up', 'leaving', 'exiting', 'down', 'removed'])
const PRESENT = new Set(['joining', 'up', 'leaving', 'exiting'])
const REACHABILITIES = new Set(['reachable', 'unreachable'])

interface MemberRow {
  node: string
  uid: string
  status: string
  reachability: string
  upNumber: number
  roles: string[]
}

interface Membership {
  self: string
  leader: string | null
  members: MemberRow[]
}

/**
 * Runs `shoal status` with `argv` (the arguments after `status`). Writes the table (or JSON) to
 * `out` and problems to `err`. Resolves to the exit code: 0 on success, 1 if the endpoint is
 * unreachable, answers other than 200 or answers something malformed, 2 for bad usage. Never
 * throws.
 */
export async function statusCommand(
  argv: string[],
  out = (s: string): unknown => process.stdout.write(s),
  err = (s: string): unknown => process.stderr.write(s),
): Promise<number> {
  let values: { http?: string; json?: boolean; help?: boolean }
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        http: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }))
  } catch (e) {
    err(`shoal status: ${(e as Error).message}\n\n${STATUS_USAGE}`)
    return 2
  }
  if (values.help) {
    out(STATUS_USAGE)
    return 0
  }
  if (values.http === undefined) {
    err(`shoal status: --http host:port is required.\n\n${STATUS_USAGE}`)
    return 2
  }
  const base = baseUrl(values.http)
  if (!base) {
    err(`shoal status: --http must be host:port or a port (e.g. 127.0.0.1:8558 or 8558), got ${JSON.stringify(values.http)}.\n`)
    return 2
  }
  const url = `${base}/cluster/members`

  let status: number
  let text: string
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT), headers: { Accept: 'application/json' } })
    status = res.status
    text = await res.text()
  } catch (e) {
    err(`shoal status: could not reach ${url}: ${describeFetchError(e)}\n`)
    return 1
  }
  if (status !== 200) {
    err(`shoal status: ${url} answered ${status}${errorMessage(text)}\n`)
    return 1
  }
  let membership: Membership
  try {
    membership = parseMembership(JSON.parse(text))
  } catch (e) {
    err(`shoal status: malformed answer from ${url}: ${(e as Error).message}\n`)
    return 1
  }
  if (values.json) out(text.endsWith('\n') ? text : `${text}\n`)
  else out(table(membership))
  return 0
}

/** The table: one row per member, the leader marked `*`, this node `(self)`. */
function table(m: Membership): string {
  const header = ['NODE', 'STATUS', 'REACHABILITY', 'AGE', 'ROLES']
  // A restarted node leaves its old incarnation (down or removed) listed at the same address:
  // mark the present one.
  const marked = (address: string | null): MemberRow | undefined => {
    const at = m.members.filter((x) => x.node === address)
    return at.find((x) => PRESENT.has(x.status)) ?? at.at(-1)
  }
  const leader = marked(m.leader)
  const self = marked(m.self)
  const rows = m.members.map((x) => [
    `${x.node}${x === leader ? '*' : ''}${x === self ? ' (self)' : ''}`,
    x.status,
    x.reachability,
    x.upNumber === 0 ? '-' : String(x.upNumber),
    x.roles.length === 0 ? '-' : x.roles.join(','),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  const footer = m.leader === null ? 'no leader' : leader ? '* leader' : `leader: ${m.leader}`
  return [line(header), ...rows.map(line), '', footer, ''].join('\n')
}

/**
 * `host:port`, `[v6]:port`, a bare port (127.0.0.1, where `shoal node --http PORT` listens) or an
 * http(s) URL → the base URL without trailing slash; undefined if invalid.
 */
function baseUrl(arg: string): string | undefined {
  if (/^\d{1,5}$/.test(arg)) return baseUrl(`127.0.0.1:${arg}`)
  const hasScheme = /^https?:\/\//i.test(arg)
  if (!hasScheme) {
    const m = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:/[\]@?#]+):(\d{1,5})$/.exec(arg)
    const port = m ? Number(m[1]) : NaN
    if (!(port > 0 && port < 65536)) return undefined
  }
  let u: URL
  try {
    u = new URL(hasScheme ? arg : `http://${arg}`)
  } catch {
    return undefined
  }
  if (u.hostname === '' || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') return undefined
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`
}

function describeFetchError(e: unknown): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return `no answer within ${TIMEOUT / 1000} s`
  const cause = (e as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (e as Error).message
}

/** `: message (CODE)` from an error body of the management server, or a short excerpt of anything else. */
function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; code?: unknown; status?: unknown }
    if (typeof body.error === 'string') return `: ${body.error}${typeof body.code === 'string' ? ` (${body.code})` : ''}`
  } catch {
    // not JSON: fall through
  }
  const excerpt = text.trim().slice(0, 200)
  return excerpt === '' ? '' : `: ${excerpt}`
}

/** Checks the shape of a `/cluster/members` answer; throws with what is wrong. */
function parseMembership(v: unknown): Membership {
  if (!isObject(v)) throw new Error('not a JSON object')
  if (typeof v.self !== 'string') throw new Error('"self" is not a string')
  if (v.leader !== null && typeof v.leader !== 'string') throw new Error('"leader" is neither a string nor null')
  if (!Array.isArray(v.members)) throw new Error('"members" is not an array')
  const members = v.members.map((m: unknown, i): MemberRow => {
    const where = `members[${i}]`
    if (!isObject(m)) throw new Error(`${where} is not an object`)
    if (typeof m.node !== 'string') throw new Error(`${where}.node is not a string`)
    if (typeof m.uid !== 'string') throw new Error(`${where}.uid is not a string`)
    if (typeof m.status !== 'string' || !STATUSES.has(m.status)) throw new Error(`${where}.status is not a member status`)
    if (typeof m.reachability !== 'string' || !REACHABILITIES.has(m.reachability)) throw new Error(`${where}.reachability is not reachable or unreachable`)
    if (typeof m.upNumber !== 'number' || !Number.isInteger(m.upNumber) || m.upNumber < 0) throw new Error(`${where}.upNumber is not a whole number`)
    if (!Array.isArray(m.roles) || !m.roles.every((r) => typeof r === 'string')) throw new Error(`${where}.roles is not an array of strings`)
    return { node: m.node, uid: m.uid, status: m.status, reachability: m.reachability, upNumber: m.upNumber, roles: m.roles as string[] }
  })
  return { self: v.self, leader: v.leader, members }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
