/**
 * Cluster heartbeats as a pure core: requests every interval, stalls after stallAfter without an
 * answer, confirmations dated by when their request was sent; and their codec against hostile bytes.
 */
import { describe, expect, it } from 'vitest'
import { Heartbeats } from '../src/cluster/Heartbeat.ts'
import { decodeHeartbeat, decodeObservations, encodeHeartbeatAnswer, encodeHeartbeatRequest, encodeObservations } from '../src/cluster/HeartbeatCodec.ts'
import { controlPackr } from '../src/control/ControlCodec.ts'

const A = 'a'.repeat(16)
const B = 'b'.repeat(16)

describe('heartbeats', () => {
  it('sends one request per member per interval, and only then', () => {
    const h = new Heartbeats({ interval: 500, stallAfter: 3000 })
    expect(h.tick(0, [A, B]).send).toEqual([
      { uid: A, seq: 1 },
      { uid: B, seq: 1 },
    ])
    expect(h.tick(250, [A, B]).send).toEqual([])
    expect(h.tick(500, [A]).send).toEqual([{ uid: A, seq: 2 }])
  })

  it('a member that answered and then stops answering stalls after stallAfter; an answer ends the stall', () => {
    const h = new Heartbeats({ interval: 500, stallAfter: 3000 })
    h.tick(0, [A])
    expect(h.answer(A, { seq: 1, status: 'up', reachable: true })).toBe(false)
    for (let t = 500; t < 3500; t += 250) expect(h.tick(t, [A]).stalled).toEqual([]) // oldest unanswered: sent at 500
    expect(h.tick(3500, [A]).stalled).toEqual([A])
    expect(h.tick(3750, [A]).stalled).toEqual([]) // reported once
    expect(h.isStalled(A)).toBe(true)
    // A late answer to an old request still ends it (the connection works again).
    expect(h.answer(A, { seq: 3, status: 'up', reachable: true })).toBe(true)
    expect(h.isStalled(A)).toBe(false)
    expect(h.stalled()).toEqual([])
  })

  it('a member that never answers stalls too, and never confirms; a new member gets its first request at once', () => {
    const h = new Heartbeats({ interval: 500, stallAfter: 3000 })
    expect(h.tick(0, [A]).send).toEqual([{ uid: A, seq: 1 }])
    expect(h.tick(250, [A, B]).send).toEqual([{ uid: B, seq: 1 }])
    let stalled: string[] = []
    for (let t = 500; t <= 3000; t += 250) stalled = [...stalled, ...h.tick(t, [A, B]).stalled]
    expect(stalled).toEqual([A])
    expect(h.confirmedAt(A)).toBeUndefined()
  })

  it('confirmations are dated by the send time of the request, and only a present status confirms', () => {
    const h = new Heartbeats({ interval: 500, stallAfter: 3000 })
    h.tick(0, [A])
    h.tick(500, [A])
    h.tick(1000, [A])
    h.answer(A, { seq: 2, status: 'up', reachable: true })
    expect(h.confirmedAt(A)).toBe(500)
    h.answer(A, { seq: 3, status: 'up', reachable: false }) // its SWIM suspects this node: still a confirmation
    expect(h.confirmedAt(A)).toBe(1000)
    expect(h.answeredAt(A)).toBe(1000)
    h.tick(1500, [A])
    h.answer(A, { seq: 4, status: 'down', reachable: true })
    expect(h.confirmedAt(A)).toBe(1000)
    h.tick(2000, [A])
    h.answer(A, { seq: 5, status: undefined, reachable: true }) // does not know this node
    expect(h.confirmedAt(A)).toBe(1000)
    expect(h.answeredAt(A)).toBe(2000)
    // Answers to unknown or already-answered requests change nothing.
    h.answer(A, { seq: 99, status: 'up', reachable: true })
    h.answer(A, { seq: 2, status: 'up', reachable: true })
    expect(h.confirmedAt(A)).toBe(1000)
    h.tick(2500, [A])
    h.answer(A, { seq: 6, status: 'leaving', reachable: true })
    expect(h.confirmedAt(A)).toBe(2500)
  })

  it('forgets members that are no longer targets', () => {
    const h = new Heartbeats({ interval: 500, stallAfter: 3000 })
    h.tick(0, [A, B])
    h.answer(A, { seq: 1, status: 'up', reachable: true })
    expect(h.confirmedAt(A)).toBe(0)
    h.tick(500, [B])
    expect(h.confirmedAt(A)).toBeUndefined()
    expect(() => new Heartbeats({ interval: 500, stallAfter: 500 })).toThrow(RangeError)
  })
})

describe('heartbeat codec', () => {
  it('round-trips requests, answers and observation tables', () => {
    expect(decodeHeartbeat(encodeHeartbeatRequest(7))).toEqual({ kind: 'request', seq: 7 })
    expect(decodeHeartbeat(encodeHeartbeatAnswer({ seq: 7, status: 'up', reachable: true }))).toEqual({ kind: 'answer', seq: 7, status: 'up', reachable: true })
    expect(decodeHeartbeat(encodeHeartbeatAnswer({ seq: 8, status: undefined, reachable: false }))).toEqual({
      kind: 'answer',
      seq: 8,
      status: undefined,
      reachable: false,
    })
    const table = new Map([
      [A, { seq: 3, unreachable: [B] }],
      [B, { seq: 1, unreachable: [] }],
    ])
    expect(decodeObservations(encodeObservations(table))).toEqual(table)
  })

  it('hostile messages fail with the codec error, never anything else', () => {
    const bad: unknown[] = [
      [2, 0, 1],
      [1, 0, -1],
      [1, 0, 1.5],
      [1, 0, 1, 'extra'],
      [1, 1, 1, 'zombie', true],
      [1, 1, 1, 'up', 'yes'],
      [1, 1, 1, '__proto__', true],
      [1, 9, 1],
      { 0: 1 },
      'x',
    ]
    for (const b of bad) expect(() => decodeHeartbeat(controlPackr.pack(b)), JSON.stringify(b)).toThrow(/heartbeat|status|reachable|seq|array|version/)
    const badTables: unknown[] = [[1, [[A, 0, []]]], [1, [['nope', 1, []]]], [1, [[A, 1, ['nope']]]], [1, [[A, 1]]], [1, 'x'], [1]]
    for (const b of badTables) expect(() => decodeObservations(controlPackr.pack(b)), JSON.stringify(b)).toThrow()
    for (let n = 0; n < 200; n++) {
      const bytes = Buffer.from(Array.from({ length: n % 40 }, (_, i) => (i * 73 + n * 31) & 255))
      for (const decode of [decodeHeartbeat, decodeObservations]) {
        try {
          decode(bytes)
        } catch (e) {
          expect((e as Error).constructor.name).toBe('HeartbeatDecodeError')
        }
      }
    }
  })
})
