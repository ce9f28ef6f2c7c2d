import fc from 'fast-check'
import { pack } from 'msgpackr'
import { RemoteCallError, Serialization, SerializationError, TimeoutError } from 'shoal'
import { describe, expect, it } from 'vitest'
import { IllegalMove } from './fixtures/errors.ts'

class GameMove {
  constructor(
    readonly player: string,
    readonly cell: number,
  ) {}
  describe(): string {
    return `${this.player}@${this.cell}`
  }
}

const codec = () => new Serialization(() => ({ ref: true }))
const roundTrip = (s: Serialization, v: unknown): unknown => s.decode(s.encode(v))

describe('serialization - values', () => {
  it('round-trips JSON values plus undefined, Date, Map, Set, BigInt and binary', () => {
    const s = codec()
    const value = {
      a: [1, -2.5, 'x', true, null, undefined],
      d: new Date(1_700_000_000_123),
      m: new Map<unknown, unknown>([
        ['k', 1],
        [2, new Set(['nested'])],
      ]),
      s: new Set([1, 'two']),
      big: 12345678901234567890123n,
      small: 5n,
      bytes: Buffer.of(1, 2, 3),
      u8: Uint8Array.of(4, 5),
      f64: new Float64Array([1.5, 2.5]),
      nested: { deeper: { deepest: [new Map([['x', 1]])] } },
    }
    expect(roundTrip(s, value)).toEqual(value)
  })

  it('keeps the prototype of registered classes, with a manifest name and version', () => {
    const s = codec().register(GameMove, { name: 'game.Move', version: 2 })
    const out = roundTrip(s, [new GameMove('fish', 4)]) as GameMove[]
    expect(out[0]).toBeInstanceOf(GameMove)
    expect(out[0]!.describe()).toBe('fish@4')
  })

  it('refuses an instance of an unregistered class at the sender, naming the class', () => {
    const s = codec()
    expect(() => s.encode({ move: new GameMove('fish', 1) })).toThrow(SerializationError)
    expect(() => s.encode({ move: new GameMove('fish', 1) })).toThrow(/GameMove/)
  })

  it('refuses functions, symbols and cycles', () => {
    const s = codec()
    expect(() => s.encode({ f: () => 1 })).toThrow(SerializationError)
    expect(() => s.encode(Symbol('x'))).toThrow(SerializationError)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => s.encode(cyclic)).toThrow(/deeper|cycle/)
  })

  it('refuses a newer version than the registered one', () => {
    const sender = codec().register(GameMove, { name: 'game.Move', version: 3 })
    const receiver = codec().register(GameMove, { name: 'game.Move', version: 2 })
    expect(() => receiver.decode(sender.encode(new GameMove('a', 1)))).toThrow(/version 3/)
  })

  it('passes the version to a decode hook so old shapes can be upcast', () => {
    const v1 = codec().register(GameMove, { name: 'game.Move', version: 1, encode: (m) => ({ who: m.player, at: m.cell }) })
    const v2 = codec().register(GameMove, {
      name: 'game.Move',
      version: 2,
      decode: (data, version) => {
        const d = data as Record<string, unknown>
        return version === 1 ? new GameMove(String(d.who), Number(d.at)) : new GameMove(String(d.player), Number(d.cell))
      },
    })
    const out = v2.decode(v1.encode(new GameMove('rodent', 7))) as GameMove
    expect(out.describe()).toBe('rodent@7')
  })

  it('refuses a decoded instance that lacks a declared field (a hook reading old names, or another shape)', () => {
    // v1 wrote { player, cell }; the buggy v2 hook reads { who, at } and would build GameMove(undefined, undefined).
    const v1 = codec().register(GameMove, { name: 'game.Move', version: 1 })
    const buggy = codec().register(GameMove, {
      name: 'game.Move',
      version: 2,
      fields: ['player', 'cell'],
      decode: (data) => {
        const d = data as { who: string; at: number }
        return new GameMove(d.who, d.at)
      },
    })
    expect(() => buggy.decode(v1.encode(new GameMove('fish', 4)))).toThrow(
      /"game.Move" \(written at version 1\) lacks required field\(s\) player, cell: its decode hook/,
    )
    const plain = codec().register(GameMove, { name: 'game.Move', version: 2, fields: ['player', 'cell', 'team'] })
    expect(() => plain.decode(v1.encode(new GameMove('fish', 4)))).toThrow(SerializationError)
    expect(() => plain.decode(v1.encode(new GameMove('fish', 4)))).toThrow(/lacks required field\(s\) team: the sender wrote another shape/)
    const ok = codec().register(GameMove, { name: 'game.Move', version: 2, fields: ['player', 'cell'] })
    expect((ok.decode(v1.encode(new GameMove('fish', 4))) as GameMove).describe()).toBe('fish@4')
  })

  it('carries registered errors as their class and others as RemoteCallError', () => {
    const s = codec().registerError(IllegalMove)
    const known = s.decode(s.encode(new IllegalMove('cell taken', 3))) as IllegalMove
    expect(known).toBeInstanceOf(IllegalMove)
    expect(known.message).toBe('cell taken')
    expect(known.cell).toBe(3)
    const builtin = s.decode(s.encode(new TimeoutError('late')))
    expect(builtin).toBeInstanceOf(TimeoutError)
    const other = new Error('secret detail')
    ;(other as Error & { code: string }).code = 'E_X'
    const unknown = s.decode(s.encode(other))
    expect(unknown).toBeInstanceOf(RemoteCallError)
    expect(unknown).toMatchObject({ remoteName: 'Error', message: 'secret detail', remoteCode: 'E_X', remoteStack: undefined })
  })

  it('sends stack traces only when remoteStackTraces is on', () => {
    const withStacks = new Serialization(() => null, { remoteStackTraces: true })
    const e = withStacks.decode(withStacks.encode(new Error('x'))) as RemoteCallError
    expect(e.remoteStack).toMatch(/serialization\.test/)
  })
})

