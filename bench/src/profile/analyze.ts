/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and aggregates the samples inside a time
 * window: self time by function, by file and by cost category, inclusive time of the top-level
 * frames (what the event loop was running: socket reads, immediates, microtasks, timers) and of
 * every function. Divided by the calls made in the window, each figure is µs per call.
 *
 * Sample times are on the process's monotonic clock, the same as `process.hrtime`, so a window
 * taken with `process.hrtime.bigint() / 1000n` selects the steady-state part of a run.
 *
 * CLI: `node --conditions=source --import tsx bench/src/profile/analyze.ts FILE.cpuprofile [CALLS]`
 * prints the tables for the whole profile (per call if CALLS is given).
 * @module
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: readonly number[]
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

/** A window on the profile's clock, in µs; undefined ends mean the profile's own start or end. */
export interface Window {
  readonly fromUs?: number
  readonly toUs?: number
}

/** Aggregated time in µs, by key, largest first. */
export type Breakdown = ReadonlyArray<readonly [key: string, us: number]>

export interface Analysis {
  /** Self and inclusive time of every function, by the same keys as the breakdowns. */
  readonly functions: ReadonlyMap<string, { readonly self: number; readonly inclusive: number; readonly file: string }>
  /** Length of the window actually covered by samples (µs). */
  readonly windowUs: number
  readonly samples: number
  /** Sampled time that was not (idle): JavaScript, GC, native code. */
  readonly busyUs: number
  readonly idleUs: number
  readonly selfByFunction: Breakdown
  readonly selfByFile: Breakdown
  readonly selfByCategory: Breakdown
  /** Inclusive time of the frames directly under (root): what the event loop was doing. */
  readonly topLevel: Breakdown
  /** Inclusive time of every function (each counted once per sample, whatever its recursion). */
  readonly inclusive: Breakdown
}

const ROOT_DIR = fileURLToPath(new URL('../../../', import.meta.url))

/** A short, stable location: repo-relative path, package name for dependencies, node: URLs as is. */
export function shortUrl(url: string): string {
  if (url === '') return ''
  let path = url.startsWith('file://') ? fileURLToPath(url) : url
  if (path.startsWith(ROOT_DIR)) path = path.slice(ROOT_DIR.length)
  const nm = path.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/')
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
    return `${pkg}:${rest.slice(rest[0]!.startsWith('@') ? 2 : 1).join('/')}`
  }
  return path
}

function functionKey(f: CallFrame): string {
  const name = f.functionName || '(anonymous)'
  const where = shortUrl(f.url)
  return where === '' ? name : `${name} ${where}:${f.lineNumber + 1}`
}

function fileKey(f: CallFrame): string {
  if (f.url === '') return f.functionName.startsWith('(') ? f.functionName : '(native)'
  return shortUrl(f.url)
}

/** Cost categories for the per-call breakdown; first match wins. */
const CATEGORIES: ReadonlyArray<readonly [name: string, test: (f: CallFrame, file: string) => boolean]> = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['native, unattributed (program)', (f) => f.functionName === '(program)'],
  ['msgpackr (encode/decode)', (_, file) => file.startsWith('msgpackr:')],
  ['shoal MsgpackScanner (untrusted-bytes scan)', (_, file) => file.endsWith('MsgpackScanner.ts')],
  ['shoal Serialization (walk, tags)', (_, file) => file.endsWith('serialization/Serialization.ts')],
  ['shoal Envelope (encode/decode)', (_, file) => file.endsWith('wire/Envelope.ts')],
  ['shoal FrameDecoder (framing in)', (_, file) => file.endsWith('FrameDecoder.ts')],
  ['shoal Association (queue, batch, framing out)', (_, file) => file.endsWith('transport/Association.ts')],
  ['shoal Transport/Connection', (_, file) => /transport\/(Transport|Connection)\.ts$/.test(file)],
  ['shoal ClusterSystem (invoke, pending calls, routing)', (_, file) => file.endsWith('ClusterSystem.ts')],
  ['shoal ActorCell (mailbox, turn)', (_, file) => file.endsWith('ActorCell.ts')],
  ['shoal DeadlineQueue', (_, file) => file.endsWith('DeadlineQueue.ts')],
  ['shoal Metrics', (_, file) => file.endsWith('Metrics.ts')],
  ['shoal CallContext', (_, file) => file.endsWith('CallContext.ts')],
  ['shoal ActorRef / Deque / other', (_, file) => file.startsWith('packages/shoal/')],
  ['bench code (harness, peer, actor)', (_, file) => file.startsWith('bench/')],
  [
    'AsyncLocalStorage / async_hooks',
    (_, file) => file === 'node:async_hooks' || file === 'node:internal/async_hooks' || file.startsWith('node:internal/async_local_storage'),
  ],
  ['diagnostics_channel', (_, file) => file === 'node:diagnostics_channel'],
  ['performance.now / hrtime', (f, file) => file.startsWith('node:internal/perf') || f.functionName === 'now' || f.functionName === 'hrtime'],
  [
    'socket write (net, stream, stream_base)',
    (f, file) =>
      /^node:(net|internal\/stream_base_commons|internal\/streams\/writable)/.test(file) ||
      /^(writev|writeBuffer|writeUtf8String|writeLatin1String)$/.test(f.functionName),
  ],
  ['socket read (net, stream, events)', (_, file) => /^node:(internal\/streams\/(readable|add-abort-signal|legacy)|events|internal\/streams)/.test(file)],
  ['timers / setImmediate', (_, file) => /^node:(internal\/)?timers/.test(file)],
  ['nextTick / microtask queue', (_, file) => file === 'node:internal/process/task_queues'],
  ['Buffer', (_, file) => file.startsWith('node:buffer') || file.startsWith('node:internal/buffer')],
  ['pino', (_, file) => file.startsWith('pino') || file.startsWith('sonic-boom:')],
  ['prom-client', (_, file) => file.startsWith('prom-client:')],
  ['child IPC (bench harness)', (_, file) => /^node:(internal\/child_process|child_process)/.test(file)],
  ['tsx loader', (_, file) => file.startsWith('tsx:')],
  ['other node internals', (_, file) => file.startsWith('node:')],
  ['native builtins (named, no script)', (f) => f.url === ''],
]

