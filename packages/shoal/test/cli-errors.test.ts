/**
 * The `shoal` CLI's own errors, run as a real child process: each names a CLI flag (never a
 * library setting the CLI lacks), is one line, and exits 2 for bad usage; the flags they point
 * at exist. Also `shoal --version` and the bare port of `shoal status --http`.
 */

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ClusterSystem, ManagementServer } from 'shoal'
import { NodeProcess, SHOAL_BIN } from 'shoal/testkit'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort } from './support/ports.ts'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** The environment of a fresh shell: no secret, not in a Kubernetes pod. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra }
  for (const k of ['SHOAL_SECRET', 'SHOAL_LOG_LEVEL', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) if (!(k in extra)) delete env[k]
  return env
}

function shoal(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SHOAL_BIN, ...args], { env: cleanEnv(env), timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })
    })
  })
}

/** A one-line usage error: exit 2, a single line on stderr starting with `prefix`, no stack trace. */
function expectOneLineError(r: Run, prefix: string): string {
  expect(r.code, r.stderr).toBe(2)
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(new RegExp(`^${prefix}`))
  expect(r.stderr).not.toMatch(/\n\s+at /)
  return lines[0]!
}

/** A 256-bit hex secret, as `shoal secret` prints. */
const STRONG_SECRET = randomBytes(32).toString('hex')

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

describe('shoal CLI errors name CLI flags', () => {
  const procs: NodeProcess[] = []
  const systems: ClusterSystem[] = []
  afterAll(async () => {
    for (const p of procs) p.signal('SIGKILL')
    await Promise.all(systems.map((s) => s.shutdown()))
  })

  it('--host 0.0.0.0 without a secret points at SHOAL_SECRET or --insecure, not a library setting; --insecure starts it', async () => {
    const line = expectOneLineError(await shoal(['node', '--host', '0.0.0.0', '--port', '0']), 'shoal node: --host 0.0.0.0 without a cluster secret')
    expect(line).toContain('set SHOAL_SECRET (or --secret-file F)')
    expect(line).toContain('pass --insecure')
    expect(line).not.toContain('insecure: true')
    const clusterd = expectOneLineError(await shoal(['clusterd', '--host', '0.0.0.0', '--port', '0']), 'shoal clusterd: --host 0.0.0.0')
    expect(clusterd).toContain('--insecure')

    const p = await NodeProcess.start('node', { args: ['--host', '0.0.0.0', '--port', '0', '--insecure'], env: { SHOAL_SECRET: '' } })
    procs.push(p)
    expect(p.address).toMatch(/^0\.0\.0\.0:\d+$/)
    p.signal('SIGTERM')
    expect((await p.exited).code).toBe(0)
  })

  it('--k8s outside a pod points at --k8s-api-url, not apiUrl', async () => {
    const line = expectOneLineError(await shoal(['node', '--port', '0', '--k8s', 'app=shoal']), 'shoal node: --k8s app=shoal: this is not a Kubernetes pod')
    expect(line).toContain('--k8s-api-url URL')
    expect(line).not.toMatch(/\bapiUrl\b/)
  })

  it('--k8s-api-url is accepted outside a pod', async () => {
    const port = String(await freePort())
    const p = await NodeProcess.start('node', {
      args: ['--port', port, '--k8s', 'app=shoal', '--k8s-api-url', 'https://127.0.0.1:1', '--k8s-token-file', '/nonexistent', '--k8s-namespace', 'default'],
      env: { SHOAL_SECRET: STRONG_SECRET },
    })
    procs.push(p)
    p.signal('SIGTERM')
    expect((await p.exited).code).toBe(0)
  })

  it.each([
    ['node', '--port', '0'],
    ['clusterd', '--port', '0'],
  ])('%s --log-level bogus: one line listing the levels, exit 2', async (command, ...rest) => {
    const line = expectOneLineError(await shoal([command, ...rest, '--log-level', 'bogus']), `shoal ${command}: --log-level "bogus" is not a log level`)
    expect(line).toContain('trace, debug, info, warn, error, fatal, silent')
    const fromEnv = expectOneLineError(await shoal([command, ...rest], { SHOAL_LOG_LEVEL: 'loud' }), `shoal ${command}: --log-level "loud"`)
    expect(fromEnv).toContain('SHOAL_LOG_LEVEL')
  })

  it('shoal secret prints a fresh 256-bit secret (64 hex characters, or 43 base64url) that every entry point accepts', async () => {
    const [one, two, b64] = await Promise.all([shoal(['secret']), shoal(['secret']), shoal(['secret', '--base64url'])])
    for (const r of [one, two, b64]) expect(r).toMatchObject({ code: 0, stderr: '' })
    expect(one.stdout).toMatch(/^[0-9a-f]{64}\n$/)
    expect(b64.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/)
    expect(one.stdout).not.toBe(two.stdout)
    const p = await NodeProcess.start('node', { args: ['--port', '0'], env: { SHOAL_SECRET: one.stdout.trim() } })
    procs.push(p)
    p.signal('SIGTERM')
    expect((await p.exited).code).toBe(0)
  })

  it.each([
    ['node', '--port', '0'],
    ['clusterd', '--port', '0'],
  ])('shoal %s with a weak SHOAL_SECRET: one line saying how weak and to run `npx shoal secret`, exit 2', async (command, ...rest) => {
    for (const weak of ['s', 'change-me-to-a-long-random-string', '0123456789abcdef0123456789abcdef']) {
      const line = expectOneLineError(
        await shoal([command, ...rest], { SHOAL_SECRET: weak }),
        `shoal ${command}: The cluster secret in SHOAL_SECRET is too weak`,
      )
      expect(line).toContain('`npx shoal secret`')
      expect(line).toContain('at least 128')
    }
  })

  it.each(['--version', '-v'])('shoal %s prints the package version', async (flag) => {
    expect(await shoal([flag])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' })
  })

  it('shoal status --http PORT means 127.0.0.1:PORT, as shoal node --http PORT does', async () => {
    const system = await ClusterSystem.start({ port: 0, logLevel: 'silent', secret: STRONG_SECRET, cluster: {} })
    systems.push(system)
    await system.cluster.joined()
    const server = await ManagementServer.start(system, { port: 0 })
    try {
      const r = await shoal(['status', '--http', String(server.port)])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`127.0.0.1:${system.node.endpoint.port}* (self)  up`)
      expect((await shoal(['status', '--http', '0'])).code).toBe(2)
    } finally {
      await server.close()
    }
  })
})
