/**
 * Envelope headers (protocol 1.2): byte-identical envelopes without them, round trips with them,
 * limits on both sides, hostile bytes (EnvelopeError only, no prototype pollution), the stream path
 * through the FrameDecoder, and when a sender may use them.
 */
import fc from 'fast-check'
import type { ClusterNode } from 'shoal'
import {
  type CallEnvelope,
  checkHeaders,
  decodeCall,
  decodeOneWay,
  EnvelopeError,
  type EnvelopeHeaders,
  encodeCall,
  encodeCallHeadWith,
  encodeFrame,
  encodeOneWay,
  encodeOneWayHeadWith,
  encodeTargetSegment,
  FrameDecoder,
  FrameType,
  HEADERS_MARK,
  HEADERS_MIN_MINOR,
  HeaderLimits,
  type OneWayEnvelope,
  supportsHeaders,
  TargetCache,
} from 'shoal/internal'
import { describe, expect, it } from 'vitest'
import { Association } from '../src/transport/Association.ts'
import type { Connection } from '../src/transport/Connection.ts'

const call: CallEnvelope = {
  callId: 0x01020304,
  uid: '0123456789abcdef',
  path: '/user/Island-1',
  incarnation: 7,
  method: 'addRock',
  chain: '0123456789abcdef.1',
  timeoutMs: 5000,
  args: Buffer.of(0x91, 0x03),
}
const oneWay: OneWayEnvelope = { uid: '0123456789abcdef', path: '/user/ü', incarnation: 9, method: 'm', chain: '', args: Buffer.of(0x90) }
const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

/** Encodes, expecting success; decodes with a fresh decoder. */
const roundTripCall = (headers: EnvelopeHeaders | undefined, cache?: TargetCache) => decodeCall(encodeCall({ ...call, headers }), cache)

const expectEnvelopeError = (f: () => unknown, message?: RegExp) => {
  let thrown: unknown
  try {
    f()
  } catch (e) {
    thrown = e
  }
  expect(thrown).toBeInstanceOf(EnvelopeError)
  if (message) expect((thrown as Error).message).toMatch(message)
}

describe('Envelope headers: nothing changes without them', () => {
  // Computed with the encoder of protocol 1.1 (before headers existed).
  const CALL_1_1 =
    '0102030400000007000013881030313233343536373839616263646566000e2f757365722f49736c616e642d3107616464526f636b12303132333435363738396162636465662e319103'
  const ONE_WAY_1_1 = '00000009103031323334353637383961626364656600082f757365722fc3bc016d0090'
  const CALL_HEAD_1_1 = '0000000100000002000000031030313233343536373839616263646566000e2f757365722f49736c616e642d3107616464526f636b0163'
  const ONE_WAY_HEAD_1_1 = '000000021030313233343536373839616263646566000e2f757365722f49736c616e642d3107616464526f636b0163'

  it('encodes byte for byte as protocol 1.1 did, with headers absent, undefined or empty', () => {
    const segment = encodeTargetSegment(call)
    for (const headers of [undefined, {}, Object.create(null) as EnvelopeHeaders]) {
      expect(encodeCall({ ...call, headers }).toString('hex')).toBe(CALL_1_1)
      expect(encodeOneWay({ ...oneWay, headers }).toString('hex')).toBe(ONE_WAY_1_1)
      expect(encodeCallHeadWith(segment, { callId: 1, incarnation: 2, timeoutMs: 3, chain: 'c', headers }).toString('hex')).toBe(CALL_HEAD_1_1)
      expect(encodeOneWayHeadWith(segment, { incarnation: 2, chain: 'c', headers }).toString('hex')).toBe(ONE_WAY_HEAD_1_1)
    }
    expect(encodeCall(call).toString('hex')).toBe(CALL_1_1)
    expect(encodeCallHeadWith(segment, { callId: 1, incarnation: 2, timeoutMs: 3, chain: 'c' }).toString('hex')).toBe(CALL_HEAD_1_1)
  })

  it('decodes a 1.1 envelope with headers undefined', () => {
    expect(decodeCall(Buffer.from(CALL_1_1, 'hex')).headers).toBeUndefined()
    expect(decodeOneWay(Buffer.from(ONE_WAY_1_1, 'hex')).headers).toBeUndefined()
  })
})

