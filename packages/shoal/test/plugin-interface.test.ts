/**
 * The plugin interface: a plugin written only against what `shoal` exports (PluginContext), with
 * well-known targets, forwarded calls (chains kept), turns run on actors, guards, the control lane
 * and node fate. This is the example of docs/plugins.md.
 */

import {
  ActorNotFoundError,
  type ActorRef,
  ClusterSystem,
  ConfigError,
  DistributedActor,
  distributed,
  type Invocation,
  isNotDelivered,
  type LocalTarget,
  type Plugin,
  type PluginContext,
} from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'

/** `system.pool`: one ref that spreads calls over workers, round robin. */
interface PoolFacade {
  /** A ref whose calls go to the workers in turn (a well-known target on this node). */
  route<R extends ActorRef<DistributedActor>>(name: string, workers: readonly R[]): R
  /** Runs `onPassivate` on a local worker as its last turn, refusing new calls meanwhile, then stops it. */
  drain(worker: ActorRef<DistributedActor>): Promise<void>
  /** Asks a node (over the control lane) how many pools it runs. */
  count(node: { host: string; port: number }): Promise<number>
  /** Fences a local worker: `check` runs as each call to it starts (false: no such actor here). */
  fence(worker: ActorRef<DistributedActor>, check: (inv: Invocation) => string | undefined): boolean
}

/** The facade (`system.plugin('pool')`; an app would declare `system.pool` by module augmentation, see docs/plugins.md). */
const poolOf = (system: ClusterSystem): PoolFacade => system.plugin<PoolFacade>('pool')

const POOL_KIND = 200

function poolPlugin(): Plugin<PoolFacade> {
  let ctx: PluginContext
  const pools = new Map<string, () => void>()
  const waiting: ((n: number) => void)[] = []
  return {
    name: 'pool',
    facade: 'pool',
    start(context) {
      ctx = context
      // Control lane: byte 0 = question, byte 1 = answer (then the count).
      ctx.control.onControl(POOL_KIND, (from, body) => {
        if (body[0] === 0) ctx.control.sendControl(from.endpoint, POOL_KIND, Uint8Array.of(1, pools.size))
        else waiting.shift()?.(body[1]!)
      })
      return {
        route<R extends ActorRef<DistributedActor>>(name: string, workers: readonly R[]): R {
          let next = 0
          const target: LocalTarget = {
            alive: true,
            deliver(inv: Invocation) {
              const live = workers.filter((w) => !ctx.nodes.isGone(w.id.node.uid))
              const worker = live[next++ % Math.max(1, live.length)]
              if (!worker) return inv.fail(new ActorNotFoundError(`pool ${name} has no live worker`))
              ctx.calls.forward(worker, inv.method, inv.args, inv.chain, 1000).then(
                (v) => inv.succeed(v),
                (e: unknown) => inv.fail(e),
              )
            },
          }
          pools.set(name, ctx.actors.registerWellKnown(`/system/pool/${name}`, target))
          return ctx.actors.wellKnownRef(`/system/pool/${name}`) as R
        },
        async drain(worker) {
          await ctx.actors.runTurn(worker.id, (actor) => actor.onPassivate?.(), { seal: true })
          await ctx.system.stop(worker)
        },
        fence(worker, check) {
          return ctx.actors.guard(worker.id, check)
        },
        count(node) {
          return new Promise((resolve) => {
            waiting.push(resolve)
            ctx.control.sendControl(node, POOL_KIND, Uint8Array.of(0))
          })
        },
      }
    },
    stop() {
      for (const unregister of pools.values()) unregister()
    },
  }
}

class Worker extends DistributedActor {
  served = 0
  passivated = false
  @distributed async work(n: number): Promise<string> {
    this.served++
    return `${this.id.path}:${n * 2}`
  }
  /** Calls back into `caller` while this turn waits: works only if the pool kept the chain. */
  @distributed async echoVia(caller: ActorRef<Client>, n: number): Promise<number> {
    return caller.plusOne(n)
  }
  override async onPassivate(): Promise<void> {
    this.passivated = true
  }
}

class Client extends DistributedActor {
  @distributed async viaPool(pool: ActorRef<Worker>, n: number): Promise<number> {
    return pool.echoVia(this.self, n)
  }
  @distributed async plusOne(n: number): Promise<number> {
    return n + 1
  }
}

const systems: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function start(): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [poolPlugin()] })
  systems.push(s)
  return s
}

