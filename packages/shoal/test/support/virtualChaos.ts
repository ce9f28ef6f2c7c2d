/**
 * A seeded chaos round for virtual actors: five virtual-node fixture processes
 * (test/fixtures/virtual-node.ts), one per network namespace of a {@link NetnsLab}, every node
 * calling the same ids one call at a time, while faults drawn from a seed hit the cluster:
 * partitions of random shape (two-way, one-way, flapping), kill -9, SIGSTOP past detection,
 * graceful leaves. Every node that exits (downed, killed, left) is started again on its address.
 * After the faults the lab heals, and the round waits until every live node is served every id.
 *
 * Then {@link checkVirtualRun} proves, from every incarnation's log lines, that no id was ever
 * active twice and no call was served outside its activation. Used by `virtual-chaos.test.ts` (one
 * short round) and `npm run chaos:virtual` (rounds for as many minutes as asked).
 * @module
 */
import { type SpawnOptions, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeProcess } from 'shoal/testkit'
import { seededRandom } from '../../src/sim/Random.ts'
import type { NetnsLab } from './netns.ts'
import { bothWays } from './partitions.ts'
import { checkVirtualRun, type ProcessLog, type VirtualCheck } from './virtualChecker.ts'

const FIXTURE = fileURLToPath(new URL('../fixtures/virtual-node.ts', import.meta.url))
const PORT = 7500
const N = 5
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface VirtualChaosSettings {
  readonly seed: number
  /** How long faults are injected, ms. */
  readonly durationMs: number
  /** Ids every node calls in turn (default 40). */
  readonly ids?: number
  /** ms between one node's calls (default 20). */
  readonly load?: number
  /** Progress lines (default: none). */
  readonly say?: (line: string) => void
  /** Where to write every incarnation's log lines when the round ends (default: nowhere). */
  readonly logDir?: string
}

export interface VirtualChaosResult {
  readonly seed: number
  readonly faults: readonly string[]
  readonly check: VirtualCheck
  /** Process incarnations the round ran (restarts included). */
  readonly incarnations: number
  /** ms from the final heal until every live node had been served every id (undefined: not within 90 s). */
  readonly recoveredMs: number | undefined
}

/** One incarnation of a node's process. */
interface Incarnation {
  readonly index: number
  readonly proc: NodeProcess
  exitedAt: number | undefined
  readonly frozen: Array<[number, number | undefined]>
}

class VirtualLab {
  readonly all: Incarnation[] = []
  readonly #current: Array<Incarnation | undefined> = []
  readonly #secret = randomBytes(32).toString('hex')

  constructor(
    readonly lab: NetnsLab,
    readonly s: VirtualChaosSettings,
  ) {}

  address(i: number): string {
    return `${this.lab.address(i)}:${PORT}`
  }

  live(i: number): Incarnation | undefined {
    const c = this.#current[i]
    return c && c.exitedAt === undefined ? c : undefined
  }

  async start(i: number, seed: number | undefined): Promise<void> {
    const args = ['--host', this.lab.address(i), '--port', String(PORT), '--http', '0', '--load', String(this.s.load ?? 20), '--ids', String(this.s.ids ?? 40)]
    if (seed !== undefined) args.push('--seed', this.address(seed))
    const proc = await NodeProcess.start('node', {
      args,
      env: { SHOAL_SECRET: this.#secret },
      spawner: (command, _cli, options: SpawnOptions) =>
        this.lab.exec(i, command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...args], options) as ReturnType<typeof spawn>,
      timeout: 60_000,
    })
    const inc: Incarnation = { index: i, proc, exitedAt: undefined, frozen: [] }
    void proc.exited.then(() => (inc.exitedAt ??= Date.now()))
    this.all.push(inc)
    this.#current[i] = inc
  }

  /** Starts every node that is not running again, seeded by a live one. */
  async restartExited(): Promise<void> {
    for (let i = 0; i < N; i++) {
      if (this.live(i)) continue
      const seed = [0, 1, 2, 3, 4].find((j) => j !== i && this.live(j))
      await this.start(i, seed)
    }
  }

  /** Every live node has been served every id since `since`. */
  servedEverywhere(since: number): boolean {
    const ids = this.s.ids ?? 40
    for (let i = 0; i < N; i++) {
      const inc = this.live(i)
      if (!inc) return false
      const served = new Set(inc.proc.lines.filter((l) => l.msg === 'call' && l.ok === true && Number(l.started) >= since).map((l) => l.id))
      if (served.size < ids) return false
    }
    return true
  }

  logs(): ProcessLog[] {
    return this.all.map((inc, k) => ({
      name: `${this.address(inc.index)}#${k}`,
      lines: inc.proc.lines as ProcessLog['lines'],
      exitedAt: inc.exitedAt,
      frozen: inc.frozen,
    }))
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((inc) => inc.proc.kill()))
    const dir = this.s.logDir
    if (dir === undefined) return
    mkdirSync(dir, { recursive: true })
    this.all.forEach((inc, k) => {
      writeFileSync(join(dir, `${this.address(inc.index).replace(':', '_')}-${k}.jsonl`), inc.proc.lines.map((l) => JSON.stringify(l)).join('\n'))
    })
  }
}

async function waitUntil(ms: number, ok: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!ok()) {
    if (Date.now() > deadline) return false
    await sleep(100)
  }
  return true
}

