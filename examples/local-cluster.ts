/**
 * `npm start`: a local cluster. clusterd and three nodes, each a separate OS process started with
 * the `shoal` CLI, each with a management endpoint. Prints where to look, then the membership
 * whenever it changes. Ctrl-C (or SIGTERM, SIGHUP) makes every node leave gracefully, then stops the
 * daemon; the children are killed if this process exits any other way.
 *
 * Ports (override with SHOAL_BASE_PORT): clusterd 3137; nodes 7351–7353; HTTP 8351–8353.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { banner } from './local-cluster-banner.ts'

const bin = fileURLToPath(new URL('../packages/shoal/bin/shoal.js', import.meta.url))
const base = Number(process.env.SHOAL_BASE_PORT ?? 7351)
const httpBase = base + 1000
const daemon = process.env.SHOAL_CLUSTERD ?? '127.0.0.1:3137'
const secret = process.env.SHOAL_SECRET ?? randomBytes(32).toString('hex')
const env = { ...process.env, SHOAL_SECRET: secret }
const children: { name: string; child: ChildProcess }[] = []

function start(name: string, args: string[]): ChildProcess {
  // Own process groups: Ctrl-C reaches this process only, which then stops the nodes in order.
  const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  children.push({ name, child })
  // JSON log lines: show warnings and the few info lines that tell the story.
  let buffered = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    let nl
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      try {
        const entry = JSON.parse(line) as { level: number; msg: string; member?: string; status?: string; leader?: string; cluster?: boolean }
        // Membership's own lines (SWIM's liveness lines are noise here).
        const story = entry.msg === 'member status changed' ? entry.cluster === true : /node started|clusterd listening|leader changed|leaving/.test(entry.msg)
        const interesting = entry.level >= 40 || story
        if (interesting)
          console.log(`[${name}] ${entry.msg}${entry.member ? ` ${entry.member} → ${entry.status}` : ''}${entry.leader ? ` ${entry.leader}` : ''}`)
      } catch {
        console.log(`[${name}] ${line}`)
      }
    }
  })
  child.on('exit', (code, signal) => console.log(`[${name}] exited (${signal ?? code})`))
  return child
}

const [dHost, dPort] = daemon.split(':')
start('clusterd', ['clusterd', '--host', dHost!, '--port', dPort!])
await new Promise((r) => setTimeout(r, 800))
for (let i = 0; i < 3; i++)
  start(`node-${i + 1}`, [
    'node',
    '--name',
    `node-${i + 1}`,
    '--port',
    String(base + i),
    '--clusterd',
    daemon,
    '--http',
    String(httpBase + i),
    '--journal',
    `sqlite:./data/node-${i + 1}.db`,
  ])

console.log(banner({ daemon, base, httpBase, secret }))

async function printMembers(): Promise<void> {
  try {
    const res = await fetch(`http://127.0.0.1:${httpBase}/cluster/members`, { signal: AbortSignal.timeout(2000) })
    const body = (await res.json()) as { leader: string | null; members: { node: string; status: string; reachability: string; upNumber: number }[] }
    console.log(
      `membership (node 1's view): ${body.members.map((m) => `${m.node} ${m.status}${m.reachability === 'unreachable' ? ' (unreachable)' : ''}${m.node === body.leader ? ' *leader' : ''}`).join(', ')}`,
    )
  } catch {
    // Not listening yet, or gone: the next tick tries again.
  }
}
const ticker = setInterval(() => void printMembers(), 5000)

// If this process goes away anyhow, take the cluster with it.
process.on('exit', () => {
  for (const { child } of children) if (child.exitCode === null) child.kill('SIGKILL')
})

let stopping = false
/** Ctrl-C, SIGTERM (a supervisor, `kill`) and SIGHUP (the terminal closed) all stop the whole cluster. */
function stop(): void {
  if (stopping) return
  stopping = true
  clearInterval(ticker)
  console.log('\nstopping: nodes leave gracefully…')
  const nodes = children.filter((c) => c.name !== 'clusterd')
  for (const { child } of nodes) child.kill('SIGTERM')
  void Promise.all(nodes.map(({ child }) => new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r))))).then(() => {
    for (const { name, child } of children) if (name === 'clusterd') child.kill('SIGTERM')
  })
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop)
// Orphaned (the npm that started us was killed without passing the signal on): stop too.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stop()
}, 1000).unref()
