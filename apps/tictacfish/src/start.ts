/**
 * `npm start`: the TicTacFish demo on a local Shoal cluster. Starts clusterd and four nodes, each
 * its own OS process — the lobby host, two players nodes, the gateway — waits until the gateway
 * serves a lobby, and prints where to play and how to look at the cluster. Ctrl-C, SIGTERM or
 * SIGHUP makes every node leave gracefully, then stops clusterd; nodes that do not exit within
 * 20 s are killed, and all children are killed if this process ends any other way.
 *
 * `npm start -- --journal postgres://…` journals in PostgreSQL instead of ./data/tictacfish.db.
 * Environment: PORT (the gateway's HTTP port, 8080), TTF_BASE_PORT (nodes on base…base+3, their
 * management endpoints on base+1000…; 7361), SHOAL_CLUSTERD (127.0.0.1:3137), TTF_JOURNAL
 * (the same as --journal).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { StreamClient } from './client/StreamClient.ts'

const shoalBin = fileURLToPath(new URL('../../../packages/shoal/bin/shoal.js', import.meta.url))
const nodeMain = fileURLToPath(new URL('./node/main.ts', import.meta.url))
const httpPort = Number(process.env.PORT ?? 8080)
const base = Number(process.env.TTF_BASE_PORT ?? 7361)
const daemon = process.env.SHOAL_CLUSTERD ?? '127.0.0.1:3137'
const { values: args } = parseArgs({ options: { journal: { type: 'string' } } })
const journal = args.journal ?? process.env.TTF_JOURNAL ?? 'sqlite:./data/tictacfish.db'
const secret = process.env.SHOAL_SECRET ?? randomBytes(32).toString('hex')
const httpToken = process.env.SHOAL_HTTP_TOKEN ?? randomBytes(32).toString('hex')
const env = { ...process.env, SHOAL_SECRET: secret, SHOAL_HTTP_TOKEN: httpToken }

interface Child {
  readonly name: string
  readonly child: ChildProcess
}
const children: Child[] = []

/** Log lines worth showing: warnings, errors, and the few that tell the story. */
const STORY = /node started|gateway listening|clusterd listening|leader changed|leaving|singleton (started|moved)|node stopped/

function start(name: string, args: string[]): ChildProcess {
  // Own process groups: Ctrl-C reaches this process only, which then stops the nodes in order.
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  children.push({ name, child })
  for (const stream of [child.stdout!, child.stderr!]) {
    let buffered = ''
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString()
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        show(name, buffered.slice(0, nl))
        buffered = buffered.slice(nl + 1)
      }
    })
  }
  child.on('exit', (code, signal) => {
    console.log(`[${name}] exited (${signal ?? code})`)
    if (!stopping) console.log(`[${name}] stopped unexpectedly; the cluster goes on without it (Ctrl-C stops everything)`)
  })
  return child
}

function show(name: string, line: string): void {
  try {
    const entry = JSON.parse(line) as { level?: number; msg?: string; url?: string; member?: string; status?: string }
    if ((entry.level ?? 0) >= 40 || STORY.test(entry.msg ?? ''))
      console.log(`[${name}] ${entry.msg}${entry.url ? ` ${entry.url}` : ''}${entry.member ? ` ${entry.member} → ${entry.status}` : ''}`)
  } catch {
    if (line.trim()) console.log(`[${name}] ${line}`)
  }
}

const node = (name: string, roles: string, i: number, extra: string[] = []): ChildProcess =>
  start(name, [
    '--conditions=source',
    '--import',
    'tsx',
    nodeMain,
    '--name',
    name,
    '--roles',
    roles,
    '--port',
    String(base + i),
    '--clusterd',
    daemon,
    '--management',
    String(base + 1000 + i),
    '--journal',
    journal,
    ...extra,
  ])

console.log('Starting TicTacFish: clusterd, a lobby node, two players nodes and a gateway, each its own process…')
const [dHost, dPort] = daemon.split(':')
start('clusterd', [shoalBin, 'clusterd', '--host', dHost!, '--port', dPort!])
await new Promise((r) => setTimeout(r, 500))
node('lobby', 'lobby', 0)
node('players-1', 'players', 1)
node('players-2', 'players', 2)
node('gateway', 'gateway', 3, ['--http', String(httpPort)])

let stopping = false
const url = `http://127.0.0.1:${httpPort}`
await waitUntilServing()

console.log(`
TicTacFish is up.

  Play:        ${url}/  (open it in two browser windows, one per team)
  Bots:        npm run demo:bots -- --players 2 --url ${url}   (someone to play against)
  API:         ${url}/openapi.json  (POST /matchmaking and POST /game, JSONL both ways)
  Cluster:     npx shoal status --http ${base + 1000}     (members, leader, reachability)
               curl http://127.0.0.1:${base + 1000}/cluster/members
               curl http://127.0.0.1:${base + 1003}/metrics
  Nodes:       lobby ${base} · players-1 ${base + 1} · players-2 ${base + 2} · gateway ${base + 3} (management on +1000)
  Journal:     ${journal}

Ctrl-C stops every process (each node leaves the cluster gracefully).
`)

/** Until a probe player gets a LobbyState through the gateway (the whole path: gateway → player → lobby). */
async function waitUntilServing(): Promise<void> {
  const deadline = Date.now() + 90_000
  while (!stopping) {
    const player = { playerId: randomUUID(), name: 'probe', team: 'fish' as const }
    const probe = StreamClient.lobby({ url, player })
    try {
      if ((await probe.opened) === 200) {
        probe.status$(player, 'connect')
        await probe.next((l) => ((l as { message?: { waitingPlayers?: unknown } }).message?.waitingPlayers ? true : undefined), 5000)
        return
      }
    } catch {
      // Not serving yet.
    } finally {
      probe.destroy()
    }
    if (Date.now() > deadline) {
      console.log('The demo did not come up within 90 s; see the lines above. Stopping.')
      stop()
      return
    }
    await new Promise((r) => setTimeout(r, 500))
  }
}

// If this process goes away anyhow, take the cluster with it.
process.on('exit', () => {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

/** Ctrl-C, SIGTERM (a supervisor, `kill`) and SIGHUP (the terminal closed) all stop the whole demo. */
function stop(): void {
  if (stopping) return
  stopping = true
  console.log('\nstopping: nodes leave the cluster gracefully…')
  const nodes = children.filter((c) => c.name !== 'clusterd')
  const exited = (c: Child): Promise<unknown> =>
    c.child.exitCode !== null || c.child.signalCode !== null ? Promise.resolve() : new Promise((r) => c.child.once('exit', r))
  for (const { child } of nodes) child.kill('SIGTERM')
  const force = setTimeout(() => {
    for (const { child } of nodes) if (child.exitCode === null) child.kill('SIGKILL')
  }, 20_000)
  void Promise.all(nodes.map(exited)).then(async () => {
    clearTimeout(force)
    for (const c of children) if (c.name === 'clusterd') c.child.kill('SIGTERM')
    await Promise.all(children.map(exited))
    process.exit(0)
  })
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop)
// Orphaned (the npm that started us was killed without passing the signal on): stop too.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) stop()
}, 1000).unref()
