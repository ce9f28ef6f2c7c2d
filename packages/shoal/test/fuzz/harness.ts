/**
 * Fuzzing harness: a target per decoder (`*.fuzz.ts`), the inputs they share (random bytes and
 * mutations of valid encodings), and the checks every target makes: a throw is an instance of the
 * decoder's documented error class(es), nothing else (no TypeError, RangeError, stack overflow);
 * Object.prototype and Array.prototype are unchanged; one input takes bounded time.
 *
 * Run by `test/fuzz.test.ts` (a short run in `npm test`) and by `npm run fuzz -- --minutes N`
 * (`run.ts`, fresh seeds until time is up). See docs/fuzzing.md.
 */
import fc from 'fast-check'

export interface FuzzTarget {
  /** Short name, used by `npm run fuzz -- --target NAME` and in failure reports. */
  readonly name: string
  /** The property: one run per generated input, failing by throwing. */
  readonly property: fc.IPropertyWithHooks<[unknown]>
}

/** What a decode may throw: its documented error classes. */
export type ErrorClass = abstract new (...args: never[]) => Error

/** Longest time one input may take (generous: a loaded CI machine; a pathological input takes far longer). */
export const MAX_MS_PER_INPUT = 250

const protoKeys = (o: object) => Reflect.ownKeys(o).length

const OBJECT_KEYS = protoKeys(Object.prototype)
const ARRAY_KEYS = protoKeys(Array.prototype)

/** Fails if a prototype was polluted (a key added, or a well-known probe now readable on `{}`). */
export function checkPrototypes(): void {
  const probe = {} as Record<string, unknown>
  if (protoKeys(Object.prototype) !== OBJECT_KEYS || protoKeys(Array.prototype) !== ARRAY_KEYS || probe.polluted !== undefined || probe.isAdmin !== undefined)
    throw new Error('prototype pollution: Object.prototype or Array.prototype changed')
}

/**
 * Runs `decode(input)`: a throw must be one of `allowed`; prototypes must be unchanged; the run
 * must finish within MAX_MS_PER_INPUT.
 */
export function expectOnly(allowed: readonly ErrorClass[], decode: () => unknown): void {
  const start = performance.now()
  try {
    decode()
  } catch (e) {
    if (!allowed.some((E) => e instanceof E)) {
      const err = new Error(`undocumented throw: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`)
      err.cause = e
      throw err
    }
  } finally {
    checkPrototypes()
  }
  const ms = performance.now() - start
  if (ms > MAX_MS_PER_INPUT) throw new Error(`one input took ${ms.toFixed(0)} ms (limit ${MAX_MS_PER_INPUT})`)
}

/** Values a length or count field is set to by the "extremes" mutation. */
const EXTREMES = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff]

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'extreme'; at: number; width: 1 | 2 | 4; value: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'splice'; at: number; other: number; from: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('extreme' as const),
    at: fc.nat(),
    width: fc.constantFrom(1 as const, 2 as const, 4 as const),
    value: fc.constantFrom(...EXTREMES),
  }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat() }),
)

function mutate(input: Buffer, m: Mutation, seeds: readonly Buffer[]): Buffer {
  const n = input.length
  const at = n === 0 ? 0 : m.at % (n + 1)
  switch (m.kind) {
    case 'flip': {
      if (n === 0) return input
      const out = Buffer.from(input)
      out[at % n]! ^= 1 << m.bit
      return out
    }
    case 'truncate':
      return input.subarray(0, at)
    case 'extreme': {
      if (n < m.width) return input
      const out = Buffer.from(input)
      const pos = at % (n - m.width + 1)
      if (m.width === 1) out[pos] = m.value & 0xff
      else if (m.width === 2) out.writeUInt16BE(m.value & 0xffff, pos)
      else out.writeUInt32BE(m.value >>> 0, pos)
      return out
    }
    case 'set': {
      if (n === 0) return input
      const out = Buffer.from(input)
      out[at % n] = m.byte
      return out
    }
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)])
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.n)])
    case 'splice': {
      const other = seeds[m.other % seeds.length]!
      return Buffer.concat([input.subarray(0, at), other.subarray(other.length === 0 ? 0 : m.from % other.length)])
    }
  }
}

/**
 * Inputs for a decoder: random bytes, or a valid encoding (`seeds`) with 1..8 mutations (bit
 * flips, truncation, length fields set to extremes, bytes set, inserted, deleted, splices with
 * another seed).
 */
export function inputs(seeds: readonly Buffer[], maxRandom = 512): fc.Arbitrary<Buffer> {
  const random = fc.uint8Array({ maxLength: maxRandom }).map((b) => Buffer.from(b))
  if (seeds.length === 0) return random
  const mutated = fc
    .tuple(fc.nat(seeds.length - 1), fc.array(mutation, { minLength: 1, maxLength: 8 }))
    .map(([i, ms]) => ms.reduce((b, m) => mutate(b, m, seeds), seeds[i]!))
  return fc.oneof({ arbitrary: random, weight: 1 }, { arbitrary: mutated, weight: 4 }, { arbitrary: fc.constantFrom(...seeds), weight: 1 })
}

/** A target whose property decodes one input with `decode`, allowing only `allowed` throws. */
export function target(name: string, arb: fc.Arbitrary<unknown>, allowed: readonly ErrorClass[], decode: (input: never) => unknown): FuzzTarget {
  return { name, property: fc.property(arb, (input) => expectOnly(allowed, () => decode(input as never))) }
}
