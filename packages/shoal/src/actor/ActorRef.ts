/**
 * ActorRef: the typed handle through which everything outside an actor reaches it.
 *
 * A ref exposes the actor's declared distributed methods, each returning a promise; it works the
 * same for a local actor and for one on another node, and can be passed in arguments and return
 * values (it arrives on the other node as a working ref).
 *
 * Refs made by `spawn` or `resolve(Class, id)` know the class: calling an undeclared method
 * rejects with `MethodNotDistributedError` before anything is sent. Refs that arrive inside a
 * message do not know the class locally; the target node checks the method instead.
 * @module
 */

import { ConfigError, MethodNotDistributedError, markNotDelivered } from '../errors.ts'
import { REF_PARTS, type RefParts } from '../serialization/Serialization.ts'
import type { ActorId } from './ActorId.ts'
import type { ActorClassInfo, DistributedActor } from './DistributedActor.ts'
import type { Invoker, Route } from './Route.ts'

export type { Invoker }

/** Longest call timeout: the largest delay a Node timer supports (about 24.8 days). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1

type AnyFn = (...args: never[]) => unknown

/** Names of the methods of T that a ref exposes (own methods, not DistributedActor's). */
export type MethodNames<T> = {
  [K in keyof T]: K extends keyof DistributedActor | EventSourcedHooks ? never : T[K] extends AnyFn ? K : never
}[keyof T] &
  string

/** Members of EventSourcedActor that are hooks, not distributed methods. */
type EventSourcedHooks = 'initialState' | 'applyEvent' | 'tagsFor' | 'onRecovered' | 'emit'

/** Promise-returning versions of T's methods. */
export type RefMethods<T> = {
  readonly [K in MethodNames<T>]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never
}

/** Members every ref has, whatever the actor class. */
export interface ActorRefCommon<T> {
  /** The target actor's id; `toString()` it to pass it out of band. */
  readonly id: ActorId
  /**
   * Sends a one-way message: no reply, no timeout, no error reported back. Use for notifications.
   * Encoding errors throw synchronously; delivery failures are logged and counted, not raised.
   */
  tell<K extends MethodNames<T>>(method: K, ...args: T[K] extends (...a: infer A) => unknown ? A : never): void
  /** A view of this ref whose calls time out after `ms` milliseconds instead of the system default. */
  withTimeout(ms: number): ActorRef<T>
}

/**
 * A typed reference to an actor of class T, local or remote. `ActorRef<any>` (the type of an
 * actor's `self`) is `any`, so it can be passed where a ref to the concrete class is expected.
 */
export type ActorRef<T> = 0 extends 1 & T ? any : RefMethods<T> & ActorRefCommon<T> // eslint-disable-line @typescript-eslint/no-explicit-any

export const INVOKER = Symbol('shoal.ref.invoker')

/** Property names that tools probe on any object (test matchers, inspectors, promises): never calls. */
const PROBES = new Set(['then', 'asymmetricMatch', 'toAsymmetricMatcher', 'nodeType', 'tagName', 'inspect', 'jasmineToString'])
const METHOD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/

/** Runtime class of every ref (not exported from `shoal`: refs are typed as `ActorRef<T>`). */
export class ActorRefImpl {
  readonly id: ActorId
  /** Per-call timeout in ms for calls through this ref; undefined = system default. */
  readonly timeout: number | undefined
  /** Class metadata when known (typed ref); undefined for refs decoded from messages. */
  readonly info: ActorClassInfo | undefined
  readonly [INVOKER]: Invoker
  /** The route to the actor, asked of the invoker on the first call and kept (the dispatcher's slot). */
  route: Route | undefined

  constructor(invoker: Invoker, id: ActorId, info: ActorClassInfo | undefined, timeout: number | undefined, route: Route | undefined) {
    this[INVOKER] = invoker
    this.id = id
    this.info = info
    this.timeout = timeout
    this.route = route
  }

  tell(method: string, ...args: unknown[]): void {
    if (this.info && !this.info.methods.has(method)) {
      throw new MethodNotDistributedError(
        `${this.info.name}.${method} is not a distributed method: declare it with @distributed (or list it in static distributed) to send to it.`,
      )
    }
    this[INVOKER].tell(this, method, args)
  }

  withTimeout(ms: number): ActorRefImpl {
    if (!Number.isFinite(ms) || ms <= 0 || ms > MAX_TIMEOUT_MS) {
      throw new ConfigError(`withTimeout(${ms}): a timeout is a number of milliseconds in 1..${MAX_TIMEOUT_MS}.`)
    }
    return makeRef(this[INVOKER], this.id, this.info, ms, this.route)
  }

  [REF_PARTS](): RefParts {
    const { node, path, incarnation } = this.id
    return [node.endpoint.name, node.endpoint.host, node.endpoint.port, node.uid, path, incarnation]
  }

  toString(): string {
    return `ActorRef(${this.id.toString()})`
  }

  toJSON(): string {
    return this.id.toString()
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }
}

// Names not found on the ref or its class prototype land here.
Object.setPrototypeOf(
  ActorRefImpl.prototype,
  new Proxy(Object.create(null) as object, {
    get(_target, prop, receiver: ActorRefImpl) {
      if (typeof prop !== 'string' || PROBES.has(prop) || !METHOD_NAME.test(prop)) return undefined
      if (receiver.info) {
        const className = receiver.info.name
        return () =>
          Promise.reject(
            markNotDelivered(
              new MethodNotDistributedError(
                `${className}.${prop} is not a distributed method: declare it with @distributed (or list it in static distributed) to call it through a ref.`,
              ),
            ),
          )
      }
      return (...args: unknown[]) => receiver[INVOKER].invoke(receiver, prop, args)
    },
  }),
)

type RefCtor = new (invoker: Invoker, id: ActorId, info: ActorClassInfo | undefined, timeout: number | undefined, route: Route | undefined) => ActorRefImpl
const refClasses = new WeakMap<ActorClassInfo, RefCtor>()

/** One subclass per actor class, with a method per declared name: calls stay monomorphic and fast. */
function refClassFor(info: ActorClassInfo | undefined): RefCtor {
  if (!info) return ActorRefImpl
  let cls = refClasses.get(info)
  if (!cls) {
    cls = class TypedActorRef extends ActorRefImpl {}
    for (const name of info.methods.keys()) {
      Object.defineProperty(cls.prototype, name, {
        value: function (this: ActorRefImpl, ...args: unknown[]) {
          return this[INVOKER].invoke(this, name, args)
        },
      })
    }
    refClasses.set(info, cls)
  }
  return cls
}

/** Creates a ref; typed when `info` is given (not exported from `shoal`). */
export function makeRef(invoker: Invoker, id: ActorId, info: ActorClassInfo | undefined, timeout: number | undefined, route: Route | undefined): ActorRefImpl {
  const Ref = refClassFor(info)
  return new Ref(invoker, id, info, timeout, route)
}

/** True for any actor ref. */
export function isActorRef(value: unknown): value is ActorRef<unknown> {
  return value instanceof ActorRefImpl
}
