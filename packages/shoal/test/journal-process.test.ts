/**
 * Event sourcing with durable stores across real OS processes (the fixture journal-node.ts hosts
 * one event-sourced Account over SQLite on a file or PostgreSQL in a schema, driven by JSON
 * commands on stdin, answering with JSON log lines):
 *
 * - kill -9 and restart on the same file / schema: the process is killed with one deposit in
 *   flight, then in the middle of a burst of unawaited deposits, then stopped gracefully; every
 *   restart recovers (snapshot plus tail) exactly the acknowledged deposits plus, of what was in
 *   flight, at most a prefix, each once and in order; the stored stream is 1..n without gap or
 *   duplicate and its offsets follow its sequence numbers.
 * - two activations of one persistence id in two processes sharing the file / schema: both
 *   recover at the same point, both emit a burst at the same instant; in every round exactly one
 *   wins (all its events), the other gets JournalConflictError on its first emit and
 *   JournalFailedError on the rest, logs it and stops; a new activation recovers the winner's
 *   history; the final stream is gap- and duplicate-free and replays to the same state everywhere.
 * - a PostgreSQL outage, in this process, through a TCP proxy in front of the server: while the
 *   proxy refuses connections, an emit rejects with JournalUnavailableError and the actor stops,
 *   and a new activation cannot recover; once it is back, a new activation recovers the right
 *   state and goes on; a commit whose reply is cut (the write landed, the client cannot know)
 *   also rejects with JournalUnavailableError, and the next activation recovers it exactly once.
 *
 * PostgreSQL: SHOAL_TEST_PG_URL, by default the machine's server at
 * postgres://postgres@127.0.0.1:5432/test, a schema per test, dropped at the end. Without a
 * reachable server the multi-process PostgreSQL tests are skipped, saying so (PGlite serves only
 * the process it runs in), and the outage test runs against PGlite behind the proxy instead.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PostgresEventStore } from '@shoal/journal-postgres'
import Database from 'better-sqlite3'
import postgres from 'postgres'
import { ActorNotFoundError, ClusterSystem, distributed, EventSourcedActor, JournalUnavailableError, journalPlugin } from 'shoal'
import { type LogLine, NodeProcess } from 'shoal/testkit'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const FIXTURE = fileURLToPath(new URL('./fixtures/journal-node.ts', import.meta.url))
const PG_URL = process.env.SHOAL_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

// ── fixture processes ─────────────────────────────────────────────────────────

const procs: NodeProcess[] = []
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()))
})

/** One journal-node.ts process and its request/answer protocol. */
class JournalNode {
  #req = 0
  private constructor(readonly proc: NodeProcess) {}

