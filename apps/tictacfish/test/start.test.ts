/**
 * `npm start` (src/start.ts) as a user runs it: it starts clusterd and four nodes, says when the
 * demo serves, and SIGTERM stops every process it started (nodes leave gracefully), leaving no
 * port held.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
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

it('starts the demo, serves a lobby, and SIGTERM stops every process it started', async () => {
  const base = 20_000 + Math.floor(Math.random() * 20_000)
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
  for (let i = 0; i < 4; i++) expect(pids(`--port ${base + i} `)).toHaveLength(1)

  child.kill('SIGTERM')
  expect(await exited).toBe(0)
  expect(out).toMatch(/\[lobby\] exited \(0\)/)
  expect(out).toMatch(/\[gateway\] exited \(0\)/)
  for (let i = 0; i < 4; i++) expect(pids(`--port ${base + i} `)).toEqual([])
  expect(pids(`--port ${base + 80}`)).toEqual([])
}, 150_000)