describe('Envelope headers: layout and round trips', () => {
  it('inserts `0xFF | count | (str8 key | str16 value)*` just before the chain, so a 1.1 decoder reads 0xFF as a chain length', () => {
    const plain = encodeCall(call)
    const withHeaders = encodeCall({ ...call, headers: { a: 'xy' } })
    const block = Buffer.from([HEADERS_MARK, 1, 1, 0x61, 0, 2, 0x78, 0x79])
    const chainAt = plain.length - call.args.length - 1 - Buffer.byteLength(call.chain)
    expect(withHeaders).toEqual(Buffer.concat([plain.subarray(0, chainAt), block, plain.subarray(chainAt)]))
    expect(HEADERS_MARK).toBeGreaterThan(128) // above every chain length a 1.1 decoder accepts
  })

  it('round-trips calls and one-way messages with headers, with and without a target cache', () => {
    const headers = { traceparent, tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE', 'x-note': 'välue €' }
    for (const cache of [undefined, new TargetCache()]) {
      const decoded = roundTripCall(headers, cache)
      expect({ ...decoded.headers }).toEqual(headers)
      expect(decoded).toMatchObject({ callId: call.callId, uid: call.uid, path: call.path, method: call.method, chain: call.chain, timeoutMs: call.timeoutMs })
      expect(decoded.args).toEqual(call.args)
      const ow = decodeOneWay(encodeOneWay({ ...oneWay, headers }), cache)
      expect({ ...ow.headers }).toEqual(headers)
      expect(ow).toMatchObject({ uid: oneWay.uid, path: oneWay.path, method: oneWay.method, chain: '', args: oneWay.args })
    }
  })

  it('decodes into a frozen map with a null prototype', () => {
    const { headers } = roundTripCall({ traceparent })
    expect(Object.getPrototypeOf(headers)).toBeNull()
    expect(Object.isFrozen(headers)).toBe(true)
    expect(headers!['constructor']).toBeUndefined()
    expect(headers!['toString']).toBeUndefined()
  })

  it('keeps the cache right when calls to one target alternate with and without headers', () => {
    const cache = new TargetCache()
    for (let i = 0; i < 6; i++) {
      const headers = i % 2 === 0 ? { n: String(i) } : undefined
      const body = encodeCall({ ...call, callId: i, headers })
      const cached = decodeCall(body, cache)
      expect(cached).toEqual(decodeCall(body))
      expect(cached.headers?.['n']).toBe(headers?.n)
    }
  })

  it('accepts every limit exactly', () => {
    const sixteen = Object.fromEntries(Array.from({ length: HeaderLimits.entries }, (_, i) => [`k${i}`, 'v']))
    expect({ ...roundTripCall(sixteen).headers }).toEqual(sixteen)
    const longest = { ['k'.repeat(HeaderLimits.key)]: 'é'.repeat(HeaderLimits.value / 2) }
    expect({ ...roundTripCall(longest).headers }).toEqual(longest)
    // 4 keys of 1 byte + values of 1023 bytes: exactly 4096 key and value bytes.
    const total = Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [k, 'x'.repeat(HeaderLimits.total / 4 - 1)]))
    expect({ ...roundTripCall(total).headers }).toEqual(total)
    expect({ ...roundTripCall({ empty: '' }).headers }).toEqual({ empty: '' })
    const tokens = { "!#$%&'*+-.^_`|~09az": 'ok' }
    expect({ ...roundTripCall(tokens).headers }).toEqual(tokens)
  })

  it('property: valid header maps round-trip on calls and one-way messages', () => {
    const tchar = fc.constantFrom(..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
    const key = fc.string({ unit: tchar, minLength: 1, maxLength: HeaderLimits.key })
    const value = fc.string({ unit: 'grapheme', maxLength: 200 }).filter((v) => Buffer.byteLength(v) <= HeaderLimits.value)
    const headers = fc
      .dictionary(key, value, { maxKeys: HeaderLimits.entries, noNullPrototype: true })
      .filter((h) => Object.entries(h).reduce((n, [k, v]) => n + k.length + Buffer.byteLength(v), 0) <= HeaderLimits.total)
    const cache = new TargetCache()
    fc.assert(
      fc.property(headers, fc.string({ maxLength: 20 }), (h, chain) => {
        const empty = Object.keys(h).length === 0
        const decoded = decodeCall(encodeCall({ ...call, chain, headers: h }), cache)
        if (empty) expect(decoded.headers).toBeUndefined()
        else expect({ ...decoded.headers }).toEqual(h)
        expect(decoded.chain).toBe(chain)
        expect(decoded.args).toEqual(call.args)
        const ow = decodeOneWay(encodeOneWay({ ...oneWay, chain, headers: h }))
        expect(empty ? ow.headers : { ...ow.headers }).toEqual(empty ? undefined : h)
      }),
      { numRuns: 500 },
    )
  })
})

