/**
 * `npm run bench:journal [-- --quick]`: event sourcing on the in-memory, SQLite and PostgreSQL
 * stores, each beside a raw baseline writing the same rows to the same tables with no framework
 * (see raw.ts). Every measurement gets a fresh database (a new SQLite file in a temporary
 * directory; a new PostgreSQL schema), created by the store's own migration, removed at the end.
 *
 * 1. Throughput: 100 EventSourcedActors in one ClusterSystem (journalPlugin with the store,
 *    default settings: a snapshot every 1,000 events), each emitting in a loop and awaiting each
 *    emit; events/s completed in a 5 s window after 1 s of warm-up. The raw baselines: 100
 *    writers, each appending one row at a time to a stream of its own and awaiting it, grouped as
 *    raw.ts describes; for PostgreSQL also two other ways of grouping and the framework without
 *    snapshots, for orientation. Two rounds, the second in reverse order; the mean is reported.
 * 2. Emit latency: one actor emitting sequentially (p50, p99); the raw baseline with one writer.
 * 3. Recovery of a 10,000-event stream: spawn → first served call, by full replay (no snapshot),
 *    then from a snapshot at 10,000; and reading the stream alone, for where the time goes.
 * Prints progress and Markdown tables with PASS/MISS against the targets. The PostgreSQL server:
 * SHOAL_BENCH_PG_URL, default postgres://postgres@127.0.0.1:5432/test; without one the PostgreSQL
 * rows are skipped, saying so. `--quick`: shorter windows, one round (a smoke run);
 * `--stores=postgres` (or a comma-separated list): only those stores.
 * @module
 */
import { loadavg } from 'node:os'
import { PostgresEventStore } from '@shoal/journal-postgres'
import Database from 'better-sqlite3'
import { type ActorRef, ClusterSystem, type EventStore, journalPlugin, type NewEvent, type SnapshotStore } from 'shoal'
import { percentile } from '../harness.ts'
import { describeMachine } from '../report.ts'
import { Account, type Balance, EVENT } from './actor.ts'
import { postgresPerRow, postgresRaw, type RawWriter, sqliteRaw } from './raw.ts'
import { type Fresh, PG_POOL, PG_URL, type StoreKind, Stores } from './stores.ts'

const quick = process.argv.includes('--quick')
const PLAN = {
  writers: 100,
  throughput: quick ? { warmupMs: 500, durationMs: 1500 } : { warmupMs: 1000, durationMs: 5000 },
  rounds: quick ? 1 : 2,
  latency: quick ? { warmupMs: 300, durationMs: 1000 } : { warmupMs: 500, durationMs: 3000 },
  streamEvents: 10_000,
  recoveryTrials: quick ? 3 : 7,
}
const TARGETS = { sqliteEventsPerSec: 20_000, postgresEventsPerSec: 10_000, vsRaw: 0.5, replayMs: 200, snapshotMs: 20 }

