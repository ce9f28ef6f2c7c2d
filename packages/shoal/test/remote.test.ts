import { randomBytes } from 'node:crypto'
import {
  ActorId,
  ActorNotFoundError,
  type ActorRef,
  ClusterSystem,
  DistributedActor,
  distributed,
  MethodNotDistributedError,
  NodeDownError,
  NodeUnreachableError,
  OverloadedError,
  RemoteCallError,
  SerializationError,
  SystemShutDownError,
  TimeoutError,
} from 'shoal'
import { servicesOf } from 'shoal/internal'
import { eventually, startNodes, type TestNodes } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { IllegalMove } from './fixtures/errors.ts'

class Island extends DistributedActor {
  rocks = 0
  seen: number[] = []
  @distributed async addRock(n: number): Promise<number> {
    this.rocks += n
    return this.rocks
  }
  @distributed async record(i: number): Promise<void> {
    this.seen.push(i)
  }
  @distributed async recorded(): Promise<number[]> {
    return this.seen
  }
  @distributed async echo<T>(v: T): Promise<T> {
    return v
  }
  @distributed async illegal(): Promise<void> {
    throw new IllegalMove('cell 4 is taken', 4)
  }
  @distributed async crash(): Promise<void> {
    const e = new Error('database on fire') as Error & { code: string }
    e.code = 'E_FIRE'
    throw e
  }
  @distributed async sleep(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms))
  }
  @distributed async size(b: Uint8Array): Promise<number> {
    return b.length
  }
  notDistributed(): number {
    return 1
  }
}

/** Records the order of its turns and how many ever ran at once. */
class Turnstile extends DistributedActor {
  inside = 0
  maxInside = 0
  order: number[] = []
  @distributed async enter(i: number): Promise<void> {
    this.inside++
    this.maxInside = Math.max(this.maxInside, this.inside)
    this.order.push(i)
    // Some turns settle at once, some after a microtask, some after an event-loop turn.
    if (i % 7 === 0) await new Promise((r) => setImmediate(r))
    else if (i % 2 === 0) await Promise.resolve()
    this.inside--
  }
  @distributed async report(): Promise<{ order: number[]; maxInside: number }> {
    return { order: this.order, maxInside: this.maxInside }
  }
}

/** Sends one-way messages from inside its own turn. */
class TellRelay extends DistributedActor {
  @distributed async tellBoth(x: ActorRef<Island>, y: ActorRef<Island>, i: number): Promise<void> {
    // A call first, so this turn has a chain that the messages below carry.
    await x.addRock(0)
    x.tell('record', i)
    y.tell('record', i)
  }
}

/** Asks another actor, which may be on another node, to call back. */
class Relay extends DistributedActor {
  @distributed async bounce(other: ActorRef<Relay>, depth: number): Promise<string> {
    if (depth === 0) return `${this.system.node.endpoint.name}`
    return `${this.system.node.endpoint.name}>${await other.bounce(this.self, depth - 1)}`
  }
  @distributed async whoAmI(): Promise<string> {
    return this.id.toString()
  }
  @distributed async makeIsland(): Promise<ActorRef<Island>> {
    return this.system.spawn(Island)
  }
}

let nodes: TestNodes | undefined
const extra: ClusterSystem[] = []
afterEach(async () => {
  await nodes?.shutdown()
  await Promise.all(extra.splice(0).map((s) => s.shutdown()))
  nodes = undefined
})

