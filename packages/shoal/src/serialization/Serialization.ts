/**
 * Serialization: values ↔ bytes for calls, replies and one-way messages.
 *
 * MessagePack through msgpackr (`useRecords: false`, so any MessagePack reader can decode the
 * bytes). Supported values: JSON values plus `undefined`, `Date`, `Map`, `Set`, `BigInt`,
 * `Uint8Array`/`Buffer` and the other typed arrays, actor refs, instances of registered classes and
 * errors.
 *
 * Encoding walks the value once (copy-on-write, so plain data is not copied) to turn refs, maps,
 * sets, errors and registered class instances into tagged extensions; an instance of an
 * unregistered class is refused with an error naming the class instead of silently losing its
 * prototype. Decoding first runs {@link scanMsgpack} over the untrusted bytes (limits on depth,
 * collection sizes and extension types), then msgpackr, which never assigns `__proto__`; class
 * instances are rebuilt with `Object.create(prototype)` and never by running a constructor.
 *
 * Every class instance carries a manifest (registered name and version), so a newer node can read
 * an older shape through a `decode(data, version)` hook.
 * @module
 */
import { addExtension, Packr, Unpackr } from 'msgpackr'
import { isValidHost } from '../actor/ClusterNode.ts'
import { builtinErrorClasses, RemoteCallError, SerializationError, ShoalError } from '../errors.ts'
import { ExtKind, type ScanLimits, scanMsgpack } from './MsgpackScanner.ts'

/** Extension type codes of Shoal's tagged values (letters, clear of msgpackr's own codes). */
export const ExtType = { Ref: 0x41, Class: 0x43, Error: 0x45, Map: 0x4d, Set: 0x53 } as const

/** Wire form of an actor ref: `[system name, host, port, node uid, path, incarnation]`. */
export type RefParts = [string, string, number, string, string, number]

/** Implemented by actor refs so the codec can recognise them without importing the ref module. */
export const REF_PARTS = Symbol.for('shoal.ref.parts')
export interface Referenceable {
  [REF_PARTS](): RefParts
}

/** Options of {@link Serialization.register}. */
export interface ClassRegistration<T> {
  /** Wire name; defaults to `Class.name`. Set it explicitly if your build minifies class names. */
  readonly name?: string
  /** Schema version written with every instance; default 1. */
  readonly version?: number
  /** Turns an instance into serializable data; default: its own enumerable properties. */
  readonly encode?: (value: T) => unknown
  /**
   * Rebuilds an instance from data written by any version up to the registered one; default:
   * `Object.create(Class.prototype)` plus the data's properties (the constructor is not run).
   */
  readonly decode?: (data: unknown, version: number) => T
  /**
   * Fields every decoded instance must have (own, not `undefined`), checked after decoding, by the
   * default path or by `decode`. A payload that lacks one is refused with a `SerializationError`
   * naming the class, the version it was written at and the missing fields, instead of arriving as
   * an instance with holes (the classic: a `decode` hook that reads a field under its old name).
   * Default: none checked. TypeScript types do not exist at run time, so list them here.
   *
   * Gotcha: a hook that converts (`String(d.who)`) turns a missing field into `"undefined"`, which
   * this check cannot tell from data; pass fields through and convert after the check, or throw.
   */
  readonly fields?: readonly string[]
}

interface ClassEntry {
  readonly ctor: abstract new (...args: never[]) => unknown
  readonly name: string
  readonly version: number
  readonly isError: boolean
  readonly encode?: (value: never) => unknown
  readonly decode?: (data: unknown, version: number) => unknown
  readonly fields: readonly string[]
}

/** Limits for decoding untrusted bytes. Defaults suit actor messages up to the default 4 MiB frame. */
export type SerializationLimits = ScanLimits

export const defaultSerializationLimits: SerializationLimits = {
  maxDepth: 64,
  maxCollectionSize: 1_048_576,
  maxBigIntBytes: 1024,
}

