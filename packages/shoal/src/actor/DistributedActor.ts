/**
 * DistributedActor: the base class of every actor, and the `@distributed` decorator that declares
 * which methods may be called through a ref.
 *
 * ```ts
 * class Island extends DistributedActor {
 *   private rocks = 0
 *   @distributed async addRock(n: number) { this.rocks += n; return this.rocks }
 * }
 * ```
 *
 * Plain JavaScript (no decorator syntax on Node 20) declares the same with
 * `static distributed = ['addRock']`.
 *
 * Actors are created only by `system.spawn(Class, ...args)`; `new Island()` throws.
 * @module
 */
import type { Logger } from 'pino'
import { ConfigError } from '../errors.ts'
import { REF_PARTS, type Referenceable, type RefParts } from '../serialization/Serialization.ts'
import type { ActorCell } from './ActorCell.ts'
import { ActorId } from './ActorId.ts'
import type { ActorRef } from './ActorRef.ts'
import type { ActorSystem } from './ActorSystem.ts'
import type { TerminationReason } from './Termination.ts'

/** Options of `@distributed(...)`. */
export interface DistributedOptions {
  /**
   * Let this method run while another call's turn is suspended at an `await` (default false).
   * Use for read-only queries that must not wait behind long turns. Gotcha: state read before an
   * `await` may have changed after it.
   */
  readonly interleave?: boolean
}

/** A declared distributed method. */
export interface MethodInfo {
  readonly interleave: boolean
  /** The implementation on the class prototype (an own field of the same name cannot shadow it). */
  readonly fn: Function
}

/** What Shoal knows about one actor class, computed once per class. */
export interface ActorClassInfo {
  readonly ctor: ActorClass
  readonly name: string
  /** Declared distributed methods by name; the only names a caller can reach. */
  readonly methods: ReadonlyMap<string, MethodInfo>
  /** Every call interleaves (class-level `static interleave = true`). */
  readonly interleaveAll: boolean
}

/** A class that extends {@link DistributedActor}. */
export type ActorClass<T extends DistributedActor = DistributedActor, A extends unknown[] = never[]> = new (...args: A) => T

/** Names a distributed method may not have: they belong to refs, promises or the object model. */
export const RESERVED_METHOD_NAMES: ReadonlySet<string> = new Set([
  'id',
  'tell',
  'withTimeout',
  'then',
  'catch',
  'finally',
  'constructor',
  'toString',
  'toJSON',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__proto__',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
  'stop',
  'deactivateOnIdle',
  'onStart',
  'onStop',
  'system',
  'log',
  'self',
  'watch',
  'unwatch',
  'isWatching',
  'onTerminated',
  'onPassivate',
])

const declared = new WeakMap<Function, DistributedOptions>()
const infos = new WeakMap<Function, ActorClassInfo>()

type MethodDecorator = (method: Function, context: ClassMethodDecoratorContext) => void

/**
 * Declares a method callable through actor refs (TC39 standard decorator).
 *
 * Usable bare (`@distributed`) or with options (`@distributed({ interleave: true })`).
 * Only declared methods are reachable from refs, locally and from remote nodes; everything else
 * (other methods, getters, fields, the constructor, prototype members) is refused with
 * `MethodNotDistributedError`.
 */
export function distributed(method: Function, context: ClassMethodDecoratorContext): void
export function distributed(options: DistributedOptions): MethodDecorator
export function distributed(arg: Function | DistributedOptions, context?: ClassMethodDecoratorContext): void | MethodDecorator {
  if (typeof arg === 'function') {
    mark(arg, context!, {})
    return
  }
  const options = arg
  return (method, ctx) => mark(method, ctx, options)
}

function mark(method: Function, context: ClassMethodDecoratorContext, options: DistributedOptions): void {
  if (context.kind !== 'method' || context.static || context.private || typeof context.name !== 'string') {
    throw new ConfigError(`@distributed applies to public instance methods only (got ${context.kind} ${String(context.name)}).`)
  }
  if (RESERVED_METHOD_NAMES.has(context.name)) {
    throw new ConfigError(`"${context.name}" cannot be a distributed method name: it is reserved by actor refs. Rename the method.`)
  }
  declared.set(method, options)
}

