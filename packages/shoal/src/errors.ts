/**
 * Errors raised by Shoal. Every error is a {@link ShoalError} with a stable `code`
 * that callers can switch on; messages say what happened and what to do.
 *
 * `instanceof` works across duplicate copies of the library (two versions in one
 * `node_modules`) because each class checks a `Symbol.for` brand, not identity.
 *
 * @module
 */

/** The stable codes of every error Shoal raises. */
export const ErrorCode = {
  Timeout: 'SHOAL_TIMEOUT',
  ActorNotFound: 'SHOAL_ACTOR_NOT_FOUND',
  NodeUnreachable: 'SHOAL_NODE_UNREACHABLE',
  NodeDown: 'SHOAL_NODE_DOWN',
  SystemShutDown: 'SHOAL_SYSTEM_SHUT_DOWN',
  MethodNotDistributed: 'SHOAL_METHOD_NOT_DISTRIBUTED',
  Serialization: 'SHOAL_SERIALIZATION',
  Overloaded: 'SHOAL_OVERLOADED',
  Remote: 'SHOAL_REMOTE',
  Protocol: 'SHOAL_PROTOCOL',
  Handshake: 'SHOAL_HANDSHAKE',
  Config: 'SHOAL_CONFIG',
  Aborted: 'SHOAL_ABORTED',
  SingletonUnavailable: 'SHOAL_SINGLETON_UNAVAILABLE',
  VirtualActorUnavailable: 'SHOAL_VIRTUAL_ACTOR_UNAVAILABLE',
  JournalConflict: 'SHOAL_JOURNAL_CONFLICT',
  JournalUnavailable: 'SHOAL_JOURNAL_UNAVAILABLE',
  JournalDecode: 'SHOAL_JOURNAL_DECODE',
  JournalLimit: 'SHOAL_JOURNAL_LIMIT',
  JournalFailed: 'SHOAL_JOURNAL_FAILED',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

const brand = (code: string): symbol => Symbol.for(`shoal.error.${code}`)
const BASE = Symbol.for('shoal.error')

/** Base class of all Shoal errors. Check `err.code` rather than the message. */
export class ShoalError extends Error {
  readonly code: string
  /**
   * True when the call is known never to have started: refused before its method ran (no such
   * actor, stopped before its turn, mailbox full, node shutting down) or never sent (node in
   * reconnect backoff or known down). Retrying such a call cannot run it twice. Absent (undefined)
   * means it may or may not have run.
   */
  declare readonly notDelivered?: true
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
    Object.defineProperty(this, BASE, { value: true })
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true
    if (this === ShoalError) return (value as Record<symbol, unknown>)[BASE] === true
    const own = (this as unknown as { BRAND?: symbol }).BRAND
    return own !== undefined && (value as Record<symbol, unknown>)[own] === true
  }
}

/**
 * The base of each concrete error class: a class per code, branded so `instanceof` also works for
 * instances made by another copy of the library.
 */
function coded(code: ErrorCode) {
  const BRAND = brand(code)
  return class extends ShoalError {
    static readonly BRAND = BRAND
    constructor(message: string, options?: ErrorOptions) {
      super(code, message, options)
      Object.defineProperty(this, BRAND, { value: true })
    }
  }
}

/** A call got no reply within its timeout (default 5 s; `callTimeout` per system or `withTimeout` per call). */
export class TimeoutError extends coded(ErrorCode.Timeout) {}

/** The target actor does not exist (never spawned, stopped, or on an older incarnation of its node). */
export class ActorNotFoundError extends coded(ErrorCode.ActorNotFound) {}

/**
 * The actor stopped because its `onStart` threw (an event-sourced actor's recovery failed, say);
 * `cause` is what it threw. An ActorNotFoundError (same code, not delivered): the method never ran.
 * Retrying at once usually fails the same way: fix the cause first.
 */
export class ActorStartFailedError extends ActorNotFoundError {}

/** The target node cannot be reached right now (connection refused or lost). Retrying later may succeed. */
export class NodeUnreachableError extends coded(ErrorCode.NodeUnreachable) {}

/** The target node is known to be gone for good (downed, or replaced by a new incarnation). Do not retry. */
export class NodeDownError extends coded(ErrorCode.NodeDown) {}

/** The local system is shutting down or has shut down; no more calls are accepted. */
export class SystemShutDownError extends coded(ErrorCode.SystemShutDown) {
  constructor(message = 'The actor system has shut down; start a new ClusterSystem to make calls.') {
    super(message)
  }
}

/** The method is not declared `@distributed` (or in `static distributed = [...]`) on the target class. */
export class MethodNotDistributedError extends coded(ErrorCode.MethodNotDistributed) {}