const started = performance.now()
const progress = (s: string): void => console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${s}`)
const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—'
const median = (xs: readonly number[]): number => percentile(Float64Array.from(xs).sort(), 50)
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length

const stores = new Stores()

/** A ClusterSystem with the journal on `store`; closes both. */
async function withSystem<T>(store: EventStore & SnapshotStore, fn: (system: ClusterSystem) => Promise<T>, journal: { snapshots?: false } = {}): Promise<T> {
  const system = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [journalPlugin({ store, ...journal })] })
  try {
    return await fn(system)
  } finally {
    await system.shutdown()
    await store.close()
  }
}

/** Extra wait on calls that run a whole load window. */
const callTimeout = (t: { warmupMs: number; durationMs: number }): number => t.warmupMs + t.durationMs + 60_000

// ---- 1. throughput ----------------------------------------------------------------------------

interface Throughput {
  readonly perSec: number
  /** Rows per transaction (or per INSERT statement), where known. */
  readonly batch: number
  /** PostgreSQL: statements (round trips) sent per INSERT of events, snapshots included. */
  readonly statements: number
}

/**
 * What the PostgreSQL store sends, seen through the client's debug hook (called as each query is
 * sent): INSERTs of events, the rows in them, and all statements of the write path.
 */
interface QueryCounter {
  inserts: number
  rows: number
  statements: number
}

async function frameworkThroughput(kind: StoreKind, snapshots = true): Promise<Throughput> {
  const db = await stores.fresh(kind)
  const counter: QueryCounter = { inserts: 0, rows: 0, statements: 0 }
  let counting = false
  const store =
    kind === 'postgres'
      ? await PostgresEventStore.open(PG_URL, {
          schema: db.schema!,
          max: PG_POOL,
          client: {
            debug: (_connection: number, query: string, parameters: unknown[]) => {
              if (!counting) return
              counter.statements++
              if (query.includes('INSERT INTO') && query.includes('.shoal_events')) {
                counter.inserts++
                // The store sends a batch as one array per column.
                counter.rows += (parameters.find(Array.isArray) as unknown[] | undefined)?.length ?? 0
              }
            },
          },
        })
      : await stores.open(db)
  return withSystem(
    store,
    async (system) => {
      const refs = Array.from({ length: PLAN.writers }, (_, i) => system.spawn(Account, `t${i}`).withTimeout(callTimeout(PLAN.throughput)))
      const from = performance.now() + PLAN.throughput.warmupMs
      const to = from + PLAN.throughput.durationMs
      counting = true
      const counts = await Promise.all(refs.map((r) => r.pump(from, to)))
      counting = false
      const events = counts.reduce((a, b) => a + b, 0)
      return {
        perSec: events / (PLAN.throughput.durationMs / 1000),
        batch: counter.inserts > 0 ? counter.rows / counter.inserts : Number.NaN,
        statements: counter.inserts > 0 ? counter.statements / counter.inserts : Number.NaN,
      }
    },
    snapshots ? {} : { snapshots: false },
  )
}

async function rawThroughput(make: (db: Fresh) => RawWriter, kind: StoreKind): Promise<Throughput> {
  const writer = make(await stores.fresh(kind))
  try {
    const from = performance.now() + PLAN.throughput.warmupMs
    const to = from + PLAN.throughput.durationMs
    let rows = 0
    const worker = async (i: number): Promise<void> => {
      for (let seq = 1; ; seq++) {
        if (performance.now() >= to) return
        await writer.write(`raw-${i}`, seq)
        const t = performance.now()
        if (t >= from && t < to) rows++
      }
    }
    await Promise.all(Array.from({ length: PLAN.writers }, (_, i) => worker(i)))
    return {
      perSec: rows / (PLAN.throughput.durationMs / 1000),
      batch: writer.stats.rows / writer.stats.transactions,
      statements: kind === 'postgres' ? 1 : Number.NaN,
    }
  } finally {
    await writer.close()
  }
}

// ---- 2. latency -------------------------------------------------------------------------------

interface Latency {
  readonly p50: number
  readonly p99: number
  readonly samples: number
}

const latencyOf = (samples: number[]): Latency => {
  const sorted = Float64Array.from(samples).sort()
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), samples: sorted.length }
}

async function frameworkLatency(kind: StoreKind): Promise<Latency> {
  const store = await stores.open(await stores.fresh(kind))
  const samples: number[] = []
  await withSystem(store, async (system) => {
    const ref = system.spawn(Account, 'latency', (ms) => samples.push(ms)).withTimeout(callTimeout(PLAN.latency))
    const from = performance.now() + PLAN.latency.warmupMs
    await ref.pump(from, from + PLAN.latency.durationMs)
  })
  return latencyOf(samples)
}

async function rawLatency(make: (db: Fresh) => RawWriter, kind: StoreKind): Promise<Latency> {
  const writer = make(await stores.fresh(kind))
  const samples: number[] = []
  try {
    const from = performance.now() + PLAN.latency.warmupMs
    const to = from + PLAN.latency.durationMs
    for (let seq = 1; ; seq++) {
      const t0 = performance.now()
      if (t0 >= to) break
      await writer.write('raw-latency', seq)
      if (t0 >= from) samples.push(performance.now() - t0)
    }
  } finally {
    await writer.close()
  }
  return latencyOf(samples)
}

// ---- 3. recovery ------------------------------------------------------------------------------

interface Recovery {
  /** Spawn → first served call, ms, per trial (the first is the first recovery in the process for this store). */
  readonly replayMs: readonly number[]
  readonly snapshotMs: readonly number[]
  /** Reading the stream alone, pages of 1,000 as the actor reads them, no decoding: ms per trial. */
  readonly readMs: readonly number[]
  /** Writing the stream: 10 appends of 1,000 events, ms. */
  readonly writeMs: number
}

async function recovery(kind: StoreKind): Promise<Recovery> {
  const store = await stores.open(await stores.fresh(kind))
  return withSystem(store, async (system) => {
    const codec = system.journal.codec
    const pid = 'account-recovery'
    const t0 = performance.now()
    for (let seq = 1; seq <= PLAN.streamEvents; ) {
      const page: NewEvent[] = []
      for (; page.length < 1000 && seq <= PLAN.streamEvents; seq++) page.push({ persistenceId: pid, seq, ...codec.encode(EVENT), tags: [] })
      await store.append(page)
    }
    const writeMs = performance.now() - t0
    const trial = async (): Promise<number> => {
      const t = performance.now()
      const ref: ActorRef<Account> = system.spawn(Account, 'recovery')
      const state: Balance = await ref.balance()
      const ms = performance.now() - t
      if (state.count !== PLAN.streamEvents) throw new Error(`recovered ${state.count} events, expected ${PLAN.streamEvents}`)
      await system.stop(ref)
      return ms
    }
    const read = async (): Promise<number> => {
      const t = performance.now()
      for (let from = 1; ; ) {
        const page = await store.read(pid, from, { limit: 1000 })
        if (page.length < 1000) break
        from = page[page.length - 1]!.seq + 1
      }
      return performance.now() - t
    }
    const replayMs: number[] = []
    const readMs: number[] = []
    for (let i = 0; i < PLAN.recoveryTrials; i++) {
      replayMs.push(await trial())
      readMs.push(await read())
    }
    // The snapshot the actor itself saves at 10,000 (with snapshotEvery dividing it): its state, encoded by the journal's codec.
    const state: Balance = { balance: PLAN.streamEvents * EVENT.amount, count: PLAN.streamEvents }
    await store.saveSnapshot({ persistenceId: pid, seq: PLAN.streamEvents, payload: codec.encodeState(state, 16 * 1024 * 1024), timestamp: Date.now() })
    const snapshotMs: number[] = []
    for (let i = 0; i < PLAN.recoveryTrials; i++) snapshotMs.push(await trial())
    return { replayMs, snapshotMs, readMs, writeMs }
  })
}

// ---- the run ----------------------------------------------------------------------------------

const machine = describeMachine(loadavg())
const pgVersion = await stores.postgresReachable()
const sqliteVersion = (() => {
  const db = new Database(':memory:')
  try {
    return db.prepare('SELECT sqlite_version()').pluck().get() as string
  } finally {
    db.close()
  }
})()
// `--stores=sqlite,postgres` runs only those (the default: every store there is).
const only = process.argv
  .find((a) => a.startsWith('--stores='))
  ?.slice('--stores='.length)
  .split(',')
const kinds = (pgVersion ? (['memory', 'sqlite', 'postgres'] as const) : (['memory', 'sqlite'] as const)).filter((k) => !only || only.includes(k))
progress(
  `bench:journal on ${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, load ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')}; SQLite ${sqliteVersion}; ${pgVersion ? `${pgVersion.split(' on ')[0]} at ${new URL(PG_URL).host}` : `no PostgreSQL at ${new URL(PG_URL).host}: PostgreSQL skipped`}`,
)
progress(
  `throughput: ${PLAN.writers} writers, ${PLAN.throughput.warmupMs} ms warm-up + ${PLAN.throughput.durationMs} ms measured, ${PLAN.rounds} round(s); latency: 1 writer, ${PLAN.latency.durationMs} ms; recovery: ${fmt(PLAN.streamEvents)} events, ${PLAN.recoveryTrials} trials`,
)