/** Computes (once) and returns the metadata of an actor class. */
export function actorClassInfo(ctor: ActorClass): ActorClassInfo {
  let info = infos.get(ctor)
  if (info) return info
  if (!(ctor.prototype instanceof DistributedActor)) {
    throw new ConfigError(`${ctor.name || 'This class'} does not extend DistributedActor: actors must extend it.`)
  }
  const methods = new Map<string, MethodInfo>()
  const staticInterleave = (ctor as unknown as { interleave?: unknown }).interleave
  const interleaveNames = new Set(Array.isArray(staticInterleave) ? staticInterleave.filter((n): n is string => typeof n === 'string') : [])
  // Walk from the base class down so subclasses override options of the same name.
  const chain: Function[] = []
  for (let c: Function | null = ctor; c && c !== DistributedActor; c = Object.getPrototypeOf(c) as Function | null) chain.unshift(c)
  for (const c of chain) {
    const proto = c.prototype as Record<string, unknown>
    for (const name of Object.getOwnPropertyNames(proto)) {
      const desc = Object.getOwnPropertyDescriptor(proto, name)
      const fn = desc?.value
      if (typeof fn !== 'function') continue
      const options = declared.get(fn)
      if (options) methods.set(name, { interleave: options.interleave === true || interleaveNames.has(name), fn })
    }
    const list = Object.prototype.hasOwnProperty.call(c, 'distributed') ? (c as unknown as { distributed: unknown }).distributed : undefined
    if (list !== undefined) {
      if (!Array.isArray(list)) throw new ConfigError(`${c.name}.distributed must be an array of method names.`)
      for (const name of list) {
        const desc = typeof name === 'string' ? ownerDescriptor(proto, name) : undefined
        if (typeof name !== 'string' || RESERVED_METHOD_NAMES.has(name) || typeof desc?.value !== 'function') {
          throw new ConfigError(`${c.name}.distributed lists "${String(name)}", which is not a public method of the class (or is a reserved name).`)
        }
        methods.set(name, { interleave: interleaveNames.has(name), fn: desc!.value as Function })
      }
    }
  }
  // Resolve each name to the most-derived implementation (an override without the decorator still counts).
  for (const [name, m] of methods) {
    const desc = ownerDescriptor(ctor.prototype as object, name)
    if (typeof desc?.value === 'function' && desc.value !== m.fn) methods.set(name, { ...m, fn: desc.value as Function })
  }
  info = { ctor, name: ctor.name || 'Actor', methods, interleaveAll: staticInterleave === true }
  infos.set(ctor, info)
  return info
}

function ownerDescriptor(proto: object, name: string): PropertyDescriptor | undefined {
  for (let p: object | null = proto; p && p !== DistributedActor.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const desc = Object.getOwnPropertyDescriptor(p, name)
    if (desc) return desc
  }
  return undefined
}

/** What `watch` accepts: a ref, an actor, or an id. */
export type WatchTarget = ActorRef<unknown> | DistributedActor | ActorId | { readonly id: ActorId }

/** @internal The id of a watch target. */
export function targetId(target: WatchTarget): ActorId {
  const id = target instanceof ActorId ? target : (target as { id?: unknown }).id
  if (!(id instanceof ActorId)) throw new ConfigError(`Cannot watch ${String(target)}: pass an actor ref, an actor or an ActorId.`)
  return id
}

/** The cell being constructed: `system.spawn` sets it around `new Class()` so the base constructor can bind. */
let constructing: ActorCell | undefined

/** @internal Runs `create` with `cell` available to the DistributedActor constructor. */
export function withConstructingCell<T>(cell: ActorCell, create: () => T): T {
  const outer = constructing
  constructing = cell
  try {
    return create()
  } finally {
    constructing = outer
  }
}

let cellOf: (actor: DistributedActor) => ActorCell

/** @internal */
export function actorCell(actor: DistributedActor): ActorCell {
  return cellOf(actor)
}

/**
 * Base class of actors. Subclass it, declare methods with `@distributed`, create instances with
 * `system.spawn(Class, ...args)`.
 *
 * Execution is turn-based: one call at a time, and a call's turn lasts until its promise settles.
 * A call from the same call chain (A → B → A, across nodes too) re-enters instead of deadlocking.
 */
