/**
 * One process of a profiling run (forked by profile/run.ts, usually under `--cpu-prof`): the server
 * or the client of a remote peer. argv[2] is a JSON {@link NodeConfig}.
 *
 * The client keeps `inFlight` calls going (each worker calls again as soon as its call returns; no
 * clock reads per call, unlike the benchmark harness, so the client's profile is the peer's own
 * cost), and marks the steady-state window: after the warm-up it records its CPU time, clock and
 * call count and tells the runner, which tells the server to do the same; again at the end. Both
 * then report their window (monotonic µs, as in the .cpuprofile) and CPU time.
 * @module
 */
import { Socket } from 'node:net'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import { makePayload } from '../harness.ts'
import type { RemotePeer, RemotePeerName } from '../protocol.ts'

export type NodeConfig =
  | { readonly role: 'server'; readonly peer: RemotePeerName }
  | {
      readonly role: 'client'
      readonly peer: RemotePeerName
      readonly info: unknown
      readonly inFlight: number
      readonly warmupMs: number
      readonly durationMs: number
      /** `calls` (default): `inFlight` calls kept going; `oneway`: windows of `window` one-way messages, each followed by a count call. */
      readonly scenario?: 'calls' | 'oneway'
      readonly window?: number
    }

/** Clock, CPU time and socket writes so far at one edge of the window. */
export interface Mark {
  readonly atUs: number
  readonly cpu: NodeJS.CpuUsage
  readonly writes: number
  readonly bytesWritten: number
  readonly gc: GcTally
}

interface GcTally {
  minor: number
  minorUs: number
  major: number
  majorUs: number
}

const gc: GcTally = { minor: 0, minorUs: 0, major: 0, majorUs: 0 }
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as { detail?: { kind?: number } }).detail?.kind
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      gc.minor++
      gc.minorUs += entry.duration * 1000
    } else {
      gc.major++
      gc.majorUs += entry.duration * 1000
    }
  }
}).observe({ entryTypes: ['gc'] })

// Every peer writes through net.Socket#write: count the writes (a syscall each, the dominant fixed
// cost per batch on loopback) and their bytes. The IPC channel to the runner does not use it.
let writes = 0
let bytesWritten = 0
const socketWrite = Socket.prototype.write
Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
  writes++
  if (typeof chunk === 'string') bytesWritten += Buffer.byteLength(chunk)
  else if (chunk instanceof Uint8Array) bytesWritten += chunk.length
  return (socketWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
} as typeof socketWrite

/** What a process measured over the window. */
export interface WindowReport {
  readonly fromUs: number
  readonly toUs: number
  /** CPU time over the window (µs), from process.cpuUsage. */
  readonly userUs: number
  readonly systemUs: number
  /** Completed calls in the window (client only); one-way messages counted by the server in the oneway scenario. */
  readonly calls?: number
  /** socket.write calls on TCP sockets in the window, and the bytes they wrote. */
  readonly writes: number
  readonly bytesWritten: number
  /** Garbage collections in the window (from perf_hooks 'gc' entries): count and total pause, µs. */
  readonly minorGcs: number
  readonly minorGcUs: number
  readonly majorGcs: number
  readonly majorGcUs: number
}

export type NodeMessage =
  | { readonly kind: 'ready'; readonly info: unknown }
  | { readonly kind: 'mark'; readonly edge: 'start' | 'end' }
  | { readonly kind: 'window'; readonly window: WindowReport }
  | { readonly kind: 'error'; readonly message: string }

/** Messages from the runner to a server. */
export type RunnerMessage = { readonly kind: 'mark'; readonly edge: 'start' | 'end' } | { readonly kind: 'exit' }