describe('Envelope headers: limits when encoding', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['17 entries', Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])), /at most 16 headers/],
    ['a 65-byte key', { ['k'.repeat(65)]: 'v' }, /header key/],
    ['an empty key', { '': 'v' }, /header key/],
    ['an upper-case key', { Traceparent: 'v' }, /lower-case token/],
    ['a key with a colon', { ':path': 'v' }, /lower-case token/],
    ['a key with a space', { 'a b': 'v' }, /lower-case token/],
    ['a non-ASCII key', { ké: 'v' }, /lower-case token/],
    ['a value of 1025 bytes', { v: 'x'.repeat(1025) }, /0\.\.1024 bytes/],
    ['a value of 1026 UTF-8 bytes in 342 characters', { v: '€'.repeat(342) }, /got 1026/],
    ['over 4096 bytes in all', Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((k) => [k, 'x'.repeat(1000)])), /at most 4096/],
    ['a number value', { n: 1 }, /must be a string/],
    ['an undefined value', { n: undefined }, /must be a string/],
  ]
  for (const [name, headers, message] of cases) {
    it(`refuses ${name}`, () => {
      const h = headers as EnvelopeHeaders
      expectEnvelopeError(() => encodeCall({ ...call, headers: h }), message)
      expectEnvelopeError(() => encodeOneWayHeadWith(encodeTargetSegment(oneWay), { incarnation: 1, chain: '', headers: h }), message)
      expectEnvelopeError(() => checkHeaders(h), message)
    })
  }

  it('sends a __proto__ key given as an own property, and decodes it as one without polluting anything', () => {
    const headers = JSON.parse('{"__proto__":"polluted","constructor":"c","traceparent":"t"}') as EnvelopeHeaders
    const decoded = roundTripCall(headers).headers!
    expect(Object.keys(decoded).sort()).toEqual(['__proto__', 'constructor', 'traceparent'])
    expect(decoded['__proto__']).toBe('polluted')
    expect(decoded['constructor']).toBe('c')
    expect(Object.getPrototypeOf(decoded)).toBeNull()
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
    expect(Object.getPrototypeOf({})).toBe(Object.prototype)
  })
})

/** A call body whose header block is `block` (raw bytes, marker included). */
function bodyWithBlock(block: number[]): Buffer {
  const plain = encodeCall(call)
  const chainAt = plain.length - call.args.length - 1 - Buffer.byteLength(call.chain)
  return Buffer.concat([plain.subarray(0, chainAt), Buffer.from(block), plain.subarray(chainAt)])
}
const str8 = (s: string) => [Buffer.byteLength(s), ...Buffer.from(s)]
const str16 = (b: Buffer) => [b.length >> 8, b.length & 0xff, ...b]

