/**
 * The `shoal.call` TracingChannel and the `shoal:*` diagnostics channels published by the call
 * path: both sides of a remote call, a local call, refusals, and nothing without subscribers.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel'
import {
  type ActorRef,
  type CallRefusedMessage,
  type CallTraceContext,
  ClusterSystem,
  callTracing,
  DistributedActor,
  distributed,
  type Plugin,
  type PluginContext,
} from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'

class Greeter extends DistributedActor {
  @distributed async greet(name: string): Promise<string> {
    return `hello ${name}`
  }
  @distributed async fail(): Promise<void> {
    throw new RangeError('no')
  }
  @distributed greetNow(name: string): string {
    return `hi ${name}`
  }
}

/** Where a method runs, as a store bound to the start channel sees it. */
const where = new AsyncLocalStorage<string>()
class Probe extends DistributedActor {
  @distributed async store(): Promise<string | undefined> {
    return where.getStore()
  }
}

class Slow extends DistributedActor {
  @distributed async nap(): Promise<void> {
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A ref type without class knowledge: its calls are checked only at the target. */
class Untyped extends DistributedActor {
  @distributed async secret(): Promise<void> {}
}

type Event = {
  readonly event: string
  readonly side: string
  readonly method: string
  readonly outcome?: string
  readonly local: boolean
  readonly actorType?: string
}

function record(): { events: Event[]; stop(): void } {
  const events: Event[] = []
  const handler = (event: string) => (message: unknown) => {
    const ctx = message as CallTraceContext
    events.push({ event, side: ctx.side, method: ctx.method, outcome: ctx.outcome, local: ctx.local, actorType: ctx.actorType })
  }
  const handlers = { start: handler('start'), end: handler('end'), asyncStart: handler('asyncStart'), asyncEnd: handler('asyncEnd'), error: handler('error') }
  const channel = tracingChannel('shoal.call')
  channel.subscribe(handlers)
  return { events, stop: () => channel.unsubscribe(handlers) }
}

const systems: ClusterSystem[] = []
const cleanups: (() => void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) c()
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function start(): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
  systems.push(s)
  return s
}

const sides = (events: Event[], side: string): string[] => events.filter((e) => e.side === side).map((e) => `${e.event}${e.outcome ? `:${e.outcome}` : ''}`)

describe('shoal.call tracing channel', () => {
  it('a store bound to the start channel is active in the callee method and around the caller send; without one, calls still trace', async () => {
    const a = await start()
    const b = await start()
    const probe = a.resolve(Probe, b.spawn(Probe).id)
    const rec = record() // subscribers but no store: the path that publishes start without runStores
    cleanups.push(rec.stop)
    expect(await probe.store()).toBeUndefined()
    expect(sides(rec.events, 'callee')).toEqual(['start', 'end', 'asyncStart:ok', 'asyncEnd:ok'])
    const seen: string[] = []
    callTracing.start.bindStore(where, (message) => {
      const ctx = message as CallTraceContext
      seen.push(ctx.side)
      return `${ctx.side}:${ctx.method}`
    })
    cleanups.push(() => callTracing.start.unbindStore(where))
    expect(await probe.store()).toBe('callee:store')
    expect(seen).toEqual(['caller', 'callee'])
  })

  it('traces both sides of a remote call, in TracingChannel order, with the outcome', async () => {
    const a = await start()
    const b = await start()
    const greeter = a.resolve(Greeter, b.spawn(Greeter).id)
    const rec = record()
    cleanups.push(rec.stop)
    expect(await greeter.greet('fish')).toBe('hello fish')
    expect(sides(rec.events, 'caller')).toEqual(['start', 'end', 'asyncStart:ok', 'asyncEnd:ok'])
    expect(sides(rec.events, 'callee')).toEqual(['start', 'end', 'asyncStart:ok', 'asyncEnd:ok'])
    expect(rec.events.every((e) => e.method === 'greet' && e.actorType === 'Greeter' && e.local === false)).toBe(true)
  })

  it('a failing method is an error event on both sides, with the error code on the caller', async () => {
    const a = await start()
    const b = await start()
    const greeter = a.resolve(Greeter, b.spawn(Greeter).id)
    const rec = record()
    cleanups.push(rec.stop)
    await expect(greeter.fail()).rejects.toThrow()
    expect(sides(rec.events, 'callee')).toEqual(['start', 'end', 'error:error', 'asyncStart:error', 'asyncEnd:error'])
    expect(sides(rec.events, 'caller')).toEqual(['start', 'end', 'error:SHOAL_REMOTE', 'asyncStart:SHOAL_REMOTE', 'asyncEnd:SHOAL_REMOTE'])
  })

  it('headers a caller-side start subscriber sets travel in the envelope to the callee side', async () => {
    const a = await start()
    const b = await start()
    const greeter = a.resolve(Greeter, b.spawn(Greeter).id)
    await greeter.greet('warm-up') // the association is up and its protocol minor known
    const seen: (Record<string, string> | undefined)[] = []
    const onStart = (message: unknown): void => {
      const ctx = message as CallTraceContext
      if (ctx.side === 'caller') (ctx.headers as Record<string, string>).traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
      else seen.push(ctx.headers ? { ...ctx.headers } : undefined)
    }
    const channel = tracingChannel('shoal.call')
    const handlers = { start: onStart, end: () => {}, asyncStart: () => {}, asyncEnd: () => {}, error: () => {} }
    channel.subscribe(handlers)
    cleanups.push(() => channel.unsubscribe(handlers))
    expect(await greeter.greet('fish')).toBe('hello fish')
    expect(seen).toEqual([{ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }])
  })

  it('a proxy hop forwards the headers its call arrived with, though no subscriber reads them on the hop', async () => {
    // b relays calls to /system/relay on to c's greeter with the headers they arrived with.
    let ctx: PluginContext | undefined
    const relay: Plugin = { name: 'relay', start: (c) => void (ctx = c) }
    const a = await start()
    const b = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [relay] })
    systems.push(b)
    const c = await start()
    const greeter: ActorRef<Greeter> = b.resolve(Greeter, c.spawn(Greeter).id)
    ctx!.actors.registerWellKnown('/system/relay', {
      alive: true,
      deliver: (inv) =>
        void ctx!.calls.forward(greeter, inv.method, inv.args, inv.chain, 1000, inv.headers).then(
          (v) => inv.succeed(v),
          (e: unknown) => inv.fail(e),
        ),
    })
    const viaRelay = a.resolve(Greeter, ctx!.actors.wellKnownRef('/system/relay').id)
    expect(await viaRelay.greet('warm-up')).toBe('hello warm-up')
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const arrived: { target: string; headers: Record<string, string> | undefined }[] = []
    const onStart = (message: unknown): void => {
      const t = message as CallTraceContext
      // Only the first caller sets headers; the hop's caller side (forwarded) is left alone.
      if (t.side === 'caller' && t.forwarded === undefined) (t.headers as Record<string, string>).traceparent = traceparent
      else if (t.side === 'callee') arrived.push({ target: t.target, headers: t.headers ? { ...t.headers } : undefined })
    }
    const channel = tracingChannel('shoal.call')
    const handlers = { start: onStart, end: () => {}, asyncStart: () => {}, asyncEnd: () => {}, error: () => {} }
    channel.subscribe(handlers)
    cleanups.push(() => channel.unsubscribe(handlers))
    expect(await viaRelay.greet('fish')).toBe('hello fish')
    const atGreeter = arrived.filter((x) => x.target === greeter.id.toString())
    expect(atGreeter).toEqual([{ target: greeter.id.toString(), headers: { traceparent } }])
  })

