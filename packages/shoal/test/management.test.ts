import { randomBytes } from 'node:crypto'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { ClusterSystem, ConfigError } from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { STATUS_USAGE, statusCommand } from '../src/cli/status.ts'
import { ManagementServer, type ManagementServerOptions, type MembersResponse } from '../src/management/ManagementServer.ts'
import { LogCapture } from './support/rawPeer.ts'

/** The management token (its own, not the cluster secret): 32 characters at least. */
const TOKEN = 'mgmt-t0ken-0123456789abcdef01234567'
const AUTH = { Authorization: `Bearer ${TOKEN}` }
/** The cluster secret every node of this file shares. */
const CLUSTER_SECRET = randomBytes(32).toString('hex')

let systems: ClusterSystem[] = []
let servers: ManagementServer[] = []

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()))
  await Promise.all(systems.map((s) => s.shutdown()))
  servers = []
  systems = []
})

function addressOf(s: ClusterSystem): string {
  return `127.0.0.1:${s.node.endpoint.port}`
}

async function startSystem(seeds?: string[]): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ port: 0, logLevel: 'silent', secret: CLUSTER_SECRET, cluster: seeds ? { seeds } : {} })
  systems.push(s)
  return s
}

async function startServer(system: ClusterSystem, options: Partial<ManagementServerOptions> = {}): Promise<ManagementServer> {
  const server = await ManagementServer.start(system, { port: 0, token: TOKEN, ...options })
  servers.push(server)
  return server
}

/** Two clustered systems, both up and seeing each other up, with a management server each. */
async function twoNodes(options: { a?: Partial<ManagementServerOptions>; b?: Partial<ManagementServerOptions> } = {}) {
  const a = await startSystem()
  const b = await startSystem([addressOf(a)])
  await Promise.all([a.cluster.joined(), b.cluster.joined()])
  await eventually(
    () => {
      for (const s of [a, b]) {
        const { members, leader } = s.cluster.membership
        expect(members.filter((m) => m.status === 'up' && m.reachability === 'reachable')).toHaveLength(2)
        expect(leader).toBeDefined()
      }
    },
    { timeoutMs: 15_000 },
  )
  const ma = await startServer(a, options.a)
  const mb = await startServer(b, options.b)
  return { a, b, ma, mb }
}

interface Answer {
  status: number
  headers: Headers
  text: string
  json: () => unknown
}

async function http(server: ManagementServer | number, path: string, init: RequestInit = {}): Promise<Answer> {
  const port = typeof server === 'number' ? server : server.port
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { ...init, signal: AbortSignal.timeout(5_000) })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as unknown }
}

function post(server: ManagementServer, path: string, body?: string, headers: Record<string, string> = AUTH): Promise<Answer> {
  return http(server, path, { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } })
}

/** Host, then port as a number. */
function byAddress(x: string, y: string): number {
  const [hx, px] = [x.slice(0, x.lastIndexOf(':')), Number(x.slice(x.lastIndexOf(':') + 1))]
  const [hy, py] = [y.slice(0, y.lastIndexOf(':')), Number(y.slice(y.lastIndexOf(':') + 1))]
  return hx === hy ? px - py : hx < hy ? -1 : 1
}

async function members(server: ManagementServer): Promise<MembersResponse> {
  const res = await http(server, '/cluster/members')
  expect(res.status).toBe(200)
  return res.json() as MembersResponse
}

