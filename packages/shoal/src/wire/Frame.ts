/**
 * Frame: the unit on a Shoal TCP association.
 *
 * A connection starts with a 6-byte preamble from each side (magic `SHL` 0xA1, protocol major,
 * protocol minor), then carries frames: `u32 BE length | u8 type | body`, where length counts the
 * type byte and body. The decoder in {@link FrameDecoder} is a pure state machine; this module only
 * defines the constants and the encoder.
 * @module
 */

export const MAGIC = Uint8Array.of(0x53, 0x48, 0x4c, 0xa1)
/**
 * Protocol major: nodes of different majors refuse each other in the handshake. 2: the handshake
 * is a PAKE (CPace) that gives an unauthenticated peer nothing to test secret guesses against
 * offline; 1 sent an HMAC of the secret to any peer that said Hello.
 */
export const PROTOCOL_MAJOR = 2
/**
 * Protocol minor. Minors were not reset by major 2, so the feature gates keep their numbers; 2.2
 * is the first 2.x and has every feature of 1.2: cluster names in the handshake (1.1), envelope
 * headers (1.2; a peer below minor 2 must not be sent any, see `wire/Envelope.ts`). A node accepts
 * any minor of its major; the negotiated minor of an association is the lower of the two.
 */
export const PROTOCOL_MINOR = 2
export const PREAMBLE_LENGTH = 6

/** Frame types. Handshake types are only valid before the association is established. */
export const FrameType = {
  Call: 1,
  Reply: 2,
  OneWay: 3,
  /** A piece of a user message larger than the fragment size; body: u8 flags (bit 0 = last) + bytes. */
  Fragment: 4,
  /** Control-lane message for cluster services (`u8 kind | body`, kinds in control/ControlKind.ts). */
  Control: 5,
  /** Orderly close: body is a UTF-8 reason. `shutdown` means this node incarnation is gone for good. */
  Goodbye: 6,
  Hello: 16,
  Challenge: 17,
  Proof: 18,
  Accept: 19,
  /** Body: UTF-8 reason. Its format never changes, so peers of any version can read it. */
  Reject: 20,
} as const
export type FrameType = (typeof FrameType)[keyof typeof FrameType]

export function preamble(major = PROTOCOL_MAJOR, minor = PROTOCOL_MINOR): Buffer {
  const b = Buffer.allocUnsafe(PREAMBLE_LENGTH)
  b.set(MAGIC, 0)
  b[4] = major
  b[5] = minor
  return b
}

/** Encodes one frame into a fresh buffer. */
export function encodeFrame(type: number, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length)
  out.writeUInt32BE(body.length + 1, 0)
  out[4] = type
  out.set(body, 5)
  return out
}
