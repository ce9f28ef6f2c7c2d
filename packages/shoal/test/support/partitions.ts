/**
 * Partition scenarios against five real singleton-fixture processes (test/fixtures/singleton-node.ts),
 * one per network namespace of a {@link NetnsLab}, every node calling the singleton every `load` ms.
 * Used by `partition-safety.test.ts` (one short run of each) and by `npm run chaos:partitions` (many
 * runs with varied timings and hosts). Each scenario returns its findings; the caller judges them.
 *
 * - {@link flapScenario}: the link between {0,1,2} and {3,4} is cut `cutMs`, up `upMs`, for
 *   `durationMs`, with the singleton on `host`; then healed.
 * - {@link bridgeScenario}: {0,1}×{3,4} cut both ways while 2 reaches everyone, for `durationMs`;
 *   then healed.
 *
 * Findings: overlapping singleton instances (activation to passivation or exit, over every process;
 * calls answered by one while another was active), nodes that exited and their codes, when nodes
 * were resolved, and how soon after the heal each surviving node's calls succeeded again.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type LogLine, NodeProcess } from 'shoal/testkit'
import type { NetnsLab } from './netns.ts'

const FIXTURE = fileURLToPath(new URL('../fixtures/singleton-node.ts', import.meta.url))
const PORT = 7400
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** One fixture process in the lab, and when it was seen to exit. */
export interface LabNode {
  readonly index: number
  readonly proc: NodeProcess
  exitedAt: number | undefined
  code: number | null | undefined
}

/** A call logged by the fixture's load. */
export interface FixtureCall {
  readonly ok: boolean
  readonly host?: string
  readonly code?: string
  readonly started: number
  readonly ms: number
}

/** One singleton instance's lifetime on one node (ms, the machine's clock). */
export interface InstanceInterval {
  readonly node: string
  readonly instance: string
  readonly from: number
  readonly to: number
}

/** Two instances alive at once, and the calls each answered meanwhile. */
export interface Overlap {
  readonly a: InstanceInterval
  readonly b: InstanceInterval
  readonly ms: number
  /** Successful calls answered (by any instance) while both were alive. */
  readonly answered: number
}

export interface ScenarioSettings {
  /** Index (0..4) of the oldest node, which hosts the singleton. */
  readonly host: number
  /** ms between the calls each node makes (default 200). */
  readonly load?: number
  /** Cluster stableAfter, ms (default: the library's). */
  readonly stableAfter?: number
  /** Progress lines (default: none). */
  readonly say?: (line: string) => void
  /** Where to write every node's log lines (`<address>-<n>.jsonl`) when the scenario ends (default: nowhere). */
  readonly logDir?: string
}

export interface ScenarioResult {
  readonly overlaps: readonly Overlap[]
  readonly intervals: readonly InstanceInterval[]
  /** Nodes that exited, with their exit codes. */
  readonly exits: ReadonlyArray<{ readonly node: string; readonly code: number | null | undefined; readonly afterFaultMs: number }>
  /** Nodes that logged being downed. */
  readonly downed: readonly string[]
  /**
   * Per node alive after the heal: ms from the heal (or from the activation of the instance that
   * answered, if later) until a call it started after the heal succeeded (undefined: never).
   */
  readonly okAfterHeal: ReadonlyArray<{ readonly node: string; readonly ms: number | undefined }>
  /** ms from the fault until every node had exited (downed) or, staying, was served again after its last failed call. */
  readonly resolvedMs: number | undefined
  readonly faultAt: number
  readonly healAt: number
}

/** Five fixture processes in `lab`, the singleton on `host` (started first, so the oldest). */
export class LabCluster {
  readonly nodes: LabNode[] = []
  readonly #lab: NetnsLab
  readonly #secret = randomBytes(32).toString('hex')
  readonly #s: ScenarioSettings

  constructor(lab: NetnsLab, s: ScenarioSettings) {
    this.#lab = lab
    this.#s = s
  }

  address(i: number): string {
    return `${this.#lab.address(i)}:${PORT}`
  }