export abstract class DistributedActor {
  readonly #cell: ActorCell

  static {
    cellOf = (actor) => actor.#cell
  }

  constructor() {
    const cell = constructing
    if (!cell) throw new ConfigError(`Create actors with system.spawn(${new.target.name}, ...args), not with new.`)
    constructing = undefined
    this.#cell = cell
  }

  /** This actor's id: node, path and incarnation. */
  get id(): ActorId {
    return this.#cell.id
  }

  /** The system hosting this actor. */
  get system(): ActorSystem {
    return this.#cell.system
  }

  /** A pino logger bound to this actor's id (created on first use, so idle actors stay small). */
  get log(): Logger {
    return this.#cell.logger()
  }

  /**
   * A ref to this actor, to hand to others. Calls through it go through the mailbox like any other.
   *
   * Gotcha: typed loosely, because TypeScript cannot relate `ActorRef<this>` to `ActorRef<MyClass>`
   * inside the class; it is assignable wherever a ref to this class is expected. Passing `this` in
   * a call's arguments also works: an actor is sent as its ref.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get self(): ActorRef<any> {
    return this.#cell.ref() as ActorRef<this>
  }

  /** @internal Actors cross the wire as their refs. */
  [REF_PARTS](): RefParts {
    return (this.#cell.ref() as Referenceable)[REF_PARTS]()
  }

  /**
   * Stops this actor after the current turn: queued and later calls fail with `ActorNotFoundError`,
   * then `onStop` runs. Returns at once (awaiting the stop inside a turn would wait for itself).
   */
  stop(): void {
    void this.#cell.stop()
  }

  /**
   * Asks to be stopped as soon as no call runs or waits: after the current turn, unless more calls
   * are queued (then after the last of them). For a virtual actor this is early passivation:
   * `onStop` runs, and the next call activates it again (on whichever node owns it then). For a
   * spawned actor it is a `stop()` that lets queued calls finish first.
   *
   * When to use: a virtual actor that knows it is done (a finished game session, a closed
   * order), so its memory is freed before the idle timeout. Gotcha: calls made during `onStop`
   * are refused as not delivered; a virtual actor's caller retries them on the next activation.
   */
  deactivateOnIdle(): void {
    this.#cell.stopWhenIdle()
  }

  /**
   * Watches another actor (local or remote): `onTerminated(id, reason)` runs once, as a turn of
   * this actor, when it stops (`'stopped'`), when its node is down, removed, shut down or replaced
   * (`'node-down'`), or at once if it does not exist (`'not-found'`). Watching twice is one watch.
   *
   * Details: the watched actor's node is told by a system message that is acknowledged and
   * redelivered, so a dropped connection loses neither the watch nor the termination. Without
   * cluster membership, a remote node that crashes (rather than shutting down) is never reported:
   * run clustered to learn of crashes.
   */
  watch(target: WatchTarget): void {
    this.#cell.host.watchFrom(this.#cell, targetId(target))
  }

  /** Stops watching: no `onTerminated` for `target` runs after this, even if one was on its way. */
  unwatch(target: WatchTarget): void {
    this.#cell.host.unwatchFrom(this.#cell, targetId(target))
  }

  /** True while `target` is watched and its termination has not been handled. */
  isWatching(target: WatchTarget): boolean {
    return this.#cell.host.isWatchingFrom(this.#cell, targetId(target))
  }

  /** A watched actor terminated (see `watch`). Runs as a turn; a throw is logged. */
  onTerminated?(id: ActorId, reason: TerminationReason): void | Promise<void>

  /**
   * Called, as a turn, before a service moves this actor elsewhere: a cluster singleton handing
   * over to another node (or a virtual actor being deactivated). Save or flush state here;
   * it is awaited with a bound (the service's `passivateTimeout`), then the actor stops.
   */
  onPassivate?(): void | Promise<void>

  /** Called before the first call is delivered; calls wait until it settles. Throwing stops the actor. */
  onStart?(): void | Promise<void>

  /** Called once when the actor stops (by `stop`, `system.stop` or shutdown), after its last turn. */
  onStop?(): void | Promise<void>
}