class Tag {
  constructor(readonly payload: unknown) {}
}
class RefTag extends Tag {}
class ClassTag extends Tag {}
class ErrorTag extends Tag {}
class MapTag extends Tag {}
class SetTag extends Tag {}

/** The Serialization doing the current decode; extension readers are synchronous, so one slot is enough. */
let decoding: Serialization | undefined

addExtension({ Class: RefTag, type: ExtType.Ref, write: (t: Tag) => t.payload, read: (d: unknown) => current().readRef(d) })
addExtension({ Class: ClassTag, type: ExtType.Class, write: (t: Tag) => t.payload, read: (d: unknown) => current().readClass(d) })
addExtension({ Class: ErrorTag, type: ExtType.Error, write: (t: Tag) => t.payload, read: (d: unknown) => current().readError(d) })
addExtension({ Class: MapTag, type: ExtType.Map, write: (t: Tag) => t.payload, read: (d: unknown) => current().readMap(d) })
addExtension({ Class: SetTag, type: ExtType.Set, write: (t: Tag) => t.payload, read: (d: unknown) => current().readSet(d) })

/** The largest ArrayBuffer `Serialization.#decode` keeps a view of: a socket read is at most 64 KiB. */
const VIEW_MAX = 256 * 1024

/** A Buffer over the whole of the last ArrayBuffer decoded from, `viewOf` (see `Serialization.#decode`). */
let view: Buffer | undefined
let viewOf: ArrayBufferLike | undefined

function current(): Serialization {
  if (!decoding) throw new SerializationError('Shoal extension decoded outside a Shoal decode call.')
  return decoding
}

const ALLOWED_EXTENSIONS: ReadonlyMap<number, ExtKind> = new Map([
  [0x00, ExtKind.Empty], // undefined
  [0x42, ExtKind.Data], // bigint
  [0x74, ExtKind.Data], // typed arrays
  [0xff, ExtKind.Data], // timestamp
  [ExtType.Ref, ExtKind.Tag],
  [ExtType.Class, ExtKind.Tag],
  [ExtType.Error, ExtKind.Tag],
  [ExtType.Map, ExtKind.Tag],
  [ExtType.Set, ExtKind.Tag],
])

const FORBIDDEN_KEYS = new Set(['__proto__', '__proto_', 'constructor', 'prototype'])
const BINARY = new Set<unknown>([
  Uint8Array,
  Buffer,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
])

/** Turns an actor ref's wire parts back into a working ref; supplied by the owning system. */
export type RefFactory = (parts: RefParts) => unknown

export interface SerializationOptions {
  readonly limits?: Partial<SerializationLimits>
  /** Send stack traces of thrown errors to callers. Default false: stacks reveal code layout. */
  readonly remoteStackTraces?: boolean
}

/**
 * One per system: the class registry, limits and codec. Reach it as `system.serialization`.
 */
export class Serialization {
  readonly limits: SerializationLimits
  readonly remoteStackTraces: boolean
  #byCtor = new Map<unknown, ClassEntry>()
  #byName = new Map<string, ClassEntry>()
  #packr = new Packr({ useRecords: false, useBigIntExtension: true, structuredClone: false, moreTypes: true } as never)
  #unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', structuredClone: false } as never)
  #refFactory: RefFactory

  constructor(refFactory: RefFactory, options: SerializationOptions = {}) {
    this.#refFactory = refFactory
    this.limits = { ...defaultSerializationLimits, ...options.limits }
    this.remoteStackTraces = options.remoteStackTraces ?? false
    for (const E of builtinErrorClasses) this.registerError(E)
  }

  /**
   * Registers a class so its instances can be passed to and returned from distributed methods.
   *
   * Gotchas: the constructor is not run on decode (use `decode` if the class needs invariants or has
   * `#private` fields); register the same name and version on every node.
   */
  register<T>(ctor: abstract new (...args: never[]) => T, options: ClassRegistration<T> = {}): this {
    return this.#add(ctor, options, false)
  }