describe('a plugin written against the public PluginContext', () => {
  it('a well-known target forwards calls round robin, from this node and from another one', async () => {
    const a = await start()
    const b = await start()
    const workers = [a.spawn(Worker), a.spawn(Worker)]
    const pool = poolOf(a).route('work', workers)
    const local = await Promise.all([1, 2, 3, 4].map((n) => pool.work(n)))
    expect(new Set(local.map((r) => r.split(':')[0])).size).toBe(2)
    // A ref to the well-known target crosses the wire and works from b.
    const remote = b.resolve(Worker, pool.id)
    expect(await remote.work(21)).toMatch(/:42$/)
  })

  it('forwarded calls keep the call chain: A → pool → worker → A does not deadlock', async () => {
    const a = await start()
    const pool = poolOf(a).route('echo', [a.spawn(Worker)])
    const client = a.spawn(Client)
    expect(await client.viaPool(pool, 41)).toBe(42)
  })

  it('runTurn with seal: onPassivate runs as a turn, new calls are refused as notDelivered', async () => {
    const a = await start()
    const worker = a.spawn(Worker)
    const drained = poolOf(a).drain(worker)
    const refused = await worker.work(1).catch((e: unknown) => e)
    await drained
    expect(isNotDelivered(refused)).toBe(true)
    expect(a.actorCount).toBe(0)
  })

  it('a guard sees each call as it starts; a reason refuses it as notDelivered and seals the actor', async () => {
    const a = await start()
    const worker = a.spawn(Worker)
    const seen: string[] = []
    const fenced = poolOf(a).fence(worker, (inv) => {
      seen.push(`${inv.method}(${String(inv.args[0])})`)
      return inv.args[0] === 13 ? 'thirteen is unlucky' : undefined
    })
    expect(fenced).toBe(true)
    expect(await worker.work(1)).toMatch(/:2$/)
    const refused = await worker.work(13).catch((e: unknown) => e)
    expect(isNotDelivered(refused)).toBe(true)
    expect(String(refused)).toMatch(/thirteen is unlucky/)
    // Sealed: later calls are refused without asking the guard.
    expect(isNotDelivered(await worker.work(2).catch((e: unknown) => e))).toBe(true)
    expect(seen).toEqual(['work(1)', 'work(13)'])
    const gone = a.spawn(Worker)
    await a.stop(gone)
    expect(poolOf(a).fence(gone, () => undefined)).toBe(false)
  })

  it('the control lane carries the plugin’s own kind between nodes', async () => {
    const a = await start()
    const b = await start()
    poolOf(b).route('x', [b.spawn(Worker)])
    expect(await poolOf(a).count(b.node.endpoint)).toBe(1)
    expect(await poolOf(b).count(a.node.endpoint)).toBe(0)
  })

  it('a taken well-known path and a taken control kind are refused', async () => {
    const a = await start()
    poolOf(a).route('dup', [a.spawn(Worker)])
    expect(() => poolOf(a).route('dup', [])).toThrow(ConfigError)
    const again: Plugin = { name: 'again', start: (ctx) => ctx.control.onControl(POOL_KIND, () => undefined) }
    await expect(ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [poolPlugin(), again] })).rejects.toThrow(ConfigError)
  })

  it('a path has one owner: no prefix covers a well-known path, no path lies under a prefix, no two prefixes overlap', async () => {
    let ctx: PluginContext | undefined
    const grab: Plugin = { name: 'grab', start: (c) => void (ctx = c) }
    const a = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [poolPlugin(), grab] })
    systems.push(a)
    poolOf(a).route('p', [a.spawn(Worker)])
    const none = (): undefined => undefined
    expect(() => ctx!.actors.registerWellKnownPrefix('/system/pool/', none)).toThrow(/covers the well-known path \/system\/pool\/p/)
    ctx!.actors.registerWellKnownPrefix('/things/', none)
    expect(() => ctx!.actors.registerWellKnownPrefix('/things/a/', none)).toThrow(/overlaps \/things\//)
    expect(() => ctx!.actors.registerWellKnownPrefix('/', none)).toThrow(ConfigError)
    expect(() => ctx!.actors.registerWellKnown('/things/x', { alive: true, deliver: () => undefined })).toThrow(/lies under prefix \/things\//)
  })

  it('calls from another node reach a well-known target that replaced one they reached before, and a prefix resolves per message unless it says remember', async () => {
    let ctx: PluginContext | undefined
    const grab: Plugin = { name: 'grab', start: (c) => void (ctx = c) }
    const a = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [poolPlugin(), grab] })
    systems.push(a)
    const b = await start()
    const answering = (text: string): LocalTarget => ({ alive: true, deliver: (inv) => inv.succeed(`${text}:${String(inv.args[0])}`) })
    // An exact path: the first target is remembered by a's remoting for b's calls; a new one at the path must be reached.
    const unregister = ctx!.actors.registerWellKnown('/system/answer', answering('first'))
    const remote = b.resolve(Worker, ctx!.actors.wellKnownRef('/system/answer').id)
    expect(await remote.work(1)).toBe('first:1')
    expect(await remote.work(2)).toBe('first:2')
    unregister()
    ctx!.actors.registerWellKnown('/system/answer', answering('second'))
    expect(await remote.work(3)).toBe('second:3')
    // A prefix: without remember, resolve runs for every message; with it, once per path (until it is unregistered).
    for (const remember of [false, true]) {
      let resolved = 0
      const prefix = remember ? '/remembered/' : '/resolved/'
      const off = ctx!.actors.registerWellKnownPrefix(
        prefix,
        (path) => {
          resolved++
          return answering(path)
        },
        { remember },
      )
      const ref = b.resolve(Worker, ctx!.actors.wellKnownRef(`${prefix}x`).id)
      for (let n = 0; n < 5; n++) expect(await ref.work(n)).toBe(`${prefix}x:${n}`)
      expect(resolved).toBe(remember ? 1 : 5)
      off()
      const again = ctx!.actors.registerWellKnownPrefix(prefix, () => answering('new'), { remember })
      expect(await ref.work(9)).toBe('new:9')
      again()
    }
  })

  it('the system does not show the plugin internals', async () => {
    const a = await start()
    for (const hidden of [
      'forward',
      'runTurn',
      'guardActor',
      'registerWellKnown',
      'wellKnownRef',
      'onControl',
      'sendControl',
      'invoke',
      'tell',
      'reply',
      'deadlines',
      'newChain',
    ]) {
      expect(hidden in a, hidden).toBe(false)
    }
  })
})
