/**
 * A seeded sweep: many cluster simulations (one per seed), spread over worker threads, summed
 * into one report: invariant checks and violations (each with the seed that replays it), and the
 * time the cluster took to decide and to converge after each kind of fault, as distributions
 * over the seeds. `shoal sim --cluster --seeds N` and `npm run sim:sweep` print it.
 * @module
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { ClusterSimOptions, ClusterSimReport } from './ClusterSimulator.ts'
import { runClusterSim } from './ClusterSimulator.ts'

/** What a sweep runs: seeds `first` … `first + seeds - 1` with the same options. */
export interface SweepOptions extends Omit<ClusterSimOptions, 'seed' | 'trace'> {
  readonly first?: number
  readonly seeds: number
  /** Worker threads; default the machine's parallelism (1 runs in this thread). */
  readonly workers?: number
  /** Called after each seed with the count done (progress output). */
  readonly progress?: (done: number, total: number, failed: number) => void
}

/** Percentiles of one measurement over the seeds, seconds. */
export interface Distribution {
  readonly count: number
  readonly p50: number | null
  readonly p90: number | null
  readonly p99: number | null
  readonly max: number | null
  /** Faults after which it did not happen before the next fault. */
  readonly missing: number
}

/** The sum of a sweep. */
export interface SweepReport {
  readonly seeds: number
  readonly first: number
  readonly nodes: number
  readonly simulatedSecondsPerSeed: number
  readonly faults: string
  readonly wallSeconds: number
  readonly workers: number
  readonly violations: ReadonlyArray<{ readonly seed: number; readonly invariant: string; readonly atSeconds: number; readonly detail: string }>
  /** Seeds with at least one violation. */
  readonly failedSeeds: readonly number[]
  readonly checks: Readonly<Record<string, number>>
  readonly faultsInjected: number
  readonly downs: number
  readonly restarts: number
  readonly events: number
  /** Per fault kind: time to the first down decision and to agreement again. */
  readonly timings: Readonly<Record<string, { readonly decided: Distribution; readonly converged: Distribution }>>
  /** Per fault kind that hit the singleton's host (crash, pause): time to a new instance elsewhere. */
  readonly failover: Readonly<Record<string, Distribution>>
  /** Per fault kind that hit an owner of virtual actors' shards (crash, pause): time until all its shards are open elsewhere. */
  readonly shardFailover: Readonly<Record<string, Distribution>>
  readonly convergedAfterQuiet: Distribution
  readonly singleton: { readonly activations: number; readonly served: number; readonly refused: number; readonly acknowledged: number } | undefined
  /** Virtual actors over every seed: activations, and the clients' calls issued, served and failed after their deadline. */
  readonly shards: { readonly activations: number; readonly issued: number; readonly served: number; readonly failed: number } | undefined
}

/** Runs the sweep (see the module comment). */
export async function runSweep(o: SweepOptions): Promise<SweepReport> {
  const first = o.first ?? 1
  const workers = Math.max(1, Math.min(o.workers ?? availableParallelism(), o.seeds))
  const started = performance.now()
  const acc = new Accumulator()
  const { seeds: _s, first: _f, workers: _w, progress, ...sim } = o
  let done = 0
  const note = (r: ClusterSimReport): void => {
    acc.add(r)
    progress?.(++done, o.seeds, acc.failed.size)
  }
  if (workers === 1) {
    for (let seed = first; seed < first + o.seeds; seed++) note(runClusterSim({ ...sim, seed }))
  } else {
    let next = first
    const end = first + o.seeds
    await Promise.all(
      Array.from({ length: workers }, () => {
        const w = startWorker()
        return new Promise<void>((resolve, reject) => {
          const ask = (): void => {
            if (next >= end) return void w.terminate().then(() => resolve(), reject)
            w.postMessage({ ...sim, seed: next++ })
          }
          w.on('message', (r: ClusterSimReport) => {
            note(r)
            ask()
          })
          w.on('error', reject)
          ask()
        })
      }),
    )
  }
  return acc.report({
    seeds: o.seeds,
    first,
    nodes: o.nodes ?? 5,
    simulatedSecondsPerSeed: (o.duration ?? 600_000) / 1000,
    faults: o.faults ?? 'dense',
    wallSeconds: (performance.now() - started) / 1000,
    workers,
  })
}

