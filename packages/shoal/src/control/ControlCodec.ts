/**
 * The kit the MessagePack control codecs (membership gossip, receptionist, lifecycle watch) are
 * built from: one `Packr` configuration, the versioned prologue every message starts with, and
 * readers for the fields they share. A reader validates one field and returns it typed, or throws
 * the codec's decode error (a subclass of {@link ControlDecodeError}); nothing else escapes, so a
 * receiver drops and logs a bad message without crashing.
 *
 * Every message is a MessagePack array whose first element is the codec's version.
 *
 * Gotchas: error messages name a field's kind, never its value's `String()` (a msgpack map decodes
 * to an object whose own `toString` may be a number, and would throw a TypeError). Declare a codec's
 * reader with its type (`const read: ControlReader = …`): TypeScript narrows after `read.fail(…)`
 * only then.
 * @module
 */
import { Packr } from 'msgpackr'
import { ActorId, MAX_INCARNATION } from '../actor/ActorId.ts'
import { type ClusterNode, isValidHost, isValidSystemName, isValidUid } from '../actor/ClusterNode.ts'

/** The MessagePack configuration of every control codec: no records, no extension types. */
export const controlPackr = new Packr({ useRecords: false, moreTypes: false })

/** A control message that does not decode or validate; dropped and logged by its receiver. */
export class ControlDecodeError extends Error {}

/** The decode error class of one codec. */
export type ControlDecodeErrorClass = new (message: string) => ControlDecodeError

/** The prologue and field readers of one codec; every failure throws that codec's error class. */
export class ControlReader {
  /** What a message of this codec is called in errors: `gossip`, `watch frame`. */
  readonly what: string
  readonly version: number
  readonly #Error: ControlDecodeErrorClass

  constructor(what: string, version: number, error: ControlDecodeErrorClass) {
    this.what = what
    this.version = version
    this.#Error = error
  }

  /** Throws the codec's decode error. */
  fail(reason: string): never {
    throw new this.#Error(reason)
  }

  /** Unpacks `bytes` and checks it is an array starting with this codec's version. */
  open(bytes: Buffer): unknown[] {
    let raw: unknown
    try {
      raw = controlPackr.unpack(bytes)
    } catch (e) {
      this.fail(`undecodable ${this.what}: ${e instanceof Error ? e.message : typeof e}`)
    }
    if (!Array.isArray(raw)) this.fail(`${this.what} is not an array`)
    const version: unknown = raw[0]
    if (version !== this.version) this.fail(`${this.what} version ${typeof version === 'number' ? version : typeof version}, this node speaks ${this.version}`)
    return raw
  }

  /** An array of at most `max` elements; `what` names it in the error. */
  readArray(x: unknown, max: number, what: string): unknown[] {
    if (!Array.isArray(x) || x.length > max) this.fail(`${what} must be an array of at most ${max}`)
    return x
  }

  /** A node uid: 16 lower-case hex digits. */
  readUid(x: unknown): string {
    if (typeof x !== 'string' || !isValidUid(x)) this.fail('a uid must be 16 lower-case hex digits')
    return x
  }

  /** A node incarnation from its fields as they travel: uid, system name, host, port. */
  readNode(uid: unknown, name: unknown, host: unknown, port: unknown): ClusterNode {
    if (typeof name !== 'string' || !isValidSystemName(name)) this.fail('bad system name')
    if (!isValidHost(host)) this.fail('bad host')
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) this.fail('bad port')
    return { endpoint: { name, host, port: port as number }, uid: this.readUid(uid) }
  }

  /** A sequence number, counter or count: a safe integer ≥ `min`; `what` names it in the error. */
  readSeq(x: unknown, min = 0, what = 'a sequence number'): number {
    if (!Number.isSafeInteger(x) || (x as number) < min) this.fail(`${what} must be a safe integer ≥ ${min}`)
    return x as number
  }

  /** An actor path (`/user/Fish-1`), as {@link ActorId.isValidPath} accepts. */
  readActorPath(x: unknown): string {
    if (typeof x !== 'string' || !ActorId.isValidPath(x)) this.fail('bad actor path')
    return x
  }

  /** An actor incarnation: an integer 0..{@link MAX_INCARNATION}. */
  readIncarnation(x: unknown): number {
    if (!Number.isInteger(x) || (x as number) < 0 || (x as number) > MAX_INCARNATION) this.fail('bad incarnation')
    return x as number
  }
}