  /**
   * Registers an error class so a thrown instance arrives at the caller as the same class, with its
   * own enumerable fields. Unregistered errors arrive as {@link RemoteCallError}.
   */
  registerError<T extends Error>(ctor: abstract new (...args: never[]) => T, options: ClassRegistration<T> = {}): this {
    return this.#add(ctor, options, true)
  }

  #add<T>(ctor: abstract new (...args: never[]) => unknown, options: ClassRegistration<T>, isError: boolean): this {
    const name = options.name ?? ctor.name
    if (!name) throw new SerializationError('Cannot register an anonymous class: pass { name }.')
    const existing = this.#byName.get(name)
    if (existing && existing.ctor !== ctor) {
      throw new SerializationError(`Another class is already registered as "${name}": pass a distinct { name } to register().`)
    }
    const entry: ClassEntry = {
      ctor,
      name,
      version: options.version ?? 1,
      isError,
      encode: options.encode as ClassEntry['encode'],
      decode: options.decode,
      fields: options.fields ?? [],
    }
    this.#byCtor.set(ctor, entry)
    this.#byName.set(name, entry)
    return this
  }

  isRegistered(ctor: unknown): boolean {
    return this.#byCtor.has(ctor)
  }

  /** Encodes a value; throws {@link SerializationError} for values that cannot cross the wire. */
  encode(value: unknown): Buffer {
    const prepared = this.#prepare(value, 0)
    try {
      return this.#packr.pack(prepared)
    } catch (e) {
      throw new SerializationError(`Could not encode value: ${(e as Error).message}`, { cause: e })
    }
  }

  /**
   * A copy of `value` as the receiving side of a remote call would see it (encode, then decode).
   * Used for `serializeLocalCalls`; throws like {@link encode} and {@link decode}.
   */
  copy<T>(value: T): T {
    return this.decode(this.encode(value)) as T
  }

  /** Decodes untrusted bytes; throws {@link SerializationError} naming the violated rule. */
  decode(bytes: Uint8Array): unknown {
    return this.#decode(bytes, 0, bytes.length)
  }

  /**
   * As {@link decode}, for the bytes of `buf` from `start` to `end` (default: its end): a payload
   * after its envelope, in the frame's place in a socket read, without a view of them per message.
   * @internal
   */
  decodeFrom(buf: Buffer, start: number, end = buf.length): unknown {
    return this.#decode(buf, start, end)
  }

  #decode(bytes: Uint8Array, start: number, end: number): unknown {
    const problem = scanMsgpack(bytes, this.limits, ALLOWED_EXTENSIONS, start, end)
    if (problem !== undefined) throw new SerializationError(`Refused malformed or oversized payload: ${problem}.`)
    const outer = decoding
    // Extension readers are module-level callbacks; they find this instance through `decoding`.
    decoding = this // eslint-disable-line @typescript-eslint/no-this-alias
    try {
      // msgpackr makes (and caches on its source) a DataView per source buffer: hand it one view of
      // the whole ArrayBuffer, kept while payloads come from it (the frames of one socket read), and
      // the payload's range in it. Binary values still alias the same bytes, as Buffers. Not for
      // large buffers (a reassembled frame), which the view would keep alive until the next decode.
      const ab = bytes.buffer
      if (!(bytes instanceof Buffer) || ab.byteLength > VIEW_MAX)
        return this.#unpackr.unpack(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end))
      if (ab !== viewOf) {
        viewOf = ab
        view = Buffer.from(ab)
      }
      const base = bytes.byteOffset
      return this.#unpackr.unpack(view!, { start: base + start, end: base + end } as never)
    } catch (e) {
      if (e instanceof ShoalError) throw e
      throw new SerializationError(`Could not decode payload: ${(e as Error).message}`, { cause: e })
    } finally {
      decoding = outer
    }
  }

  #prepare(v: unknown, depth: number): unknown {
    if (typeof v !== 'object' || v === null) {
      if (typeof v === 'function') throw new SerializationError(`Cannot serialize a function (${v.name || 'anonymous'}): pass data, or an actor ref.`)
      if (typeof v === 'symbol') throw new SerializationError('Cannot serialize a symbol.')
      return v
    }
    if (depth > this.limits.maxDepth) {
      throw new SerializationError(`Value nests deeper than ${this.limits.maxDepth} levels (or contains a cycle).`)
    }
    // The prototype, not `v.constructor`: plain data may have an own key named "constructor".
    const proto = Object.getPrototypeOf(v) as { constructor?: unknown } | null
    if (proto === Object.prototype || proto === null) return this.#prepareObject(v as Record<string, unknown>, depth)
    const ctor = proto.constructor
    if (ctor === Array) return this.#prepareArray(v as unknown[], depth)
    if (BINARY.has(ctor) || ctor === Date) return v
    if (REF_PARTS in v) return new RefTag((v as Referenceable)[REF_PARTS]())
    if (ctor === Map) {
      const flat: unknown[] = []
      for (const [k, val] of v as Map<unknown, unknown>) flat.push(this.#prepare(k, depth + 1), this.#prepare(val, depth + 1))
      return new MapTag(flat)
    }
    if (ctor === Set) {
      const items: unknown[] = []
      for (const item of v as Set<unknown>) items.push(this.#prepare(item, depth + 1))
      return new SetTag(items)
    }
    const entry = this.#byCtor.get(ctor)
    if (v instanceof Error) return this.#prepareError(v, entry, depth)
    if (entry) {
      const data = entry.encode ? (entry.encode as (x: unknown) => unknown)(v) : { ...(v as object) }
      return new ClassTag([entry.name, entry.version, this.#prepare(data, depth + 1)])
    }
    const name = typeof ctor === 'function' && ctor.name ? ctor.name : 'anonymous class'
    throw new SerializationError(`Cannot serialize an instance of ${name}: register it with system.serialization.register(${name}), or pass plain data.`)
  }

  #prepareObject(o: Record<string, unknown>, depth: number): Record<string, unknown> {
    let out: Record<string, unknown> | undefined
    // for-in rather than Object.keys: no array per object on the hot path. Plain objects have
    // Object.prototype (no enumerable members) or null as prototype, so only own keys show up.
    for (const key in o) {
      const value = o[key]
      const p = this.#prepare(value, depth + 1)
      if (p !== value) {
        out ??= { ...o }
        out[key] = p
      }
    }
    return out ?? o
  }

  #prepareArray(a: unknown[], depth: number): unknown[] {
    let out: unknown[] | undefined
    for (let i = 0; i < a.length; i++) {
      const value = a[i]
      const p = this.#prepare(value, depth + 1)
      if (p !== value) {
        out ??= a.slice()
        out[i] = p
      }
    }
    return out ?? a
  }

  #prepareError(e: Error, entry: ClassEntry | undefined, depth: number): ErrorTag {
    const registered = entry?.isError === true
    const name = registered ? entry.name : e.name || e.constructor?.name || 'Error'
    const code = typeof (e as { code?: unknown }).code === 'string' ? (e as unknown as { code: string }).code : undefined
    // Fields of unregistered errors stay home: they may hold data the caller should not see.
    const fields = registered ? this.#prepareObject(pickFields(e), depth + 1) : undefined
    const stack = this.remoteStackTraces ? e.stack : undefined
    return new ErrorTag([name, String(e.message), code, stack, fields])
  }

  /** @internal */
  readRef(d: unknown): unknown {
    if (!Array.isArray(d) || d.length !== 6) throw new SerializationError('Malformed actor ref in payload.')
    const [name, host, port, uid, path, inc] = d as unknown[]
    if (
      typeof name !== 'string' ||
      typeof host !== 'string' ||
      typeof port !== 'number' ||
      typeof uid !== 'string' ||
      typeof path !== 'string' ||
      typeof inc !== 'number'
    ) {
      throw new SerializationError('Malformed actor ref in payload.')
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535 || !isValidHost(host)) {
      throw new SerializationError('Malformed actor ref in payload: bad host or port.')
    }
    return this.#refFactory([name, host, port, uid, path, inc])
  }

  /** @internal */
  readClass(d: unknown): unknown {
    if (!Array.isArray(d) || d.length !== 3 || typeof d[0] !== 'string' || typeof d[1] !== 'number') {
      throw new SerializationError('Malformed class instance in payload.')
    }
    const [name, version, data] = d as [string, number, unknown]
    const entry = this.#byName.get(name)
    if (!entry || entry.isError)
      throw new SerializationError(`Received an instance of unregistered class "${name}": register it on this node with system.serialization.register().`)
    if (version > entry.version) {
      throw new SerializationError(`Received "${name}" version ${version}, but this node registered only up to version ${entry.version}: upgrade this node.`)
    }
    const value = entry.decode ? entry.decode(data, version) : assignSafe(Object.create((entry.ctor as { prototype: object }).prototype) as object, data)
    if (entry.fields.length > 0) checkFields(entry, version, value)
    return value
  }

  /** @internal */
  readError(d: unknown): Error {
    if (!Array.isArray(d) || d.length !== 5 || typeof d[0] !== 'string' || typeof d[1] !== 'string') {
      throw new SerializationError('Malformed error in payload.')
    }
    const [name, message, code, stack, fields] = d as [string, string, unknown, unknown, unknown]
    const codeText = typeof code === 'string' ? code : undefined
    const stackText = typeof stack === 'string' ? stack : undefined
    const entry = this.#byName.get(name)
    if (!entry?.isError) return new RemoteCallError(name, message, codeText, stackText)
    if (entry.decode) return entry.decode({ message, code: codeText, fields }, entry.version) as Error
    const err = Object.create((entry.ctor as { prototype: object }).prototype) as Error
    assignSafe(err, fields)
    Object.defineProperty(err, 'message', { value: message, writable: true, configurable: true })
    if (codeText !== undefined) (err as { code?: string }).code = codeText
    Object.defineProperty(err, 'stack', { value: stackText ?? `${name}: ${message}\n    at <remote>`, writable: true, configurable: true })
    return err
  }

  /** @internal */
  readMap(d: unknown): Map<unknown, unknown> {
    if (!Array.isArray(d) || d.length % 2 !== 0) throw new SerializationError('Malformed Map in payload.')
    const m = new Map<unknown, unknown>()
    for (let i = 0; i < d.length; i += 2) m.set(d[i], d[i + 1])
    return m
  }

  /** @internal */
  readSet(d: unknown): Set<unknown> {
    if (!Array.isArray(d)) throw new SerializationError('Malformed Set in payload.')
    return new Set(d)
  }
}

function pickFields(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(e)) {
    if (key !== 'message' && key !== 'stack' && key !== 'code' && key !== 'name') out[key] = (e as unknown as Record<string, unknown>)[key]
  }
  return out
}

function assignSafe<T extends object>(target: T, data: unknown): T {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return target
  for (const key of Object.keys(data)) {
    if (FORBIDDEN_KEYS.has(key)) continue
    Object.defineProperty(target, key, { value: (data as Record<string, unknown>)[key], writable: true, enumerable: true, configurable: true })
  }
  return target
}

/** Refuses a decoded instance that lacks a field its class registration declares (`fields`). */
function checkFields(entry: ClassEntry, version: number, value: unknown): void {
  const missing =
    typeof value === 'object' && value !== null
      ? entry.fields.filter((f) => !Object.hasOwn(value, f) || (value as Record<string, unknown>)[f] === undefined)
      : entry.fields
  if (missing.length === 0) return
  throw new SerializationError(
    `Decoded "${entry.name}" (written at version ${version}) lacks required field(s) ${missing.join(', ')}: ` +
      (entry.decode ? 'its decode hook must read every field of that version.' : 'the sender wrote another shape; register a decode hook that migrates it.'),
  )
}