export function categoryOf(f: CallFrame): string {
  const file = fileKey(f)
  for (const [name, test] of CATEGORIES) if (test(f, file)) return name
  return `other: ${file}`
}

function sorted(map: Map<string, number>): Breakdown {
  return [...map].sort((a, b) => b[1] - a[1])
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us)
}

export function loadProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
}

/** Aggregates the samples of `profile` that fall inside `window`. */
export function analyze(profile: CpuProfile, window: Window = {}): Analysis {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }
  const rootId = profile.nodes.find((n) => n.callFrame.functionName === '(root)')?.id ?? profile.nodes[0]!.id
  const fileOfKey = new Map<string, string>()
  // Per node: its top-level ancestor and the set of function keys on its stack (computed once).
  const stackOf = new Map<number, { top: string; keys: string[] }>()
  const stack = (id: number): { top: string; keys: string[] } => {
    let s = stackOf.get(id)
    if (s) return s
    const keys = new Set<string>()
    let top = functionKey(byId.get(id)!.callFrame)
    for (let at: number | undefined = id; at !== undefined && at !== rootId; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame
      keys.add(functionKey(f))
      fileOfKey.set(functionKey(f), fileKey(f))
      if (parent.get(at) === rootId) top = functionKey(f)
    }
    s = { top, keys: [...keys] }
    stackOf.set(id, s)
    return s
  }

  const selfFn = new Map<string, number>()
  const selfFile = new Map<string, number>()
  const selfCat = new Map<string, number>()
  const topLevel = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let busy = 0
  let idle = 0
  let count = 0
  let first = Number.POSITIVE_INFINITY
  let last = Number.NEGATIVE_INFINITY
  const from = window.fromUs ?? Number.NEGATIVE_INFINITY
  const to = window.toUs ?? Number.POSITIVE_INFINITY
  // Sample i covers the time until sample i+1 (as DevTools attributes it).
  let t = profile.startTime
  const times = profile.timeDeltas.map((d) => (t += d))
  for (let i = 0; i < profile.samples.length; i++) {
    const at = times[i]!
    if (at < from || at >= to) continue
    const us = i + 1 < times.length ? times[i + 1]! - at : 0
    const node = byId.get(profile.samples[i]!)!
    const f = node.callFrame
    count++
    first = Math.min(first, at)
    last = Math.max(last, at + us)
    if (f.functionName === '(idle)') {
      idle += us
      continue
    }
    busy += us
    add(selfFn, functionKey(f), us)
    add(selfFile, fileKey(f), us)
    add(selfCat, categoryOf(f), us)
    fileOfKey.set(functionKey(f), fileKey(f))
    const s = stack(node.id)
    add(topLevel, s.top, us)
    for (const key of s.keys) add(inclusive, key, us)
  }
  const functions = new Map<string, { self: number; inclusive: number; file: string }>()
  for (const [key, us] of inclusive) functions.set(key, { self: selfFn.get(key) ?? 0, inclusive: us, file: fileOfKey.get(key) ?? '' })
  return {
    functions,
    windowUs: count > 0 ? last - first : 0,
    samples: count,
    busyUs: busy,
    idleUs: idle,
    selfByFunction: sorted(selfFn),
    selfByFile: sorted(selfFile),
    selfByCategory: sorted(selfCat),
    topLevel: sorted(topLevel),
    inclusive: sorted(inclusive),
  }
}