  static async start(args: string[]): Promise<JournalNode> {
    const proc = await NodeProcess.start('node', {
      args,
      readyWhen: (l) => l.msg === 'ready',
      // NodeProcess runs the shoal CLI; the spawner runs the fixture instead, with the same Node flags, and a stdin to command it.
      spawner: (command, _cliArgs, options) =>
        spawn(command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...args], { ...options, stdio: ['pipe', 'pipe', 'inherit'] }),
    })
    proc.child.stdin!.on('error', () => undefined) // EPIPE once it is killed
    procs.push(proc)
    return new JournalNode(proc)
  }

  /** Sends a command; returns its request number. */
  send(command: Record<string, unknown>): number {
    const req = ++this.#req
    this.proc.child.stdin!.write(`${JSON.stringify({ req, ...command })}\n`)
    return req
  }

  /** The answer to request `req` (one of `msgs`); fails if the process exits first. */
  async answer(req: number, msgs: readonly string[], timeoutMs = 20_000): Promise<LogLine> {
    return Promise.race([
      this.proc.waitForLine((l) => l.req === req && msgs.includes(l.msg), timeoutMs),
      this.proc.exited.then(({ code, signal }) => {
        throw new Error(`journal node exited (${signal ?? code}) before answering request ${req}: ${this.proc.lines.map((l) => l.msg).join(' | ')}`)
      }),
    ])
  }

  async ask(command: Record<string, unknown>, msgs: readonly string[]): Promise<LogLine> {
    return this.answer(this.send(command), msgs)
  }

  /** The recovered state of the current activation (fails the test if it cannot be read). */
  async state(op: 'state' | 'spawn' = 'state'): Promise<AccountState> {
    const line = await this.ask({ op }, ['state', 'failed'])
    if (line.msg !== 'state') throw new Error(`${op}: ${String(line.code)} ${String(line.message)}`)
    return { balance: line.balance as number, tokens: line.tokens as string[], seq: line.seq as number }
  }

  async deposit(token: string): Promise<LogLine> {
    return this.ask({ op: 'deposit', token, amount: amountOf(token) }, ['ack', 'nack'])
  }

  /** The decoded stored stream, read by this process. */
  async dump(): Promise<{ seq: number; token: string; amount: number }[]> {
    const line = await this.ask({ op: 'dump' }, ['dump', 'failed'])
    if (line.msg !== 'dump') throw new Error(`dump: ${String(line.code)} ${String(line.message)}`)
    return line.events as { seq: number; token: string; amount: number }[]
  }

  /** Asks it to shut down and waits for a clean exit. */
  async exit(): Promise<void> {
    this.send({ op: 'exit' })
    expect(await this.proc.exited).toEqual({ code: 0, signal: null })
  }
}

interface AccountState {
  balance: number
  tokens: string[]
  seq: number
}

/** A deterministic amount per deposit token, so the balance checks the set of deposits, not just their number. */
function amountOf(token: string): number {
  let h = 7
  for (const ch of token) h = (h * 31 + ch.charCodeAt(0)) % 1000
  return h + 1
}
const balanceOf = (tokens: readonly string[]): number => tokens.reduce((sum, t) => sum + amountOf(t), 0)
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// ── stores ────────────────────────────────────────────────────────────────────

/** Where a test's journal lives, as fixture arguments, and a raw look at what is stored. */
interface Location {
  readonly args: string[]
  /** Sequence numbers of the stream's rows, in global-offset order, read with plain SQL. */
  rawSeqs(persistenceId: string): Promise<number[]>
  /** The stream's latest snapshot's sequence number, if any. */
  snapshotSeq(persistenceId: string): Promise<number | undefined>
}

interface Backend {
  readonly name: string
  /** Why it cannot run here, if it cannot. */
  readonly skip: string | undefined
  fresh(): Location
}

const dir = mkdtempSync(join(tmpdir(), 'shoal-journal-process-'))
let files = 0

const sqlite: Backend = {
  name: 'SQLite file',
  skip: undefined,
  fresh() {
    const path = join(dir, `journal-${++files}.db`)
    const query = <T>(fn: (db: Database.Database) => T): T => {
      const db = new Database(path, { fileMustExist: true })
      try {
        return fn(db)
      } finally {
        db.close()
      }
    }
    return {
      args: ['--sqlite', path],
      rawSeqs: async (pid) => query((db) => db.prepare('SELECT seq FROM events WHERE persistence_id = ? ORDER BY global_offset').pluck().all(pid) as number[]),
      snapshotSeq: async (pid) => query((db) => db.prepare('SELECT seq FROM snapshots WHERE persistence_id = ?').pluck().get(pid) as number | undefined),
    }
  },
}

/** Whether the PostgreSQL server answers; the reason if not. */
async function probePostgres(): Promise<string | undefined> {
  const probe = postgres(PG_URL, { max: 1, connect_timeout: 3, onnotice: () => undefined })
  try {
    await probe`SELECT 1`
    return undefined
  } catch (e) {
    return `no PostgreSQL server at ${PG_URL} (${(e as Error).message})`
  } finally {
    await probe.end({ timeout: 1 })
  }
}

const pgDown = await probePostgres()
if (pgDown)
  console.warn(
    `journal-process: ${pgDown}; the multi-process PostgreSQL tests are skipped (PGlite serves only its own process), the outage test runs against PGlite.`,
  )
