/**
 * OpenTelemetry through the real SDK (sdk-trace-base's in-memory exporter) across three nodes over
 * TCP: a call gateway → player (virtual actor) → game session (event-sourced virtual actor) is one
 * trace with correctly parented spans, an emit is a span under the call that made it, one-way
 * messages are PRODUCER/CONSUMER, failures carry `error.type`, log lines carry the ids; and with
 * no SDK nothing subscribes and no trace header goes on the wire.
 */

import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { pino } from 'pino'
import {
  type ActorRef,
  ClusterSystem,
  type ClusterSystemSettings,
  DistributedActor,
  distributed,
  EventSourcedActor,
  journalPlugin,
  MemoryEventStore,
  singletonPlugin,
  tracingActive,
  virtualActorsPlugin,
} from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

type Facade = ClusterSystem['virtualActors']

class Session extends EventSourcedActor<{ moves: number }, { type: 'moved'; by: string; square: number }> {
  constructor(readonly sessionId: string) {
    super()
  }
  get persistenceId(): string {
    return `session-${this.sessionId}`
  }
  initialState(): { moves: number } {
    return { moves: 0 }
  }
  applyEvent(s: { moves: number }): { moves: number } {
    return { moves: s.moves + 1 }
  }
  @distributed async move(by: string, square: number): Promise<number> {
    await this.emit({ type: 'moved', by, square })
    return this.state.moves
  }
}

class Player extends DistributedActor {
  constructor(
    readonly playerId: string,
    private readonly va: Facade,
  ) {
    super()
  }
  @distributed async move(square: number): Promise<number> {
    this.log.info({ square }, 'player moves')
    return this.va.get(Session, 'g1').move(this.playerId, square)
  }
}

class Gateway extends DistributedActor {
  readonly notes: string[] = []
  constructor(private readonly va: Facade) {
    super()
  }
  @distributed async play(playerId: string, square: number): Promise<number> {
    return this.va.get(Player, playerId).move(square)
  }
  @distributed async fail(): Promise<void> {
    throw new RangeError('no such square')
  }
  @distributed async note(text: string): Promise<void> {
    this.notes.push(text)
  }
}

const systems: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function start(settings: ClusterSystemSettings, seed?: ClusterSystem): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({
    logLevel: 'silent',
    host: '127.0.0.1',
    port: 0,
    ...settings,
    cluster: { selfJoinAfter: 200, ...settings.cluster, seeds: seed ? [`127.0.0.1:${seed.node.endpoint.port}`] : [] },
  })
  systems.push(s)
  return s
}

/** Bytes this node's transport wrote (all peers). */
async function bytesOut(s: ClusterSystem): Promise<number> {
  const m = await s.metrics.registry.getSingleMetric('shoal_transport_bytes_total')?.get()
  return (m?.values ?? []).filter((v) => v.labels.direction === 'out').reduce((n, v) => n + v.value, 0)
}

