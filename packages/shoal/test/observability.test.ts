/**
 * Diagnostics channels: what membership and the transport publish, and that nothing is published
 * (nor any message built) while a channel has no subscriber.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import net from 'node:net'
import {
  actorSpawnChannel,
  actorStopChannel,
  ChannelNames,
  type ClusterSystem,
  callRefusedChannel,
  callTracing,
  DistributedActor,
  distributed,
  type HandshakeFailedMessage,
  handshakeFailedChannel,
  type MemberChangeMessage,
  memberChangeChannel,
  memberReachabilityChannel,
  type SwimChangeMessage,
  swimChangeChannel,
  type TransportCloseMessage,
  type TransportConnectMessage,
  type TypedChannel,
  tracingActive,
  transportCloseChannel,
  transportConnectChannel,
} from 'shoal'
import { PROTOCOL_MINOR } from 'shoal/internal'
import { eventually, startCluster, startNodes, type TestNodes } from 'shoal/testkit'
import { afterEach, describe, expect, it, vi } from 'vitest'

class Echo extends DistributedActor {
  @distributed async echo(v: string): Promise<string> {
    return v
  }
}

let nodes: TestNodes | undefined
const unsubscribe: (() => void)[] = []
afterEach(async () => {
  await nodes?.shutdown()
  nodes = undefined
  for (const off of unsubscribe.splice(0)) off()
  vi.restoreAllMocks()
})

/** Collects a channel's messages until the test ends. */
function collect<M>(channel: TypedChannel<M>): M[] {
  const seen: M[] = []
  const listener = (m: M): void => {
    seen.push(m)
  }
  channel.subscribe(listener)
  unsubscribe.push(() => channel.unsubscribe(listener))
  return seen
}

const RANK = { joining: 0, up: 1, leaving: 2, exiting: 3, down: 4, removed: 5 } as const

