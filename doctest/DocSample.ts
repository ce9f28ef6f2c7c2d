/**
 * DocSample: the code samples of the Markdown docs, as programs the doc-test harness can
 * type-check and run.
 *
 * Every fenced block in `ts`/`typescript`/`js`/`javascript` or `sh`/`bash` is a sample. A sample
 * may be preceded by a directive, an HTML comment the reader does not see:
 *
 * ```md
 * <!-- doctest
 * setup:
 *   import { ClusterSystem } from 'shoal'
 *   const system = await ClusterSystem.start({ port: 0 })
 * teardown:
 *   await system.shutdown()
 * replace: 10.0.0.1:7337 => 127.0.0.1:7338
 * bounded: 3000
 * expect: 3
 * -->
 * ```
 *
 * - `setup:` / `teardown:` (indented lines): code around the sample; what the reader would have
 *   written before and after it (imports, a second node, seeds).
 * - `replace: A => B` (repeatable): run B where the reader sees A (addresses of other machines,
 *   placeholders such as `…`).
 * - `continues`: the sample goes on from the previous sample of the same file; they are one program.
 * - `bounded: MS`: the sample runs until stopped (a `for await` over events, a server): the harness
 *   stops it after MS and it passes if nothing failed by then.
 * - `expect: TEXT` (repeatable): a line of the output (stdout and stderr) must contain TEXT;
 *   `expect-line: TEXT`: a line must be exactly TEXT (surrounding spaces aside).
 * - `types-only: REASON`: type-checked, not run (it needs something CI cannot have, said in REASON).
 * - `skip: REASON`: neither (a listing of a type, an excerpt of internal code).
 *
 * A shell sample runs as one bash script (`-e`: the first failing command fails it); with
 * `bounded`, a script that is still running then (a server in the foreground) is stopped, and
 * passes if nothing failed.
 * @module
 */

export type SampleLang = 'ts' | 'sh'

/** How the harness treats a sample. */
export type SampleMode = 'run' | 'types-only' | 'skip'

export interface Directive {
  readonly setup: string[]
  readonly teardown: string[]
  readonly replace: ReadonlyArray<readonly [string, string]>
  readonly continues: boolean
  readonly boundedMs: number | undefined
  readonly expect: string[]
  readonly expectLines: string[]
  readonly mode: SampleMode
  /** Why a sample is not run (types-only, skip). */
  readonly reason: string | undefined
}

export interface DocSample {
  /** Repository-relative Markdown file. */
  readonly file: string
  /** 1-based line of the opening fence. */
  readonly line: number
  readonly lang: SampleLang
  /** The code as the reader sees it. */
  readonly code: string
  readonly directive: Directive
}

/** One program: a sample, or several that continue each other, with setup and teardown. */
export interface DocProgram {
  /** `docs/x.md:12` of its first sample. */
  readonly name: string
  readonly lang: SampleLang
  readonly mode: SampleMode
  readonly reason: string | undefined
  readonly source: string
  /** For each line of `source` (0-based), where it comes from, e.g. `docs/x.md:14` or `setup of docs/x.md:12`. */
  readonly origins: readonly string[]
  readonly boundedMs: number | undefined
  readonly expect: readonly string[]
  readonly expectLines: readonly string[]
}

export class DocTestError extends Error {}

const LANGS: Record<string, SampleLang> = { ts: 'ts', typescript: 'ts', js: 'ts', javascript: 'ts', sh: 'sh', bash: 'sh', shell: 'sh' }

const EMPTY: Directive = {
  setup: [],
  teardown: [],
  replace: [],
  continues: false,
  boundedMs: undefined,
  expect: [],
  expectLines: [],
  mode: 'run',
  reason: undefined,
}