describe('ManagementServer', () => {
  it('GET /cluster/members answers the exact membership shape, sorted by address, lowest address leading', async () => {
    const { a, b, ma, mb } = await twoNodes()
    const addresses = [addressOf(a), addressOf(b)].sort(byAddress)
    for (const [system, server] of [
      [a, ma],
      [b, mb],
    ] as const) {
      const res = await http(server, '/cluster/members')
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8')
      const body = res.json() as Record<string, unknown>
      expect(Object.keys(body)).toEqual(['self', 'leader', 'members'])
      expect(body.self).toBe(addressOf(system))
      expect(body.leader).toBe(addresses[0])
      const list = body.members as Record<string, unknown>[]
      expect(list.map((m) => m.node)).toEqual(addresses)
      for (const m of list) {
        expect(Object.keys(m)).toEqual(['node', 'uid', 'status', 'reachability', 'upNumber', 'roles'])
        expect(m.uid).toMatch(/^[0-9a-f]{16}$/)
        expect(m.status).toBe('up')
        expect(m.reachability).toBe('reachable')
        expect(Number.isInteger(m.upNumber)).toBe(true)
        expect(m.roles).toEqual([])
      }
      // a was up first (alone), b joined it.
      expect(body).toEqual({
        self: addressOf(system),
        leader: addresses[0],
        members: [a, b]
          .map((s, i) => ({ node: addressOf(s), uid: s.node.uid, status: 'up', reachability: 'reachable', upNumber: i + 1, roles: [] }))
          .sort((x, y) => byAddress(x.node, y.node)),
      })
    }
  })

  it('GET /health and /ready answer 200 while up, 503 once the system shuts down', async () => {
    const { b, mb } = await twoNodes()
    let res = await http(mb, '/health')
    expect([res.status, res.json()]).toEqual([200, { status: 'alive' }])
    res = await http(mb, '/ready')
    expect([res.status, res.json()]).toEqual([200, { status: 'up' }])

    await b.shutdown()
    res = await http(mb, '/health')
    expect(res.status).toBe(503)
    expect(res.json()).toEqual({ status: 'shutting-down' })
    res = await http(mb, '/ready')
    expect(res.status).toBe(503)
    // Shutting down without leaving marks the node down.
    expect(res.json()).toEqual({ status: 'down' })
  })

  it('GET /metrics serves the Prometheus text of the system registry', async () => {
    const { a, ma } = await twoNodes()
    const res = await http(ma, '/metrics')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe(a.metrics.registry.contentType)
    expect(res.text).toContain('shoal_swim_members')
    expect(res.text).toContain('shoal_calls_total')
    expect(res.text).toContain('shoal_associations')
  })

  it('POST routes require the bearer token: 401 without or with a wrong one (or the cluster secret), 403 when the server has none', async () => {
    // No backoff here: every attempt is checked.
    const { a, b, ma } = await twoNodes({ a: { authBackoff: { baseMs: 0 } } })
    const body = JSON.stringify({ node: addressOf(b) })
    const headerSets: Record<string, string>[] = [
      {},
      { Authorization: 'Bearer nope' },
      { Authorization: `Bearer ${TOKEN.replace(/.$/, 'X')}` },
      { Authorization: `Basic ${TOKEN}` },
      { Authorization: 'Bearer' },
      { Authorization: `Bearer ${CLUSTER_SECRET}` },
    ]
    for (const headers of headerSets) {
      for (const path of ['/cluster/down', '/cluster/leave']) {
        const res = await post(ma, path, body, headers)
        expect(res.status).toBe(401)
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
        expect(res.json()).toMatchObject({ code: 'UNAUTHORIZED', error: expect.any(String) })
      }
    }
    const open = await startServer(a, { token: undefined })
    const res = await post(open, '/cluster/down', body)
    expect(res.status).toBe(403)
    expect(res.json()).toMatchObject({ code: 'NO_TOKEN' })
    const { error } = res.json() as { error: string }
    expect(error).toContain('POST /cluster/down needs a management token and this node has none')
    expect(error).toContain('SHOAL_HTTP_TOKEN or --http-token-file F')
    expect(error).toContain('not the cluster secret')
    // Even the cluster secret does not open it: no fallback.
    expect((await post(open, '/cluster/leave', undefined, { Authorization: `Bearer ${CLUSTER_SECRET}` })).status).toBe(403)
    const empty = await startServer(a, { token: '' })
    expect((await post(empty, '/cluster/leave')).status).toBe(403)
    // Nothing happened to anyone.
    expect(a.cluster.membership.members.map((m) => m.status)).toEqual(['up', 'up'])
    expect(b.running).toBe(true)
  })

  it('POST /cluster/down with the bearer downs the other node, which is then removed and shuts down', async () => {
    const { a, b, ma } = await twoNodes()
    const target = addressOf(b)
    const res = await post(ma, '/cluster/down', JSON.stringify({ node: target }))
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({ downed: target })
    await eventually(
      async () => {
        const view = await members(ma)
        const m = view.members.find((x) => x.node === target)
        expect(m === undefined || m.status === 'removed').toBe(true)
      },
      { timeoutMs: 15_000 },
    )
    await eventually(() => expect(b.running).toBe(false), { timeoutMs: 15_000 })
    // Gone already: nothing to down.
    const again = await post(ma, '/cluster/down', JSON.stringify({ node: target }))
    expect(again.status).toBe(404)
    expect(again.json()).toMatchObject({ code: 'NOT_FOUND' })
    expect(a.running).toBe(true)
  })

  it('POST /cluster/down answers 400 for bad bodies, 404 for no such member, 413 above 4 KiB', async () => {
    const { a, ma } = await twoNodes()
    for (const body of [
      '{',
      'not json',
      '',
      '[]',
      '"127.0.0.1:1"',
      'null',
      '{}',
      '{"node":5}',
      '{"node":"nope"}',
      '{"node":"127.0.0.1:0"}',
      '{"node":"127.0.0.1:99999"}',
    ]) {
      const res = await post(ma, '/cluster/down', body)
      expect(res.status, body).toBe(400)
      expect(res.json()).toMatchObject({ code: 'BAD_REQUEST', error: expect.any(String) })
    }
    const missing = await post(ma, '/cluster/down', JSON.stringify({ node: '127.0.0.1:1' }))
    expect(missing.status).toBe(404)
    expect(missing.json()).toMatchObject({ code: 'NOT_FOUND', error: expect.stringContaining('127.0.0.1:1') })
    const big = await post(ma, '/cluster/down', JSON.stringify({ node: '127.0.0.1:1', pad: 'x'.repeat(5000) }))
    expect(big.status).toBe(413)
    expect(big.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
    expect(a.cluster.membership.members.map((m) => m.status)).toEqual(['up', 'up'])
    // Still serving after all that.
    expect((await http(ma, '/health')).status).toBe(200)
  })

  it('POST /cluster/leave with the bearer answers 202, then the node leaves, is removed and shuts down', async () => {
    const { a, b, mb } = await twoNodes()
    const res = await post(mb, '/cluster/leave')
    expect(res.status).toBe(202)
    expect(res.json()).toEqual({ status: 'leaving' })
    const removed = await a.cluster.waitFor(addressOf(b), 'removed', { timeout: 15_000 })
    expect(removed.node.uid).toBe(b.node.uid)
    await eventually(() => expect(b.running).toBe(false), { timeoutMs: 15_000 })
    expect(b.cluster.status).toBe('removed')
    expect(a.running).toBe(true)
    expect(a.cluster.membership.leader?.node.uid).toBe(a.node.uid)
  })

  it('POST /cluster/leave calls onLeave after answering and logs its failure', async () => {
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    const onLeave = vi.fn(async () => {
      await gate
      throw new Error('hand-over failed')
    })
    const { b, mb } = await twoNodes({ b: { onLeave } })
    const logged = vi.spyOn(b.log, 'error')
    // Answered while onLeave is still pending.
    const res = await post(mb, '/cluster/leave')
    expect(res.status).toBe(202)
    expect(onLeave).toHaveBeenCalledTimes(1)
    release()
    await eventually(() =>
      expect(logged).toHaveBeenCalledWith(expect.objectContaining({ err: expect.objectContaining({ message: 'hand-over failed' }) }), expect.any(String)),
    )
    expect(b.running).toBe(true)
    expect(b.cluster.status).toBe('up')
  })

  it('answers 404 for unknown paths and 405 with Allow for a wrong method', async () => {
    const { ma } = await twoNodes()
    for (const path of ['/', '/nope', '/cluster', '/cluster/members/extra', '/health/']) {
      const res = await http(ma, path)
      expect(res.status, path).toBe(404)
      expect(res.json()).toMatchObject({ code: 'NOT_FOUND', error: expect.any(String) })
    }
    const cases: [string, string, string][] = [
      ['POST', '/cluster/members', 'GET, HEAD'],
      ['DELETE', '/health', 'GET, HEAD'],
      ['PUT', '/metrics', 'GET, HEAD'],
      ['GET', '/cluster/leave', 'POST'],
      ['GET', '/cluster/down', 'POST'],
    ]
    for (const [method, path, allow] of cases) {
      const res = await http(ma, path, { method, headers: AUTH })
      expect(res.status, `${method} ${path}`).toBe(405)
      expect(res.headers.get('allow')).toBe(allow)
      expect(res.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED' })
    }
    // Query strings are ignored.
    expect((await http(ma, '/health?verbose=1')).status).toBe(200)
  })

  it('answers 503 on /cluster routes of a system without cluster membership', async () => {
    const lone = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    systems.push(lone)
    const server = await startServer(lone)
    for (const res of [
      await http(server, '/cluster/members'),
      await post(server, '/cluster/leave'),
      await post(server, '/cluster/down', '{"node":"127.0.0.1:1"}'),
    ]) {
      expect(res.status).toBe(503)
      expect(res.json()).toMatchObject({ code: 'NOT_CLUSTERED', error: expect.stringMatching(/cluster/) })
    }
    expect((await http(server, '/health')).status).toBe(200)
    expect((await http(server, '/ready')).json()).toEqual({ status: 'up' })
    expect(lone.running).toBe(true)
  })

  it('refuses an invalid port or a taken one with ConfigError', async () => {
    const s = await startSystem()
    await expect(ManagementServer.start(s, { port: -1 })).rejects.toMatchObject({ code: 'SHOAL_CONFIG' })
    const taken = await startServer(s)
    await expect(ManagementServer.start(s, { port: taken.port })).rejects.toThrow(/EADDRINUSE/)
  })

  it('close() closes the server and its keep-alive connections', async () => {
    const s = await startSystem()
    const server = await startServer(s)
    expect((await http(server, '/health')).status).toBe(200)
    await server.close()
    await server.close()
    await expect(http(server, '/health')).rejects.toThrow()
  })
})

/** POST from a chosen local address (127.0.0.x: another source on the loopback interface). */
function postFrom(localAddress: string, port: number, path: string, token: string): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', localAddress, agent: false, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('ManagementServer authentication limits', () => {
  async function loggedSystem(): Promise<{ system: ClusterSystem; logs: LogCapture }> {
    const logs = new LogCapture()
    const system = await ClusterSystem.start({ port: 0, secret: CLUSTER_SECRET, logger: pino({ level: 'info' }, logs), cluster: { selfJoinAfter: 0 } })
    systems.push(system)
    return { system, logs }
  }

  it('answers 429 with Retry-After to a source sending wrong tokens, logs them aggregated, counts each; the right token works from another source', async () => {
    const { system, logs } = await loggedSystem()
    let left = 0
    const server = await startServer(system, { onLeave: async () => void left++ })
    const port = server.port
    // First wrong token: 401, and the source must wait a second.
    const first = await postFrom('127.0.0.1', port, '/cluster/leave', 'wrong-token')
    expect(first).toMatchObject({ status: 401, retryAfter: '1' })
    // Then every attempt, right token or wrong, is refused without being checked.
    const n = 200
    const answers = await Promise.all(Array.from({ length: n }, () => postFrom('127.0.0.1', port, '/cluster/leave', 'wrong-token')))
    expect(answers.every((a) => a.status === 429 && a.retryAfter === '1')).toBe(true)
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'TOO_MANY_ATTEMPTS', error: 'Too many wrong tokens from 127.0.0.1: retry in 1 s.' })
    expect((await postFrom('127.0.0.1', port, '/cluster/leave', TOKEN)).status).toBe(429)
    // Another source is not held back.
    expect((await postFrom('127.0.0.2', port, '/cluster/leave', TOKEN)).status).toBe(202)
    await expect.poll(() => left).toBe(1)
    // Once the wait is over, a second wrong token doubles it.
    await new Promise((r) => setTimeout(r, 1_100))
    expect(await postFrom('127.0.0.1', port, '/cluster/leave', 'wrong-again')).toMatchObject({ status: 401, retryAfter: '2' })

    // Metrics count every attempt: 2 wrong tokens, n + 1 refused while waiting.
    const metrics = await system.metrics.registry.getSingleMetricAsString('shoal_refused_total')
    expect(metrics).toMatch(/^shoal_refused_total\{reason="management-auth"[^}]*\} 2$/m)
    expect(metrics).toMatch(new RegExp(`^shoal_refused_total\\{reason="management-throttled"[^}]*\\} ${n + 1}$`, 'm'))
    // Logs: one line per source and outcome per window, the rest as a count (flushed on close).
    await server.close()
    const auth = logs.lines.filter((l) => String(l.msg).startsWith('management'))
    expect(auth.slice(0, 2).map((l) => [l.msg, l.from, l.level])).toEqual([
      ['management authentication failed: wrong token', '127.0.0.1', 40],
      ['management request refused: too many wrong tokens from this source', '127.0.0.1', 40],
    ])
    const counts = auth.slice(2).sort((x, y) => String(x.outcome).localeCompare(String(y.outcome)))
    expect(counts.map((l) => [l.from, l.outcome, l.count])).toEqual([
      ['127.0.0.1', 'throttled', n],
      ['127.0.0.1', 'wrong token', 1],
    ])
    expect(String(counts[0]!.msg)).toMatch(new RegExp(`^management authentication failed ${n} more times from 127\\.0\\.0\\.1 in \\d+ s \\(throttled\\)$`))
    expect(String(counts[1]!.msg)).toMatch(/^management authentication failed 1 more time from 127\.0\.0\.1 in \d+ s \(wrong token\)$/)
  })

  it('refuses a management token shorter than 32 characters at start, naming how to make one', async () => {
    const system = await startSystem()
    const start = ManagementServer.start(system, { port: 0, token: 'short' })
    await expect(start).rejects.toBeInstanceOf(ConfigError)
    await expect(start).rejects.toThrow('The management token has 5 characters: use at least 32 random ones (128 bits), e.g. the output of `npx shoal secret`.')
  })
})