describe('serialization - hostile bytes', () => {
  it('never pollutes prototypes', () => {
    const s = codec()
    const hostile = pack(JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"a":1}'))
    const out = s.decode(hostile) as Record<string, unknown>
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(out.a).toBe(1)
    expect((out as { polluted?: unknown }).polluted).toBeUndefined()
  })

  it('enforces nesting depth without recursion', () => {
    const s = codec()
    const deep = Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.of(0xc0)])
    expect(() => s.decode(deep)).toThrow(/nesting/)
  })

  it('refuses collections announcing more elements than bytes or limits allow', () => {
    const s = codec()
    expect(() => s.decode(Buffer.of(0xdd, 0xff, 0xff, 0xff, 0xff))).toThrow(/announces|exceeds/)
    const small = new Serialization(() => null, { limits: { maxCollectionSize: 10 } })
    expect(() => small.decode(small.encode(Array.from({ length: 11 }, () => 0)))).toThrow(/exceeds the limit of 10/)
  })

  it('reads 16- and 32-bit lengths with the high bit set as the unsigned sizes they are', () => {
    const s = codec()
    // array32 of 2^31 elements, map32 of 2^32 - 1 entries: over the default limit, never negative.
    expect(() => s.decode(Buffer.of(0xdd, 0x80, 0x00, 0x00, 0x00))).toThrow(/collection of 2147483648 elements exceeds/)
    expect(() => s.decode(Buffer.of(0xdf, 0xff, 0xff, 0xff, 0xff))).toThrow(/collection of 8589934590 elements exceeds/)
    const roomy = new Serialization(() => null, { limits: { maxCollectionSize: 2 ** 40 } })
    expect(() => roomy.decode(Buffer.of(0xdf, 0xff, 0xff, 0xff, 0xff, 0x01))).toThrow(/announces 8589934590 elements but only 1 bytes remain/)
    // str32, bin32 and ext32 of nearly 4 GiB, str16 of 65535 bytes: truncated, not skipped backwards.
    expect(() => s.decode(Buffer.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61))).toThrow(/truncated value/)
    expect(() => s.decode(Buffer.of(0xc6, 0x80, 0x00, 0x00, 0x01, 0x61))).toThrow(/truncated value/)
    expect(() => s.decode(Buffer.of(0xc9, 0xff, 0xff, 0xff, 0xff, 0x74, 0x00))).toThrow(/truncated extension data/)
    expect(() => s.decode(Buffer.of(0xda, 0xff, 0xff, 0x61))).toThrow(/truncated value/)
    // Lengths that fit decode as usual.
    expect(s.decode(s.encode(['x'.repeat(70_000), Array.from({ length: 70_000 }, () => 1)]))).toEqual([
      'x'.repeat(70_000),
      Array.from({ length: 70_000 }, () => 1),
    ])
  })

  it('scans deeper than the default depth when the limit allows it, and still refuses past it', () => {
    const deep = new Serialization(() => null, { limits: { maxDepth: 500 } })
    const nest = (n: number) => Buffer.concat([Buffer.alloc(n, 0x91), Buffer.of(0xc0)])
    expect(() => deep.decode(nest(400))).not.toThrow()
    expect(() => deep.decode(nest(501))).toThrow(/nesting exceeds the limit of 500/)
    // A scan after a deep one, with the smaller default limit, starts from a clean stack.
    const s = codec()
    expect(() => s.decode(nest(65))).toThrow(/nesting exceeds the limit of 64/)
    expect(s.decode(Buffer.of(0x92, 0x91, 0x01, 0x02))).toEqual([[1], 2])
  })

  it('refuses extension types outside the allow-list (records, RegExp, structured clone)', () => {
    const s = codec()
    expect(() => s.decode(Buffer.of(0xd4, 0x78, 0x00, 0x92, 0xa1, 0x61, 0xa0))).toThrow(/extension type 0x78/)
    expect(() => s.decode(Buffer.of(0xd4, 0x72, 0x00))).toThrow(/extension type 0x72/)
  })

  it('accepts actor refs at any valid host; refuses an impossible port or host', () => {
    const s = codec()
    const parts = Symbol.for('shoal.ref.parts')
    const ref = (host: string, port: number) =>
      new (class ForgedRef {
        [parts]() {
          return ['n', host, port, '0123456789abcdef', '/user/x', 1]
        }
      })()
    expect(s.decode(s.encode(ref('127.0.0.1', 7337)))).toEqual({ ref: true })
    // Every host isValidHost accepts, as in actor ids and control messages.
    for (const host of ['my_host', 'fe80::1%eth0', 'node-1.shoal.svc']) expect(s.decode(s.encode(ref(host, 7337)))).toEqual({ ref: true })
    expect(() => s.decode(s.encode(ref('127.0.0.1', 70000)))).toThrow(/bad host or port/)
    expect(() => s.decode(s.encode(ref('evil host/', 1)))).toThrow(/bad host or port/)
  })

  it('refuses trailing and truncated bytes', () => {
    const s = codec()
    expect(() => s.decode(Buffer.of(0x01, 0x02))).toThrow(/trailing/)
    expect(() => s.decode(Buffer.of(0xa5, 0x61))).toThrow(/truncated/)
    expect(() => s.decode(Buffer.of(0xc1))).toThrow(SerializationError)
  })

  it('property: decoding random bytes either succeeds or throws SerializationError', () => {
    const s = codec()
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          s.decode(bytes)
        } catch (e) {
          expect(e).toBeInstanceOf(SerializationError)
        }
      }),
      { numRuns: 5000 },
    )
  })
})