interface Contender {
  readonly kind: StoreKind
  readonly name: string
  /** `framework`: the figure the targets use; `baseline`: the raw baseline the ratio is taken against; `other`: for orientation. */
  readonly role: 'framework' | 'baseline' | 'other'
  readonly run: () => Promise<Throughput>
}

/** Throughput contenders, per store, in the order run in a round. */
const all: Contender[] = [
  { kind: 'memory', role: 'framework', name: 'Shoal', run: () => frameworkThroughput('memory') },
  { kind: 'sqlite', role: 'framework', name: 'Shoal', run: () => frameworkThroughput('sqlite') },
  { kind: 'sqlite', role: 'baseline', name: 'raw: a transaction per event-loop turn', run: () => rawThroughput(sqliteRaw, 'sqlite') },
  { kind: 'postgres', role: 'framework', name: 'Shoal', run: () => frameworkThroughput('postgres') },
  { kind: 'postgres', role: 'other', name: 'Shoal, snapshots off', run: () => frameworkThroughput('postgres', false) },
  {
    kind: 'postgres',
    role: 'baseline',
    name: 'raw: INSERT from unnest(column arrays), 1 in flight',
    run: () => rawThroughput((db) => postgresRaw(db, 1, 'unnest'), 'postgres'),
  },
  { kind: 'postgres', role: 'other', name: 'raw: multi-row INSERT … VALUES, 1 in flight', run: () => rawThroughput((db) => postgresRaw(db, 1), 'postgres') },
  {
    kind: 'postgres',
    role: 'other',
    name: `raw: multi-row INSERTs, ≤ ${PG_POOL} in flight`,
    run: () => rawThroughput((db) => postgresRaw(db, PG_POOL), 'postgres'),
  },
  { kind: 'postgres', role: 'other', name: `raw: one-row INSERTs, ≤ ${PG_POOL} in flight`, run: () => rawThroughput(postgresPerRow, 'postgres') },
]
const contenders = all.filter((c) => kinds.includes(c.kind))

