import {
  ActorId,
  ActorNotFoundError,
  type ActorRef,
  ClusterSystem,
  ConfigError,
  DistributedActor,
  distributed,
  isNotDelivered,
  MethodNotDistributedError,
  NodeUnreachableError,
  SystemShutDownError,
  TimeoutError,
} from 'shoal'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

class Counter extends DistributedActor {
  count = 0
  log2: string[] = []
  @distributed async add(n: number): Promise<number> {
    this.count += n
    return this.count
  }
  @distributed async slowAdd(n: number, ms: number): Promise<number> {
    const before = this.count
    this.log2.push(`start ${n}`)
    await new Promise((r) => setTimeout(r, ms))
    this.count = before + n
    this.log2.push(`end ${n}`)
    return this.count
  }
  @distributed get(): number {
    return this.count
  }
  @distributed({ interleave: true }) async peek(): Promise<number> {
    return this.count
  }
  @distributed async hang(): Promise<void> {
    await new Promise(() => {})
  }
  @distributed async fail(): Promise<void> {
    throw new Error('boom')
  }
  @distributed async stopMe(): Promise<string> {
    this.stop()
    return 'stopping'
  }
  @distributed async stopWhenIdle(): Promise<string> {
    this.deactivateOnIdle()
    return 'when idle'
  }
  notDistributed(): number {
    return 42
  }
}

class Ping extends DistributedActor {
  @distributed async ping(peer: ActorRef<Pong>, depth: number): Promise<string> {
    return depth === 0 ? 'ping' : `ping>${await peer.pong(this.self, depth - 1)}`
  }
}
class Pong extends DistributedActor {
  @distributed async pong(peer: ActorRef<Ping>, depth: number): Promise<string> {
    return depth === 0 ? 'pong' : `pong>${await peer.ping(this.self, depth - 1)}`
  }
}

class Lifecycle extends DistributedActor {
  static events: string[] = []
  constructor(readonly label: string) {
    super()
  }
  override async onStart(): Promise<void> {
    await new Promise((r) => setTimeout(r, 50))
    Lifecycle.events.push(`start ${this.label}`)
  }
  override async onStop(): Promise<void> {
    Lifecycle.events.push(`stop ${this.label}`)
  }
  @distributed async hello(): Promise<string> {
    Lifecycle.events.push(`hello ${this.label}`)
    return `hello ${this.label}`
  }
}

class PlainJs extends DistributedActor {
  static distributed = ['twice']
  twice(n: number): number {
    return n * 2
  }
  hidden(): number {
    return 1
  }
}

let system: ClusterSystem

beforeEach(async () => {
  system = await ClusterSystem.start({ name: 'local', port: 0, logLevel: 'silent', shutdownTimeout: 300 })
})
afterEach(async () => {
  await system.shutdown()
})