describe('remote calls', () => {
  it('calls an actor on another node through a resolved ref', async () => {
    nodes = await startNodes(2)
    const [sea1, sea2] = nodes.systems as [ClusterSystem, ClusterSystem]
    const island = sea1.spawn(Island)
    const same = sea2.resolve(Island, island.id)
    expect(await same.addRock(3)).toBe(3)
    expect(await island.addRock(1)).toBe(4)
    expect(await sea2.resolve(Island, island.id.toString()).addRock(1)).toBe(5)
  })

  it('round-trips values and sends refs that arrive as working refs', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const relayOnA = a.spawn(Relay)
    const remoteRelay = b.resolve(Relay, relayOnA.id)
    const value = { m: new Map([['k', new Set([1n, 2n])]]), d: new Date(5), bytes: Buffer.alloc(3, 1), list: [undefined, null] }
    const island = b.spawn(Island)
    expect(await a.resolve(Island, island.id).echo(value)).toEqual(value)
    // A ref returned from node A is usable from node B, and refers to an actor on A.
    const made = await remoteRelay.makeIsland()
    expect(made.id.node.uid).toBe(a.node.uid)
    expect(await made.addRock(2)).toBe(2)
    // A ref passed to a remote node comes back equal, and local refs resolve to the local actor.
    const back = (await a.resolve(Island, island.id).echo(island)) as ActorRef<Island>
    expect(back.id.equals(island.id)).toBe(true)
    expect(await back.addRock(1)).toBe(1)
  })

  it('lets a call chain re-enter across nodes (A -> B -> A -> B)', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const onA = a.spawn(Relay)
    const onB = b.spawn(Relay)
    const fromB = b.resolve(Relay, onA.id)
    expect(await fromB.withTimeout(3000).bounce(onB, 5)).toBe('node-0>node-1>node-0>node-1>node-0>node-1')
  })

  it('starts calls from one caller in the order sent, under load', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const island = a.spawn(Island)
    const remote = b.resolve(Island, island.id)
    const n = 5000
    const calls: Promise<void>[] = []
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) remote.tell('record', i)
      else calls.push(remote.record(i))
    }
    await Promise.all(calls)
    expect(await remote.recorded()).toEqual(Array.from({ length: n }, (_, i) => i))
  })

  it('runs a burst of one-way messages from one sender one turn at a time, in the order sent', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Turnstile, a.spawn(Turnstile).id)
    const n = 20_000
    for (let i = 0; i < n; i++) remote.tell('enter', i)
    const { order, maxInside } = await remote.withTimeout(20_000).report()
    expect(order.length).toBe(n)
    expect(order.every((v, i) => v === i)).toBe(true)
    expect(maxInside).toBe(1)
  })

  it('addresses one-way messages from outside any actor and from inside one to the right actor and method', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const first = b.resolve(Island, a.spawn(Island).id)
    const second = b.resolve(Island, a.spawn(Island).id)
    const relay = a.resolve(TellRelay, b.spawn(TellRelay).id)
    for (let i = 0; i < 3; i++) {
      first.tell('record', i)
      second.tell('record', 10 + i)
      first.tell('addRock', 1)
    }
    // From inside a turn on node B (the message carries that turn's chain), to both islands.
    await relay.tellBoth(first, second, 99)
    expect(await first.recorded()).toEqual([0, 1, 2, 99])
    expect(await second.recorded()).toEqual([10, 11, 12, 99])
    expect(await first.addRock(0)).toBe(3)
    expect(await second.addRock(0)).toBe(0)
  })

  it('checks each message of a stream to one actor: another incarnation at its path, or the actor stopped in between, is refused', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const island = a.spawn(Island)
    const remote = b.resolve(Island, island.id)
    for (let i = 0; i < 3; i++) remote.tell('record', i)
    expect(await remote.addRock(1)).toBe(1)
    // Same node uid, path and method as the call just served, another incarnation: not that actor.
    const other = b.resolve(Island, island.id.toString().replace(/#\d+$/, `#${island.id.incarnation + 1000}`))
    await expect(other.addRock(1)).rejects.toBeInstanceOf(ActorNotFoundError)
    other.tell('record', 99)
    expect(await remote.addRock(1)).toBe(2)
    expect(await remote.recorded()).toEqual([0, 1, 2])
    // Stopped between two calls of the same stream: the next one is refused, a one-way dropped.
    await a.stop(island)
    remote.tell('record', 3)
    await expect(remote.addRock(1)).rejects.toBeInstanceOf(ActorNotFoundError)
    await expect(remote.recorded()).rejects.toBeInstanceOf(ActorNotFoundError)
    // A new actor is reached as usual.
    const next = b.resolve(Island, a.spawn(Island).id)
    next.tell('record', 7)
    expect(await next.recorded()).toEqual([7])
  })

  it('batches the replies of a mailbox draining turn after turn into few socket writes', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Island, a.spawn(Island).id)
    await remote.addRock(0) // connected, and the actor's first turn done
    const writes = async (): Promise<number> =>
      (await a.metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'shoal_transport_writes_total')!.values[0]?.value ?? 0
    const before = await writes()
    // 200 calls in one batch: the callee runs them one turn after another, each in a promise job.
    await Promise.all(Array.from({ length: 200 }, () => remote.addRock(1)))
    // Written once the jobs have run: a few writes (at most one per 4 KiB), not one per reply.
    expect((await writes()) - before).toBeLessThanOrEqual(10)
  })

  it('brings registered errors back as their class and others as RemoteCallError', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    a.serialization.registerError(IllegalMove)
    b.serialization.registerError(IllegalMove)
    const island = b.resolve(Island, a.spawn(Island).id)
    const illegal = await island.illegal().catch((e: unknown) => e)
    expect(illegal).toBeInstanceOf(IllegalMove)
    expect(illegal).toMatchObject({ message: 'cell 4 is taken', cell: 4 })
    const crash = await island.crash().catch((e: unknown) => e)
    expect(crash).toBeInstanceOf(RemoteCallError)
    expect(crash).toMatchObject({ code: 'SHOAL_REMOTE', remoteName: 'Error', remoteCode: 'E_FIRE', message: 'database on fire', remoteStack: undefined })
  })

  it('reports missing actors, undeclared methods and unserializable values with stable codes', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const island = a.spawn(Island)
    const remote = b.resolve(Island, island.id)
    await a.stop(island)
    await expect(remote.addRock(1)).rejects.toBeInstanceOf(ActorNotFoundError)
    // Refused before the method started: marked, so a retry cannot run it twice.
    await expect(remote.addRock(1)).rejects.toMatchObject({ notDelivered: true })
    const live = b.resolve(Island, a.spawn(Island).id)
    await expect((live as unknown as { notDistributed(): Promise<number> }).notDistributed()).rejects.toBeInstanceOf(MethodNotDistributedError)
    await expect((live as unknown as { notDistributed(): Promise<number> }).notDistributed()).rejects.toMatchObject({ notDelivered: true })
    // A method that ran and threw is not marked.
    expect(((await live.crash().catch((e: unknown) => e)) as { notDelivered?: boolean }).notDelivered).toBeUndefined()
    class Secret {
      x = 1
    }
    await expect(live.echo(new Secret())).rejects.toBeInstanceOf(SerializationError)
    await expect(live.echo(new Secret())).rejects.toThrow(/Secret/)
  })

  it('times out a slow remote call and drops its late reply', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Island, a.spawn(Island).id)
    const timedOut = await remote
      .withTimeout(50)
      .sleep(300)
      .catch((e: unknown) => e)
    expect(timedOut).toBeInstanceOf(TimeoutError)
    expect((timedOut as TimeoutError).notDelivered).toBeUndefined() // it may well have run
    await new Promise((r) => setTimeout(r, 400))
    expect(await remote.addRock(1)).toBe(1)
  })

  it('times a call out on the monotonic clock: a wall clock stepped back an hour changes nothing', async () => {
    // The wall clock as every part started now sees it, so that stepping it reaches them all.
    const wall = Date.now
    let step = 0
    Date.now = () => wall() + step
    try {
      nodes = await startNodes(2)
      const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
      const remote = b.resolve(Island, a.spawn(Island).id)
      const started = performance.now()
      const call = remote
        .withTimeout(100)
        .sleep(1500)
        .catch((e: unknown) => e)
      // NTP stepping the clock back, or a VM resumed: a deadline on Date.now() would wait out the hour.
      step = -3_600_000
      expect(await call).toBeInstanceOf(TimeoutError)
      expect(performance.now() - started).toBeLessThan(1000)
    } finally {
      Date.now = wall
    }
  })

  it('fragments large payloads and keeps serving small calls meanwhile', async () => {
    nodes = await startNodes(2, { maxFrameSize: 8 * 1024 * 1024 })
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Island, a.spawn(Island).id)
    const big = remote.withTimeout(20_000).size(Buffer.alloc(5 * 1024 * 1024, 9))
    const small = await Promise.all(Array.from({ length: 20 }, () => remote.addRock(1)))
    expect(small.at(-1)).toBe(20)
    expect(await big).toBe(5 * 1024 * 1024)
    await expect(remote.size(Buffer.alloc(9 * 1024 * 1024))).rejects.toBeInstanceOf(SerializationError)
  })

  it('fails fast with OverloadedError when the outbound queue is full', async () => {
    nodes = await startNodes(2, { maxOutboundBytes: 256 * 1024, maxFrameSize: 1024 * 1024 })
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Island, a.spawn(Island).id)
    const payload = Buffer.alloc(100 * 1024)
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => remote.size(payload)))
    const overloaded = results.filter((r) => r.status === 'rejected' && r.reason instanceof OverloadedError)
    expect(overloaded.length).toBeGreaterThan(0)
    expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0)
    expect(await remote.addRock(1)).toBe(1)
  })
})