describe('shoal status', () => {
  function capture(): { out: (s: string) => void; err: (s: string) => void; stdout: () => string; stderr: () => string } {
    let stdout = ''
    let stderr = ''
    return { out: (s) => void (stdout += s), err: (s) => void (stderr += s), stdout: () => stdout, stderr: () => stderr }
  }

  it('prints the members as a table, marking the leader and this node', async () => {
    const { a, b, ma } = await twoNodes()
    const leader = [addressOf(a), addressOf(b)].sort(byAddress)[0]!
    const c = capture()
    expect(await statusCommand(['--http', `127.0.0.1:${ma.port}`], c.out, c.err)).toBe(0)
    expect(c.stderr()).toBe('')
    const lines = c.stdout().trimEnd().split('\n')
    expect(lines[0]).toMatch(/^NODE\s+STATUS\s+REACHABILITY\s+AGE\s+ROLES$/)
    const rowOf = (addr: string): string => lines.find((l) => l.startsWith(addr))!
    for (const s of [a, b]) {
      const row = rowOf(addressOf(s))
      expect(row).toBeDefined()
      expect(row).toMatch(/\sup\s+reachable\s+[12]\s+-$/)
      expect(row.includes(`${addressOf(s)}*`)).toBe(addressOf(s) === leader)
      expect(row.includes('(self)')).toBe(s === a)
    }
    expect(rowOf(addressOf(a))).toMatch(/\s1\s+-$/)
    expect(lines.at(-1)).toBe('* leader')
  })

  it('--json prints the JSON answer', async () => {
    const { ma } = await twoNodes()
    const c = capture()
    expect(await statusCommand(['--http', `http://127.0.0.1:${ma.port}/`, '--json'], c.out, c.err)).toBe(0)
    expect(JSON.parse(c.stdout())).toEqual(await members(ma))
  })

  it('exits 1 with a message when the endpoint is closed, answers non-200 or answers garbage; 2 on bad usage', async () => {
    const s = await startSystem()
    const server = await startServer(s)
    const port = server.port
    await server.close()
    let c = capture()
    expect(await statusCommand(['--http', `127.0.0.1:${port}`], c.out, c.err)).toBe(1)
    expect(c.stdout()).toBe('')
    expect(c.stderr()).toMatch(new RegExp(`could not reach http://127\\.0\\.0\\.1:${port}/cluster/members: ECONNREFUSED`))

    const lone = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    systems.push(lone)
    const notClustered = await startServer(lone)
    c = capture()
    expect(await statusCommand(['--http', `127.0.0.1:${notClustered.port}`], c.out, c.err)).toBe(1)
    expect(c.stderr()).toMatch(/answered 503: .*\(NOT_CLUSTERED\)/)

    c = capture()
    expect(await statusCommand(['--http', `http://127.0.0.1:${notClustered.port}/metrics?x=1`], c.out, c.err)).toBe(2)
    c = capture()
    expect(await statusCommand(['--http', `http://127.0.0.1:${notClustered.port}/health`], c.out, c.err)).toBe(1)
    expect(c.stderr()).toMatch(/answered 404/)

    // Something that is not a management endpoint answering 200.
    const fake = createServer((req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(req.url === '/a/cluster/members' ? '{"self":"x:1","leader":null,"members":[{"node":"x:1"}]}' : 'hello'),
    )
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r))
    try {
      const fakePort = (fake.address() as AddressInfo).port
      c = capture()
      expect(await statusCommand(['--http', `127.0.0.1:${fakePort}`], c.out, c.err)).toBe(1)
      expect(c.stderr()).toMatch(/malformed answer/)
      c = capture()
      expect(await statusCommand(['--http', `http://127.0.0.1:${fakePort}/a`, '--json'], c.out, c.err)).toBe(1)
      expect(c.stderr()).toMatch(/malformed answer .*members\[0\]\.uid/)
      expect(c.stdout()).toBe('')
    } finally {
      fake.closeAllConnections()
      await new Promise((r) => fake.close(r))
    }

    for (const argv of [[], ['--http'], ['--http', 'localhost'], ['--http', '127.0.0.1:0'], ['--bogus']]) {
      c = capture()
      expect(await statusCommand(argv, c.out, c.err), argv.join(' ')).toBe(2)
      expect(c.stderr()).toMatch(/^shoal status: /)
    }
    c = capture()
    expect(await statusCommand(['--help'], c.out, c.err)).toBe(0)
    expect(c.stdout()).toBe(STATUS_USAGE)
  })
})

