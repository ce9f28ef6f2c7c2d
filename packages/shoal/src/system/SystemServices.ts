/**
 * SystemServices: the one port through which built-in cluster services (membership, receptionist,
 * lifecycle watch, clusterd, SWIM's stream link) and plugins reach the parts of a system that are
 * not public API. Built by the system; never on the system's own surface.
 *
 * Built-in services take the flat members (each declares the part it uses as its own `…Host`
 * interface); plugins get the grouped {@link PluginContext} made by `pluginContext`.
 * @module
 */
import type { Logger } from 'pino'
import type { ActorId } from '../actor/ActorId.ts'
import { type ActorRef, ActorRefImpl } from '../actor/ActorRef.ts'
import type { ActorSystem } from '../actor/ActorSystem.ts'
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { type ActorClass, actorClassInfo, type DistributedActor } from '../actor/DistributedActor.ts'
import type { LocalActors } from '../actor/LocalActors.ts'
import type { ControlChannel, ControlHandler, ControlTarget } from '../control/ControlChannel.ts'
import type { ControlRouter } from '../control/ControlRouter.ts'
import { ConfigError } from '../errors.ts'
import type { Remoting } from '../remoting/Remoting.ts'
import type { Dispatcher } from './Dispatcher.ts'
import type { PluginActors, PluginCalls, PluginContext, PluginNodes } from './Plugin.ts'

export interface SystemParts {
  readonly system: ActorSystem
  node(): ClusterNode
  readonly log: Logger
  readonly actors: LocalActors
  readonly remoting: Remoting
  readonly control: ControlRouter
  readonly dispatcher: Dispatcher
  /** The system's one monotonic clock (`ClusterSystem.now()`). */
  now(): number
  shutdown(): Promise<void>
}

/** The port built-in services and plugins use (see the module comment). */
export class SystemServices implements ControlChannel {
  readonly #parts: SystemParts
  readonly calls: PluginCalls
  readonly actors: PluginActors
  readonly nodes: PluginNodes

  constructor(parts: SystemParts) {
    this.#parts = parts
    const { actors, dispatcher, remoting } = parts
    this.calls = {
      forward: (ref, method, args, chain, timeout, headers) => {
        if (!(ref instanceof ActorRefImpl)) throw new ConfigError(`forward(${String(ref)}): pass an actor ref.`)
        return dispatcher.forward(ref, method, args, chain, timeout, headers)
      },
      route: (ref) => {
        if (!(ref instanceof ActorRefImpl)) throw new ConfigError(`route(${String(ref)}): pass an actor ref.`)
        return (ref.route ??= dispatcher.routeTo(ref.id))
      },
    }
    this.actors = {
      runTurn: (id, fn, options) => actors.runTurn(id, fn, options),
      guard: (id, check) => actors.guard(id, check),
      registerWellKnown: (path, target) => actors.registerWellKnown(path, target),
      wellKnownRef: <T extends DistributedActor>(path: string, timeout?: number) => actors.wellKnownRef(path, timeout) as unknown as ActorRef<T>,
      refOf: (id, Class) => this.refOf(id, Class) as ActorRef<DistributedActor>,
      registerWellKnownPrefix: (prefix, resolve, options) => actors.registerWellKnownPrefix(prefix, resolve, options),
      spawnAt: (path, Class, create, publicNode, onStopped) => actors.spawnAt(path, Class as unknown as ActorClass, create, publicNode, onStopped),
      target: (id) => actors.cell(id),
    }
    this.nodes = {
      isGone: (uid) => remoting.transport.isTombstoned(uid),
      tombstone: (node) => remoting.transport.tombstone(node),
    }
  }

  get node(): ClusterNode {
    return this.#parts.node()
  }

  get log(): Logger {
    return this.#parts.log
  }

  /** The system's one monotonic clock, ms (`ClusterSystem.now()`): what services decide on. */
  now(): number {
    return this.#parts.now()
  }

  /** The control lane as a ControlChannel (this object, so a test can wrap `sendControl`). */
  get control(): ControlChannel {
    return this
  }

  onControl(kind: number, handler: ControlHandler): void {
    this.#parts.control.onControl(kind, handler)
  }

  sendControl(to: ControlTarget, kind: number, body: Uint8Array): void {
    this.#parts.control.sendControl(to, kind, body)
  }

  connectProblem(to: ControlTarget): string | undefined {
    return this.#parts.remoting.transport.connectProblem(to.host, to.port)
  }

  isTombstoned(uid: string): boolean {
    return this.#parts.remoting.transport.isTombstoned(uid)
  }

  replaceConnection(node: ClusterNode, reason: string, keepConnection?: boolean): void {
    this.#parts.remoting.transport.replaceConnection(node.endpoint.host, node.endpoint.port, reason, keepConnection)
  }

  tombstoneNode(node: ClusterNode): void {
    this.#parts.remoting.transport.tombstone(node)
  }

  /** True if `id` is an actor of this node that has not finished stopping. */
  hasActor(id: ActorId): boolean {
    return this.#parts.actors.cell(id) !== undefined
  }

  /** True if `id` is a live actor of this node. */
  isLocalAlive(id: ActorId): boolean {
    return this.#parts.actors.cell(id)?.alive === true
  }

  /** A ref for `id`, typed by `Class` when given. */
  refOf(id: ActorId, Class: (abstract new (...args: never[]) => DistributedActor) | undefined): unknown {
    const info = Class ? actorClassInfo(Class as unknown as ActorClass) : undefined
    return this.#parts.dispatcher.refTo(id, info)
  }

  shutdown(): Promise<void> {
    return this.#parts.shutdown()
  }

  /** Open sockets of this node's transport (tests of connection handling). */
  get socketCount(): number {
    return this.#parts.remoting.transport.socketCount
  }

  /** The context a plugin gets at start, with its own logger. */
  pluginContext(log: Logger): PluginContext {
    return { system: this.#parts.system, log, control: this, calls: this.calls, actors: this.actors, nodes: this.nodes }
  }
}

const servicesBySystem = new WeakMap<object, SystemServices>()

/** Registers a system's services (the system does, once). */
export function registerServices(system: object, services: SystemServices): void {
  servicesBySystem.set(system, services)
}

/**
 * The services of `system`: for tests and tools inside this repository (exported from
 * `shoal/internal`, not from `shoal`). Plugins get the same parts as their PluginContext.
 */
export function servicesOf(system: object): SystemServices {
  const services = servicesBySystem.get(system)
  if (!services) throw new TypeError('not a ClusterSystem')
  return services
}
