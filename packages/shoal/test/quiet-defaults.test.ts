/**
 * Quiet, truthful defaults: a library node says nothing on stdout and nothing at all while all is
 * well (warnings and errors go to stderr); a graceful shutdown is not a warning.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { ClusterSystem } from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from './support/ports.ts'

const run = promisify(execFile)
const README = fileURLToPath(new URL('../../../README.md', import.meta.url))
const TEST_DIR = fileURLToPath(new URL('.', import.meta.url))

/** The `## Example` code block of the README, on two free ports instead of 2550 and 2551. */
async function readmeExample(): Promise<string> {
  const readme = readFileSync(README, 'utf8')
  const block = /## Example\s+(?:<!--[\s\S]*?-->\s*)?```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!block) throw new Error('README.md has no ## Example ts block')
  expect(block).toContain('port: 2550')
  expect(block).toContain('port: 2551')
  const [p1, p2] = [await freePort(), await freePort()]
  return block.replace('port: 2550', `port: ${p1}`).replace('port: 2551', `port: ${p2}`)
}

/** Runs the README example as its own process (in the test directory, so `shoal` resolves). */
async function runExample(env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(TEST_DIR, '.readme-'))
  try {
    const file = join(dir, 'example.ts')
    writeFileSync(file, await readmeExample())
    return await run(process.execPath, ['--conditions=source', '--import', 'tsx', file], { env, timeout: 30_000 })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function envWithout(...names: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const n of names) delete env[n]
  return env
}

describe('default logging', () => {
  it('the README example prints exactly its result: 3 on stdout, nothing on stderr', async () => {
    const { stdout, stderr } = await runExample(envWithout('SHOAL_LOG_LEVEL'))
    expect(stdout).toBe('3\n')
    expect(stderr).toBe('')
  }, 40_000)

  it('SHOAL_LOG_LEVEL=info turns the informative lines on, on stderr; stdout stays the program’s', async () => {
    const { stdout, stderr } = await runExample({ ...process.env, SHOAL_LOG_LEVEL: 'info' })
    expect(stdout).toBe('3\n')
    const messages = stderr
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { msg: string }).msg)
    expect(messages).toContain('node started')
    expect(messages).toContain('shut down')
  }, 40_000)
})

describe('graceful shutdown', () => {
  const systems: ClusterSystem[] = []
  afterEach(async () => {
    await Promise.all(systems.splice(0).map((s) => s.shutdown()))
  })

  it('shutting down both nodes of a 2-node cluster logs no warning', async () => {
    const lines: { level: number; msg: string; system?: string }[] = []
    const sink = { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) }
    const logger = pino({ level: 'debug' }, sink)
    const a = await ClusterSystem.start({ name: 'a', port: 0, logger, cluster: { selfJoinAfter: 200 } })
    systems.push(a)
    const b = await ClusterSystem.start({ name: 'b', port: 0, logger, cluster: { seeds: [`127.0.0.1:${a.node.endpoint.port}`] } })
    systems.push(b)
    await Promise.all([a, b].map((s) => s.cluster.joined()))
    await eventually(() => expect(a.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(2))
    await b.shutdown()
    await a.shutdown()
    const loud = lines.filter((l) => l.level >= 40)
    expect(loud).toEqual([])
    expect(lines.filter((l) => l.msg.startsWith('stopping without a graceful leave')).map((l) => l.system)).toEqual(['b', 'a'])
  })
})
