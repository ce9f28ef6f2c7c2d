/**
 * A single-pass validator for untrusted MessagePack bytes, run before msgpackr decodes them.
 *
 * msgpackr trusts its input: a five-byte header can announce a 4-billion-element array, nesting is
 * limited only by the call stack, and any registered extension type may appear. The scanner walks the
 * bytes iteratively (no recursion, so hostile nesting cannot overflow the stack) and refuses:
 * nesting deeper than `maxDepth`, collections larger than `maxCollectionSize` or than the bytes left
 * could hold, truncated values, trailing bytes, the never-used byte 0xc1, extension types not on the
 * allow-list, and oversized bigints.
 *
 * Pure: no allocation proportional to the input, no I/O.
 * @module
 */
import { getU16, getU32 } from '../wire/Bytes.ts'

export interface ScanLimits {
  /** Deepest nesting of arrays, maps and tagged extensions. */
  readonly maxDepth: number
  /** Most items in one collection: elements of an array, or keys plus values of a map (so a map may hold half as many entries). */
  readonly maxCollectionSize: number
  /** Most bytes in one bigint extension. */
  readonly maxBigIntBytes: number
}

/** How an allowed extension type is laid out. */
export const enum ExtKind {
  /** The extension's data bytes are the whole value (timestamps, bigints, typed arrays). */
  Data = 1,
  /** A one-byte fixext marker followed by one nested MessagePack value (msgpackr `write`/`read` extensions). */
  Tag = 2,
  /** A one-byte fixext with no payload (msgpackr's `undefined`). */
  Empty = 3,
}

/**
 * Values still expected at each open depth, reused by every scan (the scanner is synchronous and
 * calls out to nothing, so one scratch stack is enough); grown when a larger `maxDepth` asks for it.
 * Float64 because a map32 header announces up to 2 × (2³² − 1) items before the limit refuses it.
 */
let scratch = new Float64Array(65)

/**
 * Returns undefined when the bytes of `buf` from `start` to `end` (default: its end) are one
 * acceptable value, otherwise a reason.
 */
export function scanMsgpack(buf: Uint8Array, limits: ScanLimits, extensions: ReadonlyMap<number, ExtKind>, start = 0, end = buf.length): string | undefined {
  const maxDepth = limits.maxDepth
  if (scratch.length < maxDepth + 1) scratch = new Float64Array(maxDepth + 1)
  // remaining[d] = values still expected at depth d; depth 0 expects exactly one top-level value.
  const remaining = scratch
  remaining[0] = 1
  let depth = 0
  let pos = start

  while (depth >= 0) {
    if (remaining[depth] === 0) {
      depth--
      continue
    }
    if (pos >= end) return 'truncated value'
    remaining[depth]!--
    const b = buf[pos++]!
    let skip = 0
    /** Elements of a collection (or tagged extension) opened by this byte; -1 for none. */
    let count = -1
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      continue
    } else if (b >= 0xa0 && b <= 0xbf) {
      skip = b & 0x1f
    } else if (b <= 0x8f) {
      count = (b & 0x0f) * 2
    } else if (b <= 0x9f) {
      count = b & 0x0f
    } else {
      switch (b) {
        case 0xc1:
          return 'byte 0xc1 is never used in MessagePack'
        case 0xc4:
        case 0xd9:
          if (pos + 1 > end) return 'truncated length'
          skip = buf[pos]!
          pos += 1
          break
        case 0xc5:
        case 0xda:
          if (pos + 2 > end) return 'truncated length'
          skip = getU16(buf, pos)
          pos += 2
          break
        case 0xc6:
        case 0xdb:
          if (pos + 4 > end) return 'truncated length'
          skip = getU32(buf, pos)
          pos += 4
          break
        case 0xca:
          skip = 4
          break
        case 0xcb:
          skip = 8
          break
        case 0xcc:
        case 0xd0:
          skip = 1
          break
        case 0xcd:
        case 0xd1:
          skip = 2
          break
        case 0xce:
        case 0xd2:
          skip = 4
          break
        case 0xcf:
        case 0xd3:
          skip = 8
          break
        case 0xdc:
          if (pos + 2 > end) return 'truncated length'
          count = getU16(buf, pos)
          pos += 2
          break
        case 0xdd:
          if (pos + 4 > end) return 'truncated length'
          count = getU32(buf, pos)
          pos += 4
          break
        case 0xde:
          if (pos + 2 > end) return 'truncated length'
          count = getU16(buf, pos) * 2
          pos += 2
          break
        case 0xdf:
          if (pos + 4 > end) return 'truncated length'
          count = getU32(buf, pos) * 2
          pos += 4
          break
        default: {
          // Extensions: 0xd4..0xd8 fixext 1/2/4/8/16, 0xc7..0xc9 ext 8/16/32.
          let length: number
          const fixed = b >= 0xd4 && b <= 0xd8
          if (fixed) {
            length = 1 << (b - 0xd4)
          } else {
            const lenBytes = b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4
            if (pos + lenBytes > end) return 'truncated length'
            length = lenBytes === 1 ? buf[pos]! : lenBytes === 2 ? getU16(buf, pos) : getU32(buf, pos)
            pos += lenBytes
          }
          if (pos + 1 > end) return 'truncated extension'
          const type = buf[pos++]!
          const kind = extensions.get(type)
          if (kind === undefined) return `extension type 0x${type.toString(16)} is not allowed`
          if (pos + length > end) return 'truncated extension data'
          if (kind === ExtKind.Tag || kind === ExtKind.Empty) {
            if (b !== 0xd4) return `extension type 0x${type.toString(16)} must be a one-byte fixext`
            pos += 1
            if (kind === ExtKind.Tag) count = 1
            break
          }
          if (type === 0x42 && length > limits.maxBigIntBytes) return `a bigint of ${length} bytes exceeds the limit of ${limits.maxBigIntBytes}`
          skip = length
        }
      }
    }
    if (count >= 0) {
      if (count > limits.maxCollectionSize) return `a collection of ${count} elements exceeds the limit of ${limits.maxCollectionSize}`
      if (count > end - pos) return `a collection announces ${count} elements but only ${end - pos} bytes remain`
      if (count > 0) {
        if (depth + 1 > maxDepth) return `nesting exceeds the limit of ${maxDepth} levels`
        remaining[++depth] = count
      }
      continue
    }
    if (skip > end - pos) return 'truncated value'
    pos += skip
  }
  if (pos !== end) return `${end - pos} trailing bytes after the value`
  return undefined
}
