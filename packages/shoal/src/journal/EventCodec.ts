/**
 * Events and snapshots to bytes and back, with schema evolution. Every event is an object with a
 * string `type`; it is stored with that type name and the type's current version, encoded with the
 * system's serialization (MessagePack, with the same limits and class registry as calls). On
 * replay, an event stored at an older version is migrated by the registered upcasters, one version
 * at a time. Anything that cannot be read back — bytes that do not decode, a version newer than
 * this code knows, a missing or failing upcaster — is a `JournalDecodeError` naming the persistence
 * id and sequence number: never skipped (the reference store silently drops such events).
 * @module
 */
import { ConfigError, JournalDecodeError, JournalLimitError } from '../errors.ts'
import type { Serialization } from '../serialization/Serialization.ts'
import type { StoredEvent } from './EventStore.ts'

/** What every event is: a plain object (or registered class instance) with a `type` name. */
export interface JournalEventShape {
  readonly type: string
}

/** How one event type evolves. */
export interface EventSchema {
  /** The version written now. Default 1. */
  readonly version?: number
  /**
   * Migrations: `upcasters[v]` turns the payload of a version-`v` event into version `v + 1`.
   * Needed for every version from the oldest stored one up to `version - 1`.
   */
  readonly upcasters?: Readonly<Record<number, (old: Record<string, unknown>) => Record<string, unknown>>>
}

/** An encoded event, ready for the store. */
export interface EncodedEvent {
  readonly type: string
  readonly version: number
  readonly payload: Uint8Array
}

/** Encodes and decodes events and snapshots for one journal; see the module comment. */
export class EventCodec {
  readonly #serialization: Serialization
  readonly #schemas = new Map<string, { version: number; upcasters: EventSchema['upcasters'] }>()
  readonly #maxEventBytes: number

  constructor(serialization: Serialization, maxEventBytes: number) {
    this.#serialization = serialization
    this.#maxEventBytes = maxEventBytes
  }

  /** Declares the current version of event type `type` and its upcasters. */
  register(type: string, schema: EventSchema): void {
    const version = schema.version ?? 1
    if (!Number.isInteger(version) || version < 1) throw new ConfigError(`Event type ${type}: version must be a whole number ≥ 1 (got ${schema.version}).`)
    for (let v = 1; v < version; v++) {
      // Versions below the oldest upcaster were never written; a gap in between is a mistake.
      const has = schema.upcasters?.[v] !== undefined
      const later = Object.keys(schema.upcasters ?? {}).some((k) => Number(k) < v)
      if (!has && later) throw new ConfigError(`Event type ${type}: no upcaster from version ${v} to ${v + 1}, but there is one from an older version.`)
    }
    this.#schemas.set(type, { version, upcasters: schema.upcasters })
  }

  /** Encodes an event; throws JournalLimitError above `maxEventBytes` or for a bad `type`. */
  encode(event: JournalEventShape): EncodedEvent {
    const type = (event as { type?: unknown } | null)?.type
    if (typeof type !== 'string' || type.length === 0 || type.length > 256)
      throw new JournalLimitError(`An event must be an object with a string "type" of 1..256 characters (got ${typeof type}).`)
    const payload = this.#serialization.encode(event)
    if (payload.length > this.#maxEventBytes)
      throw new JournalLimitError(
        `Event ${type} is ${payload.length} bytes, above maxEventBytes (${this.#maxEventBytes}): store large data elsewhere and emit a reference.`,
      )
    return { type, version: this.#schemas.get(type)?.version ?? 1, payload }
  }

  /** Decodes and upcasts a stored event; throws JournalDecodeError naming where. */
  decode(e: StoredEvent): JournalEventShape {
    const where = `event ${e.seq} of ${JSON.stringify(e.persistenceId)} (type ${e.type}, version ${e.version})`
    let value: unknown
    try {
      value = this.#serialization.decode(e.payload)
    } catch (err) {
      throw new JournalDecodeError(`Cannot decode ${where}: ${(err as Error).message}`, { cause: err })
    }
    if (typeof value !== 'object' || value === null) throw new JournalDecodeError(`Cannot decode ${where}: the payload is not an object.`)
    const schema = this.#schemas.get(e.type) ?? { version: 1, upcasters: undefined }
    if (e.version > schema.version)
      throw new JournalDecodeError(
        `Cannot decode ${where}: it was written by newer code (this code knows version ${schema.version}). Deploy the newer code everywhere, or register the new version here.`,
      )
    let current = value as Record<string, unknown>
    for (let v = e.version; v < schema.version; v++) {
      const up = schema.upcasters?.[v]
      if (!up) throw new JournalDecodeError(`Cannot decode ${where}: no upcaster from version ${v} to ${v + 1} is registered.`)
      try {
        current = up(current)
      } catch (err) {
        throw new JournalDecodeError(`Cannot decode ${where}: the upcaster from version ${v} failed: ${(err as Error).message}`, { cause: err })
      }
    }
    if (current?.type !== e.type) throw new JournalDecodeError(`Cannot decode ${where}: after decoding, its type is ${JSON.stringify(current?.type)}.`)
    return current as unknown as JournalEventShape
  }

  /** Encodes a state for a snapshot; throws JournalLimitError above `max` bytes. */
  encodeState(state: unknown, max: number): Uint8Array {
    const bytes = this.#serialization.encode(state)
    if (bytes.length > max) throw new JournalLimitError(`The snapshot is ${bytes.length} bytes, above maxSnapshotBytes (${max}).`)
    return bytes
  }

  /** Decodes a snapshot's state; throws JournalDecodeError. */
  decodeState(bytes: Uint8Array, persistenceId: string, seq: number): unknown {
    try {
      return this.#serialization.decode(bytes)
    } catch (err) {
      throw new JournalDecodeError(`Cannot decode the snapshot of ${JSON.stringify(persistenceId)} at ${seq}: ${(err as Error).message}`, { cause: err })
    }
  }
}
