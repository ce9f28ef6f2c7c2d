/**
 * Shoal: remote calls and one-way messages between two nodes, and local ref calls in one node.
 * Actors are plain (no interleaving): every call takes its turn in the mailbox, as in an app.
 *
 * `tracedRemote` (peer `shoal-traced`) is the same, but its client and server processes first
 * subscribe no-op handlers to `diagnostics_channel.tracingChannel('shoal.call')`: the price of a
 * tracer that is attached but does nothing. Until Shoal publishes that channel it costs nothing
 * and the client's note says it saw no events.
 *
 * `otelRemote` (peer `shoal-otel`) registers an OpenTelemetry SDK in both processes before their
 * systems start (sdk-trace-base's BasicTracerProvider, always sampling, a span processor that drops
 * every span, the AsyncLocalStorage context manager, the W3C propagator): Shoal's own bridge then
 * makes a CLIENT and a SERVER span per call and sends `traceparent`. The price of tracing with an
 * SDK, before any exporter; `shoal` itself registers none, so it pays nothing.
 *
 * `BENCH_SHOAL_SETTINGS` (JSON, optional) is merged into every node's ClusterSystem.start settings,
 * to try a setting without editing code: `BENCH_SHOAL_SETTINGS='{"flushThreshold":65536}' npm run
 * bench -- --quick --only=calls --peers=shoal,raw`. Runs with it say so in a note.
 * @module
 */
import { tracingChannel } from 'node:diagnostics_channel'
import { ClusterSystem, type ClusterSystemSettings, DistributedActor, distributed } from 'shoal'
import type { Payload } from './harness.ts'
import type { LocalPeer, LocalTarget, RemoteClient, RemotePeer, Server } from './protocol.ts'

export class Echo extends DistributedActor {
  @distributed async echo(arg: Payload): Promise<Payload> {
    return arg
  }
}

/**
 * The one-way target. Its state is a TypeScript `private` field, not a `#private` one: the bench runs
 * under tsx (esbuild), which has to lower `#private` fields in a class with standard decorators, and
 * lowers `this.#count++` to a getter/setter object allocated per increment (about 0.6 µs and 200
 * promoted bytes per message on this machine, more than Shoal's own turn); tsc keeps them native.
 */
export class Counter extends DistributedActor {
  private hits = 0
  @distributed async hit(_arg: Payload): Promise<void> {
    this.hits++
  }
  @distributed async count(): Promise<number> {
    return this.hits
  }
}

/** Extra settings from BENCH_SHOAL_SETTINGS, if any. */
const extraSettings = ((): Partial<ClusterSystemSettings> => {
  const text = process.env.BENCH_SHOAL_SETTINGS
  if (!text) return {}
  const parsed = JSON.parse(text) as unknown
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`BENCH_SHOAL_SETTINGS must be a JSON object, got ${text}`)
  return parsed as Partial<ClusterSystemSettings>
})()

function settingsNotes(): string[] {
  return process.env.BENCH_SHOAL_SETTINGS ? [`BENCH_SHOAL_SETTINGS=${process.env.BENCH_SHOAL_SETTINGS}`] : []
}

function startSystem(name: string): Promise<ClusterSystem> {
  // Errors only: warnings about the peer going away at the end are expected here.
  return ClusterSystem.start({ name, host: '127.0.0.1', port: 0, logLevel: 'error', ...extraSettings })
}

/** `also`: something more each system runs (returns how to stop it). */
type Also = (system: ClusterSystem) => () => void

async function serve(also?: Also): Promise<Server> {
  const system = await startSystem('bench-server')
  const echo = system.spawn(Echo)
  const counter = system.spawn(Counter)
  const stop = also?.(system)
  return { info: { echo: echo.id.toString(), counter: counter.id.toString() }, close: () => (stop?.(), system.shutdown()) }
}

function idsOf(info: unknown): { echo: string; counter: string } {
  const { echo, counter } = (info ?? {}) as { echo?: unknown; counter?: unknown }
  if (typeof echo !== 'string' || typeof counter !== 'string') throw new Error(`shoal: bad server info ${JSON.stringify(info)}`)
  return { echo, counter }
}

async function connect(info: unknown, also?: Also): Promise<RemoteClient> {
  const ids = idsOf(info)
  const system = await startSystem('bench-client')
  const echo = system.resolve(Echo, ids.echo)
  const counter = system.resolve(Counter, ids.counter)
  const stop = also?.(system)
  return {
    call: (arg) => echo.echo(arg),
    oneWay: {
      send: (arg) => counter.tell('hit', arg),
      count: () => counter.count(),
    },
    notes: settingsNotes,
    close: () => (stop?.(), system.shutdown()),
  }
}

async function open(): Promise<LocalTarget> {
  const system = await startSystem('bench-local')
  const echo = system.spawn(Echo)
  return { call: (arg) => echo.echo(arg), notes: settingsNotes, close: () => system.shutdown() }
}

/** `start` events seen by this process's no-op subscriber (the only handler that does anything). */
let traceStarts = 0
let subscribed = false

/** Subscribes no-op handlers to every event of the `shoal.call` tracing channel, once per process. */
function subscribeNoopTracing(): void {
  if (subscribed) return
  subscribed = true
  const noop = (): void => {}
  tracingChannel('shoal.call').subscribe({
    start: () => {
      traceStarts++
    },
    end: noop,
    asyncStart: noop,
    asyncEnd: noop,
    error: noop,
  })
}

export const remote: RemotePeer = { serve: () => serve(), connect: (info) => connect(info) }

export const tracedRemote: RemotePeer = {
  serve: () => {
    subscribeNoopTracing()
    return serve()
  },
  connect: async (info) => {
    subscribeNoopTracing()
    const client = await connect(info)
    return {
      ...client,
      notes: () => [
        ...settingsNotes(),
        traceStarts > 0
          ? `no-op shoal.call subscriber saw ${traceStarts.toLocaleString('en-US')} start events in the client`
          : 'no-op shoal.call subscriber saw no events in the client: Shoal does not publish the channel yet',
      ],
    }
  },
}
let otel = false
async function registerOtel(): Promise<void> {
  if (otel) return
  otel = true
  const { context, propagation, trace } = await import('@opentelemetry/api')
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks')
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core')
  const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base')
  const drop = { onStart: (): void => {}, onEnd: (): void => {}, forceFlush: async (): Promise<void> => {}, shutdown: async (): Promise<void> => {} }
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [drop] }))
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
}

export const otelRemote: RemotePeer = {
  serve: async () => {
    await registerOtel()
    return serve()
  },
  connect: async (info) => {
    await registerOtel()
    const client = await connect(info)
    return { ...client, notes: () => [...settingsNotes(), 'OpenTelemetry SDK registered (spans made and dropped)'] }
  },
}

/**
 * Peer `shoal-dashboard`: both systems read their own `nodeStatus()` every 2 s, as a dashboard page
 * open on the cluster makes every node do: the price of an open page (per-method sampling of the
 * calls served, the status read itself).
 */
function readEvery2s(system: ClusterSystem): () => void {
  void system.nodeStatus()
  const timer = setInterval(() => void system.nodeStatus(), 2000)
  return () => clearInterval(timer)
}

export const dashboardRemote: RemotePeer = {
  serve: () => serve(readEvery2s),
  connect: async (info) => {
    const client = await connect(info, readEvery2s)
    return { ...client, notes: () => [...settingsNotes(), 'every node reads nodeStatus() every 2 s (a dashboard page open)'] }
  },
}

export const local: LocalPeer = { open }
