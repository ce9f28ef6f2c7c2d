/**
 * `npm run bench:cluster`: cluster membership with real `shoal node` processes on this machine,
 * default settings. Per round: 5 nodes form a cluster (time until all are up after the last
 * process started); one is killed with SIGKILL (time until every other member sees it down, and
 * removed); one leaves on SIGTERM (time until removed everywhere; it must never be unreachable).
 * Then a 3|2 partition in Linux network namespaces (root only): time until the minority marks
 * itself down, and after healing (the minority restarted) until one cluster is up again.
 * Times come from the nodes' own log timestamps. Prints tables; writes bench/results/cluster.json.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { type LogLine, NodeProcess } from '../../../packages/shoal/src/testkit/NodeProcess.ts'
import { NetnsLab, netnsAvailable } from '../../../packages/shoal/test/support/netns.ts'
import { describeMachine } from '../report.ts'

const ROUNDS = process.argv.includes('--quick') ? 1 : 3
const SECRET = randomBytes(32).toString('hex')
const started = performance.now()
const progress = (s: string): void => console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${s}`)
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function clusterStatus(p: NodeProcess, address: string, uid: string, status: string): LogLine | undefined {
  return p.lines.find((l) => l.cluster === true && l.msg === 'member status changed' && l.member === `shoal@${address}#${uid}` && l.status === status)
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(20)
  }
}

const upIn = (p: NodeProcess, all: NodeProcess[]): boolean =>
  all.every((q) => q === p || clusterStatus(p, q.address, q.uid, 'up') !== undefined) && clusterStatus(p, p.address, p.uid, 'up') !== undefined

interface Round {
  formSeconds: number
  killDownSeconds: number
  killRemovedSeconds: number
  leaveRemovedSeconds: number
  leaveUnreachable: boolean
  leaveExitCode: number | null
}

async function round(i: number): Promise<Round> {
  const procs: NodeProcess[] = []
  const node = async (args: string[]): Promise<NodeProcess> => {
    const p = await NodeProcess.start('node', { args: ['--port', '0', ...args], env: { SHOAL_SECRET: SECRET, SHOAL_LOG_LEVEL: 'info' } })
    procs.push(p)
    return p
  }
  try {
    const first = await node([])
    const rest = await Promise.all([1, 2, 3, 4].map(() => node(['--seed', first.address])))
    const all = [first, ...rest]
    const lastStarted = Math.max(...all.map((p) => p.lines.find((l) => l.msg === 'node started')!.time))
    await until(() => all.every((p) => upIn(p, all)), 30_000, 'formation')
    const upAt = Math.max(...all.flatMap((p) => all.map((q) => clusterStatus(p, q.address, q.uid, 'up')!.time)))
    const formSeconds = (upAt - lastStarted) / 1000
    await sleep(2000)

    const victim = all[4]!
    const killedAt = Date.now()
    await victim.kill()
    const observers = all.slice(0, 4)
    await until(() => observers.every((p) => clusterStatus(p, victim.address, victim.uid, 'removed')), 60_000, 'kill -9 removal')
    const killDownSeconds = Math.max(...observers.map((p) => clusterStatus(p, victim.address, victim.uid, 'down')!.time)) / 1000 - killedAt / 1000
    const killRemovedSeconds = Math.max(...observers.map((p) => clusterStatus(p, victim.address, victim.uid, 'removed')!.time)) / 1000 - killedAt / 1000
    await sleep(2000)

    const leaver = all[3]!
    const leftAt = Date.now()
    leaver.signal('SIGTERM')
    const stay = all.slice(0, 3)
    await until(() => stay.every((p) => clusterStatus(p, leaver.address, leaver.uid, 'removed')), 30_000, 'graceful leave')
    const leaveRemovedSeconds = Math.max(...stay.map((p) => clusterStatus(p, leaver.address, leaver.uid, 'removed')!.time)) / 1000 - leftAt / 1000
    const leaveUnreachable = stay.some((p) =>
      p.lines.some((l) => l.msg === 'member reachability changed' && l.member === `shoal@${leaver.address}#${leaver.uid}`),
    )
    const leaveExitCode = (await leaver.exited).code
    progress(
      `round ${i}: formed in ${formSeconds.toFixed(2)} s; kill -9 → down ${killDownSeconds.toFixed(2)} s, removed ${killRemovedSeconds.toFixed(2)} s; leave → removed ${leaveRemovedSeconds.toFixed(2)} s (exit ${leaveExitCode}, unreachable: ${leaveUnreachable})`,
    )
    return { formSeconds, killDownSeconds, killRemovedSeconds, leaveRemovedSeconds, leaveUnreachable, leaveExitCode }
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
  }
}

interface PartitionResult {
  minorityDownSeconds: number
  majorityDownsMinoritySeconds: number
  majoritySurvived: boolean
  healedSeconds: number
}

async function partition(): Promise<PartitionResult> {
  const lab = await NetnsLab.create(5)
  const procs: NodeProcess[] = []
  const start = async (i: number, seed?: string): Promise<NodeProcess> => {
    const args = ['--host', lab.address(i), '--port', '7400', ...(seed ? ['--seed', seed] : [])]
    const p = await NodeProcess.start('node', { args, env: { SHOAL_SECRET: SECRET }, spawner: (c, a, o) => lab.exec(i, c, a, o) })
    procs.push(p)
    return p
  }
  try {
    const seed = `${lab.address(0)}:7400`
    const nodes = [await start(0)]
    nodes.push(...(await Promise.all([1, 2, 3, 4].map((i) => start(i, seed)))))
    await until(() => nodes.every((p) => upIn(p, nodes)), 30_000, 'formation in namespaces')
    await sleep(2000)
    const splitAt = Date.now()
    await lab.partition([0, 1, 2], [3, 4])
    const majority = nodes.slice(0, 3)
    const minority = nodes.slice(3)
    const downed = (p: NodeProcess): LogLine | undefined => p.lines.find((l) => l.msg === 'this node was marked down')
    await until(() => minority.every((p) => downed(p)), 90_000, 'minority down')
    await until(() => majority.every((p) => minority.every((m) => clusterStatus(p, m.address, m.uid, 'down'))), 60_000, 'majority downs the minority')
    const minorityDownSeconds = Math.max(...minority.map((p) => downed(p)!.time)) / 1000 - splitAt / 1000
    const majorityDownsMinoritySeconds =
      Math.max(...majority.flatMap((p) => minority.map((m) => clusterStatus(p, m.address, m.uid, 'down')!.time))) / 1000 - splitAt / 1000
    await Promise.all(minority.map((p) => p.exited))
    const majoritySurvived = majority.every((p) => !downed(p) && p.child.exitCode === null)
    await lab.heal()
    const healedAt = Date.now()
    const restarted = await Promise.all([3, 4].map((i) => start(i, seed)))
    const cluster = [...majority, ...restarted]
    await until(() => cluster.every((p) => upIn(p, cluster)), 60_000, 'one cluster after healing')
    const upAt = Math.max(...cluster.flatMap((p) => cluster.map((q) => clusterStatus(p, q.address, q.uid, 'up')!.time)))
    const healedSeconds = (upAt - healedAt) / 1000
    progress(
      `partition 3|2: minority marked itself down ${minorityDownSeconds.toFixed(2)} s after the split (majority downed it at ${majorityDownsMinoritySeconds.toFixed(2)} s); one cluster ${healedSeconds.toFixed(2)} s after healing`,
    )
    return { minorityDownSeconds, majorityDownsMinoritySeconds, majoritySurvived, healedSeconds }
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    await lab.destroy()
  }
}

const max = (xs: number[]): number => Math.max(...xs)
const fmt = (x: number): string => x.toFixed(3)

const machine = describeMachine(loadavg())
progress(`bench:cluster on ${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}; ${ROUNDS} round(s) of 5 processes`)
const rounds: Round[] = []
for (let i = 1; i <= ROUNDS; i++) rounds.push(await round(i))
const available = await netnsAvailable()
let part: PartitionResult | undefined
if (available.ok) part = await partition()
else progress(`partition: not available (${available.why})`)

const targets: [string, string, boolean][] = [
  ['all 5 up within 3 s of the last process starting', `worst ${fmt(max(rounds.map((r) => r.formSeconds)))} s`, max(rounds.map((r) => r.formSeconds)) <= 3],
  [
    'kill -9: every other member sees it down within 10 s',
    `worst ${fmt(max(rounds.map((r) => r.killDownSeconds)))} s`,
    max(rounds.map((r) => r.killDownSeconds)) <= 10,
  ],
  [
    'kill -9: removed everywhere within 12 s',
    `worst ${fmt(max(rounds.map((r) => r.killRemovedSeconds)))} s`,
    max(rounds.map((r) => r.killRemovedSeconds)) <= 12,
  ],
  [
    'graceful leave: removed everywhere within 2 s, never unreachable, exit 0',
    `worst ${fmt(max(rounds.map((r) => r.leaveRemovedSeconds)))} s; unreachable ${rounds.some((r) => r.leaveUnreachable)}; exit ${[...new Set(rounds.map((r) => r.leaveExitCode))].join(',')}`,
    max(rounds.map((r) => r.leaveRemovedSeconds)) <= 2 && !rounds.some((r) => r.leaveUnreachable) && rounds.every((r) => r.leaveExitCode === 0),
  ],
  [
    'partition 3\\|2: the minority is down within 15 s of the split',
    part ? `${fmt(part.minorityDownSeconds)} s (majority survived: ${part.majoritySurvived})` : 'not available',
    part !== undefined && part.minorityDownSeconds <= 15 && part.majoritySurvived,
  ],
  ['after healing, one cluster again within 30 s', part ? `${fmt(part.healedSeconds)} s` : 'not available', part !== undefined && part.healedSeconds <= 30],
]
const lines = [
  '',
  '| round | formed (s) | kill -9 → down everywhere (s) | → removed everywhere (s) | SIGTERM → removed everywhere (s) | leaver unreachable | leaver exit |',
  '|---:|---:|---:|---:|---:|---|---:|',
  ...rounds.map(
    (r, i) =>
      `| ${i + 1} | ${fmt(r.formSeconds)} | ${fmt(r.killDownSeconds)} | ${fmt(r.killRemovedSeconds)} | ${fmt(r.leaveRemovedSeconds)} | ${r.leaveUnreachable ? 'yes' : 'no'} | ${r.leaveExitCode} |`,
  ),
  '',
  part
    ? `Partition 3|2 (network namespaces): minority marked itself down after ${fmt(part.minorityDownSeconds)} s; the majority had marked it down after ${fmt(part.majorityDownsMinoritySeconds)} s; one cluster of 5 again ${fmt(part.healedSeconds)} s after healing (minority restarted).`
    : 'Partition: not available here.',
  '',
  '| target | result | |',
  '|---|---|---|',
  ...targets.map(([t, r, ok]) => `| ${t} | ${r} | ${ok ? 'PASS' : '**MISS**'} |`),
]
console.log(lines.join('\n'))
const dir = fileURLToPath(new URL('../../results/', import.meta.url))
mkdirSync(dir, { recursive: true })
writeFileSync(`${dir}cluster.json`, JSON.stringify({ date: new Date().toISOString(), machine, rounds, partition: part, targets }, null, 2))
progress('done')
