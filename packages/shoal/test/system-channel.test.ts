/**
 * The reliable system-message channel as a pure state machine (no sockets, no timers), and the
 * wire codecs of lifecycle watch and the receptionist against hostile input.
 */

import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { ActorId } from '../src/actor/ActorId.ts'
import { decodeReceptionist, encodeDelta, encodeDigest, ReceptionistDecodeError } from '../src/receptionist/ReceptionistCodec.ts'
import { seededRandom } from '../src/sim/Random.ts'
import { type Batch, SystemChannel } from '../src/watch/SystemChannel.ts'
import { decodeWatchFrame, encodeAck, encodeBatch, type SystemMessage, WatchDecodeError } from '../src/watch/WatchCodec.ts'

const packr = new Packr({ useRecords: false, moreTypes: false })

describe('SystemChannel', () => {
  it('delivers in order, once, and stops redelivering what is acknowledged', () => {
    const a = new SystemChannel<string>({ redeliverAfter: 100 })
    const b = new SystemChannel<string>()
    const sent = ['w1', 'w2', 'w3'].map((m, i) => a.send(m, i)!)
    expect(b.receive(sent[0]!)).toEqual({ deliver: ['w1'], ack: 1 })
    // The second batch is lost; the third arrives out of order and waits.
    expect(b.receive(sent[2]!)).toEqual({ deliver: [], ack: 1 })
    a.acknowledge(1)
    expect(a.unacked).toBe(2)
    expect(a.redeliver(50)).toEqual([])
    const again = a.redeliver(200)
    expect(again).toEqual([{ first: 2, messages: ['w2', 'w3'] }])
    expect(b.receive(again[0]!)).toEqual({ deliver: ['w2', 'w3'], ack: 3 })
    expect(b.receive(again[0]!)).toEqual({ deliver: [], ack: 3 }) // a duplicate is re-acked only
    a.acknowledge(3)
    expect(a.unacked).toBe(0)
    expect(a.redeliver(10_000)).toEqual([])
  })

  it('ignores acks of numbers never sent and refuses beyond maxUnacked', () => {
    const a = new SystemChannel<number>({ maxUnacked: 2 })
    a.send(1, 0)
    a.acknowledge(99)
    expect(a.unacked).toBe(1)
    a.send(2, 0)
    expect(a.send(3, 0)).toBeUndefined()
  })

  it('redelivery batches are runs of consecutive numbers of at most maxBatch', () => {
    const a = new SystemChannel<number>({ redeliverAfter: 10, maxBatch: 2 })
    for (let i = 1; i <= 5; i++) a.send(i, 0)
    a.send(6, 100) // recent: not due, and splits nothing before it
    expect(a.redeliver(15).map((b) => [b.first, b.messages.length])).toEqual([
      [1, 2],
      [3, 2],
      [5, 1],
    ])
  })

  it('property: over a lossy, duplicating, reordering (but fair) network, everything arrives exactly once and in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer(), fc.double({ min: 0, max: 0.6, noNaN: true }), (n, seed, loss) => {
        const random = seededRandom(seed)
        const sender = new SystemChannel<number>({ redeliverAfter: 10, maxBatch: 7 })
        const receiver = new SystemChannel<number>()
        const wire: Batch<number>[] = []
        const acks: number[] = []
        const delivered: number[] = []
        let now = 0
        for (let i = 1; i <= n; i++) wire.push(sender.send(i, now)!)
        for (let step = 0; step < 20_000 && (delivered.length < n || sender.unacked > 0); step++) {
          now += 3
          wire.push(...sender.redeliver(now))
          if (wire.length > 0) {
            const b = wire.splice(Math.floor(random() * wire.length), 1)[0]! // reorder
            if (random() < loss) continue // lose
            if (random() < 0.1) wire.push(b) // duplicate
            const { deliver, ack } = receiver.receive(b)
            delivered.push(...(deliver as number[]))
            acks.push(ack)
          }
          if (acks.length > 0 && random() >= loss) sender.acknowledge(acks.shift()!)
          else acks.shift() // a lost ack
        }
        expect(delivered).toEqual(Array.from({ length: n }, (_, i) => i + 1))
        expect(sender.unacked).toBe(0)
      }),
      { numRuns: 200 },
    )
  })
})