describe('actors - calls through refs', () => {
  it('runs declared methods and returns their results', async () => {
    const c = system.spawn(Counter)
    expect(await c.add(3)).toBe(3)
    expect(await c.add(4)).toBe(7)
    expect(await c.get()).toBe(7)
  })

  it('rejects undeclared methods with MethodNotDistributedError', async () => {
    const c = system.spawn(Counter) as unknown as Record<string, () => Promise<unknown>>
    await expect(c.notDistributed!()).rejects.toBeInstanceOf(MethodNotDistributedError)
    await expect(c.notDistributed!()).rejects.toMatchObject({ code: 'SHOAL_METHOD_NOT_DISTRIBUTED' })
  })

  it('refuses one-way sends to undeclared methods at once', () => {
    const c = system.spawn(Counter)
    expect(() => c.tell('notDistributed' as never)).toThrow(MethodNotDistributedError)
  })

  it('supports plain-JS declaration with static distributed', async () => {
    const p = system.spawn(PlainJs)
    expect(await p.twice(21)).toBe(42)
    await expect((p as unknown as { hidden(): Promise<number> }).hidden()).rejects.toBeInstanceOf(MethodNotDistributedError)
  })

  it('refuses construction outside spawn and reserved method names', () => {
    expect(() => new Counter()).toThrow(ConfigError)
    expect(() => {
      class Bad extends DistributedActor {
        @distributed async then(): Promise<void> {}
      }
      return Bad
    }).toThrow(/reserved/)
  })

  it('propagates errors thrown by methods to the caller', async () => {
    const c = system.spawn(Counter)
    await expect(c.fail()).rejects.toThrow('boom')
    expect(await c.add(1)).toBe(1)
  })

  it('times out calls that take too long, with the per-call timeout', async () => {
    const c = system.spawn(Counter)
    const err = await c
      .withTimeout(100)
      .hang()
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TimeoutError)
    expect((err as TimeoutError).code).toBe('SHOAL_TIMEOUT')
  })

  it("a TimeoutError names the setting that applied: the ref's withTimeout or the system's callTimeout", async () => {
    const c = system.spawn(Counter)
    const own = (await c
      .withTimeout(100)
      .hang()
      .catch((e: unknown) => e)) as TimeoutError
    expect(own.message).toContain('within 100 ms')
    expect(own.message).toContain("the ref's own timeout, from ref.withTimeout(ms)")
    expect(own.message).not.toContain('callTimeout;')
    const short = await ClusterSystem.start({ port: 0, logLevel: 'silent', callTimeout: 100, shutdownTimeout: 100 })
    try {
      const byDefault = (await short
        .spawn(Counter)
        .hang()
        .catch((e: unknown) => e)) as TimeoutError
      expect(byDefault).toBeInstanceOf(TimeoutError)
      expect(byDefault.message).toContain("within 100 ms (the system's callTimeout")
      expect(byDefault.message).not.toContain("the ref's own timeout")
    } finally {
      await short.shutdown()
    }
  })

  it('resolves a ref from a string id that round-trips', async () => {
    const c = system.spawn(Counter)
    await c.add(5)
    const text = c.id.toString()
    expect(ActorId.parse(text).equals(c.id)).toBe(true)
    const again = system.resolve(Counter, text)
    expect(await again.get()).toBe(5)
  })

  it('resolving a malformed id string throws a ConfigError naming the expected form; a well-formed id of no actor resolves, and its calls fail', async () => {
    for (const bad of ['garbage', 'shoal://a@127.0.0.1:70000/0123456789abcdef/user/x#1', '']) {
      const err = (() => {
        try {
          system.resolve(Counter, bad)
        } catch (e) {
          return e
        }
      })()
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).code).toBe('SHOAL_CONFIG')
    }
    expect(() => system.resolve(Counter, 'garbage')).toThrow('Expected shoal://name@host:port/<16 hex uid>/path#incarnation')
    // Well formed, on this node, no such actor: resolving works, the call is refused.
    const c = system.spawn(Counter)
    const missing = system.resolve(Counter, c.id.toString().replace(/#\d+$/, '#1'))
    const refused = await missing.get().catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(ActorNotFoundError)
    expect(isNotDelivered(refused)).toBe(true)
    // Well formed, on a node nobody runs: resolving works, the call fails as unreachable.
    const nowhere = system.resolve(Counter, 'shoal://gone@127.0.0.1:1/0123456789abcdef/user/Counter-1#7')
    await expect(nowhere.get()).rejects.toBeInstanceOf(NodeUnreachableError)
  })
})

/** A method returning a thenable that settles twice: at once inside `then`, and again while the next turn runs. */
class Twice extends DistributedActor {
  events: string[] = []
  @distributed twice(i: number): PromiseLike<number> {
    this.events.push(`twice ${i}`)
    return {
      then: (ok?: ((v: number) => unknown) | null) => {
        ok?.(i)
        setTimeout(() => ok?.(i + 100), 5)
        return Promise.resolve(undefined as never)
      },
    }
  }
  @distributed async slow(i: number): Promise<void> {
    this.events.push(`start ${i}`)
    await new Promise((r) => setTimeout(r, 15))
    this.events.push(`end ${i}`)
  }
  @distributed async read(): Promise<string[]> {
    return this.events
  }
}