describe('GET /cluster/events', () => {
  /** Reads server-sent events from `port` until `until` returns true for the events so far. */
  async function readEvents(port: number, until: (events: { event: string; data: Record<string, unknown> }[]) => boolean, signal: AbortSignal) {
    const res = await fetch(`http://127.0.0.1:${port}/cluster/events`, { signal })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events: { event: string; data: Record<string, unknown> }[] = []
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let buffered = ''
    while (!until(events)) {
      const { value, done } = await reader.read()
      if (done) break
      buffered += decoder.decode(value, { stream: true })
      for (let i = buffered.indexOf('\n\n'); i >= 0; i = buffered.indexOf('\n\n')) {
        const block = buffered.slice(0, i)
        buffered = buffered.slice(i + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> })
      }
    }
    await reader.cancel()
    return events
  }

  it('a snapshot, then a joining node and its leave as member events, in order', async () => {
    const { a, ma } = await twoNodes()
    const abort = new AbortController()
    const thirdAddress: { value?: string } = {}
    const reading = readEvents(
      ma.port,
      (evs) =>
        evs.some(
          (e) =>
            e.event === 'member' &&
            (e.data.member as { status: string }).status === 'removed' &&
            (e.data.member as { node: string }).node === thirdAddress.value,
        ),
      AbortSignal.any([abort.signal, AbortSignal.timeout(30_000)]),
    )
    await new Promise((r) => setTimeout(r, 200))
    const c = await startSystem([addressOf(a)])
    thirdAddress.value = addressOf(c)
    await c.cluster.joined()
    await c.cluster.leave()
    const events = await reading
    expect(events[0]!.event).toBe('snapshot')
    expect((events[0]!.data.members as unknown[]).length).toBe(2)
    const third = events.filter((e) => e.event === 'member' && (e.data.member as { node: string }).node === thirdAddress.value)
    expect(third.map((e) => (e.data.member as { status: string }).status)).toEqual(['joining', 'up', 'leaving', 'exiting', 'removed'])
    expect(third[1]!.data.previous).toBe('joining')
  })

  it('at most 16 streams at once: the 17th gets 503 with a code; a closed one frees its place', async () => {
    const { ma } = await twoNodes()
    const aborts = Array.from({ length: 16 }, () => new AbortController())
    const responses = await Promise.all(aborts.map((c) => fetch(`http://127.0.0.1:${ma.port}/cluster/events`, { signal: c.signal })))
    expect(responses.every((r) => r.status === 200)).toBe(true)
    const refused = await http(ma, '/cluster/events')
    expect(refused.status).toBe(503)
    expect(refused.json()).toMatchObject({ code: 'TOO_MANY_STREAMS' })
    aborts[0]!.abort()
    await eventually(async () => {
      const again = await fetch(`http://127.0.0.1:${ma.port}/cluster/events`, { signal: AbortSignal.timeout(2000) })
      expect(again.status).toBe(200)
      await again.body?.cancel()
    })
    for (const c of aborts) c.abort()
  })
})