  it('headers over the limits are left out; the call still succeeds', async () => {
    const a = await start()
    const b = await start()
    const greeter = a.resolve(Greeter, b.spawn(Greeter).id)
    await greeter.greet('warm-up')
    const seen: unknown[] = []
    const onStart = (message: unknown): void => {
      const ctx = message as CallTraceContext
      if (ctx.side === 'caller') (ctx.headers as Record<string, string>)['Not A Token!'] = 'x'
      else seen.push(ctx.headers)
    }
    const channel = tracingChannel('shoal.call')
    const handlers = { start: onStart, end: () => {}, asyncStart: () => {}, asyncEnd: () => {}, error: () => {} }
    channel.subscribe(handlers)
    cleanups.push(() => channel.unsubscribe(handlers))
    expect(await greeter.greet('fish')).toBe('hello fish')
    expect(seen).toEqual([undefined])
  })

  it('traces local calls, synchronous methods included', async () => {
    const a = await start()
    const greeter = a.spawn(Greeter)
    const rec = record()
    cleanups.push(rec.stop)
    expect(await greeter.greetNow('x')).toBe('hi x')
    expect(sides(rec.events, 'caller')).toEqual(['start', 'end', 'asyncStart:ok', 'asyncEnd:ok'])
    expect(sides(rec.events, 'callee')).toEqual(['start', 'end', 'asyncStart:ok', 'asyncEnd:ok'])
    expect(rec.events.every((e) => e.local)).toBe(true)
  })

