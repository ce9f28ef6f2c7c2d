/**
 * Payloads (serialization/Serialization.ts): `decode` of untrusted bytes throws SerializationError
 * only; its scanner (serialization/MsgpackScanner.ts) returns a problem or undefined and never
 * throws. Seeds: encodings of plain data, Maps, Sets, bigints, dates, typed arrays, refs,
 * registered classes and errors.
 */

import { SerializationError } from '../../src/errors.ts'
import { scanMsgpack } from '../../src/serialization/MsgpackScanner.ts'
import { Serialization } from '../../src/serialization/Serialization.ts'
import { type FuzzTarget, inputs, target } from './harness.ts'

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

const ref = { ref: true }
const serialization = new Serialization(() => ref, { limits: { maxDepth: 32, maxCollectionSize: 10_000 } })
serialization.register(Point)

const deep: unknown = Array.from({ length: 30 }).reduce((acc: unknown) => [acc], 1)
const seeds = [
  [1, -1, 2 ** 40, 1.5, 'text', '', null, true, undefined],
  { a: { b: { c: [1, 2, 3] } }, ['__proto__']: 'ordinary', constructor: 'x' },
  new Map<unknown, unknown>([
    ['k', 1],
    [2, new Set([1, 'a'])],
  ]),
  [123n, -(2n ** 100n), new Date(0), Uint8Array.of(1, 2, 3), Buffer.alloc(20, 1)],
  [new Point(1, 2), new Error('boom'), new TypeError('bad'), new SerializationError('nested')],
  deep,
  'x'.repeat(300),
].map((v) => serialization.encode(v))

export const serializationDecode: FuzzTarget = target('Serialization', inputs(seeds, 400), [SerializationError], (b: Buffer) => {
  serialization.decode(b)
})

/** As Serialization's allowed extensions (ExtKind: 1 data, 2 tag, 3 empty). */
const EXTENSIONS = new Map<number, number>([
  [0x00, 3],
  [0x42, 1],
  [0x74, 1],
  [0xff, 1],
  [0x41, 2],
  [0x43, 2],
  [0x45, 2],
  [0x4d, 2],
  [0x53, 2],
])

/** The scanner alone: returns a string or undefined, never throws (allowed: nothing). */
export const msgpackScanner: FuzzTarget = target('MsgpackScanner', inputs(seeds, 400), [], (b: Buffer) => {
  const r = scanMsgpack(b, serialization.limits, EXTENSIONS as never)
  if (r !== undefined && typeof r !== 'string') throw new Error('scanner returned neither a problem nor undefined')
})