const admin = pgDown ? undefined : postgres(PG_URL, { max: 2, onnotice: () => undefined })
const schemas: string[] = []
const freshSchema = (): string => {
  const name = `shoal_jproc_${randomBytes(6).toString('hex')}`
  schemas.push(name)
  return name
}

const pg: Backend = {
  name: 'PostgreSQL',
  skip: pgDown,
  fresh() {
    const schema = freshSchema()
    const sql = admin!
    return {
      args: ['--pg', PG_URL, '--schema', schema],
      rawSeqs: async (pid) =>
        (await sql<{ seq: string }[]>`SELECT seq FROM ${sql(schema)}.shoal_events WHERE persistence_id = ${pid} ORDER BY global_offset`).map((r) =>
          Number(r.seq),
        ),
      snapshotSeq: async (pid) => {
        const [row] = await sql<{ seq: string }[]>`SELECT seq FROM ${sql(schema)}.shoal_snapshots WHERE persistence_id = ${pid}`
        return row && Number(row.seq)
      },
    }
  },
}

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  if (admin) {
    for (const s of schemas) await admin`DROP SCHEMA IF EXISTS ${admin(s)} CASCADE`
    await admin.end({ timeout: 5 })
  }
})

// ── 1. kill -9 and restart ────────────────────────────────────────────────────

/**
 * What a restart must recover: the acknowledged tokens, then of the tokens in flight at the
 * kill (sent in that order, none acknowledged) a prefix, possibly empty. Returns that prefix.
 */
function expectRecovered(recovered: AccountState, acked: readonly string[], inFlight: readonly string[]): string[] {
  expect(recovered.tokens.slice(0, acked.length), 'an acknowledged deposit was lost').toEqual(acked)
  const extra = recovered.tokens.slice(acked.length)
  expect(extra, 'beyond the acknowledged deposits only a prefix of those in flight, each once').toEqual(inFlight.slice(0, extra.length))
  expect(recovered.seq).toBe(recovered.tokens.length)
  expect(recovered.balance).toBe(balanceOf(recovered.tokens))
  return extra
}

async function restartTest(backend: Backend): Promise<void> {
  const started = Date.now()
  const where = backend.fresh()
  const pid = 'account-main'
  const args = [...where.args, '--entity', 'main', '--snapshot-every', '7']
  const persisted: string[] = [] // acknowledged, or found recovered after a kill
  const landed: number[] = [] // per kill: how many of the in-flight deposits had landed

  // Cycle 1: acknowledged deposits one at a time, then kill -9 right after sending one more.
  let node = await JournalNode.start(args)
  expect(await node.state()).toEqual({ balance: 0, tokens: [], seq: 0 })
  for (const i of range(30)) {
    const token = `one-${i}`
    const ack = await node.deposit(token)
    expect(ack.msg, `${token}: ${String(ack.code)}`).toBe('ack')
    persisted.push(token)
    expect([ack.seq, ack.balance]).toEqual([persisted.length, balanceOf(persisted)])
  }
  const single = ['one-inflight']
  node.send({ op: 'deposit', token: single[0], amount: amountOf(single[0]!) })
  await sleep(1)
  await node.proc.kill()
  expect((await node.proc.exited).signal).toBe('SIGKILL')

  // Cycle 2: recovers; acknowledged deposits; then kill -9 in the middle of a burst of unawaited ones.
  node = await JournalNode.start(args)
  let extra = expectRecovered(await node.state(), persisted, single)
  landed.push(extra.length)
  persisted.push(...extra)
  for (const i of range(25)) {
    const token = `two-${i}`
    expect((await node.deposit(token)).msg).toBe('ack')
    persisted.push(token)
  }
  const burst = range(40).map((i) => `burst-${i}`)
  node.send({ op: 'burst', tokens: burst, amounts: burst.map(amountOf), at: 0 })
  await node.proc.waitForLine((l) => l.msg === 'burst started', 10_000)
  await sleep(3)
  await node.proc.kill()

  // Cycle 3: recovers (snapshot plus tail); acknowledged deposits; a graceful exit.
  node = await JournalNode.start(args)
  extra = expectRecovered(await node.state(), persisted, burst)
  landed.push(extra.length)
  persisted.push(...extra)
  for (const i of range(20)) {
    const token = `three-${i}`
    expect((await node.deposit(token)).msg).toBe('ack')
    persisted.push(token)
  }
  await node.exit()

  // A last process recovers exactly what was persisted; the stored stream is 1..n, each token once.
  node = await JournalNode.start(args)
  expect(await node.state()).toEqual({ balance: balanceOf(persisted), tokens: persisted, seq: persisted.length })
  expect(await node.dump()).toEqual(persisted.map((token, i) => ({ seq: i + 1, token, amount: amountOf(token) })))
  await node.exit()
  expect(await where.rawSeqs(pid)).toEqual(range(persisted.length))
  expect(new Set(persisted).size).toBe(persisted.length)
  const snap = await where.snapshotSeq(pid)
  expect(snap, 'recovery went through a snapshot').toBeGreaterThan(0)
  expect(snap!).toBeLessThanOrEqual(persisted.length)
  console.info(
    `journal-process ${backend.name}: restart test ${persisted.length} events, in flight landed at the kills: ${landed.join(', ')} (of 1, of ${burst.length}); snapshot at ${snap}; ${Date.now() - started} ms`,
  )
}