describe('watch codec', () => {
  it('round-trips batches and acks', () => {
    const messages: SystemMessage[] = [
      { type: 'watch', path: '/user/Fish-1', incarnation: 7 },
      { type: 'unwatch', path: '/user/Fish-1', incarnation: 7 },
      { type: 'terminated', path: '/user/Fish-2', incarnation: 0, reason: 'not-found' },
      { type: 'terminated', path: '/user/Fish-3', incarnation: 4294967295, reason: 'stopped' },
    ]
    expect(decodeWatchFrame(encodeBatch({ first: 12, messages }))).toEqual({ kind: 'batch', batch: { first: 12, messages } })
    expect(decodeWatchFrame(encodeAck(99))).toEqual({ kind: 'ack', seq: 99 })
  })

  it('refuses hostile frames with WatchDecodeError only', () => {
    const bad: unknown[] = [
      null,
      [2, 1, 5],
      [1, 1, -1],
      [1, 1, 2 ** 60],
      [1, 0, 1, []],
      [1, 0, 1, [[0, 'no-slash', 1]]],
      [1, 0, 1, [[0, '/user/x', -1]]],
      [1, 0, 1, [[0, '/user/x', 2 ** 33]]],
      [1, 0, 1, [[9, '/user/x', 1]]],
      [1, 0, 1, [[2, '/user/x', 1, 7]]],
      [1, 0, 1, [[0, '/user/x#', 1]]],
      [1, 0, 1, Array.from({ length: 5000 }, () => [0, '/user/x', 1])],
      [1, 0, 1, [{ __proto__: { polluted: true } }]],
    ]
    for (const b of bad) expect(() => decodeWatchFrame(packr.pack(b)), JSON.stringify(b)?.slice(0, 80)).toThrow(WatchDecodeError)
    expect(() => decodeWatchFrame(Buffer.from([0xc1]))).toThrow(WatchDecodeError)
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined()
  })

  it('fuzz: random bytes never throw anything but WatchDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeWatchFrame(Buffer.from(bytes))
        } catch (e) {
          expect(e).toBeInstanceOf(WatchDecodeError)
        }
      }),
      { numRuns: 2000 },
    )
  })
})

describe('receptionist codec', () => {
  const owner = { endpoint: { name: 'sea', host: '127.0.0.1', port: 7001 }, uid: '0123456789abcdef' }
  const actor = (path: string, inc: number): string => new ActorId(owner, path, inc).toString()

  it('round-trips digests, ops and snapshots; actors travel relative to their owner', () => {
    const digest = new Map([
      ['0123456789abcdef', 4],
      ['fedcba9876543210', 0],
    ])
    expect(decodeReceptionist(encodeDigest(digest, true))).toEqual({ kind: 'digest', reply: true, digest })
    const ops = {
      owner: owner.uid,
      kind: 'ops' as const,
      ops: [
        { seq: 1, kind: 'add' as const, key: 'lobby "1"', actor: actor('/user/Lobby-1', 9) },
        { seq: 2, kind: 'remove' as const, key: 'lobby "1"', actor: actor('/user/Lobby-1', 9) },
      ],
    }
    const encoded = encodeDelta(owner, ops)
    expect(encoded.includes(Buffer.from('shoal://'))).toBe(false)
    expect(decodeReceptionist(encoded)).toEqual({ kind: 'delta', owner, delta: ops })
    const snap = { owner: owner.uid, kind: 'snapshot' as const, seq: 5, part: 1, parts: 3, entries: [{ key: '🐟', actor: actor('/user/Fish-2', 1) }] }
    expect(decodeReceptionist(encodeDelta(owner, snap))).toEqual({ kind: 'delta', owner, delta: snap })
  })

  it('refuses hostile messages with ReceptionistDecodeError only', () => {
    const o = [owner.uid, 'sea', '127.0.0.1', 7001]
    const bad: unknown[] = [
      [1, 0, 0, [['not-a-uid', 1]]],
      [1, 0, 0, [[owner.uid, -1]]],
      [1, 1, ['x', 'sea', '127.0.0.1', 7001], []],
      [1, 1, [owner.uid, 'bad name!', '127.0.0.1', 7001], []],
      [1, 1, [owner.uid, 'sea', 'a host', 7001], []],
      [1, 1, [owner.uid, 'sea', '127.0.0.1', 70000], []],
      [1, 1, o, [[1, 2, 'k', '/user/a#1']]],
      [1, 1, o, [[0, 1, 'k', '/user/a#1']]],
      [1, 1, o, [[1, 1, '', '/user/a#1']]],
      [1, 1, o, [[1, 1, 'x'.repeat(257), '/user/a#1']]],
      [1, 1, o, [[1, 1, 'a\u0000', '/user/a#1']]],
      [1, 1, o, [[1, 1, 'k', 'shoal://other@1.2.3.4:1/fedcba9876543210/user/a#1']]],
      [1, 1, o, [[1, 1, 'k', '/user/a#99999999999']]],
      [1, 1, o, [[1, 1, 'k', '/user/a b#1']]],
      [1, 2, o, 1, 3, 3, []],
      [1, 2, o, 1, 0, 0, []],
      [1, 1, o, Array.from({ length: 5000 }, (_, i) => [i + 1, 1, 'k', '/user/a#1'])],
      [1, 9],
    ]
    for (const b of bad) expect(() => decodeReceptionist(packr.pack(b)), JSON.stringify(b)?.slice(0, 80)).toThrow(ReceptionistDecodeError)
  })

  it('fuzz: random bytes never throw anything but ReceptionistDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeReceptionist(Buffer.from(bytes))
        } catch (e) {
          expect(e).toBeInstanceOf(ReceptionistDecodeError)
        }
      }),
      { numRuns: 2000 },
    )
  })
})
