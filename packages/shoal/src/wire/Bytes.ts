/**
 * Big-endian integers read and written by hand. Buffer#readUInt32BE and its kin validate their
 * arguments in JavaScript (checkInt, checkBounds): fast once inlined into a hot caller, several
 * times dearer when the caller grew past V8's inlining budget (a traced call path did). Every
 * caller here has checked its bounds already (a reader against its end, a writer against the room
 * it allocated), so these do no checking of their own.
 * @module
 */

/** The unsigned 32-bit big-endian integer at `pos`. */
export function getU32(buf: Uint8Array, pos: number): number {
  return ((buf[pos]! << 24) | (buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!) >>> 0
}

/** The unsigned 16-bit big-endian integer at `pos`. */
export function getU16(buf: Uint8Array, pos: number): number {
  return (buf[pos]! << 8) | buf[pos + 1]!
}

/** Writes `v` (taken as unsigned 32-bit) big-endian at `pos`. */
export function putU32(buf: Uint8Array, pos: number, v: number): void {
  buf[pos] = v >>> 24
  buf[pos + 1] = v >>> 16
  buf[pos + 2] = v >>> 8
  buf[pos + 3] = v
}

/** Writes `v` (0..65535) big-endian at `pos`. */
export function putU16(buf: Uint8Array, pos: number, v: number): void {
  buf[pos] = v >>> 8
  buf[pos + 1] = v
}
