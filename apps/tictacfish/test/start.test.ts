/**
 * `npm start` (src/start.ts) as a user runs it: it starts clusterd and four nodes, says when the
 * demo serves, and SIGTERM stops every process it started (nodes leave gracefully), leaving no
 * port held.
 */
import { execFileSync, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

const START = fileURLToPath(new URL('../src/start.ts', import.meta.url))

/** Pids of processes whose command line contains `text`. */
function pids(text: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', '--', text], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/** Whether `port` can be bound on 127.0.0.1 right now, over TCP and over UDP (SWIM shares the number). */
async function bindable(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
  if (!tcp) return false
  return new Promise<boolean>((resolve) => {
    const socket = createSocket('udp4')
    socket.once('error', () => resolve(false))
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)))
  })
}

/**
 * A base port whose whole block (nodes +0…+3, clusterd +80, HTTP +90, management +1000…+1003) is
 * free. Below 32768, the kernel's ephemeral range, so the port-0 servers of the tests that run
 * alongside cannot take one between this check and the demo binding it.
 */
async function freeBase(): Promise<number> {
  const offsets = [0, 1, 2, 3, 80, 90, 1000, 1001, 1002, 1003]
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 11_000)
    let free = true
    for (const offset of offsets) if (!(await bindable(base + offset))) free = false
    if (free) return base
  }
}

it('starts the demo, serves a lobby, and SIGTERM stops every process it started', async () => {
  const base = await freeBase()
  const env = {
    ...process.env,
    PORT: String(base + 90),
    TTF_BASE_PORT: String(base),
    SHOAL_CLUSTERD: `127.0.0.1:${base + 80}`,
    TTF_JOURNAL: `sqlite:${join(mkdtempSync(join(tmpdir(), 'ttf-start-')), 'journal.db')}`,
  }
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', START], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d))
  child.stderr.on('data', (d: Buffer) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const deadline = Date.now() + 90_000
  while (!out.includes('TicTacFish is up')) {
    if (Date.now() > deadline) throw new Error(`not up within 90 s:\n${out}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  expect(out).toContain(`http://127.0.0.1:${base + 90}/`)
  expect(out).toContain('npx shoal status')
  const res = await fetch(`http://127.0.0.1:${base + 90}/openapi.json`)
  expect(res.status).toBe(200)
  // clusterd and the four nodes, each its own process.
  expect(pids(`--port ${base + 80}`)).toHaveLength(1)
  for (let i = 0; i < 4; i++) expect(pids(`--port ${base + i} `), `node ${i} runs; the demo printed:\n${out}`).toHaveLength(1)

  child.kill('SIGTERM')
  expect(await exited).toBe(0)
  expect(out).toMatch(/\[lobby\] exited \(0\)/)
  expect(out).toMatch(/\[gateway\] exited \(0\)/)
  for (let i = 0; i < 4; i++) expect(pids(`--port ${base + i} `)).toEqual([])
  expect(pids(`--port ${base + 80}`)).toEqual([])
}, 150_000)