// ── 2. two activations in two processes ───────────────────────────────────────

async function conflictTest(backend: Backend): Promise<void> {
  const started = Date.now()
  const where = backend.fresh()
  const pid = 'account-contested'
  const args = [...where.args, '--entity', 'contested', '--snapshot-every', '5']
  // One after the other: two processes creating a new SQLite file at the same instant can both
  // try to create its tables (SqliteEventStore.open reads user_version outside its migration's
  // write transaction), and one fails with "table events already exists".
  const nodes = [await JournalNode.start(args), await JournalNode.start(args)]
  const names = ['A', 'B'] as const
  const history: string[] = []
  const winners: string[] = []
  const failures = [0, 0]
  const ROUNDS = 5
  const BURST = 4

  for (const round of range(ROUNDS)) {
    // A fresh activation on each side, both recovered at the same point.
    const states = await Promise.all(nodes.map((n) => n.state('spawn')))
    for (const s of states) expect(s).toEqual({ balance: balanceOf(history), tokens: history, seq: history.length })

    // Both emit a burst at the same instant.
    const at = Date.now() + 150
    const bursts = names.map((name) => range(BURST).map((i) => `r${round}-${name}${i}`))
    const reqs = nodes.map((n, i) => n.send({ op: 'burst', tokens: bursts[i], amounts: bursts[i]!.map(amountOf), at }))
    await Promise.all(nodes.map((n, i) => n.answer(reqs[i]!, ['burst done'])))
    const outcomes = await Promise.all(
      nodes.map(
        async (n, i) =>
          (await n.proc.waitForLine((l) => l.msg === 'burst settled' && l.req === reqs[i], 5000)).outcomes as {
            token: string
            ok: boolean
            seq?: number
            code?: string
            error?: string
          }[],
      ),
    )

    // Exactly one side won every event of its burst, at the next sequence numbers.
    const won = outcomes.map((o) => o.every((x) => x.ok))
    expect(won.filter(Boolean), `round ${round}: ${JSON.stringify(outcomes)}`).toHaveLength(1)
    const w = won.indexOf(true)
    const l = 1 - w
    expect(outcomes[w]!.map((o) => o.seq)).toEqual(range(BURST).map((i) => history.length + i))
    // The other: a conflict on its first emit, then "an earlier write failed" for the rest; nothing written.
    expect(outcomes[l]!.map((o) => [o.ok, o.code, o.error])).toEqual([
      [false, 'SHOAL_JOURNAL_CONFLICT', 'JournalConflictError'],
      ...range(BURST - 1).map(() => [false, 'SHOAL_JOURNAL_FAILED', 'JournalFailedError']),
    ])
    // It logged the conflict and stopped.
    failures[l]!++
    const logged = nodes[l]!.proc.lines.filter((x) => x.msg.startsWith('a journal write failed'))
    expect(logged, JSON.stringify(nodes[l]!.proc.lines.slice(-6))).toHaveLength(failures[l]!)
    expect(logged.at(-1)).toMatchObject({
      level: 50,
      persistenceId: pid,
      seq: history.length,
      err: { type: 'JournalConflictError', code: 'SHOAL_JOURNAL_CONFLICT' },
    })
    expect(await nodes[l]!.ask({ op: 'state' }, ['state', 'failed'])).toMatchObject({ msg: 'failed', code: 'SHOAL_ACTOR_NOT_FOUND' })
    // The winner goes on, with its state.
    history.push(...bursts[w]!)
    winners.push(names[w]!)
    expect(await nodes[w]!.state()).toEqual({ balance: balanceOf(history), tokens: history, seq: history.length })
  }

  // The stored stream: 1..n, no gap or duplicate, the winners' bursts in order; it replays to the same state on both sides.
  expect(await where.rawSeqs(pid)).toEqual(range(ROUNDS * BURST))
  for (const n of nodes) {
    expect(await n.dump()).toEqual(history.map((token, i) => ({ seq: i + 1, token, amount: amountOf(token) })))
    expect(await n.state('spawn')).toEqual({ balance: balanceOf(history), tokens: history, seq: history.length })
  }
  await Promise.all(nodes.map((n) => n.exit()))
  console.info(`journal-process ${backend.name}: conflict test, round winners ${winners.join('')}; ${Date.now() - started} ms`)
}