describe('serialization - properties', () => {
  const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    leaf: fc.oneof(
      fc.string(),
      fc.integer(),
      fc.double().filter((d) => !Object.is(d, -0)), // -0 arrives as 0 (documented)
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.bigInt(),
      fc.date({ noInvalidDate: true }),
      fc.uint8Array(),
      fc.uint8Array().map((b) => Buffer.from(b)),
    ),
    node: fc.oneof(
      { depthSize: 'small' },
      tie('leaf'),
      fc.array(tie('node'), { maxLength: 5 }),
      fc.dictionary(
        fc.string().filter((k) => k !== '__proto__'),
        tie('node'),
        { maxKeys: 5 },
      ),
      fc.array(fc.tuple(fc.string(), tie('node')), { maxLength: 4 }).map((entries) => new Map(entries)),
      fc.uniqueArray(fc.oneof(fc.string(), fc.integer()), { maxLength: 4 }).map((items) => new Set(items)),
    ),
  })).node

  it('round-trips any supported value', () => {
    const s = codec()
    fc.assert(
      fc.property(value, (v) => {
        expect(roundTrip(s, v)).toEqual(v)
      }),
      { numRuns: 1000 },
    )
  })
})

describe('serialization - payloads inside larger buffers (decodeFrom)', () => {
  const s = codec()
  const value = { player: 'fish', bin: Buffer.from('binary bytes'), n: 12345678901234567890n, when: new Date(5), tags: new Set(['a']) }

  it('decodes a payload at any offset of any buffer, as decode does its own copy', () => {
    const payload = s.encode(value)
    // Frames of one socket read: several payloads at offsets of one ArrayBuffer, then another buffer.
    const chunk = Buffer.concat([Buffer.from('head'), payload, Buffer.from('xy'), payload])
    const frames = [chunk.subarray(0, 4 + payload.length), chunk.subarray(4 + payload.length)]
    expect(s.decodeFrom(frames[0]!, 4)).toEqual(value)
    expect(s.decodeFrom(frames[1]!, 2)).toEqual(value)
    expect(s.decodeFrom(Buffer.concat([Buffer.of(9), payload]), 1)).toEqual(value)
    expect(s.decodeFrom(frames[0]!, 4)).toEqual(s.decode(Buffer.from(payload)))
  })

  it('scans only from the offset, and refuses what follows the payload in its frame', () => {
    const payload = s.encode([1, 2])
    // Garbage before the offset is not part of the payload...
    expect(s.decodeFrom(Buffer.concat([Buffer.of(0xc1, 0xdd, 0xff), payload]), 3)).toEqual([1, 2])
    // ...but every byte after it is: trailing bytes, and bytes of the next frame are not visible.
    expect(() => s.decodeFrom(Buffer.concat([payload, Buffer.of(0x01)]), 0)).toThrow(/trailing/)
    const chunk = Buffer.concat([Buffer.of(0x92, 0x01), Buffer.of(0x02)])
    expect(() => s.decodeFrom(chunk.subarray(0, 2), 0)).toThrow(SerializationError)
  })

  it('gives binary values as Buffers holding the right bytes, and plain Uint8Array input as before', () => {
    const payload = s.encode([Buffer.from('abc'), Uint8Array.of(1, 2, 3)])
    const [a, b] = s.decodeFrom(Buffer.concat([Buffer.from('zz'), payload]), 2) as [Buffer, Uint8Array]
    expect(Buffer.isBuffer(a) && a.toString()).toBe('abc')
    expect([...b]).toEqual([1, 2, 3])
    const [c] = s.decode(new Uint8Array(payload)) as [Uint8Array]
    expect(Buffer.isBuffer(c)).toBe(false)
    expect(Buffer.from(c).toString()).toBe('abc')
  })
})

describe('serialization - large payloads', () => {
  it('decodes a payload in a buffer of several MiB at an offset', () => {
    const s = codec()
    const big = { blob: Buffer.alloc(3 * 1024 * 1024, 7), text: 'y'.repeat(1000) }
    const frame = Buffer.concat([Buffer.alloc(17, 1), s.encode(big)])
    const out = s.decodeFrom(frame, 17) as typeof big
    expect(out.blob.length).toBe(big.blob.length)
    expect(out.blob.every((b) => b === 7)).toBe(true)
    expect(out.text).toBe(big.text)
  })
})
