/**
 * LocalActors: the actors of this node. It owns the actor table and the well-known targets,
 * hosts the cells (spawn, stop, turns run for services), and delivers calls to them: the local
 * route of a ref, and the target lookup of calls that arrived from other nodes.
 *
 * The method of a call is checked here, once, where it is delivered, and a refusal is counted
 * (`shoal_refused_total{reason="method"}`) and logged.
 * @module
 */

import type { Logger } from 'pino'
import { ActorNotFoundError, ConfigError, MethodNotDistributedError, markNotDelivered, NodeDownError } from '../errors.ts'
import { type CallTrace, traceRefusal } from '../observability/CallTracing.ts'
import { publishActorSpawn, publishActorStop, publishCallRefused, tracingActive } from '../observability/Channels.ts'
import { MethodStats } from '../observability/MethodStats.ts'
import type { Serialization } from '../serialization/Serialization.ts'
import type { EnvelopeHeaders } from '../wire/Envelope.ts'
import { ActorCell, type CellHost } from './ActorCell.ts'
import { ActorId } from './ActorId.ts'
import { type ActorRefImpl, makeRef } from './ActorRef.ts'
import type { ActorSystem } from './ActorSystem.ts'
import { type ClusterNode, formatNode } from './ClusterNode.ts'
import { type ActorClass, actorClassInfo, type DistributedActor, type MethodInfo, withConstructingCell } from './DistributedActor.ts'
import { type Invocation, type LocalTarget, OneWayInvocation } from './Invocation.ts'
import { type CallLedger, PendingCall, promiseOf, type TimeoutSource } from './PendingCall.ts'
import type { Invoker, Route } from './Route.ts'

/** The uid of the reserved node of virtual actor ids (virtual/VirtualId.ts), routed by each node itself. */
export const ANYWHERE_UID = '0000000000000000'

/** What the actor table needs from its system. */
export interface LocalActorsHost {
  /** This node incarnation (read at use: it is final only once the listener is bound). */
  node(): ClusterNode
  readonly system: ActorSystem
  readonly log: Logger
  readonly ledger: CallLedger
  readonly serialization: Serialization
  readonly maxMailbox: number
  readonly stopTimeout: number
  readonly serializeLocalCalls: boolean
  /** A cell finished `onStart`; a cell stopped (after `onStop`): services and plugins hear it. */
  cellReady(cell: ActorCell): void
  cellStopped(cell: ActorCell): void
}

/** Lifecycle watch as cells use it (`actor.watch(target)`), set once the service starts. */
export interface CellWatch {
  watchFrom(cell: ActorCell, target: ActorId): void
  unwatchFrom(cell: ActorCell, target: ActorId): void
  isWatchingFrom(cell: ActorCell, target: ActorId): boolean
}

/** The actors of this node (see the module comment); built and owned by the system. */
export class LocalActors implements CellHost {
  readonly #host: LocalActorsHost
  readonly #actors = new Map<string, ActorCell>()
  readonly #wellKnown = new Map<string, LocalTarget>()
  /** Per-method figures of the calls served here, sampled only while a dashboard reads them. */
  readonly methodStats = new MethodStats()
  /** Well-known targets by path prefix (a service resolving many paths: virtual actors). */
  readonly #prefixes = new Map<string, PrefixResolver>()
  #invoker: Invoker | undefined
  #watch: CellWatch | undefined
  #pathCounter = 0
  #chainCounter = 0
  #chainPrefix = ''

  constructor(host: LocalActorsHost) {
    this.#host = host
  }

  /** Wires what is built after the table: the refs' invoker, and lifecycle watch. */
  attach(invoker: Invoker, watch: CellWatch): void {
    this.#invoker = invoker
    this.#watch = watch
  }

  // ---- CellHost ----------------------------------------------------------------------------

  get log(): Logger {
    return this.#host.log
  }
  get system(): ActorSystem {
    return this.#host.system
  }
  get maxMailbox(): number {
    return this.#host.maxMailbox
  }
  get stopTimeout(): number {
    return this.#host.stopTimeout
  }