describe('remote calls - failures of nodes', () => {
  it('fails fast with NodeUnreachableError when nobody listens, then backs off', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const id = a.spawn(Island).id
    expect(await b.resolve(Island, id).addRock(1)).toBe(1)
    await a.shutdown()
    // A long backoff, so the second call below is certainly inside it on a slow machine.
    const fresh = await ClusterSystem.start({ name: 'c', port: 0, logLevel: 'silent', reconnectBackoff: { baseMs: 60_000, maxMs: 60_000 } })
    extra.push(fresh)
    // b saw a's goodbye: a is known down. A fresh node that never met a only learns it cannot connect.
    await expect(b.resolve(Island, id).addRock(1)).rejects.toBeInstanceOf(NodeDownError)
    await expect(fresh.resolve(Island, id).addRock(1)).rejects.toThrow(/Could not connect/)
    // Within the backoff the next call fails without a new connection attempt, saying when the next one is.
    const second = fresh.resolve(Island, id).addRock(1)
    await expect(second).rejects.toBeInstanceOf(NodeUnreachableError)
    await expect(second).rejects.toThrow(/is unreachable .*next connection attempt in/)
    await expect(second).rejects.toMatchObject({ notDelivered: true })
  })

  it('fails calls pending on a node that shuts down, and later calls fast with NodeDownError', async () => {
    nodes = await startNodes(2, { shutdownTimeout: 200 })
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Island, a.spawn(Island).id)
    expect(await remote.addRock(1)).toBe(1)
    const pending = remote
      .withTimeout(30_000)
      .sleep(20_000)
      .catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 50))
    await a.shutdown()
    const err = await pending
    expect(err).toBeInstanceOf(NodeDownError)
    expect((err as NodeDownError).notDelivered).toBeUndefined() // it was running
    await expect(remote.addRock(1)).rejects.toMatchObject({ code: 'SHOAL_NODE_DOWN' })
  })

  it('fails a large message cut short by a lost connection instead of letting it time out', async () => {
    nodes = await startNodes(2, { maxFrameSize: 16 * 1024 * 1024, shutdownTimeout: 200 })
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Island, a.spawn(Island).id)
    expect(await remote.addRock(1)).toBe(1)
    const big = remote
      .withTimeout(20_000)
      .size(Buffer.alloc(12 * 1024 * 1024))
      .catch((e: unknown) => e)
    await new Promise((r) => setImmediate(r))
    await a.shutdown()
    const err = await big
    expect(err).not.toBeInstanceOf(TimeoutError)
    expect(err instanceof NodeUnreachableError || err instanceof NodeDownError).toBe(true)
  })

  it('never hands a reply meant for a node to the node restarted at its address', async () => {
    class Job extends DistributedActor {
      @distributed async run(label: string, ms: number): Promise<string> {
        await new Promise((r) => setTimeout(r, ms))
        return label
      }
    }
    const a = await ClusterSystem.start({ name: 'a', port: 0, logLevel: 'silent' })
    extra.push(a)
    const job = a.spawn(Job)
    const b1 = await ClusterSystem.start({ name: 'b', port: 0, logLevel: 'silent', shutdownTimeout: 100 })
    const port = b1.node.endpoint.port
    const old = b1
      .resolve(Job, job.id)
      .run('OLD', 400)
      .catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 50))
    await b1.shutdown()
    expect(await old).toBeInstanceOf(SystemShutDownError)
    const b2 = await ClusterSystem.start({ name: 'b', port, logLevel: 'silent' })
    extra.push(b2)
    // b2's first call has the same call id as b1's; the OLD reply arrives while it is pending.
    expect(await b2.resolve(Job, job.id).withTimeout(10_000).run('NEW', 800)).toBe('NEW')
  })

  it('fails fast, naming the right address, when a node answers under another name', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const id = a.spawn(Island).id
    const viaLocalhost = new ActorId({ endpoint: { ...id.node.endpoint, host: 'localhost' }, uid: id.node.uid }, id.path, id.incarnation)
    const err = await b
      .resolve(Island, viaLocalhost)
      .withTimeout(10_000)
      .addRock(1)
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NodeUnreachableError)
    expect((err as Error).message).toMatch(/address that node as 127\.0\.0\.1/)
    expect(await b.resolve(Island, id).addRock(1)).toBe(1)
  })

  it('treats a node restarted on the same port as a new incarnation', async () => {
    const a1 = await ClusterSystem.start({ name: 'a', port: 0, logLevel: 'silent' })
    const port = a1.node.endpoint.port
    const b = await ClusterSystem.start({ name: 'b', port: 0, logLevel: 'silent' })
    extra.push(b)
    const oldId = a1.spawn(Island).id
    expect(await b.resolve(Island, oldId).addRock(1)).toBe(1)
    // Kill the connection without a goodbye, as a crash would: b must not mistake the new node for the old one.
    await a1.shutdown()
    const a2 = await ClusterSystem.start({ name: 'a', port, logLevel: 'silent' })
    extra.push(a2)
    const newIsland = a2.spawn(Island)
    expect(await b.resolve(Island, newIsland.id).addRock(5)).toBe(5)
    await expect(b.resolve(Island, oldId).addRock(1)).rejects.toBeInstanceOf(NodeDownError)
    expect(a2.node.uid).not.toBe(a1.node.uid)
  })

  it('collapses simultaneous connects into one working association', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const onA = a.spawn(Island)
    const onB = b.spawn(Island)
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all([b.resolve(Island, onA.id).addRock(1), a.resolve(Island, onB.id).addRock(1)])
      expect(results).toEqual([round + 1, round + 1])
    }
    // One TCP connection between the two nodes, seen from both ends: the second dial was refused.
    await eventually(() => {
      expect(servicesOf(a).socketCount).toBe(1)
      expect(servicesOf(b).socketCount).toBe(1)
    })
    const text = await a.metrics.registry.getSingleMetricAsString('shoal_associations')
    expect(text).toMatch(/shoal_associations\{[^}]*\} 1$/m)
  })
})

