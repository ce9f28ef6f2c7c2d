/**
 * Every code sample in README.md and docs/*.md is type-checked against the built package (as a
 * user's program would be) and run (see DocSample.ts for the directives a sample may carry).
 * Generated programs go to `.doctest/` (ignored by git); a failure names the doc line.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { type DocProgram, extractSamples, programsOf } from './DocSample.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = join(ROOT, '.doctest')
const DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]
const RUN_TIMEOUT_MS = 30_000

const programs = DOCS.flatMap((file) => programsOf(extractSamples(readFileSync(join(ROOT, file), 'utf8'), file)))
const md = (...lines: string[]): string => lines.join('\n')
const slug = (p: DocProgram): string => p.name.replace(/[^A-Za-z0-9]+/g, '-')
const tsPrograms = programs.filter((p) => p.lang === 'ts' && p.mode !== 'skip')

function generate(): void {
  rmSync(OUT, { recursive: true, force: true })
  mkdirSync(OUT, { recursive: true })
  for (const p of tsPrograms) writeFileSync(join(OUT, `${slug(p)}.ts`), `${p.source}\nexport {}\n`)
  const tsconfig = {
    extends: '../tsconfig.base.json',
    compilerOptions: {
      noEmit: true,
      skipLibCheck: false,
      customConditions: [],
      allowImportingTsExtensions: false,
      rewriteRelativeImportExtensions: false,
      declaration: false,
      sourceMap: false,
      // Samples show a step, not a whole program: a name they declare may go unused.
      noUnusedLocals: false,
    },
    include: ['*.ts'],
  }
  writeFileSync(join(OUT, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2))
  // This repository's own settings: `shoal` resolves to its TypeScript sources (the `source` condition).
  const source = { extends: '../tsconfig.base.json', compilerOptions: { noEmit: true, noUnusedLocals: false }, include: ['*.ts'] }
  writeFileSync(join(OUT, 'tsconfig.source.json'), JSON.stringify(source, null, 2))
}

function typeCheck(project: string): Promise<string> {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
  return new Promise<string>((resolve) =>
    execFile(process.execPath, [tsc, '-p', join(OUT, project)], { cwd: ROOT }, (_e, stdout, stderr) => resolve(stdout + stderr)),
  )
}

/** tsc's diagnostics, each at the doc line its generated line came from. */
function typeErrors(output: string): string[] {
  const bySlug = new Map(tsPrograms.map((p) => [slug(p), p]))
  return output
    .split('\n')
    .filter((l) => l.includes('error TS'))
    .map((l) => {
      const m = /^(?:\.doctest\/)?([^(]+)\.ts\((\d+),(\d+)\): (.*)$/.exec(l)
      const p = m && bySlug.get(m[1]!)
      return p ? `${p.origins[Number(m[2]) - 1] ?? `${p.name} (end)`}: ${m[4]}` : l
    })
}

function run(command: string, args: readonly string[], opts: { timeoutMs: number; boundedMs?: number | undefined }) {
  return new Promise<{ code: number | null; bounded: boolean; output: string }>((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, detached: true, env: sampleEnv() })
    let output = ''
    let bounded = false
    child.stdout.on('data', (d: Buffer) => (output += d))
    child.stderr.on('data', (d: Buffer) => (output += d))
    const stopAfter = (ms: number, asBound: boolean) =>
      setTimeout(() => {
        bounded = asBound
        killGroup(child)
        timers.push(setTimeout(() => killGroup(child, 'SIGKILL'), 10_000))
      }, ms)
    const timers = [stopAfter(opts.timeoutMs, false)]
    if (opts.boundedMs !== undefined) timers.push(stopAfter(opts.boundedMs, true))
    child.on('close', (code) => {
      for (const t of timers) clearTimeout(t)
      resolve({ code, bounded, output })
    })
  })
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(-child.pid!, signal)
  } catch {
    // already gone
  }
}

async function runTs(p: DocProgram): Promise<void> {
  const file = join(OUT, `${slug(p)}.ts`)
  const { code, bounded, output } = await run(process.execPath, ['--import', 'tsx', file], { timeoutMs: RUN_TIMEOUT_MS, boundedMs: p.boundedMs })
  if (!bounded) expect(code, `${p.name} exited with ${code}:\n${output}`).toBe(0)
  checkOutput(p, output)
}

function checkOutput(p: DocProgram, output: string): void {
  const lines = output.split('\n').map((l) => l.trim())
  for (const text of p.expect)
    expect(
      lines.some((l) => l.includes(text)),
      `${p.name}: no output line contains ${JSON.stringify(text)}:\n${output}`,
    ).toBe(true)
  for (const text of p.expectLines) expect(lines.includes(text), `${p.name}: no output line is ${JSON.stringify(text)}:\n${output}`).toBe(true)
}

/** Runs a shell sample as one bash script (`-e`), stopped after `bounded` ms if still running. */
async function runSh(p: DocProgram): Promise<void> {
  const { code, bounded, output } = await run('bash', ['-e', '-c', p.source], { timeoutMs: RUN_TIMEOUT_MS, boundedMs: p.boundedMs })
  if (!bounded) expect(code, `${p.name} exited with ${code}:\n${output}`).toBe(0)
  checkOutput(p, output)
}

describe('doc samples', () => {
  beforeAll(generate)

  it('every sample is accounted for', () => {
    expect(programs.length).toBeGreaterThan(20)
    for (const p of programs) if (p.mode !== 'run') expect(p.reason, `${p.name} is ${p.mode} without a reason`).toBeTruthy()
  })

  it('type-check against the built package', async () => {
    expect(typeErrors(await typeCheck('tsconfig.json'))).toEqual([])
  }, 120_000)

  it("type-check against the sources, with this repository's own settings", async () => {
    expect(typeErrors(await typeCheck('tsconfig.source.json'))).toEqual([])
  }, 120_000)

  it('fails a sample that throws or prints the wrong thing, naming its doc line', async () => {
    const [thrower, quiet] = programsOf(
      extractSamples(
        md('```ts', "throw new Error('boom')", '```', '<!-- doctest', 'expect: hello', '-->', '```ts', "console.log('bye')", '```'),
        'self-test.md',
      ),
    )
    for (const p of [thrower!, quiet!]) writeFileSync(join(OUT, `${slug(p)}.ts`), `${p.source}\nexport {}\n`)
    await expect(runTs(thrower!)).rejects.toThrow(/self-test.md:1 exited with 1[\s\S]*boom/)
    await expect(runTs(quiet!)).rejects.toThrow(/self-test.md:7: no output line contains "hello"/)
  }, 60_000)

  for (const p of programs.filter((p) => p.mode === 'run')) {
    it(`runs ${p.name}`, () => (p.lang === 'ts' ? runTs(p) : runSh(p)), RUN_TIMEOUT_MS + 20_000)
  }
})

/** The environment a reader's shell would have: no test-only log settings. */
function sampleEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.SHOAL_LOG_LEVEL
  return env
}