describe('Envelope headers: hostile bytes', () => {
  it('refuses an envelope truncated at any byte before its arguments, and only with EnvelopeError', () => {
    for (const [encode, decode] of [
      [() => encodeCall({ ...call, headers: { traceparent, b: 'é' } }), decodeCall],
      [() => encodeOneWay({ ...oneWay, headers: { traceparent, b: 'é' } }), decodeOneWay],
    ] as const) {
      const body = encode()
      const argsAt = body.length - (decode === decodeCall ? call.args.length : oneWay.args.length)
      for (let n = 0; n < argsAt; n++) expectEnvelopeError(() => decode(body.subarray(0, n)))
      // Cut inside the arguments: a shorter payload, still a valid envelope.
      for (let n = argsAt; n <= body.length; n++) expect(decode(body.subarray(0, n)).headers?.['traceparent']).toBe(traceparent)
    }
  })

  const hostile: [string, number[], RegExp][] = [
    ['a block with no entries', [HEADERS_MARK, 0], /header count 0/],
    ['17 entries', [HEADERS_MARK, 17, ...Array.from({ length: 17 }, (_, i) => [...str8(`k${i}`), 0, 0]).flat()], /header count 17/],
    ['an empty key', [HEADERS_MARK, 1, 0, 0, 0], /key of 0 bytes/],
    ['a 65-byte key', [HEADERS_MARK, 1, ...str8('k'.repeat(65)), 0, 0], /key of 65 bytes/],
    ['an upper-case key', [HEADERS_MARK, 1, ...str8('Key'), 0, 0], /byte 0x4b/],
    ['a NUL in a key', [HEADERS_MARK, 1, 2, 0x61, 0, 0, 0], /byte 0x00/],
    ['a non-ASCII key', [HEADERS_MARK, 1, 2, 0xc3, 0xa9, 0, 0], /byte 0xc3/],
    ['a value of 1025 bytes', [HEADERS_MARK, 1, ...str8('v'), ...str16(Buffer.alloc(1025, 0x61))], /1025 bytes is over 1024/],
    ['a value announcing 65535 bytes', [HEADERS_MARK, 1, ...str8('v'), 0xff, 0xff], /65535 bytes/],
    ['over 4096 bytes in all', [HEADERS_MARK, 5, ...['a', 'b', 'c', 'd', 'e'].flatMap((k) => [...str8(k), ...str16(Buffer.alloc(1000, 0x61))])], /over 4096/],
    ['a duplicate key', [HEADERS_MARK, 2, ...str8('a'), ...str16(Buffer.from('1')), ...str8('a'), ...str16(Buffer.from('2'))], /duplicate header a/],
    [
      'a duplicate __proto__ key',
      [HEADERS_MARK, 2, ...str8('__proto__'), ...str16(Buffer.from('1')), ...str8('__proto__'), ...str16(Buffer.from('2'))],
      /duplicate/,
    ],
    ['a value that is not UTF-8', [HEADERS_MARK, 1, ...str8('v'), ...str16(Buffer.from([0xc3, 0x28]))], /not well-formed UTF-8/],
    ['a lone surrogate in UTF-8 (CESU)', [HEADERS_MARK, 1, ...str8('v'), ...str16(Buffer.from([0xed, 0xa0, 0x80]))], /not well-formed UTF-8/],
    ['a second marker where the chain length goes', [HEADERS_MARK, 1, ...str8('a'), 0, 0, HEADERS_MARK], /chain of 255 bytes/],
  ]
  for (const [name, block, message] of hostile) {
    it(`refuses ${name}`, () => {
      expectEnvelopeError(() => decodeCall(bodyWithBlock(block)), message)
      expectEnvelopeError(() => decodeCall(bodyWithBlock(block), new TargetCache()), message)
    })
  }

  it('reads a __proto__ key as an own property of a null-prototype map', () => {
    const decoded = decodeCall(
      bodyWithBlock([HEADERS_MARK, 2, ...str8('__proto__'), ...str16(Buffer.from('{"x":1}')), ...str8('constructor'), ...str16(Buffer.from('y'))]),
    )
    expect(Object.getPrototypeOf(decoded.headers)).toBeNull()
    expect(Object.getOwnPropertyNames(decoded.headers)).toEqual(['__proto__', 'constructor'])
    expect(({} as Record<string, unknown>)['x']).toBeUndefined()
  })

  it('keeps a leading byte-order mark in a value (no silent change)', () => {
    const h = { v: '\ufeffhi' }
    expect(roundTripCall(h).headers!['v']).toBe('\ufeffhi')
  })

  it('property: bytes after a header marker either decode or throw EnvelopeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, cached) => {
        for (const decode of [decodeCall, decodeOneWay]) {
          const body = bodyWithBlock([HEADERS_MARK, ...bytes])
          try {
            decode(body, cached ? new TargetCache() : undefined)
          } catch (e) {
            expect(e).toBeInstanceOf(EnvelopeError)
          }
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('property: changing any byte of a valid envelope with headers decodes or throws EnvelopeError', () => {
    const body = encodeCall({ ...call, headers: { traceparent, tracestate: 'a=b', 'x-e': 'é' } })
    fc.assert(
      fc.property(fc.nat({ max: body.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, byte, cached) => {
        const changed = Buffer.from(body)
        changed[at] = byte
        try {
          decodeCall(changed, cached ? new TargetCache() : undefined)
        } catch (e) {
          expect(e).toBeInstanceOf(EnvelopeError)
        }
      }),
      { numRuns: 3000 },
    )
  })
})

describe('Envelope headers: through the FrameDecoder', () => {
  it('decodes calls and one-way messages with headers fed one byte at a time', () => {
    const headers = { traceparent, tracestate: 'rojo=1' }
    const stream = Buffer.concat([
      encodeFrame(FrameType.Call, encodeCall({ ...call, headers })),
      encodeFrame(FrameType.OneWay, encodeOneWay({ ...oneWay, headers })),
      encodeFrame(FrameType.Call, encodeCall(call)),
    ])
    const d = new FrameDecoder({ maxFrameSize: 1 << 16, preamble: false })
    const items = []
    for (const byte of stream) items.push(...d.push(Buffer.of(byte)))
    expect(items.map((i) => (i.kind === 'frame' ? i.type : -1))).toEqual([FrameType.Call, FrameType.OneWay, FrameType.Call])
    const cache = new TargetCache()
    const [c1, ow, c2] = items.map((i) => (i.kind === 'frame' ? i.body : Buffer.alloc(0)))
    expect({ ...decodeCall(c1!, cache).headers }).toEqual(headers)
    expect({ ...decodeOneWay(ow!, cache).headers }).toEqual(headers)
    expect(decodeCall(c2!, cache).headers).toBeUndefined()
  })
})

describe('supportsHeaders', () => {
  const peer: ClusterNode = { endpoint: { name: 'b', host: '127.0.0.1', port: 1002 }, uid: '0123456789abcdef' }
  const assoc = () =>
    new Association(
      '127.0.0.1:1002',
      '127.0.0.1',
      1002,
      { maxOutboundBytes: 1 << 20, maxFrameSize: 1 << 20, fragmentSize: 1 << 16, flushThreshold: 1 << 16, backoffBaseMs: 100, backoffMaxMs: 1000 },
      {
        dropped: () => undefined,
        bytesOut: () => undefined,
        now: () => 0,
        random: () => 0.5,
      },
    )

  it('is true only for the associated incarnation over a connection of protocol ≥ 1.2', () => {
    const a = assoc()
    expect(supportsHeaders(a, peer.uid)).toBe(false) // not associated yet
    a.peer = peer
    a.connection = { protocolMinor: HEADERS_MIN_MINOR } as Connection
    expect(supportsHeaders(a, peer.uid)).toBe(true)
    expect(supportsHeaders(a, 'fedcba9876543210')).toBe(false) // another incarnation
    a.connection = { protocolMinor: HEADERS_MIN_MINOR - 1 } as Connection
    expect(supportsHeaders(a, peer.uid)).toBe(false) // a 1.1 peer
    a.lost()
    expect(supportsHeaders(a, peer.uid)).toBe(false)
  })
})