describe('event sourcing across OS processes', () => {
  for (const backend of [sqlite, pg]) {
    const skipped = backend.skip === undefined ? '' : ` (skipped: ${backend.skip}; PGlite serves only its own process)`
    it.skipIf(backend.skip !== undefined)(
      `${backend.name}: kill -9 mid-write and restart on the same store recovers exactly the acknowledged events (plus at most a prefix of those in flight)${skipped}`,
      () => restartTest(backend),
      60_000,
    )
    it.skipIf(backend.skip !== undefined)(
      `${backend.name}: two activations of one persistence id in two processes: one wins each round, the other gets JournalConflictError and stops${skipped}`,
      () => conflictTest(backend),
      60_000,
    )
  }
})

// ── 3. PostgreSQL outage through a proxy ──────────────────────────────────────

/**
 * A TCP proxy to the database that the test controls: `down()` drops every connection and
 * refuses new ones; `up()` listens again on the same port; `cutAfterCommit()` passes everything
 * until a client executes the statement that writes events (one statement in autocommit: the
 * server commits it before it replies), then drops the server's reply and the connection (the
 * write lands, the client cannot know). It follows the client's protocol messages to see that.
 */
class DbProxy {
  port = 0
  #server: Server | undefined
  readonly #pairs = new Set<Pair>()
  #armed = false
  cuts = 0

  constructor(readonly upstreamPort: number) {}

