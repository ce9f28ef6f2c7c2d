import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { IdTable } from '../src/util/IdTable.ts'

describe('IdTable', () => {
  it('behaves like a Map under any sequence of set, delete and get (ring, growth, overflow, wrapping ids)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), id: fc.oneof(fc.nat(300), fc.constant(2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 })) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.nat(300) }),
      fc.record({ kind: fc.constant('get' as const), id: fc.nat(300) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), fc.constantFrom(64, 128), fc.constantFrom(64, 256, 1024), (ops, initial, max) => {
        const table = new IdTable<string>(initial, max)
        const model = new Map<number, string>()
        ops.forEach(({ kind, id }, n) => {
          if (kind === 'set') {
            table.set(id, `v${n}`)
            model.set(id, `v${n}`)
          } else if (kind === 'delete') expect(table.delete(id)).toBe(model.delete(id))
          else expect(table.get(id)).toBe(model.get(id))
          expect(table.size).toBe(model.size)
        })
        expect(table.values().sort()).toEqual([...model.values()].sort())
      }),
      { numRuns: 300 },
    )
  })

  it('keeps sequential ids in the ring and an old straggler in the overflow', () => {
    const table = new IdTable<number>(64, 64)
    table.set(0, 0) // a long call
    for (let id = 1; id <= 1000; id++) {
      table.set(id, id)
      if (id > 10) table.delete(id - 10) // ten in flight
    }
    expect(table.get(0)).toBe(0)
    expect(table.size).toBe(11)
    expect(table.delete(0)).toBe(true)
    expect(table.get(0)).toBeUndefined()
  })
})