  /** A fresh, globally unique call-chain id. */
  newChain(): string {
    if (this.#chainPrefix === '') this.#chainPrefix = `${this.#host.node().uid}.`
    return this.#chainPrefix + (++this.#chainCounter).toString(36)
  }

  makeSelfRef(cell: ActorCell): unknown {
    if (cell.publicNode) {
      const pub = new ActorId(cell.publicNode, cell.id.path, 0)
      return makeRef(this.#invoker!, pub, cell.info, undefined, this.route(pub))
    }
    return makeRef(this.#invoker!, cell.id, cell.info, undefined, new LocalRoute(this, cell.id, cell))
  }

  cellReady(cell: ActorCell): void {
    this.#host.cellReady(cell)
  }

  cellStopped(cell: ActorCell): void {
    if (this.#actors.get(cell.id.path) === cell) this.#actors.delete(cell.id.path)
    publishActorStop(this.#host.node(), cell.id, cell.info.name, cell.endReason)
    this.#host.cellStopped(cell)
    cell.onStopped?.(cell.id)
  }

  onActorError(cell: ActorCell, where: string, error: unknown): void {
    this.#host.log.error({ err: error, actor: cell.id.toString() }, `actor ${where} failed`)
  }

  watchFrom(cell: ActorCell, target: ActorId): void {
    this.#watch!.watchFrom(cell, target)
  }
  unwatchFrom(cell: ActorCell, target: ActorId): void {
    this.#watch!.unwatchFrom(cell, target)
  }
  isWatchingFrom(cell: ActorCell, target: ActorId): boolean {
    return this.#watch!.isWatchingFrom(cell, target)
  }

  // ---- the table ---------------------------------------------------------------------------

  /** Creates an actor; `onStart` runs as its first turn. */
  spawn(Class: ActorClass, args: unknown[]): unknown {
    const info = actorClassInfo(Class)
    const path = `/user/${info.name}-${(++this.#pathCounter).toString(36)}`
    return this.#spawn(path, info, () => new (Class as new (...a: unknown[]) => DistributedActor)(...args)).ref()
  }

  /**
   * Creates an actor at `path` with `create` (which must construct an instance of `Class`), for
   * services that name their actors; `publicNode`, if given, makes `self` and the actor sent in a
   * call address the well-known id at `path` on that node (a virtual actor's id, not this activation). Throws ConfigError if the path is
   * taken or `create` returns something else; rethrows what the constructor throws.
   */
  spawnAt(path: string, Class: ActorClass, create: () => DistributedActor, publicNode?: ClusterNode, onStopped?: (id: ActorId) => void): ActorCell {
    if (this.#actors.has(path)) throw new ConfigError(`Actor path ${path} is taken on this node.`)
    return this.#spawn(path, actorClassInfo(Class), create, publicNode, onStopped, Class)
  }

  #spawn(
    path: string,
    info: ReturnType<typeof actorClassInfo>,
    create: () => DistributedActor,
    publicNode?: ClusterNode,
    onStopped?: (id: ActorId) => void,
    mustBe?: ActorClass,
  ): ActorCell {
    const incarnation = 1 + Math.floor(Math.random() * 0xfffffffe)
    // Before begin: an onStart that throws at once stops the cell within it, and runs onStopped.
    const cell = new ActorCell(this, new ActorId(this.#host.node(), path, incarnation), info, publicNode, onStopped)
    const actor = withConstructingCell(cell, create)
    if (mustBe && !(actor instanceof mustBe)) throw new ConfigError(`The factory for ${info.name} returned ${String(actor)}, not a ${info.name}.`)
    cell.actor = actor
    this.#actors.set(path, cell)
    publishActorSpawn(this.#host.node(), cell.id, info.name)
    cell.begin()
    return cell
  }

  /** The cell of local actor `id` (this incarnation) that has not finished stopping. */
  cell(id: ActorId): ActorCell | undefined {
    if (id.node.uid !== this.#host.node().uid) return undefined
    const cell = this.#actors.get(id.path)
    return cell && cell.id.incarnation === id.incarnation ? cell : undefined
  }

  /**
   * A local cell, or the well-known target at an incarnation-0 path (of this node, or of the
   * reserved node every node routes itself: a virtual actor's).
   */
  target(id: ActorId): LocalTarget | undefined {
    if (id.incarnation === 0 && (id.node.uid === this.#host.node().uid || id.node.uid === ANYWHERE_UID)) return this.#wellKnownAt(id.path)
    return this.cell(id)
  }

  #wellKnownAt(path: string): LocalTarget | undefined {
    // Prefixes first: no exact path lies under one (registration refuses it), and a prefix's paths
    // (virtual actors') are the many, called often, that the exact table would miss.
    for (const [prefix, r] of this.#prefixes) if (path.startsWith(prefix)) return r.resolve(path)
    return this.#wellKnown.get(path)
  }

  /** The registered prefix `path` lies under, if any. */
  #prefixOf(path: string): string | undefined {
    for (const prefix of this.#prefixes.keys()) if (path.startsWith(prefix)) return prefix
    return undefined
  }

  /**
   * The route of refs to local actor `id`; for an id of the reserved node under a prefix that
   * routes its ids itself (virtual actors: straight to the owner), that prefix's route.
   */
  route(id: ActorId): Route {
    const local = new LocalRoute(this, id, undefined)
    if (id.node.uid !== ANYWHERE_UID || id.incarnation !== 0) return local
    for (const [prefix, r] of this.#prefixes) if (r.route && id.path.startsWith(prefix)) return r.route(id, local)
    return local
  }

  get size(): number {
    return this.#actors.size
  }

  /** Live actors by class name. */
  countsByType(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const c of this.#actors.values()) counts.set(c.info.name, (counts.get(c.info.name) ?? 0) + 1)
    return counts
  }

  get mailboxDepth(): number {
    let n = 0
    for (const c of this.#actors.values()) n += c.mailboxDepth
    return n
  }

  /** Stops every actor; resolves when all have stopped. */
  stopAll(): Promise<unknown> {
    return Promise.all([...this.#actors.values()].map((c) => c.stop()))
  }

  // ---- delivery ----------------------------------------------------------------------------

  /**
   * The target of a call that arrived for (uid, path, incarnation), or the refusal
   * (`notDelivered`: the method never ran).
   */
  inboundTarget(uid: string, path: string, incarnation: number): LocalTarget | Error {
    const node = this.#host.node()
    if (uid !== node.uid) return markNotDelivered(new NodeDownError(`This node is incarnation ${node.uid}; incarnation ${uid} is gone.`))
    const target = incarnation === 0 ? this.#wellKnownAt(path) : this.#actors.get(path)
    if (!target || (target instanceof ActorCell && target.id.incarnation !== incarnation) || !target.alive) {
      return markNotDelivered(new ActorNotFoundError(`No live actor at ${path}#${incarnation} on ${formatNode(node)}: it was never spawned or has stopped.`))
    }
    return target
  }

  /**
   * The one method check: the declared method `method` of the target's class, undefined for a
   * target without class (a proxy: its actor checks), null if the class does not declare it (then
   * refuse with {@link undeclared}, which counts it).
   */
  methodOf(target: LocalTarget, method: string): MethodInfo | undefined | null {
    return target.info ? (target.info.methods.get(method) ?? null) : undefined
  }

  /**
   * The refusal of a method the target's class does not declare: counted in
   * `shoal_refused_total{reason="method"}` and logged (a warning when another node probes). The
   * caller publishes it with {@link refused}, like every other refusal.
   */
  undeclared(target: LocalTarget, at: Refusal): MethodNotDistributedError {
    this.#host.ledger.metrics.refused.labels('method').inc()
    const method = at.method
    const what = at.oneWay ? 'a one-way message' : 'a call'
    const fields = { peer: at.from ? formatNode(at.from) : 'local', actor: at.target, method: method.slice(0, 64) }
    if (at.from) this.#host.log.warn(fields, `refused ${what} to an undeclared method`)
    else this.#host.log.debug(fields, `refused ${what} to an undeclared method`)
    return markNotDelivered(new MethodNotDistributedError(`${target.info?.name}.${method} is not a distributed method of ${at.target}.`))
  }

  /** Publishes a refusal on `shoal:call:refused` and, when traced, as a failed callee-side call. */
  refused(r: Refusal, error: Error): void {
    const self = this.#host.node()
    publishCallRefused(self, r.target, r.method, error, r.from)
    if (tracingActive())
      traceRefusal(
        {
          side: 'callee',
          actorType: r.actorType,
          method: r.method,
          target: r.target,
          targetNode: self,
          local: r.from === undefined,
          oneWay: r.oneWay,
          headers: r.headers,
        },
        error,
      )
  }

  /** The id string of an inbound call's target as far as the envelope names it (published in refusals). */
  inboundId(uid: string, path: string, incarnation: number): string {
    try {
      return new ActorId({ endpoint: this.#host.node().endpoint, uid }, path, incarnation).toString()
    } catch {
      return `${path}#${incarnation}`
    }
  }

  /** A call the cell refused before its method ran (stopped, sealed, mailbox full, guard): published like the others. */
  cellRefused(cell: ActorCell, inv: Invocation, error: Error): void {
    if (inv.fn) return
    this.refused({ target: cell.id.toString(), actorType: cell.info.name, method: inv.method, from: inv.from, headers: inv.headers, oneWay: false }, error)
  }

  /** A local call through `route`. */
  call(
    route: LocalRoute,
    method: string,
    args: unknown[],
    chain: string,
    timeout: number,
    timeoutFrom: TimeoutSource,
    trace: CallTrace | undefined,
  ): Promise<unknown> {
    const headers = trace?.headersFor(true)
    const target = this.#localTarget(route)
    if (target instanceof Error) return this.#refuse(localRefusal(route, undefined, method, headers, false), target, trace)
    const m = this.methodOf(target, method)
    if (m === null) {
      const at = localRefusal(route, target, method, headers, false)
      const error = this.undeclared(target, at)
      // Counted as a failed call, as when the mailbox refused it.
      this.#host.ledger.metrics.callDone(error.code, -1, false)
      return this.#refuse(at, error, trace)
    }
    const host = this.#host
    const call = new PendingCall(
      host.ledger,
      method,
      args,
      chain,
      timeout,
      timeoutFrom,
      route.id,
      host.ledger.metrics.callStarted(false),
      undefined,
      0,
      headers,
      trace,
    )
    const promise = promiseOf(call)
    if (host.serializeLocalCalls) {
      call.copyResultWith = host.serialization
      try {
        call.args = host.serialization.copy(args)
      } catch (e) {
        call.fail(e)
        return promise
      }
    }
    host.ledger.deadlines.add(call, timeout)
    target.deliver(call, m)
    return promise
  }

  /** A local one-way message through `route`; a missing actor drops it (logged). */
  tell(route: LocalRoute, method: string, args: unknown[], chain: string, trace: CallTrace | undefined): void {
    const target = this.#localTarget(route)
    if (target instanceof Error)
      return this.#dropTell(localRefusal(route, undefined, method, undefined, true), target, 'one-way message to a missing actor dropped')
    const m = this.methodOf(target, method)
    if (m === null) {
      const at = localRefusal(route, target, method, undefined, true)
      return this.#dropTell(at, this.undeclared(target, at), 'one-way message dropped')
    }
    const delivered = this.#host.serializeLocalCalls ? this.#host.serialization.copy(args) : args
    target.deliver(new OneWayInvocation(this.#host.log, method, delivered, chain, trace?.headersFor(true), undefined), m)
  }

  #dropTell(at: Refusal, error: Error, why: string): void {
    this.refused(at, error)
    this.#host.log.debug({ target: at.target, method: at.method, reason: error.message }, why)
  }

  /** Publishes a local call's refusal and returns it rejected. */
  #refuse(at: Refusal, error: Error, trace: CallTrace | undefined): Promise<never> {
    this.refused(at, error)
    trace?.settled(false, error)
    return Promise.reject(error)
  }

  #localTarget(route: LocalRoute): LocalTarget | Error {
    let target = route.target
    if (!target?.alive) {
      target = this.target(route.id)
      if (!target?.alive) return markNotDelivered(new ActorNotFoundError(`No live actor ${route.id} on this node: it was never spawned here or has stopped.`))
      route.target = target
    }
    return target
  }

  // ---- for services ------------------------------------------------------------------------

  /**
   * Runs `fn` with the actor instance as a turn of local actor `id` (after the calls already
   * queued), bypassing the mailbox bound; for hooks like a singleton's `onPassivate`. With `seal`,
   * calls arriving from now on are refused as notDelivered. Rejects with ActorNotFoundError if the
   * actor is not alive.
   */
  runTurn(id: ActorId, fn: (actor: DistributedActor) => unknown, options: { seal?: boolean } = {}): Promise<unknown> {
    const cell = this.cell(id)
    if (!cell?.alive) return Promise.reject(markNotDelivered(new ActorNotFoundError(`No live actor ${id} on this node.`)))
    if (options.seal) cell.seal()
    return new Promise((resolve, reject) => {
      cell.deliver({ method: 'turn', args: [], chain: '', fn: () => fn(cell.actor), succeed: resolve, fail: reject }, undefined)
    })
  }

  /** Sets a check run as each call to local actor `id` starts (see ActorCell.guard); false if there is no such actor. */
  guard(id: ActorId, check: (inv: Invocation) => string | undefined): boolean {
    const cell = this.cell(id)
    cell?.guard(check)
    return cell !== undefined
  }

  /** Registers a well-known target at `path` (incarnation 0); returns the unregister function. */
  registerWellKnown(path: string, target: LocalTarget): () => void {
    if (this.#wellKnown.has(path)) throw new ConfigError(`Well-known path ${path} is taken on this node.`)
    const under = this.#prefixOf(path)
    if (under !== undefined)
      throw new ConfigError(`Well-known path ${path} lies under prefix ${under}, whose resolver owns every path there: pick a path outside it.`)
    this.#wellKnown.set(path, target)
    this.#generation++
    return () => {
      if (this.#wellKnown.get(path) !== target) return
      this.#wellKnown.delete(path)
      this.#generation++
    }
  }

  /**
   * Counts changes of the well-known registrations (exact paths and prefixes): what remoting
   * remembered of a well-known target (see {@link remembers}) holds while it stays the same.
   */
  get generation(): number {
    return this.#generation
  }

  #generation = 0

  /**
   * Whether `target`, resolved just now for a call to `path` (and `incarnation`) whose declared
   * method is `method`, may be remembered for later calls to the same target while
   * {@link generation} stays the same and it stays alive: an actor of this incarnation with its
   * method; an exact well-known target; a target of a prefix registered with `remember`.
   */
  remembers(target: LocalTarget, incarnation: number, path: string, method: MethodInfo | undefined): boolean {
    if (incarnation !== 0) return method !== undefined
    for (const [prefix, r] of this.#prefixes) if (path.startsWith(prefix)) return r.remember
    return this.#wellKnown.get(path) === target
  }

  /**
   * Registers a resolver for every incarnation-0 path under `prefix`; returns the unregister
   * function. Throws ConfigError if the prefix overlaps another, or an exact well-known path lies
   * under it (a path has one owner: prefixes and exact paths never overlap).
   */
  registerWellKnownPrefix(
    prefix: string,
    resolve: (path: string) => LocalTarget | undefined,
    options: { readonly route?: (id: ActorId, local: Route) => Route; readonly remember?: boolean } = {},
  ): () => void {
    for (const other of this.#prefixes.keys())
      if (other.startsWith(prefix) || prefix.startsWith(other)) throw new ConfigError(`Well-known prefix ${prefix} overlaps ${other}, taken on this node.`)
    for (const path of this.#wellKnown.keys())
      if (path.startsWith(prefix)) throw new ConfigError(`Well-known prefix ${prefix} covers the well-known path ${path}, taken on this node.`)
    const entry: PrefixResolver = { resolve, route: options.route, remember: options.remember === true }
    this.#prefixes.set(prefix, entry)
    this.#generation++
    return () => {
      if (this.#prefixes.get(prefix) !== entry) return
      this.#prefixes.delete(prefix)
      this.#generation++
    }
  }

  /** A ref to the well-known target at `path` on this node. */
  wellKnownRef(path: string, timeout: number | undefined): ActorRefImpl {
    const id = new ActorId(this.#host.node(), path, 0)
    return makeRef(this.#invoker!, id, undefined, timeout, new LocalRoute(this, id, this.#wellKnown.get(path)))
  }
}

/**
 * Where a refusal happened, for `shoal:call:refused`, the trace and the log: the target's id
 * string, its class when known, the method, the calling node (undefined: this one).
 */
export interface Refusal {
  readonly target: string
  readonly actorType: string | undefined
  readonly method: string
  readonly from: ClusterNode | undefined
  readonly headers: EnvelopeHeaders | undefined
  readonly oneWay: boolean
}

/** The refusal context of a local call. */
function localRefusal(route: LocalRoute, target: LocalTarget | undefined, method: string, headers: EnvelopeHeaders | undefined, oneWay: boolean): Refusal {
  return { target: route.id.toString(), actorType: target?.info?.name, method, from: undefined, headers, oneWay }
}

/** A well-known prefix: its targets on this node, and optionally the route of refs to its reserved-node ids. */
interface PrefixResolver {
  readonly resolve: (path: string) => LocalTarget | undefined
  readonly route: ((id: ActorId, local: Route) => Route) | undefined
  /** Its targets may be remembered per path (see LocalActors.remembers). */
  readonly remember: boolean
}

/** The route of refs to one local actor id; caches the target it found. */
export class LocalRoute implements Route {
  readonly local = true
  constructor(
    readonly actors: LocalActors,
    readonly id: ActorId,
    /** The target last found for `id` (owned by LocalActors, which re-resolves it when it died). */
    public target: LocalTarget | undefined,
  ) {}

  call(method: string, args: unknown[], chain: string, timeout: number, timeoutFrom: TimeoutSource, trace: CallTrace | undefined): Promise<unknown> {
    return this.actors.call(this, method, args, chain, timeout, timeoutFrom, trace)
  }

  tell(method: string, args: unknown[], chain: string, trace: CallTrace | undefined): void {
    this.actors.tell(this, method, args, chain, trace)
  }
}
