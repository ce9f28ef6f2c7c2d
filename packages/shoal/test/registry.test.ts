/**
 * The receptionist's registry as a pure structure: owners write, replicas converge by digest
 * exchange, messages stay bounded, removals and dropped owners propagate.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Change, type Delta, Registrations } from '../src/receptionist/Registrations.ts'

/** B asks A with its digest and applies everything A sends; returns the changes at B. */
function sync(from: Registrations, to: Registrations): Change[] {
  return from.deltasFor(to.digest()).flatMap((d) => to.apply(d))
}

const sorted = (s: Set<string>): string[] => [...s].sort()

describe('Registrations', () => {
  it('local add and remove report changes once; lookup sees them', () => {
    const r = new Registrations('a')
    expect(r.add('lobby', 'x')).toEqual({ key: 'lobby', added: ['x'], removed: [] })
    expect(r.add('lobby', 'x')).toBeUndefined()
    expect(sorted(r.lookup('lobby'))).toEqual(['x'])
    expect(r.remove('lobby', 'x')).toEqual({ key: 'lobby', added: [], removed: ['x'] })
    expect(r.remove('lobby', 'x')).toBeUndefined()
    expect(r.lookup('lobby').size).toBe(0)
    expect(r.digest().get('a')).toBe(2)
  })

  it('a replica catches up by operations, then gets only what is new; removals propagate', () => {
    const a = new Registrations('a')
    const b = new Registrations('b')
    a.add('k', 'x1')
    a.add('k', 'x2')
    expect(sync(a, b)).toEqual([{ key: 'k', added: ['x1', 'x2'], removed: [] }])
    expect(a.deltasFor(b.digest())).toEqual([])
    a.remove('k', 'x1')
    const deltas = a.deltasFor(b.digest())
    expect(deltas).toEqual([{ owner: 'a', kind: 'ops', ops: [{ seq: 3, kind: 'remove', key: 'k', actor: 'x1' }] }])
    expect(deltas.flatMap((d) => b.apply(d))).toEqual([{ key: 'k', added: [], removed: ['x1'] }])
    expect(sorted(b.lookup('k'))).toEqual(['x2'])
  })

  it('a replica too far behind the owner’s log gets a chunked snapshot, each chunk bounded', () => {
    const a = new Registrations('a', { maxOps: 10, maxBatch: 16 })
    const b = new Registrations('b')
    for (let i = 0; i < 100; i++) a.add(`k${i % 7}`, `x${i}`)
    for (let i = 0; i < 30; i++) a.remove(`k${i % 7}`, `x${i}`)
    const deltas = a.deltasFor(b.digest())
    expect(deltas.every((d) => d.kind === 'snapshot' && d.entries.length <= 16)).toBe(true)
    expect(deltas).toHaveLength(Math.ceil(70 / 16))
    // Chunks in any order; nothing shows until the last arrives.
    const reversed = [...deltas].reverse()
    for (const d of reversed.slice(0, -1)) expect(b.apply(d)).toEqual([])
    b.apply(reversed.at(-1)!)
    for (let k = 0; k < 7; k++) expect(sorted(b.lookup(`k${k}`))).toEqual(sorted(a.lookup(`k${k}`)))
    expect(b.digest().get('a')).toBe(130)
  })

  it('a third node learns an owner’s registrations from any replica (snapshot), not only from the owner', () => {
    const a = new Registrations('a')
    const b = new Registrations('b')
    const c = new Registrations('c')
    a.add('k', 'x')
    sync(a, b)
    sync(b, c)
    expect(sorted(c.lookup('k'))).toEqual(['x'])
  })

  it('snapshot parts of one owner at one seq are identical from any replica, so parts from two peers can be mixed', () => {
    const owner = new Registrations('o', { maxBatch: 2, maxOps: 2 })
    for (const k of ['d', 'b', 'c', 'a']) owner.add(k, `actor-${k}`)
    owner.remove('c', 'actor-c')
    owner.add('c', 'actor-c2')
    // b learns by a snapshot, c by a snapshot cut differently... both then relay to d.
    const b = new Registrations('b', { maxBatch: 2 })
    for (const d of owner.deltasFor(new Map()).reverse()) b.apply(d)
    const c = new Registrations('c', { maxBatch: 2 })
    for (const d of owner.deltasFor(new Map())) c.apply(d)
    const fromB = b.deltasFor(
      new Map([
        ['b', 0],
        ['c', 0],
      ]),
    )
    const fromC = c.deltasFor(
      new Map([
        ['b', 0],
        ['c', 0],
      ]),
    )
    expect(fromB).toEqual(fromC)
    const d = new Registrations('d')
    // Alternate parts from the two relays.
    fromB.forEach((part, i) => d.apply(i % 2 === 0 ? part : fromC[i]!))
    expect([...d.lookup('c')]).toEqual(['actor-c2'])
    expect(d.digest().get('o')).toBe(owner.digest().get('o'))
    expect(['a', 'b', 'c', 'd'].map((k) => [...d.lookup(k)])).toEqual([['actor-a'], ['actor-b'], ['actor-c2'], ['actor-d']])
  })

  it('dropOwner removes everything a down node registered, and reports it', () => {
    const a = new Registrations('a')
    const b = new Registrations('b')
    a.add('k', 'x')
    a.add('j', 'y')
    sync(a, b)
    expect(b.dropOwner('a').sort((p, q) => p.key.localeCompare(q.key))).toEqual([
      { key: 'j', added: [], removed: ['y'] },
      { key: 'k', added: [], removed: ['x'] },
    ])
    expect(b.lookup('k').size).toBe(0)
    expect(b.dropOwner('b')).toEqual([])
  })

  it('out-of-order operations are skipped until the gap is filled; stale snapshots are ignored', () => {
    const a = new Registrations('a')
    const b = new Registrations('b')
    a.add('k', 'x1')
    a.add('k', 'x2')
    const [d] = a.deltasFor(new Map())
    const ops = (d as Extract<Delta, { kind: 'ops' }>).ops
    expect(b.apply({ owner: 'a', kind: 'ops', ops: [ops[1]!] })).toEqual([])
    expect(b.lookup('k').size).toBe(0)
    b.apply({ owner: 'a', kind: 'ops', ops: [...ops] })
    expect(sorted(b.lookup('k'))).toEqual(['x1', 'x2'])
    expect(b.apply({ owner: 'a', kind: 'snapshot', seq: 1, part: 0, parts: 1, entries: [] })).toEqual([])
    expect(b.lookup('k').size).toBe(2)
  })

  it('property: any interleaving of local changes and pairwise syncs converges once everyone syncs with everyone', () => {
    const nodes = ['a', 'b', 'c']
    const action = fc.oneof(
      fc.record({ t: fc.constant('add' as const), n: fc.integer({ min: 0, max: 2 }), key: fc.constantFrom('k1', 'k2'), actor: fc.constantFrom('x', 'y', 'z') }),
      fc.record({
        t: fc.constant('remove' as const),
        n: fc.integer({ min: 0, max: 2 }),
        key: fc.constantFrom('k1', 'k2'),
        actor: fc.constantFrom('x', 'y', 'z'),
      }),
      fc.record({ t: fc.constant('sync' as const), n: fc.integer({ min: 0, max: 2 }), m: fc.integer({ min: 0, max: 2 }) }),
    )
    fc.assert(
      fc.property(fc.array(action, { maxLength: 60 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), (actions, maxOps, maxBatch) => {
        const regs = nodes.map((n) => new Registrations(n, { maxOps, maxBatch }))
        for (const a of actions) {
          if (a.t === 'sync') {
            if (a.n !== a.m) sync(regs[a.n]!, regs[a.m]!)
          } else {
            const actor = `${nodes[a.n]}:${a.actor}`
            if (a.t === 'add') regs[a.n]!.add(a.key, actor)
            else regs[a.n]!.remove(a.key, actor)
          }
        }
        for (let round = 0; round < 2; round++) for (const x of regs) for (const y of regs) if (x !== y) sync(x, y)
        for (const key of ['k1', 'k2']) {
          const truth = sorted(
            new Set(
              regs.flatMap((r) =>
                r
                  .own()
                  .filter((e) => e.key === key)
                  .map((e) => e.actor),
              ),
            ),
          )
          for (const r of regs) expect(sorted(r.lookup(key))).toEqual(truth)
        }
        for (const r of regs)
          for (const d of regs[0]!.deltasFor(r.digest())) expect(d.kind === 'ops' ? d.ops.length : d.entries.length).toBeLessThanOrEqual(maxBatch)
      }),
      { numRuns: 300 },
    )
  })
})
