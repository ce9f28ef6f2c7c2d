/**
 * The plugin API: start and stop order, facades, cluster events and actor lifecycle hooks.
 */

import {
  type ActorId,
  type ClusterEvent,
  ClusterSystem,
  ConfigError,
  DistributedActor,
  distributed,
  ErrorCode,
  EventSourcedActor,
  journalPlugin,
  MemoryEventStore,
  type Plugin,
  ReceptionKey,
  singletonPlugin,
} from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

const systems: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function start(plugins: Plugin[], cluster = false): Promise<ClusterSystem> {
  const s = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins, ...(cluster ? { cluster: {} } : {}) })
  systems.push(s)
  return s
}

class Slow extends DistributedActor {
  override async onStart(): Promise<void> {
    await new Promise((r) => setTimeout(r, 50))
  }
}

function recorder(name: string, log: string[], facade?: string): Plugin<{ name: string }> {
  return {
    name,
    facade,
    start: async () => {
      await new Promise((r) => setTimeout(r, 10))
      log.push(`start ${name}`)
      return { name }
    },
    stop: () => {
      log.push(`stop ${name}`)
    },
  }
}

describe('plugins', () => {
  it('start in install order, stop in reverse, before the actors stop; facades are published', async () => {
    const log: string[] = []
    const watcher: Plugin = {
      name: 'watcher',
      start: () => undefined,
      onActorStopped: () => log.push('actor stopped'),
      stop: () => void log.push('stop watcher'),
    }
    const s = await start([watcher, recorder('a', log, 'alpha'), recorder('b', log)])
    expect(log).toEqual(['start a', 'start b'])
    expect((s as unknown as { alpha: { name: string } }).alpha).toEqual({ name: 'a' })
    expect(s.plugin<{ name: string }>('b').name).toBe('b')
    expect(() => s.plugin('nope')).toThrow(ConfigError)
    s.spawn(Slow)
    await s.shutdown()
    expect(log.slice(2)).toEqual(['stop b', 'stop a', 'stop watcher', 'actor stopped'])
  })

  it('actor hooks: ready after onStart finished, stopped when it stops', async () => {
    const ready: ActorId[] = []
    const stopped: ActorId[] = []
    const s = await start([{ name: 'hooks', start: () => undefined, onActorReady: (id) => ready.push(id), onActorStopped: (id) => stopped.push(id) }])
    const ref = s.spawn(Slow)
    expect(ready).toEqual([])
    await eventually(() => expect(ready.map(String)).toEqual([String(ref.id)]))
    await s.stop(ref)
    expect(stopped.map(String)).toEqual([String(ref.id)])
  })

  it('cluster events reach plugins: a snapshot first, then members joining', async () => {
    const events: ClusterEvent[] = []
    const s = await start([{ name: 'events', start: () => undefined, onClusterEvent: (e) => events.push(e) }], true)
    await s.cluster.joined()
    const other = await ClusterSystem.start({ port: 0, logLevel: 'silent', cluster: { seeds: [`127.0.0.1:${s.node.endpoint.port}`] } })
    systems.push(other)
    await eventually(() => expect(events.some((e) => e.type === 'member' && e.member.node.uid === other.node.uid && e.member.status === 'up')).toBe(true))
    expect(events[0]!.type).toBe('snapshot')
  })

  it('a plugin whose start fails fails ClusterSystem.start, and the ones started before are stopped', async () => {
    const log: string[] = []
    const broken: Plugin = {
      name: 'broken',
      start: () => {
        throw new Error('cannot start')
      },
    }
    await expect(ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [recorder('a', log), broken] })).rejects.toThrow('cannot start')
    expect(log).toEqual(['start a', 'stop a'])
  })

  it('refuses duplicate names and a facade that would shadow the system', async () => {
    await expect(ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [recorder('x', []), recorder('x', [])] })).rejects.toBeInstanceOf(ConfigError)
    await expect(ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [recorder('y', [], 'spawn')] })).rejects.toBeInstanceOf(ConfigError)
  })

  it('a built-in facade read without its plugin throws a ConfigError naming the plugin and how to install it', async () => {
    const s = await start([])
    expect(() => s.singleton).toThrow(ConfigError)
    expect(() => s.singleton).toThrow(
      'system.singleton needs the singleton plugin, which this system was started without: ClusterSystem.start({ plugins: [singletonPlugin()] })',
    )
    expect(() => s.journal).toThrow(ConfigError)
    expect(() => s.journal).toThrow(
      'system.journal needs the journal plugin, which this system was started without: ClusterSystem.start({ plugins: [journalPlugin(',
    )
    let code: unknown
    try {
      void s.singleton.status('x')
    } catch (e) {
      code = (e as ConfigError).code
    }
    expect(code).toBe(ErrorCode.Config)
    // An event-sourced actor on that system still gets its own message, naming the actor.
    class Log extends EventSourcedActor<number, { type: 'Added'; n: number }> {
      get persistenceId(): string {
        return 'log-1'
      }
      initialState(): number {
        return 0
      }
      applyEvent(s: number, e: { type: 'Added'; n: number }): number {
        return s + e.n
      }
      @distributed async add(n: number): Promise<void> {
        await this.emit({ type: 'Added', n })
      }
    }
    await expect(s.spawn(Log).add(1)).rejects.toThrow('Log is event-sourced: start the system with plugins: [journalPlugin({ store })]')
  })

  it('a built-in facade is published by its plugin, and by one plugin only', async () => {
    const s = await start([singletonPlugin(), journalPlugin({ store: new MemoryEventStore() })])
    expect(typeof s.singleton.proxy).toBe('function')
    expect(typeof s.journal.eventsByTag).toBe('function')
    await expect(ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [singletonPlugin(), recorder('other', [], 'singleton')] })).rejects.toBeInstanceOf(
      ConfigError,
    )
    // A plugin of your own may take a built-in facade's name when its plugin is not installed.
    const own = await start([recorder('my-singleton', [], 'singleton')])
    expect((own as unknown as { singleton: { name: string } }).singleton).toEqual({ name: 'my-singleton' })
  })

  it('a hook that throws is logged and does not stop the others', async () => {
    const seen: string[] = []
    const s = await start([
      {
        name: 'thrower',
        start: () => undefined,
        onActorReady: () => {
          throw new Error('bug')
        },
      },
      { name: 'after', start: () => undefined, onActorReady: (id) => seen.push(String(id)) },
    ])
    const ref = s.spawn(Slow)
    await eventually(() => expect(seen).toEqual([String(ref.id)]))
  })

  it('the auto-check-in example of docs/plugins.md: actors are listed when ready and unlisted when stopped', async () => {
    function autoCheckIn(): Plugin<void> {
      return {
        name: 'auto-check-in',
        start: () => undefined,
        onActorReady: (_id, actor) => {
          const key = (actor.constructor as { receptionKey?: unknown }).receptionKey
          if (key instanceof ReceptionKey) actor.system.receptionist.checkIn(actor, key)
        },
      }
    }
    class Matchmaker extends DistributedActor {
      static receptionKey = new ReceptionKey<Matchmaker>('matchmaker')
    }
    const a = await start([autoCheckIn()], true)
    const b = await ClusterSystem.start({ port: 0, logLevel: 'silent', plugins: [autoCheckIn()], cluster: { seeds: [`127.0.0.1:${a.node.endpoint.port}`] } })
    systems.push(b)
    const m = b.spawn(Matchmaker)
    b.spawn(Slow) // no key: not listed
    await eventually(() => expect(a.receptionist.lookup(Matchmaker.receptionKey).map((r) => r.id.toString())).toEqual([m.id.toString()]))
    expect(a.receptionist.size).toBe(1)
    await b.stop(m)
    await eventually(() => expect(a.receptionist.lookup(Matchmaker.receptionKey)).toEqual([]))
  })
})