  async up(): Promise<void> {
    const server = createServer((client) => this.#accept(client))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.port = (server.address() as { port: number }).port
    this.#server = server
  }

  async down(): Promise<void> {
    const server = this.#server
    this.#server = undefined
    this.#dropAll()
    if (server) await new Promise<void>((r) => server.close(() => r()))
  }

  /** Drops current connections (so the next write is parsed, in plain text, on a new one) and arms the cut. */
  cutAfterCommit(): void {
    this.#armed = true
    this.#dropAll()
  }

  disarm(): void {
    this.#armed = false
    for (const p of this.#pairs) p.armed = false
  }

  #dropAll(): void {
    for (const p of this.#pairs) {
      p.client.destroy()
      p.upstream.destroy()
    }
    this.#pairs.clear()
  }

  #accept(client: Socket): void {
    const upstream = connect(this.upstreamPort, '127.0.0.1')
    const pair: Pair = { client, upstream, armed: this.#armed, cut: false, started: false, sawWrite: false, pending: Buffer.alloc(0) }
    this.#pairs.add(pair)
    const end = (): void => {
      client.destroy()
      upstream.destroy()
      this.#pairs.delete(pair)
    }
    for (const s of [client, upstream]) {
      s.on('error', end)
      s.on('close', end)
    }
    client.on('data', (d: Buffer) => {
      if (pair.armed) watchForWrite(pair, d)
      upstream.write(d)
    })
    upstream.on('data', (d: Buffer) => {
      if (!pair.cut) {
        client.write(d)
        return
      }
      // The server has committed and replied: the reply never arrives.
      this.cuts++
      end()
    })
  }
}

interface Pair {
  readonly client: Socket
  readonly upstream: Socket
  armed: boolean
  /** Set once the client has executed the write: the next reply is dropped. */
  cut: boolean
  /** The startup message (the only one without a type byte) has passed. */
  started: boolean
  /** The client has parsed the statement that writes events. */
  sawWrite: boolean
  pending: Buffer
}

/** Follows the client's messages: a Parse of an INSERT into the events table, then an Execute. */
function watchForWrite(pair: Pair, d: Buffer): void {
  let buf = Buffer.concat([pair.pending, d])
  for (;;) {
    const header = pair.started ? 5 : 4
    if (buf.length < header) break
    const size = pair.started ? 1 + buf.readInt32BE(1) : buf.readInt32BE(0)
    if (buf.length < size) break
    if (pair.started) {
      const type = String.fromCharCode(buf[0]!)
      const text = buf.subarray(5, size).toString('latin1')
      if (type === 'P' && /INSERT INTO/.test(text) && text.includes('shoal_events')) pair.sawWrite = true
      if (type === 'E' && pair.sawWrite) pair.cut = true
    }
    pair.started = true
    buf = buf.subarray(size)
  }
  pair.pending = buf
}

type Deposited = { type: 'Deposited'; token: string; amount: number }

class Wallet extends EventSourcedActor<string[], Deposited> {
  readonly persistenceId = 'wallet-outage'
  initialState(): string[] {
    return []
  }
  applyEvent(s: string[], e: Deposited): string[] {
    return [...s, e.token]
  }
  @distributed async deposit(token: string): Promise<number> {
    await this.emit({ type: 'Deposited', token, amount: amountOf(token) })
    return this.lastSeq
  }
  @distributed async read(): Promise<{ tokens: string[]; seq: number }> {
    return { tokens: this.state, seq: this.lastSeq }
  }
}

/** The server behind the proxy: the real one, or PGlite (in this process) when there is none. */
async function upstreamServer(): Promise<{ port: number; url: (port: number) => string; via: string; max: number; stop: () => Promise<void> }> {
  if (!pgDown) {
    const u = new URL(PG_URL)
    const port = Number(u.port || 5432)
    return {
      port,
      url: (p) => Object.assign(new URL(PG_URL), { hostname: '127.0.0.1', port: String(p) }).toString(),
      via: `PostgreSQL at ${u.host}`,
      max: 4,
      stop: async () => undefined,
    }
  }
  const { PGlite } = await import('@electric-sql/pglite')
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
  const db = await PGlite.create()
  const probe = createServer()
  const port = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as { port: number }).port)))
  await new Promise<void>((r) => probe.close(() => r()))
  const socket = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 32 })
  await socket.start()
  // PGlite runs every connection in one session: one connection.
  return { port, url: (p) => `postgres://postgres@127.0.0.1:${p}/postgres`, via: 'PGlite', max: 1, stop: async () => (await socket.stop(), await db.close()) }
}