describe('metrics', () => {
  it('counts calls by outcome, bytes, frames and latency in a per-system registry', async () => {
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const remote = b.resolve(Island, a.spawn(Island).id)
    for (let i = 0; i < 10; i++) await remote.addRock(1)
    await remote.crash().catch(() => {})
    const text = await b.metrics.registry.metrics()
    expect(text).toMatch(/shoal_calls_total\{outcome="ok",system="node-1"\} 10/)
    expect(text).toMatch(/shoal_calls_total\{outcome="SHOAL_REMOTE",system="node-1"\} 1/)
    expect(text).toMatch(/shoal_call_duration_seconds_count\{target="remote",system="node-1"\} 11/)
    expect(text).toMatch(/shoal_transport_bytes_total\{direction="out",system="node-1"\} [1-9]/)
    expect(text).toMatch(/shoal_transport_frames_total\{direction="in",system="node-1"\} [1-9]/)
    const aText = await a.metrics.registry.metrics()
    expect(aText).toMatch(/shoal_actors\{system="node-0"\} 1/)
    expect(aText).toMatch(/shoal_mailbox_depth\{system="node-0"\} 0/)
  })
})

describe('control lane', () => {
  it('delivers a control message queued after a large user message before that message completes', async () => {
    nodes = await startNodes(2, { maxFrameSize: 16 * 1024 * 1024 })
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const events: string[] = []
    servicesOf(a).control.onControl(7, (from, body) => events.push(`control ${body.toString()} from ${from.endpoint.name}`))
    class Sink extends DistributedActor {
      @distributed async take(b: Buffer): Promise<number> {
        events.push('user message delivered')
        return b.length
      }
    }
    const sink = b.resolve(Sink, a.spawn(Sink).id)
    expect(await sink.take(Buffer.alloc(1))).toBe(1)
    events.length = 0
    const big = sink.withTimeout(30_000).take(Buffer.alloc(8 * 1024 * 1024))
    // Let the first batch of the big message go out: only fragmentation lets the control frame pass it.
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
    servicesOf(b).control.sendControl(a.node.endpoint, 7, Buffer.from('heartbeat'))
    expect(await big).toBe(8 * 1024 * 1024)
    expect(events).toEqual(['control heartbeat from node-1', 'user message delivered'])
  })
})

describe('settings', () => {
  it('says which port is taken when the listener cannot bind', async () => {
    const first = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    extra.push(first)
    await expect(ClusterSystem.start({ port: first.node.endpoint.port, logLevel: 'silent' })).rejects.toThrow(/EADDRINUSE.*port 0/)
  })

  it('refuses a non-loopback bind without a secret unless insecure is explicit', async () => {
    await expect(ClusterSystem.start({ host: '0.0.0.0', port: 0, logLevel: 'silent', secret: '' })).rejects.toThrow(/secret/)
    const open = await ClusterSystem.start({ host: '0.0.0.0', port: 0, logLevel: 'silent', insecure: true })
    extra.push(open)
    const withSecret = await ClusterSystem.start({ host: '0.0.0.0', port: 0, logLevel: 'silent', secret: randomBytes(32).toString('hex') })
    extra.push(withSecret)
    expect(open.running && withSecret.running).toBe(true)
  })
})