const throughput = new Map<Contender, Throughput[]>()
try {
  for (let round = 1; round <= PLAN.rounds; round++) {
    // Alternate the order, so that neither side always runs first.
    const order = round % 2 === 1 ? contenders : [...contenders].reverse()
    for (const c of order) {
      const r = await c.run()
      throughput.set(c, [...(throughput.get(c) ?? []), r])
      const extra = [
        Number.isFinite(r.batch) ? `${fmt(r.batch, 1)} rows per transaction` : '',
        Number.isFinite(r.statements) ? `${fmt(r.statements, 2)} statements per INSERT` : '',
      ]
        .filter(Boolean)
        .join(', ')
      progress(`throughput round ${round}/${PLAN.rounds}: ${c.kind}, ${c.name}: ${fmt(r.perSec)} events/s${extra ? ` (${extra})` : ''}`)
    }
  }

  const latency = new Map<string, Latency>()
  const latencyRuns: [StoreKind, 'framework' | 'raw', () => Promise<Latency>][] = [
    ['memory', 'framework', () => frameworkLatency('memory')],
    ['sqlite', 'framework', () => frameworkLatency('sqlite')],
    ['sqlite', 'raw', () => rawLatency(sqliteRaw, 'sqlite')],
    ['postgres', 'framework', () => frameworkLatency('postgres')],
    ['postgres', 'raw', () => rawLatency((db) => postgresRaw(db, 1, 'unnest'), 'postgres')],
  ]
  for (const [kind, who, run] of latencyRuns) {
    if (!kinds.includes(kind)) continue
    const l = await run()
    latency.set(`${kind} ${who}`, l)
    progress(`latency: ${kind}, ${who === 'framework' ? 'Shoal' : 'raw'}: p50 ${fmt(l.p50, 3)} ms, p99 ${fmt(l.p99, 3)} ms (${fmt(l.samples)} writes)`)
  }

  const recoveries = new Map<StoreKind, Recovery>()
  for (const kind of kinds) {
    const r = await recovery(kind)
    recoveries.set(kind, r)
    progress(
      `recovery: ${kind}: full replay ${r.replayMs.map((m) => fmt(m, 1)).join(', ')} ms (reading alone p50 ${fmt(median(r.readMs), 1)} ms); from a snapshot ${r.snapshotMs.map((m) => fmt(m, 2)).join(', ')} ms`,
    )
  }

  // ---- tables ---------------------------------------------------------------------------------
  const figure = (c: Contender): number => mean((throughput.get(c) ?? []).map((t) => t.perSec))
  const framework = (kind: StoreKind): number => figure(contenders.find((c) => c.kind === kind && c.role === 'framework')!)
  const baseline = (kind: StoreKind): Contender | undefined => contenders.find((c) => c.kind === kind && c.role === 'baseline')
  const lines: string[] = [
    '',
    `Throughput: ${PLAN.writers} concurrent writers (actors, or raw writers with a stream each), each awaiting every write; events per second, mean of ${PLAN.rounds} round(s)`,
    '',
  ]
  lines.push(
    `| store | writer | ${Array.from({ length: PLAN.rounds }, (_, i) => `round ${i + 1}`).join(' | ')} | events/s | Shoal ÷ this | rows per transaction | statements per INSERT of events |`,
  )
  lines.push(`|---|---|${'---:|'.repeat(PLAN.rounds)}---:|---:|---:|---:|`)
  for (const c of contenders) {
    const rs = throughput.get(c) ?? []
    const name = c.role === 'framework' ? `**${c.name}**` : c.role === 'baseline' ? `${c.name} (baseline)` : c.name
    const ratio = c.role === 'framework' ? '' : `${fmt((100 * framework(c.kind)) / figure(c))} %`
    lines.push(
      `| ${c.kind} | ${name} | ${rs.map((r) => fmt(r.perSec)).join(' | ')} | ${c.role === 'framework' ? `**${fmt(figure(c))}**` : fmt(figure(c))} | ${ratio} | ${fmt(mean(rs.map((r) => r.batch)), 1)} | ${fmt(mean(rs.map((r) => r.statements)), 2)} |`,
    )
  }
  lines.push(
    '',
    "Rows per transaction: PostgreSQL, rows per INSERT of events; SQLite raw, rows per transaction. Statements per INSERT: every statement the PostgreSQL store sent while measuring (transaction, lock, savepoint, snapshots) per INSERT of events, from the client's debug hook.",
  )
  lines.push(
    '',
    `Emit latency: one writer, sequential, ${PLAN.latency.durationMs} ms after ${PLAN.latency.warmupMs} ms warm-up; ms (raw: the baseline writer with one writer, i.e. one-row transactions)`,
    '',
  )
  lines.push('| store | Shoal p50 | Shoal p99 | raw p50 | raw p99 | Shoal emits |', '|---|---:|---:|---:|---:|---:|')
  for (const kind of kinds) {
    const f = latency.get(`${kind} framework`)
    const r = latency.get(`${kind} raw`)
    lines.push(
      `| ${kind} | ${fmt(f?.p50 ?? Number.NaN, 3)} | ${fmt(f?.p99 ?? Number.NaN, 3)} | ${fmt(r?.p50 ?? Number.NaN, 3)} | ${fmt(r?.p99 ?? Number.NaN, 3)} | ${fmt(f?.samples ?? Number.NaN)} |`,
    )
  }
  lines.push(
    '',
    `Recovery of a ${fmt(PLAN.streamEvents)}-event stream: spawn → first served call, ms (${PLAN.recoveryTrials} trials each; "first" is the store's first recovery in this process)`,
    '',
  )
  lines.push(
    '| store | full replay: first | p50 | max | of which reading the stream (p50) | from a snapshot: first | p50 | max |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  )
  for (const kind of kinds) {
    const r = recoveries.get(kind)!
    lines.push(
      `| ${kind} | ${fmt(r.replayMs[0]!, 1)} | ${fmt(median(r.replayMs), 1)} | ${fmt(Math.max(...r.replayMs), 1)} | ${fmt(median(r.readMs), 1)} | ${fmt(r.snapshotMs[0]!, 2)} | ${fmt(median(r.snapshotMs), 2)} | ${fmt(Math.max(...r.snapshotMs), 2)} |`,
    )
  }

  const targets: [string, string, boolean][] = []
  for (const kind of kinds.filter((k) => k !== 'memory')) {
    const goal = kind === 'sqlite' ? TARGETS.sqliteEventsPerSec : TARGETS.postgresEventsPerSec
    targets.push([`${kind}: ≥ ${fmt(goal)} events/s (${PLAN.writers} actors)`, `${fmt(framework(kind))} events/s`, framework(kind) >= goal])
    const b = baseline(kind)
    if (b)
      targets.push([
        `${kind}: Shoal ≥ ${TARGETS.vsRaw * 100} % of the raw baseline (${b.name.replace('raw: ', '')})`,
        `${fmt(framework(kind))} ÷ ${fmt(figure(b))} = ${fmt((100 * framework(kind)) / figure(b))} %`,
        framework(kind) >= TARGETS.vsRaw * figure(b),
      ])
    const r = recoveries.get(kind)!
    targets.push([
      `${kind}: full replay of ${fmt(PLAN.streamEvents)} events ≤ ${TARGETS.replayMs} ms (p50)`,
      `p50 ${fmt(median(r.replayMs), 1)} ms, max ${fmt(Math.max(...r.replayMs), 1)} ms`,
      median(r.replayMs) <= TARGETS.replayMs,
    ])
    targets.push([
      `${kind}: recovery from a snapshot ≤ ${TARGETS.snapshotMs} ms (p50)`,
      `p50 ${fmt(median(r.snapshotMs), 2)} ms, max ${fmt(Math.max(...r.snapshotMs), 2)} ms`,
      median(r.snapshotMs) <= TARGETS.snapshotMs,
    ])
  }
  lines.push('', '| target | result | |', '|---|---|---|', ...targets.map(([t, r, ok]) => `| ${t} | ${r} | ${ok ? 'PASS' : '**MISS**'} |`))
  console.log(lines.join('\n'))
} finally {
  await stores.cleanUp()
}
progress(
  `done; load average now ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
)
