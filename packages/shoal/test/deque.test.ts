/**
 * Deque: FIFO order under any mix of pushes and shifts (compared with an array), including the
 * reuse of its array once emptied and the compaction of a long-lived queue.
 */
import fc from 'fast-check'
import { Deque } from 'shoal/internal'
import { describe, expect, it } from 'vitest'

describe('Deque', () => {
  it('property: behaves like an array used as a queue', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constant(-1)), { maxLength: 300 }), (ops) => {
        const deque = new Deque<number>()
        const model: number[] = []
        for (const op of ops) {
          if (op === -1) expect(deque.shift()).toBe(model.shift())
          // A run of pushes long enough to cross the compaction threshold.
          else {
            const run = op % 7 === 0 ? op : 1
            for (let i = 0; i < run; i++) {
              deque.push(op + i)
              model.push(op + i)
            }
          }
          expect(deque.length).toBe(model.length)
        }
        expect(deque.drain()).toEqual(model)
        expect(deque.length).toBe(0)
      }),
    )
  })

  it('keeps order across an emptied queue and one compacted while half full', () => {
    const deque = new Deque<number>()
    for (let i = 0; i < 3000; i++) deque.push(i)
    for (let i = 0; i < 2000; i++) expect(deque.shift()).toBe(i)
    for (let i = 3000; i < 3500; i++) deque.push(i)
    const rest: number[] = []
    while (deque.length > 0) rest.push(deque.shift()!)
    expect(rest).toEqual(Array.from({ length: 1500 }, (_, i) => 2000 + i))
    expect(deque.shift()).toBeUndefined()
    deque.push(7)
    expect(deque.shift()).toBe(7)
  })
})
