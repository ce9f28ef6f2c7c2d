/**
 * The Grafana dashboard (deploy/grafana/shoal-dashboard.json): it is what the generator makes,
 * it follows grafana/dashboard-linter's rules, and every panel's query, run by a real Prometheus
 * (Debian's) scraping a small Shoal cluster under load, returns data. A panel over a metric the
 * nodes never emit fails here rather than showing "no data" in production.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteEventStore } from '@shoal/journal-sqlite'
import { type ActorRef, ClusterSystem, DistributedActor, distributed, EventSourcedActor, journalPlugin, singletonPlugin, virtualActorsPlugin } from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ManagementServer } from '../../packages/shoal/src/management/ManagementServer.ts'
import { dashboardText } from '../grafana/dashboard.ts'

const FILE = new URL('../grafana/shoal-dashboard.json', import.meta.url)
const PROMETHEUS = '/usr/bin/prometheus'

interface Target {
  expr: string
}
interface Panel {
  type: string
  title?: string
  description?: string
  datasource?: { uid?: string }
  fieldConfig?: { defaults?: { unit?: string } }
  targets?: Target[]
}
interface Variable {
  name: string
  label?: string
  type: string
  query?: unknown
  datasource?: { uid?: string }
  multi?: boolean
  includeAll?: boolean
  allValue?: string
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[]
  __requires: unknown[]
  uid: string
  id: null
  templating: { list: Variable[] }
  panels: Panel[]
}

const board = JSON.parse(readFileSync(FILE, 'utf8')) as Dashboard
const panels = board.panels.filter((p) => p.type !== 'row')
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title!, expr: t.expr })))

describe('Grafana dashboard, as dashboard-linter checks it', () => {
  it('is the generator’s output (npm run grafana:build)', () => {
    expect(readFileSync(FILE, 'utf8')).toBe(dashboardText())
  })

  it('export form: a DS_PROMETHEUS input, requirements, a stable uid, no id', () => {
    expect(board.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })])
    expect(board.__requires.length).toBeGreaterThan(0)
    expect(board.uid).toBe('shoal-cluster')
    expect(board.id).toBeNull()
  })

  it('template variables: one datasource labelled "Data Source"; job and instance multi-select, all = ".+", through $datasource', () => {
    const vars = board.templating.list
    const ds = vars.filter((v) => v.type === 'datasource')
    expect(ds).toHaveLength(1)
    expect(ds[0]).toMatchObject({ name: 'datasource', label: 'Data Source', query: 'prometheus' })
    for (const name of ['job', 'instance']) {
      const v = vars.find((x) => x.name === name)
      expect(v, name).toMatchObject({ type: 'query', multi: true, includeAll: true, allValue: '.+', datasource: { uid: '${datasource}' } })
    }
  })

  it('every panel: title, description, unit, the $datasource', () => {
    expect(panels.length).toBeGreaterThanOrEqual(20)
    for (const p of panels) {
      expect(p.title, JSON.stringify(p)).toBeTruthy()
      expect(p.description, p.title).toBeTruthy()
      expect(p.fieldConfig?.defaults?.unit, p.title).toBeTruthy()
      expect(p.datasource?.uid, p.title).toBe('${datasource}')
      expect(p.targets?.length, p.title).toBeGreaterThan(0)
    }
  })

  it('every selector has job and instance matchers; every range is $__rate_interval', () => {
    for (const { panel, expr } of exprs) {
      const selectors = [...expr.matchAll(/\b([a-z_:][a-z0-9_:]*)\{([^}]*)\}/g)]
      expect(selectors.length, `${panel}: ${expr}`).toBeGreaterThan(0)
      for (const [, , matchers] of selectors) {
        expect(matchers, `${panel}: ${expr}`).toContain('job=~"$job"')
        expect(matchers, `${panel}: ${expr}`).toContain('instance=~"$instance"')
      }
      for (const [range] of expr.matchAll(/\[[^\]]*\]/g)) expect(range, `${panel}: ${expr}`).toBe('[$__rate_interval]')
    }
  })
})

// ── every query against a real Prometheus ──────────────────────────────────────

class Tally extends EventSourcedActor<{ n: number }, { type: 'added' }> {
  constructor(readonly tallyId: string) {
    super()
  }
  get persistenceId(): string {
    return `tally-${this.tallyId}`
  }
  initialState(): { n: number } {
    return { n: 0 }
  }
  applyEvent(s: { n: number }): { n: number } {
    return { n: s.n + 1 }
  }
  @distributed async add(): Promise<number> {
    await this.emit({ type: 'added' })
    return this.state.n
  }
}

class Ping extends DistributedActor {
  @distributed async ping(fail: boolean): Promise<string> {
    if (fail) throw new RangeError('asked to fail')
    return 'pong'
  }
}

const systems: ClusterSystem[] = []
const servers: ManagementServer[] = []
let prometheus: ChildProcess | undefined
let promUrl = ''
let dir = ''
let storeDir = ''
const stores: SqliteEventStore[] = []
let load: Promise<void> | undefined
let loading = true

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

async function query(expr: string): Promise<{ status: string; data?: { result: unknown[] }; error?: string }> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) })
  return (await res.json()) as { status: string; data?: { result: unknown[] }; error?: string }
}

describe('Grafana dashboard, every query against Prometheus', () => {
  beforeAll(async () => {
    // Three nodes with singletons, virtual actors and a journal (SQLite: it reports write batches), each with its management endpoint.
    storeDir = mkdtempSync(join(tmpdir(), 'shoal-grafana-journal-'))
    const store = SqliteEventStore.open(join(storeDir, 'journal.db'))
    stores.push(store)
    for (let i = 0; i < 3; i++) {
      const s = await ClusterSystem.start({
        name: `n${i}`,
        port: 0,
        logLevel: 'silent',
        plugins: [singletonPlugin(), virtualActorsPlugin(), journalPlugin({ store })],
        cluster: { selfJoinAfter: 200, seeds: i === 0 ? [] : [`127.0.0.1:${systems[0]!.node.endpoint.port}`] },
      })
      systems.push(s)
      s.virtualActors.host(Tally, (id) => new Tally(id))
      s.singleton.host('pinger', (sys) => sys.spawn(Ping))
      servers.push(await ManagementServer.start(s, { port: 0 }))
    }
    await eventually(() => expect(systems[0]!.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(3), { timeoutMs: 15_000 })
    // Prometheus scraping them every second.
    dir = mkdtempSync(join(tmpdir(), 'shoal-prom-'))
    const port = await freePort()
    promUrl = `http://127.0.0.1:${port}`
    const targets = servers.map((m) => `'127.0.0.1:${m.port}'`).join(', ')
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shoal\n    static_configs:\n      - targets: [${targets}]\n`,
    )
    prometheus = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    )
    // Load: remote calls (some failing), journal appends, virtual actors, the singleton.
    const pinger = systems[1]!.singleton.proxy(Ping, 'pinger') as ActorRef<Ping>
    load = (async () => {
      for (let i = 0; loading; i++) {
        const from = systems[i % 3]!
        await Promise.all([
          from.virtualActors
            .get(Tally, `t${i % 20}`)
            .add()
            .catch(() => undefined),
          pinger.ping(i % 10 === 0).catch(() => undefined),
        ])
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    await eventually(
      async () => {
        const up = await query('up{job="shoal"}')
        expect(up.data?.result).toHaveLength(3)
      },
      { timeoutMs: 20_000 },
    )
    // Enough samples for rate() over the interval below.
    await new Promise((r) => setTimeout(r, 6000))
  }, 60_000)

  afterAll(async () => {
    loading = false
    await load
    prometheus?.kill('SIGKILL')
    await Promise.all(servers.splice(0).map((m) => m.close()))
    await Promise.all(systems.splice(0).map((s) => s.shutdown()))
    await Promise.all(stores.splice(0).map((s) => s.close()))
    if (dir) rmSync(dir, { recursive: true, force: true })
    if (storeDir) rmSync(storeDir, { recursive: true, force: true })
  })

  it.each(exprs.map((e) => [e.panel, e.expr]))('%s: %s returns data', async (_panel, expr) => {
    const concrete = expr.replaceAll('$__rate_interval', '5s').replaceAll('$job', 'shoal').replaceAll('$instance', '.+')
    const answer = await query(concrete)
    expect(answer.status, answer.error).toBe('success')
    expect(answer.data?.result.length, concrete).toBeGreaterThan(0)
  })
})