describe('shoal:member:change and shoal:swim:change', () => {
  it('publish every membership status change a node sees, in order, from → to', async () => {
    const changes = collect(memberChangeChannel)
    const swim = collect(swimChangeChannel)
    nodes = await startCluster(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const about = (self: ClusterSystem, other: ClusterSystem): MemberChangeMessage[] =>
      changes.filter((m) => m.self.uid === self.node.uid && m.node.uid === other.node.uid)
    // Each node saw itself and the other come up, each step from the status before.
    for (const [self, other] of [
      [a, a],
      [a, b],
      [b, a],
      [b, b],
    ] as const) {
      const steps = about(self, other)
      expect(steps.at(-1)?.to).toBe('up')
      expect(steps[0]!.from).toBeUndefined()
      for (let i = 1; i < steps.length; i++) {
        expect(steps[i]!.from).toBe(steps[i - 1]!.to)
        expect(RANK[steps[i]!.to]).toBeGreaterThan(RANK[steps[i - 1]!.to])
      }
      expect(steps.at(-1)!.upNumber).toBeGreaterThan(0)
      expect(steps.at(-1)!.roles).toEqual([])
    }
    // SWIM saw the other node alive, on both sides.
    const alive = (self: ClusterSystem, other: ClusterSystem): SwimChangeMessage | undefined =>
      swim.find((m) => m.self.uid === self.node.uid && m.member.uid === other.node.uid && m.to === 'alive')
    expect(alive(a, b)).toMatchObject({ member: { host: '127.0.0.1', port: b.node.endpoint.port }, incarnation: expect.any(Number) })
    expect(alive(b, a)).toBeDefined()
    // A graceful leave: the other node sees leaving → exiting → removed.
    await b.cluster.leave()
    await eventually(() => expect(about(a, b).at(-1)?.to).toBe('removed'))
    expect(about(a, b).map((m) => m.to)).toEqual(['joining', 'up', 'leaving', 'exiting', 'removed'].slice(-about(a, b).length))
  })
})

describe('shoal:transport:connect and shoal:transport:close', () => {
  it('publish an association once per node pair, with direction and protocol, and its loss with the reason', async () => {
    const connects = collect(transportConnectChannel)
    const closes = collect(transportCloseChannel)
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const onA = a.spawn(Echo)
    const onB = b.spawn(Echo)
    expect(await b.resolve(Echo, onA.id).echo('x')).toBe('x')
    expect(await a.resolve(Echo, onB.id).echo('y')).toBe('y') // the same association, the other way
    const mine = (m: TransportConnectMessage | TransportCloseMessage): boolean => m.self.uid === a.node.uid || m.self.uid === b.node.uid
    await eventually(() => expect(connects.filter(mine)).toHaveLength(2))
    expect(connects.find((m) => m.self.uid === b.node.uid)).toEqual({
      self: b.node,
      peer: a.node,
      direction: 'outbound',
      remoteAddress: `127.0.0.1:${a.node.endpoint.port}`,
      protocolMinor: PROTOCOL_MINOR,
    })
    expect(connects.find((m) => m.self.uid === a.node.uid)).toMatchObject({ self: a.node, peer: b.node, direction: 'inbound', protocolMinor: PROTOCOL_MINOR })
    expect(closes.filter(mine)).toEqual([])
    await b.shutdown()
    await eventually(() => expect(closes.find((m) => m.self.uid === a.node.uid)).toBeDefined())
    expect(closes.find((m) => m.self.uid === a.node.uid)).toEqual({ self: a.node, peer: b.node, direction: 'inbound', reason: 'peer shut down', gone: true })
    expect(closes.find((m) => m.self.uid === b.node.uid)).toMatchObject({ self: b.node, peer: a.node, direction: 'outbound' })
    expect(connects.filter(mine)).toHaveLength(2)
  })

  it('shoal:handshake:failed: a connection that is not a Shoal peer', async () => {
    const failed = collect(handshakeFailedChannel)
    nodes = await startNodes(1)
    const [a] = nodes.systems as [ClusterSystem]
    const socket = net.connect({ host: '127.0.0.1', port: a.node.endpoint.port })
    socket.on('error', () => undefined)
    socket.write('GET / HTTP/1.1\r\n\r\n')
    await eventually(() => expect(failed.find((m) => m.self.uid === a.node.uid)).toBeDefined())
    socket.destroy()
    expect(failed.find((m) => m.self.uid === a.node.uid)).toMatchObject({
      direction: 'inbound',
      byPeer: false,
      reason: expect.stringMatching(/not a Shoal peer/),
      remoteAddress: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    } satisfies Partial<HandshakeFailedMessage> & Record<string, unknown>)
  })

  it('subscribing by name works the same (diagnostics_channel.subscribe)', async () => {
    const seen: unknown[] = []
    const listener = (m: unknown): void => {
      seen.push(m)
    }
    diagnostics_channel.subscribe(ChannelNames.transportConnect, listener)
    unsubscribe.push(() => diagnostics_channel.unsubscribe(ChannelNames.transportConnect, listener))
    nodes = await startNodes(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    await b.resolve(Echo, a.spawn(Echo).id).echo('z')
    await eventually(() => expect(seen.length).toBeGreaterThanOrEqual(2))
  })
})

describe('no subscribers, no messages', () => {
  it('publishes nothing (and builds no message) while no one subscribes', async () => {
    const all = [
      memberChangeChannel,
      memberReachabilityChannel,
      swimChangeChannel,
      transportConnectChannel,
      transportCloseChannel,
      handshakeFailedChannel,
      actorSpawnChannel,
      actorStopChannel,
      callRefusedChannel,
    ]
    for (const c of all) expect(c.hasSubscribers).toBe(false)
    const spies = all.map((c) => vi.spyOn(c, 'publish'))
    nodes = await startCluster(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    await b.resolve(Echo, a.spawn(Echo).id).echo('quiet')
    await b.cluster.leave()
    await eventually(() => expect(a.cluster.membership.members.some((m) => m.node.uid === b.node.uid && m.status !== 'removed')).toBe(false))
    await nodes.shutdown()
    nodes = undefined
    for (const spy of spies) expect(spy).not.toHaveBeenCalled()
  })

  it('tracingActive() follows subscribers to any of the five shoal.call channels', () => {
    expect(tracingActive()).toBe(false)
    for (const event of ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const) {
      const listener = (): void => undefined
      callTracing[event].subscribe(listener)
      expect(tracingActive()).toBe(true)
      expect(callTracing.hasSubscribers).toBe(true)
      callTracing[event].unsubscribe(listener)
      expect(tracingActive()).toBe(false)
    }
    const none = (): void => undefined
    const handlers = { start: none, end: none, asyncStart: none, asyncEnd: none, error: none }
    callTracing.subscribe(handlers)
    expect(tracingActive()).toBe(true)
    callTracing.unsubscribe(handlers)
    expect(tracingActive()).toBe(false)
    expect(callTracing.start.name).toBe('tracing:shoal.call:start')
  })
})