/** The samples of one Markdown file, in order. Fences with another language (or none) are not samples. */
export function extractSamples(markdown: string, file: string): DocSample[] {
  const lines = markdown.split('\n')
  const samples: DocSample[] = []
  let pending: { directive: Directive; endLine: number } | undefined
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.trimStart().startsWith('<!-- doctest')) {
      const start = i
      const body: string[] = [line.trimStart().slice('<!-- doctest'.length)]
      while (!body[body.length - 1]!.includes('-->')) {
        if (++i >= lines.length) throw new DocTestError(`${file}:${start + 1}: doctest comment is not closed with -->`)
        body.push(lines[i]!)
      }
      body[body.length - 1] = body[body.length - 1]!.slice(0, body[body.length - 1]!.indexOf('-->'))
      pending = { directive: parseDirective(body, `${file}:${start + 1}`), endLine: i }
      continue
    }
    const fence = /^(`{3,})\s*([A-Za-z]*)/.exec(line)
    if (!fence) continue
    const open = i
    const ticks = fence[1]!
    const code: string[] = []
    while (++i < lines.length && !lines[i]!.startsWith(ticks)) code.push(lines[i]!)
    if (i >= lines.length) throw new DocTestError(`${file}:${open + 1}: code fence is not closed`)
    const lang = LANGS[fence[2]!.toLowerCase()]
    const directive = pending && pending.endLine >= open - 2 ? pending.directive : EMPTY
    if (pending && directive === EMPTY) throw new DocTestError(`${file}:${pending.endLine + 1}: a doctest comment must come right before a code fence`)
    pending = undefined
    if (lang === undefined) {
      if (directive !== EMPTY) throw new DocTestError(`${file}:${open + 1}: a doctest comment before a fence that is not ts/js/sh`)
      continue
    }
    samples.push({ file, line: open + 1, lang, code: code.join('\n'), directive })
  }
  if (pending) throw new DocTestError(`${file}:${pending.endLine + 1}: a doctest comment must come right before a code fence`)
  return samples
}

/** Parses the lines of a doctest comment (after `<!-- doctest`, before `-->`). */
export function parseDirective(body: readonly string[], where: string): Directive {
  const d = {
    ...EMPTY,
    setup: [] as string[],
    teardown: [] as string[],
    replace: [] as [string, string][],
    expect: [] as string[],
    expectLines: [] as string[],
  }
  let block: string[] | undefined
  for (const raw of body) {
    if (raw.trim() === '') continue
    if (block && /^\s/.test(raw)) {
      block.push(raw)
      continue
    }
    block = undefined
    const m = /^\s*([a-z-]+)\s*(?::\s*(.*))?$/.exec(raw)
    if (!m) throw new DocTestError(`${where}: cannot read doctest line ${JSON.stringify(raw)}`)
    const key = m[1]!
    const value = (m[2] ?? '').trim()
    switch (key) {
      case 'setup':
      case 'teardown':
        block = key === 'setup' ? d.setup : d.teardown
        if (value) block.push(value)
        break
      case 'replace': {
        const parts = value.split(' => ')
        if (parts.length !== 2 || parts[0] === '') throw new DocTestError(`${where}: replace takes "A => B", got ${JSON.stringify(value)}`)
        d.replace.push([parts[0]!, parts[1]!])
        break
      }
      case 'continues':
        d.continues = true
        break
      case 'bounded': {
        const ms = Number(value)
        if (!Number.isInteger(ms) || ms <= 0) throw new DocTestError(`${where}: bounded takes milliseconds, got ${JSON.stringify(value)}`)
        d.boundedMs = ms
        break
      }
      case 'expect':
      case 'expect-line':
        if (!value) throw new DocTestError(`${where}: ${key} needs the text to find`)
        ;(key === 'expect' ? d.expect : d.expectLines).push(value)
        break
      case 'types-only':
      case 'skip':
        if (!value) throw new DocTestError(`${where}: ${key} needs a reason`)
        d.mode = key
        d.reason = value
        break
      default:
        throw new DocTestError(`${where}: unknown doctest key ${key} (setup, teardown, replace, continues, bounded, expect, expect-line, types-only, skip)`)
    }
  }
  return { ...d, setup: dedent(d.setup), teardown: dedent(d.teardown) }
}

function dedent(lines: string[]): string[] {
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^\s*/.exec(l)![0].length))
  return Number.isFinite(indent) ? lines.map((l) => l.slice(indent)) : lines
}

/** Groups the samples of one file into programs (see `continues`) and applies setup, teardown and replacements. */
export function programsOf(samples: readonly DocSample[]): DocProgram[] {
  const groups: DocSample[][] = []
  for (const s of samples) {
    const last = groups[groups.length - 1]
    if (s.directive.continues) {
      if (!last || last[0]!.file !== s.file) throw new DocTestError(`${s.file}:${s.line}: "continues" but there is no earlier sample in the file`)
      if (last[0]!.lang !== s.lang) throw new DocTestError(`${s.file}:${s.line}: "continues" a sample in another language`)
      last.push(s)
    } else groups.push([s])
  }
  return groups.map(programOf)
}

function programOf(group: readonly DocSample[]): DocProgram {
  const first = group[0]!
  const name = `${first.file}:${first.line}`
  const lines: string[] = []
  const origins: string[] = []
  const add = (text: readonly string[], origin: (i: number) => string): void => {
    text.forEach((l, i) => {
      lines.push(l)
      origins.push(origin(i))
    })
  }
  for (const s of group) {
    const at = `${s.file}:${s.line}`
    add(s.directive.setup, () => `setup of ${at}`)
    let code = s.code
    for (const [from, to] of s.directive.replace) {
      if (!code.includes(from)) throw new DocTestError(`${at}: replace: ${JSON.stringify(from)} is not in the sample`)
      code = code.split(from).join(to)
    }
    add(code.split('\n'), (i) => `${s.file}:${s.line + 1 + i}`)
  }
  for (const s of [...group].reverse()) add(s.directive.teardown, () => `teardown of ${s.file}:${s.line}`)
  const modes = group.map((s) => s.directive.mode)
  const mode: SampleMode = modes.includes('skip') ? 'skip' : modes.includes('types-only') ? 'types-only' : 'run'
  const bounded = group.map((s) => s.directive.boundedMs).filter((ms): ms is number => ms !== undefined)
  return {
    name,
    lang: first.lang,
    mode,
    reason: group.map((s) => s.directive.reason).find((r) => r !== undefined),
    source: lines.join('\n'),
    origins,
    boundedMs: bounded.length ? Math.max(...bounded) : undefined,
    expect: group.flatMap((s) => s.directive.expect),
    expectLines: group.flatMap((s) => s.directive.expectLines),
  }
}
