/**
 * An association whose socket is full writes nothing more until it drains: not even a flush that
 * was scheduled before the socket filled up (found under the TicTacFish load benchmark, where it
 * stacked a `drain` listener per flush on a busy gateway's connection).
 */
import { EventEmitter } from 'node:events'
import type { ClusterNode } from 'shoal'
import { expect, it } from 'vitest'
import { Association, type OutboundMessage } from '../src/transport/Association.ts'
import type { Connection } from '../src/transport/Connection.ts'

const peer: ClusterNode = { endpoint: { name: 'b', host: '127.0.0.1', port: 1002 }, uid: '0123456789abcdef' }
const msg = (bytes: number): OutboundMessage => ({ type: 2, body: new Uint8Array(bytes), uid: peer.uid, callId: undefined })
const tick = () => new Promise<void>((r) => setImmediate(r))

it('a full socket gets no more writes until it drains, and one drain listener', async () => {
  const socket = Object.assign(new EventEmitter(), { writableLength: 0 })
  const writes: number[] = []
  let full = true
  const conn = { closed: false, socket, protocolMinor: 2, write: (b: Buffer) => (writes.push(b.length), !full) } as unknown as Connection
  const a = new Association(
    '127.0.0.1:1002',
    '127.0.0.1',
    1002,
    { maxOutboundBytes: 1 << 22, maxFrameSize: 1 << 20, fragmentSize: 1 << 16, flushThreshold: 1 << 12, backoffBaseMs: 100, backoffMaxMs: 1000 },
    { dropped: () => undefined, bytesOut: () => undefined, now: () => 0, random: () => 0.5 },
  )
  a.established(conn, peer) // schedules a flush (nothing queued yet)
  a.enqueue('user', msg(10)) // joins the scheduled flush
  a.enqueue('user', msg(5000)) // over flushThreshold: written at once; the socket is now full
  expect(writes).toHaveLength(1)
  a.enqueue('user', msg(10)) // waits for the drain
  await tick() // the flush scheduled before the socket filled up runs now: it must not write
  expect(writes).toHaveLength(1)
  expect(socket.listenerCount('drain')).toBe(1)
  full = false
  socket.emit('drain')
  await tick()
  expect(writes).toHaveLength(2)
  expect(socket.listenerCount('drain')).toBe(0)
})