async function peer(name: RemotePeerName): Promise<RemotePeer> {
  switch (name) {
    case 'raw-immediate':
      return (await import('../raw.ts')).rawPeer('immediate')
    case 'raw-microtask':
      return (await import('../raw.ts')).rawPeer('microtask')
    case 'shoal':
      return (await import('../shoal.ts')).remote
    case 'shoal-traced':
      return (await import('../shoal.ts')).tracedRemote
    case 'shoal-otel':
      return (await import('../shoal.ts')).otelRemote
    case 'shoal-dashboard':
      return (await import('../shoal.ts')).dashboardRemote
    case 'moleculer':
      return (await import('../moleculer.ts')).remote
    case 'grpc':
      return (await import('../grpc.ts')).remote
  }
}

function post(message: NodeMessage): void {
  process.send?.(message)
}

function mark(): Mark {
  return { atUs: Number(process.hrtime.bigint() / 1000n), cpu: process.cpuUsage(), writes, bytesWritten, gc: { ...gc } }
}

function windowOf(start: Mark, end: Mark, calls?: number): WindowReport {
  return {
    fromUs: start.atUs,
    toUs: end.atUs,
    userUs: end.cpu.user - start.cpu.user,
    systemUs: end.cpu.system - start.cpu.system,
    calls,
    writes: end.writes - start.writes,
    bytesWritten: end.bytesWritten - start.bytesWritten,
    minorGcs: end.gc.minor - start.gc.minor,
    minorGcUs: end.gc.minorUs - start.gc.minorUs,
    majorGcs: end.gc.major - start.gc.major,
    majorGcUs: end.gc.majorUs - start.gc.majorUs,
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function server(name: RemotePeerName): Promise<void> {
  const s = await (await peer(name)).serve()
  let start: Mark | undefined
  process.on('message', (message: RunnerMessage) => {
    if (message.kind === 'mark' && message.edge === 'start') start = mark()
    else if (message.kind === 'mark' && message.edge === 'end' && start) post({ kind: 'window', window: windowOf(start, mark()) })
    else if (message.kind === 'exit') {
      // Exit through process.exit so --cpu-prof writes its file; a server that hangs closing still goes.
      setTimeout(() => process.exit(0), 2000).unref()
      void s.close().finally(() => process.exit(0))
    }
  })
  post({ kind: 'ready', info: s.info })
}

async function client(config: Extract<NodeConfig, { role: 'client' }>): Promise<void> {
  const c = await (await peer(config.peer)).connect(config.info)
  const arg = makePayload()
  let completed = 0
  let running = true
  const worker = async (): Promise<void> => {
    while (running) {
      await c.call(arg)
      completed++
    }
  }
  // One-way: the harness's oneWayRun, without end: a window of tells, then a count call; the
  // previous window's count is awaited before the next window goes (so at most two are in flight),
  // and a window counts as completed when the server's count shows it arrived.
  const oneWayLoop = async (): Promise<void> => {
    const target = c.oneWay
    if (!target) throw new Error(`${config.peer} has no one-way scenario`)
    const window = config.window ?? 10_000
    let previous: Promise<number> | undefined
    const base = await target.count()
    while (running) {
      for (let i = 0; i < window; i++) target.send(arg)
      const current = target.count()
      if (previous) completed = (await previous) - base
      previous = current
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    await previous
  }
  const workers = config.scenario === 'oneway' ? [oneWayLoop()] : Array.from({ length: config.inFlight }, worker)
  await sleep(config.warmupMs)
  const start = mark()
  const before = completed
  post({ kind: 'mark', edge: 'start' })
  await sleep(config.durationMs)
  const end = mark()
  const calls = completed - before
  post({ kind: 'mark', edge: 'end' })
  running = false
  await Promise.all(workers)
  await c.close()
  post({ kind: 'window', window: windowOf(start, end, calls) })
  // Let the IPC message go out before exiting (process.exit writes the CPU profile).
  await sleep(50)
  process.exit(0)
}

process.on('disconnect', () => process.exit(0))
const config = JSON.parse(process.argv[2] ?? '{}') as NodeConfig
;(config.role === 'server' ? server(config.peer) : client(config)).catch((error: unknown) => {
  post({ kind: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
  setTimeout(() => process.exit(1), 50)
})
