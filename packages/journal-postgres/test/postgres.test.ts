/**
 * The PostgreSQL store against a real server: `SHOAL_TEST_PG_URL`, by default the server this
 * machine kind runs (postgres://postgres@127.0.0.1:5432/test). Where none is reachable the same
 * tests run against PGlite (a real PostgreSQL compiled to WASM, served over TCP in this process),
 * and say so: never silently skipped. Every test gets a schema of its own, dropped at the end.
 */
import { randomBytes } from 'node:crypto'
import { connect, createServer } from 'node:net'
import postgres from 'postgres'
import { ClusterSystem, distributed, EventSourcedActor, JournalConflictError, journalPlugin, type WriteBatch } from 'shoal'
import { conformanceEvents, eventStoreConformance, eventually, leaseStoreConformance } from 'shoal/testkit'
import { afterAll, describe, expect, it } from 'vitest'
import { PostgresEventStore } from '../src/index.ts'

const URL = process.env.SHOAL_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** The server to test against: the real one if it answers, else PGlite. */
async function server(): Promise<{ url: string; via: string; stop: () => Promise<void> }> {
  const probe = postgres(URL, { max: 1, connect_timeout: 3, onnotice: () => undefined })
  try {
    await probe`SELECT 1`
    return { url: URL, via: `PostgreSQL at ${new globalThis.URL(URL).host}`, stop: async () => undefined }
  } catch (e) {
    const { PGlite } = await import('@electric-sql/pglite')
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket')
    const db = await PGlite.create()
    const port = await freePort()
    const socket = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 32 })
    await socket.start()
    console.warn(`PostgreSQL tests: no server at ${URL} (${(e as Error).message}); running against PGlite on 127.0.0.1:${port} instead.`)
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, via: 'PGlite', stop: async () => (await socket.stop(), await db.close()) }
  } finally {
    await probe.end({ timeout: 1 })
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

const pg = await server()
const schemas: string[] = []
const fresh = (): string => {
  const name = `shoal_test_${randomBytes(6).toString('hex')}`
  schemas.push(name)
  return name
}
// PGlite runs every connection in one session, so transactions of two connections would mix: one connection there.
const max = pg.via === 'PGlite' ? 1 : 4
const open = (): Promise<PostgresEventStore> => PostgresEventStore.open(pg.url, { schema: fresh(), max })

afterAll(async () => {
  const sql = postgres(pg.url, { max: 1, onnotice: () => undefined })
  for (const s of schemas) await sql`DROP SCHEMA IF EXISTS ${sql(s)} CASCADE`
  await sql.end()
  await pg.stop()
})

eventStoreConformance(`postgres (${pg.via})`, open, { describe, it, expect })
leaseStoreConformance(`postgres (${pg.via})`, open, { describe, it, expect }, (s) => (s as PostgresEventStore).close())

class Counter extends EventSourcedActor<number, { type: 'Inc'; by: number }> {
  readonly persistenceId = "counter 'one'"
  initialState(): number {
    return 0
  }
  applyEvent(n: number, e: { type: 'Inc'; by: number }): number {
    return n + e.by
  }
  override tagsFor(): readonly string[] {
    return ['counters']
  }
  @distributed async inc(by: number): Promise<number> {
    await this.emit({ type: 'Inc', by })
    return this.state
  }
}

describe(`PostgreSQL store (${pg.via})`, () => {
  it('group commit: concurrent appends share transactions, a conflict fails only its own append', async () => {
    const s = await open()
    await s.append(conformanceEvents('a', 1, 1))
    const batches: WriteBatch[] = []
    s.observeWrites((b) => batches.push(b))
    const results = await Promise.allSettled([
      ...Array.from({ length: 20 }, (_, i) => s.append(conformanceEvents(`p${i}`, 1, 3))),
      s.append(conformanceEvents('a', 1, 2)),
    ])
    expect(results.slice(0, 20).every((r) => r.status === 'fulfilled')).toBe(true)
    expect((results[20] as PromiseRejectedResult).reason).toBeInstanceOf(JournalConflictError)
    expect(await s.highestSeq('a')).toBe(1)
    expect(await s.highestSeq('p7')).toBe(3)
    // Observed: 21 appends in at most a few transactions (the first may go alone), 62 events (the refused one's too), one conflict.
    expect(batches.reduce((n, b) => n + b.appends, 0)).toBe(21)
    expect(batches.reduce((n, b) => n + b.events, 0)).toBe(62)
    expect(batches.reduce((n, b) => n + b.conflicts, 0)).toBe(1)
    expect(batches.length).toBeLessThan(21)
    await s.close()
  })

  it('a burst larger than one INSERT can carry (10,000 one-event appends in one turn) lands whole', async () => {
    const s = await open()
    const results = await Promise.allSettled(Array.from({ length: 10_000 }, (_, i) => s.append(conformanceEvents(`burst-${i}`, 1, 1, ['burst']))))
    expect(results.filter((r) => r.status === 'rejected')).toEqual([])
    expect(await s.eventsByTag('burst', 0, 20_000)).toHaveLength(10_000)
    await s.close()
  })

  it('offsets commit in order: a reader following a tag by offset while four pools write at once misses nothing', async () => {
    const schema = fresh()
    const writers = await Promise.all(Array.from({ length: 4 }, () => PostgresEventStore.open(pg.url, { schema, max })))
    const reader = writers[0]!
    const seen = new Set<string>()
    let after = 0
    const follow = async (): Promise<void> => {
      for (const e of await reader.eventsByTag('all', after, 10_000)) {
        seen.add(`${e.persistenceId}/${e.seq}`)
        after = e.offset
      }
    }
    let writing = true
    const following = (async () => {
      while (writing) await follow()
    })()
    // Each pool: 40 rounds of 10 concurrent appends (group-committed), so batches of the four interleave.
    await Promise.all(
      writers.map(async (w, wi) => {
        for (let round = 0; round < 40; round++)
          await Promise.all(Array.from({ length: 10 }, (_, i) => w.append(conformanceEvents(`w${wi}-${i}`, round + 1, 1, ['all']))))
      }),
    )
    writing = false
    await following
    await follow()
    expect(seen.size).toBe(4 * 40 * 10)
    for (const w of writers) await w.close()
  })

  it('a database of schema 1 (before leases) is migrated on open, its events kept', async () => {
    const schema = fresh()
    const first = await PostgresEventStore.open(pg.url, { schema, max })
    await first.append(conformanceEvents('old', 1, 3))
    await first.close()
    const sql = postgres(pg.url, { max: 1, onnotice: () => undefined })
    await sql`DROP TABLE ${sql(schema)}.shoal_leases`
    await sql`UPDATE ${sql(schema)}.shoal_schema_version SET version = 1`
    await sql.end()
    const again = await PostgresEventStore.open(pg.url, { schema, max })
    expect(await again.highestSeq('old')).toBe(3)
    expect(await again.acquireLease('l', 'me', 60_000)).toBe(1)
    await again.close()
  })

  it('close() is bounded when the server stops answering (connections open, no replies)', async () => {
    // A proxy that forwards until frozen, then swallows every byte both ways.
    let frozen = false
    const sockets: import('node:net').Socket[] = []
    const upstream = new globalThis.URL(pg.url)
    const proxy = createServer((client) => {
      const server = connect(Number(upstream.port || 5432), upstream.hostname)
      sockets.push(client, server)
      client.on('data', (d) => frozen || server.write(d))
      server.on('data', (d) => frozen || client.write(d))
      for (const s of [client, server]) s.on('error', () => undefined)
    })
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()))
    const url = new globalThis.URL(pg.url)
    url.port = String((proxy.address() as { port: number }).port)
    const s = await PostgresEventStore.open(url.toString(), { schema: fresh(), max })
    await s.append(conformanceEvents('before', 1, 1))
    frozen = true
    const stuck = s.append(conformanceEvents('during', 1, 1)).catch((e: unknown) => e)
    const started = Date.now()
    await s.close(300)
    expect(Date.now() - started).toBeLessThan(10_000) // the drain bound (300 ms), not forever
    expect(await stuck).toBeInstanceOf(Error) // answered (ambiguous: it may or may not have landed)
    for (const sock of sockets) sock.destroy()
    proxy.close()
  })

  // PGlite serves one session to all connections, so a NOTIFY never reaches another connection's LISTEN there.
  it.skipIf(pg.via === 'PGlite')('tag notices reach another process sharing the database (LISTEN/NOTIFY; needs a real server, not PGlite)', async () => {
    const schema = fresh()
    const writer = await PostgresEventStore.open(pg.url, { schema, max: 2 })
    const reader = await PostgresEventStore.open(pg.url, { schema, max: 2 })
    let notices = 0
    reader.watchTag('t', () => notices++)
    await writer.append(conformanceEvents('x', 1, 1, ['t']))
    await eventually(() => expect(notices).toBeGreaterThan(0))
    expect((await reader.eventsByTag('t', 0)).map((e) => e.persistenceId)).toEqual(['x'])
    await writer.close()
    await reader.close()
  })

  it('an event-sourced actor keeps its state in PostgreSQL across a restart of its system', async () => {
    const schema = fresh()
    const first = await ClusterSystem.start({
      port: 0,
      logLevel: 'silent',
      plugins: [journalPlugin({ store: await PostgresEventStore.open(pg.url, { schema, max }), snapshotEvery: 4 })],
    })
    const c = first.spawn(Counter)
    for (let i = 1; i <= 10; i++) await c.inc(i)
    await eventually(async () => expect((await first.journal.snapshots!.loadSnapshot("counter 'one'"))?.seq).toBe(8)) // saved in the background
    await first.shutdown()
    await first.journal.store.close()
    const store = await PostgresEventStore.open(pg.url, { schema, max })
    const second = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [journalPlugin({ store })] })
    expect(await second.spawn(Counter).inc(0)).toBe(55)
    expect((await store.loadSnapshot("counter 'one'"))?.seq).toBe(8)
    const live: number[] = []
    const stop = new AbortController()
    const done = (async () => {
      for await (const e of second.journal.liveByTag('counters', 0, { signal: stop.signal })) live.push(e.seq)
    })()
    await eventually(() => expect(live).toHaveLength(11))
    await second
      .spawn(Counter)
      .inc(1)
      .catch(() => undefined) // a second activation: conflict or fine, never corrupt
    stop.abort()
    await done
    await second.shutdown()
    await store.close()
  })
})