  async startAll(): Promise<void> {
    const first = this.#s.host
    await this.#start(first, undefined)
    await Promise.all([0, 1, 2, 3, 4].filter((i) => i !== first).map((i) => this.#start(i, this.address(first))))
    await this.#waitFor('every node sees five up and the singleton answers everyone', 90_000, () => this.#formed())
    // A cluster that has run a moment (connections made, heartbeats answered), as partitions find it.
    await sleep(2000)
  }

  async #start(i: number, seed: string | undefined): Promise<void> {
    const lab = this.#lab
    const args = [
      '--host',
      lab.address(i),
      '--port',
      String(PORT),
      '--http',
      '0',
      '--load',
      String(this.#s.load ?? 200),
      ...(this.#s.stableAfter === undefined ? [] : ['--stable-after', String(this.#s.stableAfter)]),
      ...(seed ? ['--seed', seed] : []),
    ]
    const proc = await NodeProcess.start('node', {
      args,
      env: { SHOAL_SECRET: this.#secret },
      spawner: (command, _cli, options) => lab.exec(i, command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...args], options),
      timeout: 60_000,
    })
    const node: LabNode = { index: i, proc, exitedAt: undefined, code: undefined }
    void proc.exited.then(({ code }) => {
      node.exitedAt = Date.now()
      node.code = code
    })
    this.nodes.push(node)
  }

  #formed(): boolean {
    if (this.nodes.length < 5) return false
    for (const n of this.nodes) {
      const up = new Set(n.proc.lines.filter((l) => l.msg === 'member status changed' && l.cluster === true && l.status === 'up').map((l) => l.member))
      if (up.size < 5) return false
      if (!calls(n).some((c) => c.ok && c.host === this.address(this.#s.host))) return false
    }
    return true
  }

  async #waitFor(what: string, ms: number, ok: () => boolean): Promise<void> {
    const deadline = Date.now() + ms
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`)
      await sleep(100)
    }
  }

  /** Findings over every process since `faultAt`. */
  result(faultAt: number, healAt: number): ScenarioResult {
    const intervals = this.nodes.flatMap((n) => instanceIntervals(n))
    const overlaps = findOverlaps(intervals, this.nodes)
    const exits = this.nodes.filter((n) => n.exitedAt !== undefined).map((n) => ({ node: n.proc.address, code: n.code, afterFaultMs: n.exitedAt! - faultAt }))
    const downed = this.nodes.filter((n) => n.proc.lines.some((l) => l.msg === 'this node was marked down')).map((n) => n.proc.address)
    // From the heal, or from the activation of the instance that answered if that came later (a
    // failover still waiting out its margin is not a connection left stalled).
    const okAfterHeal = this.nodes
      .filter((n) => n.exitedAt === undefined || n.exitedAt > healAt + 10_000)
      .map((n) => {
        const first = calls(n).find((c) => c.ok && c.started >= healAt)
        if (!first) return { node: n.proc.address, ms: undefined }
        const answered = first.started + first.ms
        const activated = Math.max(...intervals.filter((i) => i.node === first.host && i.from <= answered).map((i) => i.from))
        return { node: n.proc.address, ms: answered - Math.max(healAt, activated) }
      })
    // Resolved once every node has either exited (downed) or, for those that stay, had a call it
    // started after its last failed one succeed: the later of those moments, from the fault.
    let resolvedMs: number | undefined = 0
    for (const n of this.nodes) {
      if (n.exitedAt !== undefined && n.exitedAt >= faultAt) {
        resolvedMs = resolvedMs === undefined ? undefined : Math.max(resolvedMs, n.exitedAt - faultAt)
        continue
      }
      const during = calls(n).filter((c) => c.started >= faultAt && c.started < healAt)
      const lastFailed = during.filter((c) => !c.ok).at(-1)
      const served = during.find((c) => c.ok && (!lastFailed || c.started > lastFailed.started))
      if (!served) resolvedMs = undefined
      else if (resolvedMs !== undefined) resolvedMs = Math.max(resolvedMs, served.started + served.ms - faultAt)
    }
    return { overlaps, intervals, exits, downed, okAfterHeal, resolvedMs, faultAt, healAt }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.proc.kill()))
    const dir = this.#s.logDir
    if (dir === undefined) return
    mkdirSync(dir, { recursive: true })
    this.nodes.forEach((n, k) => {
      writeFileSync(join(dir, `${n.proc.address.replace(':', '_')}-${k}.jsonl`), n.proc.lines.map((l) => JSON.stringify(l)).join('\n'))
    })
  }
}

export function calls(n: LabNode): FixtureCall[] {
  return n.proc.lines.filter((l) => l.msg === 'call') as unknown as FixtureCall[]
}

/** Every singleton instance a process ran: activation to passivation, or to its exit (or now). */
export function instanceIntervals(n: LabNode): InstanceInterval[] {
  const ends = n.proc.lines.filter((l) => l.msg === 'singleton passivated')
  return n.proc.lines
    .filter((l) => l.msg === 'singleton activated')
    .map((a: LogLine) => {
      const instance = String(a.instance)
      const end = ends.find((l) => l.instance === instance)?.time ?? n.exitedAt ?? Date.now()
      return { node: n.proc.address, instance, from: a.time, to: end }
    })
}

/** Pairs of instances on different processes alive at the same moment (touching ends do not count). */
export function findOverlaps(intervals: readonly InstanceInterval[], nodes: readonly LabNode[]): Overlap[] {
  const out: Overlap[] = []
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i]!
      const b = intervals[j]!
      const from = Math.max(a.from, b.from)
      const to = Math.min(a.to, b.to)
      if (from >= to) continue
      const answered = nodes.flatMap((n) => calls(n)).filter((c) => c.ok && c.started + c.ms > from && c.started + c.ms < to).length
      out.push({ a, b, ms: to - from, answered })
    }
  }
  return out
}

/** Every (from, to) pair across two groups, both directions. */
export function bothWays(a: readonly number[], b: readonly number[]): Array<[number, number]> {
  return a.flatMap((x) =>
    b.flatMap(
      (y): Array<[number, number]> => [
        [x, y],
        [y, x],
      ],
    ),
  )
}

export interface FaultSettings extends ScenarioSettings {
  /** How long the fault lasts, ms. */
  readonly durationMs: number
  /** Observed after the heal, ms (default 10 s). */
  readonly afterMs?: number
}

export interface FlapSettings extends FaultSettings {
  readonly cutMs: number
  readonly upMs: number
}

/**
 * The frame every scenario shares: start the cluster, run `fault` (which leaves the lab healed or
 * not), heal, observe `afterMs`, stop every process, and report.
 */
async function scenario(lab: NetnsLab, s: FaultSettings, what: string, fault: (faultAt: number) => Promise<void>): Promise<ScenarioResult> {
  const cluster = new LabCluster(lab, s)
  try {
    await cluster.startAll()
    const faultAt = Date.now()
    s.say?.(`${what}, for ${s.durationMs} ms; singleton on ${s.host}`)
    await fault(faultAt)
    await lab.drop([])
    const healAt = Date.now()
    await sleep(s.afterMs ?? 10_000)
    return cluster.result(faultAt, healAt)
  } finally {
    await cluster.stop()
  }
}

/** The flapping-link scenario; see the module comment. */
export function flapScenario(lab: NetnsLab, s: FlapSettings): Promise<ScenarioResult> {
  const cut = bothWays([0, 1, 2], [3, 4])
  return scenario(lab, s, `flapping {0,1,2}×{3,4}: ${s.cutMs} ms cut, ${s.upMs} ms up`, async (faultAt) => {
    const left = (): number => s.durationMs - (Date.now() - faultAt)
    while (left() > 0) {
      await lab.drop(cut)
      await sleep(Math.min(s.cutMs, Math.max(0, left())))
      await lab.drop([])
      if (left() <= 0) break
      await sleep(s.upMs)
    }
  })
}

/** The bridge-partition scenario; see the module comment. */
export function bridgeScenario(lab: NetnsLab, s: FaultSettings): Promise<ScenarioResult> {
  return scenario(lab, s, 'bridge: {0,1}×{3,4} cut both ways, 2 reaches everyone', async () => {
    await lab.drop(bothWays([0, 1], [3, 4]))
    await sleep(s.durationMs)
  })
}

/** One line per finding, for reports and failure messages. */
export function describeResult(r: ScenarioResult): string {
  const t = (ms: number): string => `${(ms / 1000).toFixed(1)}s`
  const lines = [
    `instances: ${r.intervals.map((i) => `${i.node} [${t(i.from - r.faultAt)}, ${t(i.to - r.faultAt)}]`).join(', ')}`,
    `overlaps: ${r.overlaps.length === 0 ? 'none' : r.overlaps.map((o) => `${o.a.node}+${o.b.node} ${t(o.ms)} (${o.answered} answers)`).join(', ')}`,
    `exits: ${r.exits.map((e) => `${e.node} code ${e.code} at ${t(e.afterFaultMs)}`).join(', ') || 'none'}; downed: ${r.downed.join(', ') || 'none'}`,
    `resolved: ${r.resolvedMs === undefined ? 'never' : t(r.resolvedMs)}; calls ok after heal: ${r.okAfterHeal.map((o) => `${o.node} ${o.ms === undefined ? 'never' : t(o.ms)}`).join(', ')}`,
  ]
  return lines.join('\n')
}