/** The worker is the sibling file; from sources it first registers the TypeScript loader, as bin/shoal.js does. */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./SweepWorker.js', import.meta.url))
  const url = new URL('./SweepWorker.ts', import.meta.url).href
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url)}) })`
  return new Worker(boot, { eval: true })
}

type Head = Pick<SweepReport, 'seeds' | 'first' | 'nodes' | 'simulatedSecondsPerSeed' | 'faults' | 'wallSeconds' | 'workers'>

class Accumulator {
  readonly violations: SweepReport['violations'][number][] = []
  readonly failed = new Set<number>()
  readonly checks: Record<string, number> = {}
  readonly decided = new Map<string, number[]>()
  readonly converged = new Map<string, number[]>()
  readonly missing = new Map<string, { decided: number; converged: number }>()
  readonly failover = new Map<string, number[]>()
  readonly failoverMissing = new Map<string, number>()
  readonly shardFailover = new Map<string, number[]>()
  readonly shardFailoverMissing = new Map<string, number>()
  readonly quiet: number[] = []
  quietMissing = 0
  faults = 0
  downs = 0
  restarts = 0
  events = 0
  singleton: { activations: number; served: number; refused: number; acknowledged: number } | undefined
  shards: { activations: number; issued: number; served: number; failed: number } | undefined

  add(r: ClusterSimReport): void {
    for (const v of r.violations) {
      this.violations.push({ seed: r.seed, invariant: v.invariant, atSeconds: v.at / 1000, detail: v.detail })
      this.failed.add(r.seed)
    }
    for (const [k, n] of Object.entries(r.checks)) this.checks[k] = (this.checks[k] ?? 0) + n
    for (const t of r.timings) {
      const miss = this.missing.get(t.fault) ?? { decided: 0, converged: 0 }
      this.missing.set(t.fault, miss)
      push(this.decided, t.fault, t.decided, () => miss.decided++)
      push(this.converged, t.fault, t.converged, () => miss.converged++)
      if (t.failover !== undefined)
        push(this.failover, t.fault, t.failover, () => this.failoverMissing.set(t.fault, (this.failoverMissing.get(t.fault) ?? 0) + 1))
      if (t.shardFailover !== undefined)
        push(this.shardFailover, t.fault, t.shardFailover, () => this.shardFailoverMissing.set(t.fault, (this.shardFailoverMissing.get(t.fault) ?? 0) + 1))
    }
    if (r.convergedAfterQuiet === null) this.quietMissing++
    else this.quiet.push(r.convergedAfterQuiet)
    this.faults += r.faults.length
    this.downs += r.downs
    this.restarts += r.restarts
    this.events += r.events
    if (r.singleton) {
      const s = (this.singleton ??= { activations: 0, served: 0, refused: 0, acknowledged: 0 })
      s.activations += r.singleton.activations
      s.served += r.singleton.served
      s.refused += r.singleton.refused
      s.acknowledged += r.singleton.acknowledged
    }
    if (r.shards) {
      const s = (this.shards ??= { activations: 0, issued: 0, served: 0, failed: 0 })
      s.activations += r.shards.activations
      s.issued += r.shards.issued
      s.served += r.shards.served
      s.failed += r.shards.failed
    }
  }

  report(head: Head): SweepReport {
    const timings: Record<string, { decided: Distribution; converged: Distribution }> = {}
    for (const kind of [...this.missing.keys()].sort()) {
      const miss = this.missing.get(kind)!
      timings[kind] = {
        decided: distribution(this.decided.get(kind) ?? [], miss.decided),
        converged: distribution(this.converged.get(kind) ?? [], miss.converged),
      }
    }
    return {
      ...head,
      violations: this.violations.sort((a, b) => a.seed - b.seed),
      failedSeeds: [...this.failed].sort((a, b) => a - b),
      checks: this.checks,
      faultsInjected: this.faults,
      downs: this.downs,
      restarts: this.restarts,
      events: this.events,
      timings,
      failover: byKind(this.failover, this.failoverMissing),
      shardFailover: byKind(this.shardFailover, this.shardFailoverMissing),
      convergedAfterQuiet: distribution(this.quiet, this.quietMissing),
      singleton: this.singleton,
      shards: this.shards,
    }
  }
}

function byKind(xs: Map<string, number[]>, missing: Map<string, number>): Record<string, Distribution> {
  return Object.fromEntries([...new Set([...xs.keys(), ...missing.keys()])].sort().map((k) => [k, distribution(xs.get(k) ?? [], missing.get(k) ?? 0)]))
}

function push(into: Map<string, number[]>, kind: string, ms: number | null, miss: () => void): void {
  if (ms === null) return miss()
  let xs = into.get(kind)
  if (!xs) into.set(kind, (xs = []))
  xs.push(ms / 1000)
}

function distribution(xs: number[], missing: number): Distribution {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number): number | null => (s.length === 0 ? null : round(s[Math.min(s.length - 1, Math.floor(q * s.length))]!))
  return { count: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s.length === 0 ? null : round(s.at(-1)!), missing }
}

function round(x: number): number {
  return Math.round(x * 100) / 100
}