/**
 * Markdown table of a breakdown: µs per call (or ms in total without calls) and share of busy time.
 * `scale` multiplies sampled time into CPU time (see {@link report}).
 */
export function breakdownTable(title: string, rows: Breakdown, busyUs: number, calls: number | undefined, limit = 25, scale = 1): string[] {
  const unit = calls ? 'µs/call' : 'ms'
  const value = (us: number): string => (calls ? ((us * scale) / calls).toFixed(3) : (us / 1000).toFixed(1))
  const shown = rows.slice(0, limit)
  const rest = rows.slice(limit).reduce((n, [, us]) => n + us, 0)
  return [
    `| ${title} | ${unit} | % of busy |`,
    '|---|---:|---:|',
    ...shown.map(([key, us]) => `| ${key.replaceAll('|', '\\|')} | ${value(us)} | ${((us / busyUs) * 100).toFixed(1)} |`),
    ...(rest > 0 ? [`| (${rows.length - limit} more) | ${value(rest)} | ${((rest / busyUs) * 100).toFixed(1)} |`] : []),
  ]
}

/**
 * The full markdown report of one profile. With `cpuUsPerCall` (process CPU time per call, from
 * process.cpuUsage over the same window), every µs/call figure is the function's share of the
 * sampled busy time times that CPU time: sampled wall time also counts moments the process was
 * runnable but not running (a shared machine), CPU time does not.
 */
export function report(name: string, a: Analysis, calls: number | undefined, limit = 25, cpuUsPerCall?: number): string[] {
  const per = (us: number): string => (calls ? `${(us / calls).toFixed(2)} µs/call` : `${(us / 1000).toFixed(0)} ms`)
  const scale = calls && cpuUsPerCall !== undefined && a.busyUs > 0 ? cpuUsPerCall / (a.busyUs / calls) : 1
  return [
    `### ${name}`,
    '',
    `${a.samples} samples over ${(a.windowUs / 1e6).toFixed(2)} s; busy ${per(a.busyUs)} sampled (${((a.busyUs / a.windowUs) * 100).toFixed(0)}% of the window), idle ${per(a.idleUs)}${calls ? `; ${calls.toLocaleString('en-US')} calls` : ''}` +
      (scale !== 1 ? `; CPU ${cpuUsPerCall!.toFixed(2)} µs/call, so the tables scale sampled time by ${scale.toFixed(2)}` : ''),
    '',
    ...breakdownTable('category (self time)', a.selfByCategory, a.busyUs, calls, 40, scale),
    '',
    ...breakdownTable('function (self time)', a.selfByFunction, a.busyUs, calls, limit, scale),
    '',
    ...breakdownTable('file (self time)', a.selfByFile, a.busyUs, calls, limit, scale),
    '',
    ...breakdownTable('top-level frame (inclusive)', a.topLevel, a.busyUs, calls, 12, scale),
    '',
    ...breakdownTable('function (inclusive)', a.inclusive, a.busyUs, calls, limit, scale),
    '',
    ...functionTable(a, (file) => file.startsWith('packages/') || file.startsWith('bench/'), 'project function', calls, scale),
    '',
  ]
}

/** Self and inclusive time of the functions whose file passes `include`, by inclusive time. */
export function functionTable(a: Analysis, include: (file: string) => boolean, title: string, calls: number | undefined, scale = 1): string[] {
  const value = (us: number): string => (calls ? ((us * scale) / calls).toFixed(3) : (us / 1000).toFixed(1))
  const rows = [...a.functions].filter(([, f]) => include(f.file)).sort((x, y) => y[1].inclusive - x[1].inclusive)
  return [
    `| ${title} | self ${calls ? 'µs/call' : 'ms'} | inclusive ${calls ? 'µs/call' : 'ms'} |`,
    '|---|---:|---:|',
    ...rows.map(([key, f]) => `| ${key.replaceAll('|', '\\|')} | ${value(f.self)} | ${value(f.inclusive)} |`),
  ]
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, calls] = process.argv.slice(2)
  if (!file) {
    console.error('usage: analyze.ts FILE.cpuprofile [CALLS]')
    process.exit(2)
  }
  console.log(report(file, analyze(loadProfile(file)), calls ? Number(calls) : undefined).join('\n'))
}