/** Two plain nodes, 50 calls from a to an actor on b; the bytes a wrote meanwhile. */
async function fiftyCalls(settings: ClusterSystemSettings): Promise<number> {
  const a = await start(settings)
  const b = await start(settings, a)
  await eventually(() => expect(a.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(2), { timeoutMs: 10_000 })
  const g = b.spawn(Gateway, b.virtualActors)
  const ref = a.resolve(Gateway, g.id)
  await ref.note('warm')
  const before = await bytesOut(a)
  for (let i = 0; i < 50; i++) await ref.note('x')
  const bytes = (await bytesOut(a)) - before
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
  return bytes
}

describe('OpenTelemetry, without an SDK', () => {
  it('nothing subscribes and no trace header is added on the wire', async () => {
    const plain = await fiftyCalls({ plugins: [virtualActorsPlugin()] })
    expect(tracingActive()).toBe(false)
    const off = await fiftyCalls({ plugins: [virtualActorsPlugin()], tracing: false })
    // Same bytes as with tracing explicitly off (within a heartbeat or two of noise).
    expect(Math.abs(plain - off)).toBeLessThan(600)
  })
})

describe('OpenTelemetry, with the SDK registered', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const contextManager = new AsyncLocalStorageContextManager().enable()

  const register = (): void => {
    trace.setGlobalTracerProvider(provider)
    context.setGlobalContextManager(contextManager)
    propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  }
  afterAll(() => {
    trace.disable()
    context.disable()
    propagation.disable()
  })

  it('a call gateway → player → game session across three nodes is one trace, parented hop by hop; the emit sits under its call; logs carry the ids', async () => {
    register()
    const store = new MemoryEventStore()
    const lines: Record<string, unknown>[] = []
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) })
    const plugins = () => [virtualActorsPlugin(), journalPlugin({ store })]
    const gw = await start({ name: 'gateway', plugins: plugins(), cluster: { roles: ['gateway'] } })
    const players = await start({ name: 'players', plugins: plugins(), logger, cluster: { roles: ['players'] } }, gw)
    const sessions = await start({ name: 'sessions', plugins: plugins(), cluster: { roles: ['sessions'] } }, gw)
    expect(tracingActive()).toBe(true)
    players.virtualActors.host(Player, (id) => new Player(id, players.virtualActors), { role: 'players' })
    sessions.virtualActors.host(Session, (id) => new Session(id), { role: 'sessions' })
    const gateway = gw.spawn(Gateway, gw.virtualActors)
    // Warm up (tables, activations), then trace one call from scratch.
    await eventually(async () => expect(await gateway.play('warm', 0)).toBeGreaterThan(0), { timeoutMs: 15_000 })
    exporter.reset()

    const tracer = trace.getTracer('test')
    const moves = await tracer.startActiveSpan('test', async (root: Span) => {
      try {
        return await gateway.play('ann', 4)
      } finally {
        root.end()
      }
    })
    expect(moves).toBeGreaterThan(1)
    await eventually(() => expect(exporter.getFinishedSpans().some((s) => s.name === 'Session/emit')).toBe(true), { timeoutMs: 5000 })
    await new Promise((r) => setTimeout(r, 100)) // callee spans end once their reply is on its way
    const spans = exporter.getFinishedSpans()
    const root = spans.find((s) => s.name === 'test')!
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]))
    const parentOf = (s: ReadableSpan): ReadableSpan | undefined => byId.get(s.parentSpanContext?.spanId ?? '')
    const ancestors = (s: ReadableSpan): ReadableSpan[] => {
      const out: ReadableSpan[] = []
      for (let p = parentOf(s); p; p = parentOf(p)) out.push(p)
      return out
    }
    const one = (name: string, kind: SpanKind): ReadableSpan => {
      const found = spans.filter((s) => s.name === name && s.kind === kind)
      expect(found.length, `${name} ${SpanKind[kind]} in ${spans.map((s) => `${s.name}:${SpanKind[s.kind]}`).join(', ')}`).toBeGreaterThanOrEqual(1)
      return found[found.length - 1]!
    }
    const summary = spans.map((s) => `${s.name}:${SpanKind[s.kind]}<-${parentOf(s)?.name ?? '-'}`).join(', ')

    // One trace.
    expect(new Set(spans.map((s) => s.spanContext().traceId)), summary).toEqual(new Set([root.spanContext().traceId]))
    // Hop by hop.
    const gwClient = one('Gateway/play', SpanKind.CLIENT)
    const gwServer = one('Gateway/play', SpanKind.SERVER)
    const playerServer = one('Player/move', SpanKind.SERVER)
    const sessionServer = one('Session/move', SpanKind.SERVER)
    const emit = one('Session/emit', SpanKind.INTERNAL)
    expect(parentOf(gwClient), summary).toBe(root)
    expect(parentOf(gwServer), summary).toBe(gwClient)
    expect(ancestors(playerServer), summary).toContain(gwServer)
    expect(parentOf(playerServer)?.kind, summary).toBe(SpanKind.CLIENT)
    // The router's hop (the first call through a new ref) is a CLIENT span of its own, named alike.
    expect(parentOf(playerServer)?.name, summary).toBe('Player/move')
    expect(ancestors(sessionServer), summary).toContain(playerServer)
    expect(parentOf(sessionServer)?.kind, summary).toBe(SpanKind.CLIENT)
    expect(parentOf(sessionServer)?.name, summary).toBe('Session/move')
    expect(parentOf(emit), summary).toBe(sessionServer)
    // Conventions: names without ids, ids as attributes, the target node, the outcome.
    expect(playerServer.attributes).toMatchObject({ 'rpc.system.name': 'shoal', 'rpc.method': 'Player/move', 'rpc.response.status_code': 'ok' })
    expect(String(playerServer.attributes['shoal.actor.id'])).toContain('ann')
    expect(spans.every((s) => !s.name.includes('ann'))).toBe(true)
    const client = parentOf(playerServer)!
    expect(client.attributes['server.port']).toBe(players.node.endpoint.port)
    expect(emit.attributes).toMatchObject({ 'shoal.persistence_id': 'session-g1', 'shoal.event.types': ['moved'] })
    // The player's log line inside its traced call carries the ids of its SERVER span.
    const line = lines.find((l) => l.msg === 'player moves' && l.square === 4)
    expect(line).toMatchObject({ trace_id: root.spanContext().traceId, span_id: playerServer.spanContext().spanId })
  })

  it('a failed call marks both sides with error.type; a one-way message is PRODUCER → CONSUMER', async () => {
    register()
    const a = await start({ plugins: [virtualActorsPlugin()] })
    const b = await start({ plugins: [virtualActorsPlugin()] }, a)
    await eventually(() => expect(a.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(2), { timeoutMs: 10_000 })
    const g = b.spawn(Gateway, b.virtualActors)
    const ref: ActorRef<Gateway> = a.resolve(Gateway, g.id)
    await ref.note('warm')
    exporter.reset()
    await expect(ref.fail()).rejects.toThrow('no such square')
    ref.tell('note', 'hello')
    await eventually(() => expect(exporter.getFinishedSpans().filter((s) => s.name === 'Gateway/note')).toHaveLength(2), { timeoutMs: 5000 })
    await eventually(() => expect(exporter.getFinishedSpans().filter((s) => s.name === 'Gateway/fail')).toHaveLength(2), { timeoutMs: 5000 })
    const spans = exporter.getFinishedSpans()
    for (const s of spans.filter((x) => x.name === 'Gateway/fail')) {
      expect(s.status.code).toBe(SpanStatusCode.ERROR)
      expect(s.attributes['error.type']).toMatch(/^SHOAL_|^error$/)
    }
    const producer = spans.find((s) => s.name === 'Gateway/note' && s.kind === SpanKind.PRODUCER)!
    const consumer = spans.find((s) => s.name === 'Gateway/note' && s.kind === SpanKind.CONSUMER)!
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId)
    expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId)
  })

  it("a call through a singleton proxy on another node: the proxy's hop is a CLIENT span under the caller's, the instance's SERVER under it", async () => {
    register()
    // b is the oldest member, so it hosts; a's proxy forwards there.
    const b = await start({ plugins: [singletonPlugin(), virtualActorsPlugin()] })
    const a = await start({ plugins: [singletonPlugin(), virtualActorsPlugin()] }, b)
    await eventually(() => expect(a.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(2), { timeoutMs: 10_000 })
    b.singleton.host('greeter', (sys) => sys.spawn(Gateway, sys.virtualActors))
    const proxy = a.singleton.proxy(Gateway, 'greeter')
    await eventually(async () => expect(await proxy.note('warm')).toBeUndefined(), { timeoutMs: 10_000 })
    exporter.reset()
    await trace.getTracer('test').startActiveSpan('test', async (root: Span) => {
      await proxy.note('hello')
      root.end()
    })
    await eventually(() => expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1), { timeoutMs: 5000 })
    const spans = exporter.getFinishedSpans()
    const byId = new Map(spans.map((x) => [x.spanContext().spanId, x]))
    const server = spans.find((x) => x.kind === SpanKind.SERVER)!
    const hop = byId.get(server.parentSpanContext!.spanId)!
    const first = byId.get(hop.parentSpanContext!.spanId)!
    const summary = spans.map((x) => `${x.name}:${SpanKind[x.kind]}`).join(', ')
    expect(server.name, summary).toBe('Gateway/note')
    expect(hop.kind, summary).toBe(SpanKind.CLIENT)
    expect(hop.attributes['shoal.forwarded'], summary).toBe(true)
    expect(hop.attributes['server.port'], summary).toBe(b.node.endpoint.port)
    expect(first.kind, summary).toBe(SpanKind.CLIENT)
    expect(byId.get(first.parentSpanContext!.spanId)?.name, summary).toBe('test')
    expect(new Set(spans.map((x) => x.spanContext().traceId)).size, summary).toBe(1)
  })

  it('with the SDK, a call carries its traceparent: more bytes on the wire than without', async () => {
    register()
    const traced = await fiftyCalls({ plugins: [virtualActorsPlugin()] })
    const off = await fiftyCalls({ plugins: [virtualActorsPlugin()], tracing: false })
    // traceparent is 55 bytes plus its key and framing, per call.
    expect(traced - off).toBeGreaterThan(50 * 55)
  })
})
