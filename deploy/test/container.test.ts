/**
 * The container image, checked without a docker engine (there is none here): the Dockerfile's text
 * against the rules of docs/operations.md (multi-stage, npm ci and the build in the first stage,
 * production dependencies only in the last, not root, node itself as the entrypoint, the Node major
 * a build argument defaulting to 22, every COPY source present), and its exact ENTRYPOINT + CMD run
 * as a process from the repository (the image's /app): it serves, and SIGTERM is a graceful leave.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const text = readFileSync(new URL('Dockerfile', `file://${ROOT}`), 'utf8')
// Instructions, with continuation lines joined and comments dropped.
const instructions = text
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
const stages: string[][] = []
for (const line of instructions) {
  if (/^FROM\s/i.test(line)) stages.push([line])
  else stages.at(-1)?.push(line)
}
const final = stages.at(-1)!
const execForm = (keyword: string): string[] => {
  const line = final.find((l) => l.startsWith(`${keyword} `))
  expect(line, keyword).toBeDefined()
  return JSON.parse(line!.slice(keyword.length + 1)) as string[]
}

describe('Dockerfile', () => {
  it('is multi-stage: npm ci and the TypeScript build in the first stage, dev dependencies pruned there', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2)
    const build = stages[0]!.join('\n')
    expect(stages[0]![0]).toMatch(/ AS build$/)
    expect(build).toMatch(/RUN npm ci\b/)
    expect(build).toMatch(/tsc -b/)
    expect(build).toMatch(/npm prune --omit=dev/)
  })

  it('the last stage installs nothing and takes only what the build stage kept, owned by a non-root user', () => {
    const last = final.join('\n')
    expect(last).not.toMatch(/npm (ci|install|i)\b/)
    expect(last).toMatch(/COPY --from=build --chown=65532:65532/)
    const user = final.filter((l) => l.startsWith('USER ')).at(-1)
    expect(user).toBeDefined()
    expect(user).not.toMatch(/USER (root|0)(:|$)/)
    expect(last).toMatch(/ENV NODE_ENV=production/)
  })

  it('node itself is the entrypoint (exec form), never npm start', () => {
    const entry = execForm('ENTRYPOINT')
    expect(entry[0]).toMatch(/(^|\/)node$/)
    expect([...entry, ...execForm('CMD')].join(' ')).not.toMatch(/\bnpm\b/)
  })

  it('the Node major is a build argument, 22 by default, used by both bases', () => {
    expect(text).toMatch(/^ARG NODE_MAJOR=22$/m)
    const bases = text.match(/^ARG (BUILD|RUNTIME)_IMAGE=.*$/gm) ?? []
    expect(bases).toHaveLength(2)
    for (const b of bases) expect(b).toContain('${NODE_MAJOR}')
    expect(text).toMatch(/distroless\/nodejs\$\{NODE_MAJOR\}-debian12:nonroot/)
  })

  it('every COPY source of the build context exists; .dockerignore keeps node_modules and dist out', () => {
    for (const line of instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      const parts = line.split(/\s+/).slice(1)
      for (const src of parts.slice(0, -1)) expect(existsSync(`${ROOT}${src}`), line).toBe(true)
    }
    const ignore = readFileSync(`${ROOT}.dockerignore`, 'utf8')
    expect(ignore).toMatch(/^\*\*\/node_modules$/m)
    expect(ignore).toMatch(/^\*\*\/dist$/m)
  })

  it('its ENTRYPOINT + CMD serve from the repository, and SIGTERM leaves gracefully (exit 0)', async () => {
    const [, ...entryArgs] = execForm('ENTRYPOINT')
    // The image's command, with free ports instead of the fixed ones.
    const cmd = execForm('CMD').map((a) => (a === '7361' || a === '8080' || a === '8558' ? '0' : a))
    const child = spawn(process.execPath, [...entryArgs, ...cmd, '--journal', 'sqlite::memory:'], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'production', SHOAL_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const lines: Record<string, unknown>[] = []
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    let buffered = ''
    const started = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buffered += d
        for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
          const line = buffered.slice(0, i)
          buffered = buffered.slice(i + 1)
          try {
            const l = JSON.parse(line) as Record<string, unknown>
            lines.push(l)
            if (l.msg === 'tictacfish node started') resolve()
          } catch {
            // not a log line
          }
        }
      })
      void exited.then((code) => reject(new Error(`exited ${code} before starting: ${stderr}`)))
    })
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not started within 30 s: ${stderr}`)), 30_000).unref())
    try {
      await Promise.race([started, timeout])
      const port = lines.find((l) => l.msg === 'management endpoint listening')?.port as number
      const ready = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(5000) })
      expect(ready.status).toBe(200)
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
      expect(lines.some((l) => l.msg === 'leaving the cluster' && l.why === 'SIGTERM')).toBe(true)
    } finally {
      child.kill('SIGKILL')
    }
  }, 60_000)
})