/** One round; see the module comment. */
export async function virtualChaosRound(lab: NetnsLab, s: VirtualChaosSettings): Promise<VirtualChaosResult> {
  const rnd = seededRandom(s.seed)
  const between = (lo: number, hi: number): number => Math.round(lo + (hi - lo) * rnd())
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const v = new VirtualLab(lab, s)
  const faults: string[] = []
  const note = (what: string): void => {
    faults.push(what)
    s.say?.(what)
  }
  try {
    await v.start(0, undefined)
    for (let i = 1; i < N; i++) await v.start(i, 0)
    const formedAt = Date.now()
    if (!(await waitUntil(90_000, () => v.servedEverywhere(formedAt)))) throw new Error('virtual chaos: the cluster never served every id on every node')
    const begin = Date.now()
    while (Date.now() - begin < s.durationMs) {
      await fault(v, lab, { between, pick, note })
      await lab.drop([])
      // A node the cluster stopped (downed: exit 1) or that was killed comes back on its address.
      await sleep(1000)
      await v.restartExited()
      await sleep(between(1000, 4000))
    }
    await lab.drop([])
    await v.restartExited()
    const healAt = Date.now()
    const recovered = await waitUntil(90_000, () => v.servedEverywhere(healAt))
    const recoveredMs = recovered ? Date.now() - healAt : undefined
    const end = Date.now()
    return { seed: s.seed, faults, check: checkVirtualRun(v.logs(), end), incarnations: v.all.length, recoveredMs }
  } finally {
    await v.stop()
  }
}

interface Draw {
  between(lo: number, hi: number): number
  pick<T>(xs: readonly T[]): T
  note(what: string): void
}

/** Draws one fault and runs it to its end (the caller heals). */
async function fault(v: VirtualLab, lab: NetnsLab, d: Draw): Promise<void> {
  const nodes = [0, 1, 2, 3, 4]
  const minority = shuffle(nodes, d).slice(0, d.between(1, 2))
  const majority = nodes.filter((i) => !minority.includes(i))
  const kind = d.pick(['partition', 'one-way', 'flap', 'kill', 'freeze', 'leave'] as const)
  switch (kind) {
    case 'partition': {
      const ms = d.between(2000, 9000)
      d.note(`partition {${minority}}|{${majority}} for ${ms} ms`)
      await lab.drop(bothWays(minority, majority))
      return sleep(ms)
    }
    case 'one-way': {
      const ms = d.between(2000, 9000)
      d.note(`one-way loss {${minority}}→{${majority}} for ${ms} ms`)
      await lab.drop(minority.flatMap((a) => majority.map((b): [number, number] => [a, b])))
      return sleep(ms)
    }
    case 'flap': {
      const cut = d.between(1000, 6000)
      const up = d.between(500, 3000)
      const ms = d.between(8000, 16_000)
      d.note(`flapping {${minority}}|{${majority}}: ${cut} ms cut, ${up} ms up, for ${ms} ms`)
      const until = Date.now() + ms
      while (Date.now() < until) {
        await lab.drop(bothWays(minority, majority))
        await sleep(cut)
        await lab.drop([])
        await sleep(up)
      }
      return
    }
    case 'kill': {
      const i = minority[0]!
      const inc = v.live(i)
      if (!inc) return
      d.note(`kill -9 node ${i}`)
      inc.proc.signal('SIGKILL')
      await inc.proc.exited
      return sleep(d.between(500, 3000))
    }
    case 'freeze': {
      const i = minority[0]!
      const inc = v.live(i)
      if (!inc) return
      const ms = d.between(2000, 14_000)
      d.note(`SIGSTOP node ${i} for ${ms} ms`)
      const span: [number, number | undefined] = [Date.now(), undefined]
      inc.frozen.push(span)
      inc.proc.signal('SIGSTOP')
      await sleep(ms)
      inc.proc.signal('SIGCONT')
      span[1] = Date.now()
      // A node downed while frozen learns it on waking and exits 1; give it the time to.
      return sleep(3000)
    }
    case 'leave': {
      const i = minority[0]!
      const inc = v.live(i)
      if (!inc) return
      d.note(`SIGTERM (graceful leave) node ${i}`)
      inc.proc.signal('SIGTERM')
      const left = await Promise.race([inc.proc.exited.then(() => true), sleep(20_000).then(() => false)])
      if (!left) inc.proc.signal('SIGKILL')
      return
    }
  }
}

function shuffle<T>(xs: readonly T[], d: Draw): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = d.between(0, i)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** One paragraph per round, for reports and failure messages. */
export function describeVirtualRound(r: VirtualChaosResult): string {
  const c = r.check
  const codes = Object.entries(c.calls.failedBy)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ')
  return [
    `seed ${r.seed}: ${r.faults.length} faults, ${r.incarnations} process incarnations, ${c.activations.length} activations`,
    `calls: ${c.calls.ok} ok, ${c.calls.failed} failed${codes ? ` (${codes})` : ''}`,
    `recovered after the final heal: ${r.recoveredMs === undefined ? 'NOT within 90 s' : `${(r.recoveredMs / 1000).toFixed(1)} s`}`,
    `violations: ${c.violations.length === 0 ? 'none' : `\n  ${c.violations.slice(0, 20).join('\n  ')}`}`,
  ].join('\n')
}
