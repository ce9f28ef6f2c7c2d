/**
 * A peer's connection replaced by a newer one while calls are in flight on the old one: the old
 * connection may never deliver them (after a partition it can sit in TCP retransmission while the
 * peer's fresh connection gets through), so they fail at once with NodeUnreachableError instead of
 * hanging until their timeout. Found by `npm run chaos:partitions`: after a heal, a call on the
 * connection that lost the replacement hung for its whole timeout.
 */
import { randomBytes } from 'node:crypto'
import { ClusterSystem, DistributedActor, ErrorCode, NodeUnreachableError } from 'shoal'
import { decodeCall, encodeReply, FrameType } from 'shoal/internal'
import { afterEach, expect, test } from 'vitest'
import { codec, RawPeer } from './support/rawPeer.ts'

const SECRET = randomBytes(32).toString('hex')

class Echo extends DistributedActor {
  static distributed = ['echo']
  echo(value: unknown): unknown {
    return value
  }
}

let system: ClusterSystem | undefined
const peers: RawPeer[] = []
afterEach(async () => {
  for (const p of peers.splice(0)) p.destroy()
  await system?.shutdown()
  system = undefined
})

test('calls in flight on a replaced connection fail at once; calls made after it go on the new connection', async () => {
  system = await ClusterSystem.start({ name: 'caller', port: 0, secret: SECRET, callTimeout: 30_000 })
  const port = system.node.endpoint.port
  const first = await RawPeer.connect(port)
  peers.push(first)
  const peer = await first.establish(SECRET).then(() => first.node)
  const ref = system.resolve(Echo, `shoal://${peer.endpoint.name}@${peer.endpoint.host}:${peer.endpoint.port}/${peer.uid}/user/Echo-1#1`)

  // The call reaches the peer over its first connection, which then goes silent (never answers,
  // never closes), as a connection stuck in retransmission would.
  const started = performance.now()
  const inFlight = ref.echo('lost')
  const outcome = inFlight.then(
    () => 'answered',
    (e: unknown) => e,
  )
  await expect.poll(() => first.received.length > 0, { timeout: 5000 }).toBe(true)

  // The same node connects again: the newer connection replaces the silent one.
  const second = await RawPeer.connect(port, '127.0.0.1', peer)
  peers.push(second)
  await second.establish(SECRET)

  const error = await outcome
  expect(error).toBeInstanceOf(NodeUnreachableError)
  expect((error as NodeUnreachableError).code).toBe(ErrorCode.NodeUnreachable)
  expect((error as Error).message).toContain('superseded by a newer connection')
  expect(performance.now() - started).toBeLessThan(5000)
  await first.waitClosedByNode()

  // The next call goes out on the new connection, and its answer arrives.
  const again = ref.echo('again')
  for (;;) {
    const item = await second.next()
    if (!item) throw new Error('the node closed the new connection')
    if (item.kind !== 'frame' || item.type !== FrameType.Call) continue
    const call = decodeCall(item.body)
    second.sendFrame(FrameType.Reply, encodeReply({ callId: call.callId, ok: true, payload: codec().encode('again, answered') }))
    break
  }
  await expect(again).resolves.toBe('again, answered')
})