describe('PostgreSQL outage (in process, through a TCP proxy)', () => {
  it('emits reject with JournalUnavailableError while the store is down; a new activation recovers the right state once it is back, an ambiguous commit included exactly once', async () => {
    const started = Date.now()
    const upstream = await upstreamServer()
    const proxy = new DbProxy(upstream.port)
    await proxy.up()
    const schema = freshSchema()
    const direct = postgres(upstream.url(upstream.port), { max: 1, onnotice: () => undefined })
    // A short reconnect backoff: postgres.js waits longer after every failed attempt of any connection
    // (the LISTEN one retries all through the outage), up to 20 s, before a closed connection
    // reconnects; with one pooled connection (PGlite) a recovery read would then outlast the call timeout.
    const store = await PostgresEventStore.open(upstream.url(proxy.port), { schema, max: upstream.max, client: { connect_timeout: 5, backoff: () => 0.05 } })
    const system = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [journalPlugin({ store, snapshotEvery: 1000 })] })
    // Read past the proxy, with plain SQL.
    const storedSeqs = async (): Promise<number[]> =>
      (await direct<{ seq: string }[]>`SELECT seq FROM ${direct(schema)}.shoal_events WHERE persistence_id = 'wallet-outage' ORDER BY global_offset`).map((r) =>
        Number(r.seq),
      )
    try {
      const first = system.spawn(Wallet)
      for (const i of range(5)) expect(await first.deposit(`ok-${i}`)).toBe(i)

      // Down: the emit fails fast and clearly, the activation stops, nothing is written.
      await proxy.down()
      await sleep(100) // the pool sees its connections close
      const t0 = Date.now()
      const err = await first.deposit('during-outage').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(JournalUnavailableError)
      const outageMs = Date.now() - t0
      expect(outageMs).toBeLessThan(5000)
      await expect(first.read()).rejects.toBeInstanceOf(ActorNotFoundError)
      // Nor can a new activation recover meanwhile: its callers are told the store is down.
      const recovering = (await system
        .spawn(Wallet)
        .read()
        .catch((e: unknown) => e)) as Error
      expect(recovering).toBeInstanceOf(ActorNotFoundError)
      expect(recovering.cause).toBeInstanceOf(JournalUnavailableError)
      expect(recovering.message).toMatch(/failed to start: .*SHOAL_JOURNAL_UNAVAILABLE/)
      expect(await storedSeqs()).toEqual(range(5))

      // Back: a new activation recovers the five acknowledged events and goes on.
      await proxy.up()
      const second = system.spawn(Wallet)
      expect(await second.read()).toEqual({ tokens: range(5).map((i) => `ok-${i}`), seq: 5 })
      expect(await second.deposit('after-outage')).toBe(6)

      // An ambiguous write: the commit lands, its reply is lost. The emit rejects, the actor stops.
      proxy.cutAfterCommit()
      await sleep(100)
      const amb = await second.deposit('ambiguous').catch((e: unknown) => e)
      expect(amb).toBeInstanceOf(JournalUnavailableError)
      expect(proxy.cuts).toBe(1)
      proxy.disarm()
      await expect(second.read()).rejects.toBeInstanceOf(ActorNotFoundError)
      expect(await storedSeqs()).toEqual(range(7)) // it landed

      // The next activation recovers it, once, and the next emit takes the next number.
      const third = system.spawn(Wallet)
      expect(await third.read()).toEqual({ tokens: [...range(5).map((i) => `ok-${i}`), 'after-outage', 'ambiguous'], seq: 7 })
      expect(await third.deposit('last')).toBe(8)
      expect(await storedSeqs()).toEqual(range(8))
      console.info(`journal-process outage (${upstream.via}): the emit during the outage rejected in ${outageMs} ms; ${Date.now() - started} ms`)
    } finally {
      await system.shutdown()
      await store.close()
      await proxy.down()
      await direct`DROP SCHEMA IF EXISTS ${direct(schema)} CASCADE`
      await direct.end({ timeout: 5 })
      await upstream.stop()
    }
  }, 60_000)
})