describe('actors - deactivateOnIdle', () => {
  it('stops the actor once the calls already queued have run; later calls find no actor', async () => {
    const c = system.spawn(Counter)
    const results = await Promise.all([c.add(1), c.stopWhenIdle(), c.slowAdd(2, 50), c.add(3)])
    expect(results).toEqual([1, 'when idle', 3, 6])
    await expect(c.get()).rejects.toBeInstanceOf(ActorNotFoundError)
  })

  it('is a reserved name: no distributed method may take it', () => {
    expect(() => {
      class Bad extends DistributedActor {
        static distributed = ['deactivateOnIdle']
      }
      return system.spawn(Bad)
    }).toThrow(/reserved/)
  })
})

describe('actors - turns', () => {
  it('ends a turn once when its method returns a thenable that settles twice', async () => {
    const t = system.spawn(Twice)
    const results = await Promise.all([t.slow(1), t.twice(2), t.slow(3), t.slow(4), t.twice(5), t.slow(6)])
    expect(results).toEqual([undefined, 2, undefined, undefined, 5, undefined])
    expect(await t.read()).toEqual(['start 1', 'end 1', 'twice 2', 'start 3', 'end 3', 'start 4', 'end 4', 'twice 5', 'start 6', 'end 6'])
  })

  it('never interleaves two turns of a non-reentrant actor', async () => {
    const c = system.spawn(Counter)
    const results = await Promise.all([c.slowAdd(1, 30), c.slowAdd(2, 10), c.slowAdd(3, 1)])
    expect(results).toEqual([1, 3, 6])
    const actor = await c.get()
    expect(actor).toBe(6)
  })

  it('lets an interleaving method run while a turn waits', async () => {
    const c = system.spawn(Counter)
    await c.add(10)
    const slow = c.slowAdd(1, 200)
    // peek interleaves: it does not wait for the 200 ms turn.
    const peeked = await c.peek()
    expect(peeked).toBe(10)
    expect(await slow).toBe(11)
  })

  it('holds interleaving calls until onStart has finished', async () => {
    class Warm extends DistributedActor {
      static interleave = true
      ready = false
      override async onStart(): Promise<void> {
        await new Promise((r) => setTimeout(r, 100))
        this.ready = true
      }
      @distributed async isReady(): Promise<boolean> {
        return this.ready
      }
    }
    expect(await system.spawn(Warm).isReady()).toBe(true)
  })

  it('refuses timeouts that are not a positive number of milliseconds a timer can hold', () => {
    const c = system.spawn(Counter)
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) expect(() => c.withTimeout(bad)).toThrow(ConfigError)
  })

  it('lets every call of a class with static interleave = true run at await points', async () => {
    class Board extends DistributedActor {
      static interleave = true
      events: string[] = []
      @distributed async slow(label: string): Promise<void> {
        this.events.push(`start ${label}`)
        await new Promise((r) => setTimeout(r, 100))
        this.events.push(`end ${label}`)
      }
      @distributed async history(): Promise<string[]> {
        return this.events
      }
    }
    const b = system.spawn(Board)
    await Promise.all([b.slow('a'), b.slow('b')])
    expect(await b.history()).toEqual(['start a', 'start b', 'end a', 'end b'])
  })

  it('starts calls from one caller in the order sent (FIFO under load)', async () => {
    class Recorder extends DistributedActor {
      seen: number[] = []
      @distributed async record(i: number): Promise<void> {
        this.seen.push(i)
        if (i % 7 === 0) await new Promise((r) => setImmediate(r))
      }
      @distributed async all(): Promise<number[]> {
        return this.seen
      }
    }
    const r = system.spawn(Recorder)
    const calls = Array.from({ length: 2000 }, (_, i) => r.record(i))
    await Promise.all(calls)
    expect(await r.all()).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })

  it('lets a call chain re-enter (A -> B -> A) instead of deadlocking', async () => {
    const ping = system.spawn(Ping)
    const pong = system.spawn(Pong)
    expect(await ping.withTimeout(2000).ping(pong, 4)).toBe('ping>pong>ping>pong>ping')
  })

  it('does not let a leftover task of a finished turn re-enter a later turn', async () => {
    class Caller extends DistributedActor {
      events: string[] = []
      @distributed async fire(peer: ActorRef<Callee>): Promise<void> {
        // Not awaited: runs after this turn has ended, while another turn holds the actor.
        void new Promise((r) => setTimeout(r, 50)).then(() => peer.callBack(this.self))
      }
      @distributed async long(): Promise<void> {
        this.events.push('long start')
        await new Promise((r) => setTimeout(r, 300))
        this.events.push('long end')
      }
      @distributed async ping(): Promise<void> {
        this.events.push('ping')
      }
      @distributed async history(): Promise<string[]> {
        return this.events
      }
    }
    class Callee extends DistributedActor {
      @distributed async callBack(caller: ActorRef<Caller>): Promise<void> {
        await caller.ping()
      }
    }
    const caller = system.spawn(Caller)
    await caller.fire(system.spawn(Callee))
    await caller.long()
    await new Promise((r) => setTimeout(r, 100))
    expect(await caller.history()).toEqual(['long start', 'long end', 'ping'])
  })

  it('runs onStart before the first call and onStop when stopped', async () => {
    Lifecycle.events = []
    const l = system.spawn(Lifecycle, 'a')
    expect(await l.hello()).toBe('hello a')
    await system.stop(l)
    expect(Lifecycle.events).toEqual(['start a', 'hello a', 'stop a'])
    await expect(l.hello()).rejects.toBeInstanceOf(ActorNotFoundError)
  })

  it('fails calls to a stopped actor and queued calls with ActorNotFoundError', async () => {
    const c = system.spawn(Counter)
    const first = c.stopMe()
    const queued = c.add(1)
    expect(await first).toBe('stopping')
    await expect(queued).rejects.toBeInstanceOf(ActorNotFoundError)
    await expect(c.add(1)).rejects.toMatchObject({ code: 'SHOAL_ACTOR_NOT_FOUND' })
  })

  it('delivers one-way messages', async () => {
    const c = system.spawn(Counter)
    c.tell('add', 2)
    c.tell('add', 3)
    expect(await c.get()).toBe(5)
  })

  it('shutdown fails pending calls and refuses new ones', async () => {
    const c = system.spawn(Counter)
    const pending = c.hang()
    await new Promise((r) => setTimeout(r, 20))
    const other = await ClusterSystem.start({ name: 'x', port: 0, logLevel: 'silent', shutdownTimeout: 200 })
    const h = other.spawn(Counter)
    const p2 = h.hang()
    await other.shutdown()
    await expect(p2).rejects.toBeInstanceOf(SystemShutDownError)
    await expect(h.add(1)).rejects.toMatchObject({ code: 'SHOAL_SYSTEM_SHUT_DOWN' })
    void pending.catch(() => {})
  })

  it('passes values by reference locally unless serializeLocalCalls is on', async () => {
    class Holder extends DistributedActor {
      @distributed async keep(o: { n: number }): Promise<{ n: number }> {
        o.n++
        return o
      }
    }
    const strict = await ClusterSystem.start({ name: 'strict', port: 0, logLevel: 'silent', serializeLocalCalls: true })
    try {
      const obj = { n: 1 }
      const out = await strict.spawn(Holder).keep(obj)
      expect(obj.n).toBe(1)
      expect(out).toEqual({ n: 2 })
      class Unregistered {
        x = 1
      }
      await expect(strict.spawn(Holder).keep(new Unregistered() as unknown as { n: number })).rejects.toThrow(/Unregistered/)
    } finally {
      await strict.shutdown()
    }
  })
})