/**
 * A call through a cluster singleton proxy found no instance to run it: none was allocated within
 * the allocation timeout (is any node with the singleton's role up? is this side of a partition
 * being downed?), or the proxy's buffer was full and this was its oldest call. Never started
 * (`notDelivered`): safe to retry.
 */
export class SingletonUnavailableError extends coded(ErrorCode.SingletonUnavailable) {}

/**
 * A call to a virtual actor found no node to run it in time: its type is hosted by no up member
 * (did every node with the type's role call `virtualActors.host`?), its shard is waiting for a
 * crashed owner's margin, or this node's side of a partition is not confirmed. Never started
 * (`notDelivered`): safe to retry.
 */
export class VirtualActorUnavailableError extends coded(ErrorCode.VirtualActorUnavailable) {}

/**
 * The journal refused a write because an event with that persistence id and sequence number
 * exists: another activation of the same entity wrote first. The actor must restart and recover.
 */
export class JournalConflictError extends coded(ErrorCode.JournalConflict) {}

/** The event store cannot be reached (or failed mid-write): the write may or may not have landed. Retry after the actor recovers. */
export class JournalUnavailableError extends coded(ErrorCode.JournalUnavailable) {}

/** A stored event or snapshot cannot be decoded (unknown type or version, corrupt bytes); names the persistence id and sequence number. */
export class JournalDecodeError extends coded(ErrorCode.JournalDecode) {}

/** An event or snapshot is larger than the configured limit, or a persistence id or tag is invalid. Nothing was written. */
export class JournalLimitError extends coded(ErrorCode.JournalLimit) {}

/**
 * An earlier write of this actor failed or is ambiguous, so its in-memory state may differ from
 * the journal: every later emit fails until the actor restarts and recovers from the store.
 */
export class JournalFailedError extends coded(ErrorCode.JournalFailed) {}

/** A value could not be encoded or decoded: unregistered class, limit exceeded, malformed bytes. */
export class SerializationError extends coded(ErrorCode.Serialization) {}

/** A bounded queue is full (outbound bytes to a node, a mailbox, a connect buffer). Back off and retry. */
export class OverloadedError extends coded(ErrorCode.Overloaded) {}

/**
 * A remote method threw an error whose class is not registered for serialization here.
 * `remoteName`, `message` and `remoteCode` are copied from the original; `remoteStack` only when the
 * remote system has `remoteStackTraces: true`.
 */
export class RemoteCallError extends coded(ErrorCode.Remote) {
  readonly remoteName: string
  readonly remoteCode: string | undefined
  readonly remoteStack: string | undefined
  constructor(remoteName: string, message: string, remoteCode?: string, remoteStack?: string) {
    super(message)
    this.remoteName = remoteName
    this.remoteCode = remoteCode
    this.remoteStack = remoteStack
  }
}

/** A peer broke the wire protocol (bad frame, oversized frame, unknown message). The association is closed. */
export class ProtocolError extends coded(ErrorCode.Protocol) {}

/** A handshake was refused (version mismatch, wrong secret, wrong target, tombstoned node). */
export class HandshakeError extends coded(ErrorCode.Handshake) {}

/** Invalid settings passed to `ClusterSystem.start` or another API. */
export class ConfigError extends coded(ErrorCode.Config) {}

/**
 * A wait was given up through its `AbortSignal` (e.g. `system.watch(ref, { signal })`) for a reason
 * other than a timeout (a timeout rejects with TimeoutError). The signal's reason is `cause`.
 */
export class AbortedError extends coded(ErrorCode.Aborted) {}

/** Error classes of Shoal itself, registered for serialization in every system so they cross the wire intact. */
export const builtinErrorClasses = [
  TimeoutError,
  ActorNotFoundError,
  ActorStartFailedError,
  NodeUnreachableError,
  NodeDownError,
  SystemShutDownError,
  MethodNotDistributedError,
  SerializationError,
  OverloadedError,
  ProtocolError,
  HandshakeError,
  ConfigError,
  AbortedError,
  SingletonUnavailableError,
  VirtualActorUnavailableError,
  JournalConflictError,
  JournalUnavailableError,
  JournalDecodeError,
  JournalLimitError,
  JournalFailedError,
] as const

/** @internal Marks `e` (if it is an object) as never delivered to its method; returns it. */
export function markNotDelivered<E>(e: E): E {
  if (typeof e === 'object' && e !== null && !Object.isFrozen(e)) Object.defineProperty(e, 'notDelivered', { value: true, configurable: true })
  return e
}

/** True if `e` is known never to have reached its method (see `ShoalError.notDelivered`). */
export function isNotDelivered(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { notDelivered?: unknown }).notDelivered === true
}