  it('a refused call is traced on the callee and published on shoal:call:refused; the caller sees the error', async () => {
    const a = await start()
    const b = await start()
    const target = b.spawn(Greeter)
    // Resolved with another class: the caller does not know Greeter lacks `secret`.
    const wrong = a.resolve(Untyped, target.id)
    const refusals: CallRefusedMessage[] = []
    const onRefused = (m: unknown): void => void refusals.push(m as CallRefusedMessage)
    subscribe('shoal:call:refused', onRefused)
    cleanups.push(() => unsubscribe('shoal:call:refused', onRefused))
    const rec = record()
    cleanups.push(rec.stop)
    await expect(wrong.secret()).rejects.toMatchObject({ code: 'SHOAL_METHOD_NOT_DISTRIBUTED' })
    expect(sides(rec.events, 'callee')).toEqual([
      'start',
      'error:SHOAL_METHOD_NOT_DISTRIBUTED',
      'end:SHOAL_METHOD_NOT_DISTRIBUTED',
      'asyncStart:SHOAL_METHOD_NOT_DISTRIBUTED',
      'asyncEnd:SHOAL_METHOD_NOT_DISTRIBUTED',
    ])
    expect(sides(rec.events, 'caller')).toEqual([
      'start',
      'end',
      'error:SHOAL_METHOD_NOT_DISTRIBUTED',
      'asyncStart:SHOAL_METHOD_NOT_DISTRIBUTED',
      'asyncEnd:SHOAL_METHOD_NOT_DISTRIBUTED',
    ])
    expect(refusals).toHaveLength(1)
    expect(refusals[0]).toMatchObject({
      target: target.id.toString(),
      method: 'secret',
      code: 'SHOAL_METHOD_NOT_DISTRIBUTED',
      self: { uid: b.node.uid },
      peer: { uid: a.node.uid },
    })
    expect(rec.events.find((e) => e.side === 'callee')?.actorType).toBe('Greeter')
  })

  it('a local call to an undeclared method is published once, traced on the callee, and rejects', async () => {
    const a = await start()
    const wrong = a.resolve(Untyped, a.spawn(Greeter).id)
    const refusals: CallRefusedMessage[] = []
    const onRefused = (m: unknown): void => void refusals.push(m as CallRefusedMessage)
    subscribe('shoal:call:refused', onRefused)
    cleanups.push(() => unsubscribe('shoal:call:refused', onRefused))
    const rec = record()
    cleanups.push(rec.stop)
    await expect(wrong.secret()).rejects.toMatchObject({ code: 'SHOAL_METHOD_NOT_DISTRIBUTED' })
    wrong.tell('secret')
    expect(refusals).toMatchObject([
      { method: 'secret', code: 'SHOAL_METHOD_NOT_DISTRIBUTED', peer: undefined },
      { method: 'secret', code: 'SHOAL_METHOD_NOT_DISTRIBUTED', peer: undefined },
    ])
    expect(sides(rec.events, 'callee')).toEqual(
      [
        'start',
        'error:SHOAL_METHOD_NOT_DISTRIBUTED',
        'end:SHOAL_METHOD_NOT_DISTRIBUTED',
        'asyncStart:SHOAL_METHOD_NOT_DISTRIBUTED',
        'asyncEnd:SHOAL_METHOD_NOT_DISTRIBUTED',
      ].concat([
        'start',
        'error:SHOAL_METHOD_NOT_DISTRIBUTED',
        'end:SHOAL_METHOD_NOT_DISTRIBUTED',
        'asyncStart:SHOAL_METHOD_NOT_DISTRIBUTED',
        'asyncEnd:SHOAL_METHOD_NOT_DISTRIBUTED',
      ]),
    )
  })

  it('a call to a stopped actor is refused and traced the same way', async () => {
    const a = await start()
    const ref = a.spawn(Greeter)
    await a.stop(ref)
    const refusals: CallRefusedMessage[] = []
    const onRefused = (m: unknown): void => void refusals.push(m as CallRefusedMessage)
    subscribe('shoal:call:refused', onRefused)
    cleanups.push(() => unsubscribe('shoal:call:refused', onRefused))
    await expect(ref.greet('x')).rejects.toMatchObject({ code: 'SHOAL_ACTOR_NOT_FOUND' })
    expect(refusals).toMatchObject([{ method: 'greet', code: 'SHOAL_ACTOR_NOT_FOUND', peer: undefined }])
  })

  it('a remote one-way message is traced on the callee as remote; a full mailbox is a published refusal', async () => {
    const a = await start()
    const b = await start()
    const greeter = a.resolve(Greeter, b.spawn(Greeter).id)
    const rec = record()
    cleanups.push(rec.stop)
    greeter.tell('greet', 'fish')
    await greeter.greet('x') // after the one-way message, in order
    expect(rec.events.filter((e) => e.side === 'callee' && e.event === 'start').map((e) => e.local)).toEqual([false, false])

    const small = await ClusterSystem.start({ port: 0, logLevel: 'silent', maxMailbox: 1 })
    systems.push(small)
    const slow = small.spawn(Slow)
    const refusals: CallRefusedMessage[] = []
    const onRefused = (m: unknown): void => void refusals.push(m as CallRefusedMessage)
    subscribe('shoal:call:refused', onRefused)
    cleanups.push(() => unsubscribe('shoal:call:refused', onRefused))
    const calls = [slow.nap(), slow.nap(), slow.nap()]
    const outcomes = await Promise.allSettled(calls)
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected'])
    expect(refusals).toMatchObject([{ target: slow.id.toString(), method: 'nap', code: 'SHOAL_OVERLOADED', peer: undefined }])
  })

  it('publishes nothing and builds no context without subscribers', async () => {
    const a = await start()
    const greeter = a.spawn(Greeter)
    expect(tracingChannel('shoal.call').hasSubscribers).toBe(false)
    expect(await greeter.greet('x')).toBe('hello x')
  })
})
