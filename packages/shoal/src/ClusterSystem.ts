/**
 * ClusterSystem: one node of a Shoal cluster. It hosts actors, resolves refs, and carries calls
 * between refs and actors, locally or over the transport.
 *
 * How a remote call travels (see docs/architecture.md): `ref.method(...args)` → `invoke` encodes
 * the arguments (failing at the sender for unserializable values) and a Call envelope, registers a
 * pending call with its deadline, and queues the frame on the association to the target node → the
 * target decodes the envelope, finds the actor by path and incarnation, checks the method is
 * declared, decodes the arguments and delivers an invocation to the actor's mailbox → when the
 * method's promise settles, the result (or error) goes back in a Reply frame → the caller decodes
 * it and settles the promise, unless the deadline fired first.
 * @module
 */
import { hostname } from 'node:os'
import { pino, type Logger } from 'pino'
import { ActorCell, type CellHost, type Invocation } from './ActorCell.ts'
import { ActorId } from './ActorId.ts'
import { type ActorRef, type ActorRefImpl, type Invoker, makeRef } from './ActorRef.ts'
import { outgoingChain } from './CallContext.ts'
import { type ClusterNode, formatNode, isValidSystemName, newNodeUid } from './ClusterNode.ts'
import { type Deadline, DeadlineQueue } from './DeadlineQueue.ts'
import { type ActorClass, type ActorClassInfo, actorClassInfo, type DistributedActor, targetId, type WatchTarget, withConstructingCell } from './DistributedActor.ts'
import {
  ActorNotFoundError,
  ConfigError,
  MethodNotDistributedError,
  NodeDownError,
  NodeUnreachableError,
  SerializationError,
  ShoalError,
  SystemShutDownError,
  TimeoutError,
  isNotDelivered,
  markNotDelivered,
} from './errors.ts'
import { Metrics } from './Metrics.ts'
import { type RefParts, Serialization } from './serialization/Serialization.ts'
import type { ClusterSystemSettings, ResolvedSettings } from './Settings.ts'
import { ControlStreamLink } from './swim/ControlStreamLink.ts'
import { SwimMember } from './swim/SwimMember.ts'
import { Cluster } from './cluster/Cluster.ts'
import type { Plugin } from './Plugin.ts'
import { Receptionist } from './receptionist/Receptionist.ts'
import { LifecycleWatch, type Termination } from './watch/LifecycleWatch.ts'
import { ClusterdRegistry, DEFAULT_CLUSTERD } from './discovery/Clusterd.ts'
import type { Association, OutboundMessage } from './transport/Association.ts'
import { Transport, type TransportHandler } from './transport/Transport.ts'
import { decodeCall, decodeOneWay, decodeReply, encodeCallHeadWith, encodeOneWayHeadWith, encodeReplyHead, encodeTargetSegment } from './wire/Envelope.ts'
import { FrameType } from './wire/Frame.ts'

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

function resolveSettings(s: ClusterSystemSettings): ResolvedSettings {
  const name = s.name ?? 'shoal'
  if (!isValidSystemName(name)) throw new ConfigError(`System name ${JSON.stringify(name)} is invalid: use 1-64 letters, digits, _ . or -.`)
  const clusterName = s.clusterName ?? (process.env.SHOAL_CLUSTER_NAME || 'shoal')
  if (!isValidSystemName(clusterName)) throw new ConfigError(`Cluster name ${JSON.stringify(clusterName)} is invalid: use 1-64 letters, digits, _ . or -.`)
  const host = s.host ?? '127.0.0.1'
  const port = s.port ?? 7337
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`Port ${port} is invalid: use 0..65535 (0 picks a free port).`)
  const rawSecret = s.secret ?? process.env.SHOAL_SECRET
  const secret = rawSecret === undefined || rawSecret === '' ? undefined : Buffer.from(rawSecret)
  if (!secret && !LOOPBACK.test(host) && !s.insecure) {
    throw new ConfigError(`Binding ${host} without a cluster secret would let anyone on the network join and call actors: set secret (or SHOAL_SECRET), or pass insecure: true to accept that.`)
  }
  const positive = (v: number | undefined, d: number, what: string): number => {
    const n = v ?? d
    if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`${what} must be a positive number (got ${v}).`)
    return n
  }
  return {
    name,
    clusterName,
    host,
    port,
    secret,
    tls: s.tls,
    callTimeout: Math.min(positive(s.callTimeout, 5000, 'callTimeout'), 2 ** 31 - 1),
    maxFrameSize: positive(s.maxFrameSize, 4 * 1024 * 1024, 'maxFrameSize'),
    maxOutboundBytes: positive(s.maxOutboundBytes, 32 * 1024 * 1024, 'maxOutboundBytes'),
    fragmentSize: positive(s.fragmentSize, 64 * 1024, 'fragmentSize'),
    flushThreshold: positive(s.flushThreshold, 4 * 1024, 'flushThreshold'),
    maxMailbox: positive(s.maxMailbox, 100_000, 'maxMailbox'),
    handshakeTimeout: positive(s.handshakeTimeout, 5000, 'handshakeTimeout'),
    backoffBaseMs: positive(s.reconnectBackoff?.baseMs, 100, 'reconnectBackoff.baseMs'),
    backoffMaxMs: positive(s.reconnectBackoff?.maxMs, 5000, 'reconnectBackoff.maxMs'),
    shutdownTimeout: positive(s.shutdownTimeout, 10_000, 'shutdownTimeout'),
    serializeLocalCalls: s.serializeLocalCalls ?? false,
    protocolMajor: s.protocolMajor,
    serializationOptions: s.serialization,
  }
}

/**
 * What a ref on this node can deliver to: an actor's cell, or a well-known target a service
 * registers at an incarnation-0 path (a singleton proxy). `info` absent: any method name passes
 * here and the final target checks it.
 */
export interface LocalTarget {
  readonly alive: boolean
  readonly info?: ActorClassInfo
  deliver(inv: Invocation): void
}

/** A call made from this node, waiting for its result. */
class PendingCall implements Deadline, Invocation {
  deadline = 0
  prevDeadline: Deadline | undefined = undefined
  nextDeadline: Deadline | undefined = undefined
  deadlineGroup: unknown = undefined
  resolve: (v: unknown) => void = noop
  reject: (e: unknown) => void = noop
  /** Set when local results must be copied through the codec (`serializeLocalCalls`). */
  copyResultWith: Serialization | undefined = undefined
  #done = false
  constructor(
    readonly system: ClusterSystem,
    readonly method: string,
    public args: unknown[],
    readonly chain: string,
    readonly timeout: number,
    readonly target: ActorId,
    readonly started: number,
    readonly remote: Association | undefined,
    readonly callId: number,
  ) {}

  succeed(value: unknown): void {
    if (this.#done) return
    if (this.copyResultWith) {
      try {
        value = this.copyResultWith.copy(value)
      } catch (e) {
        this.fail(e)
        return
      }
    }
    this.#settle()
    this.system.metrics.callDone('ok', this.started, this.remote !== undefined)
    this.resolve(value)
  }

  fail(error: unknown): void {
    if (this.#done) return
    this.#settle()
    const code = error instanceof ShoalError ? error.code : 'error'
    this.system.metrics.callDone(code, this.started, this.remote !== undefined)
    this.reject(error)
  }

  expire(): void {
    this.fail(new TimeoutError(`Call ${this.method} on ${this.target} got no reply within ${this.timeout} ms (callTimeout); the call may still run. Raise the timeout with ref.withTimeout(ms) if it is slow by design.`))
  }

  #settle(): void {
    this.#done = true
    this.system.deadlines.remove(this)
    this.remote?.pending.delete(this.callId)
  }
}

const noop = (): void => {}

/** The call whose promise is being created; lets one shared executor stand in for a closure per call. */
let capturing: PendingCall | undefined
function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  capturing!.resolve = resolve
  capturing!.reject = reject
}

/** The promise the caller awaits for `call`. */
function promiseOf(call: PendingCall): Promise<unknown> {
  capturing = call
  const promise = new Promise(capture)
  capturing = undefined
  return promise
}

/** An invocation that arrived from another node; its outcome goes back in a Reply frame. */
class InboundCall implements Invocation {
  constructor(
    readonly system: ClusterSystem,
    readonly assoc: Association,
    /** The caller's node incarnation: the reply is for it only, never for a successor at its endpoint. */
    readonly callerUid: string,
    readonly callId: number,
    readonly method: string,
    readonly args: unknown[],
    readonly chain: string,
    /** When the caller gives up (ms since the epoch), from the timeout it sent. */
    readonly deadline: number,
  ) {}
  succeed(value: unknown): void {
    this.system.reply(this.assoc, this.callerUid, this.callId, true, value)
  }
  fail(error: unknown): void {
    this.system.reply(this.assoc, this.callerUid, this.callId, false, error)
  }
}

/** A one-way message: nobody waits, failures are logged. */
class OneWayInvocation implements Invocation {
  constructor(
    readonly system: ClusterSystem,
    readonly method: string,
    readonly args: unknown[],
    readonly chain: string,
  ) {}
  succeed(): void {}
  fail(error: unknown): void {
    this.system.log.debug({ err: error, method: this.method }, 'one-way message failed')
  }
}

/**
 * One node of a Shoal cluster. Start with {@link ClusterSystem.start}; stop with
 * {@link ClusterSystem.shutdown}.
 */
export class ClusterSystem implements Invoker, CellHost {
  /** This node incarnation: endpoint plus a random uid. */
  readonly node: ClusterNode
  /** This system's pino logger (field `system`); actors log through `this.log`. */
  readonly log: Logger
  /** Prometheus metrics of this system (its own registry). */
  readonly metrics: Metrics
  /** Class registry and codec; register classes and errors that cross the wire here. */
  readonly serialization: Serialization
  /** Default call timeout in ms. */
  readonly callTimeout: number
  /** Calls queued per actor before new calls fail with `OverloadedError`. */
  readonly maxMailbox: number
  /** @internal How long stopping an actor waits for its running turn. */
  readonly stopTimeout: number
  /** @internal */
  readonly deadlines = new DeadlineQueue()
  readonly #settings: ResolvedSettings
  readonly #transport: Transport
  readonly #actors = new Map<string, ActorCell>()
  #state: 'running' | 'shutting-down' | 'stopped' = 'running'
  #shutdown: Promise<void> | undefined
  #chainCounter = 0
  #callIds = 0
  #pathCounter = 0

  private constructor(settings: ResolvedSettings, logger: Logger, node: ClusterNode) {
    this.#settings = settings
    this.node = node
    this.callTimeout = settings.callTimeout
    this.maxMailbox = settings.maxMailbox
    this.stopTimeout = settings.shutdownTimeout
    this.log = logger
    this.metrics = new Metrics({ system: settings.name }, () => this.#mailboxDepth(), () => this.#actors.size)
    this.serialization = new Serialization((parts) => this.#refFromParts(parts), settings.serializationOptions)
    this.#transport = new Transport(
      {
        host: settings.host,
        port: settings.port,
        secret: settings.secret,
        clusterName: settings.clusterName,
        tls: settings.tls,
        handshakeTimeoutMs: settings.handshakeTimeout,
        maxOutboundBytes: settings.maxOutboundBytes,
        maxFrameSize: settings.maxFrameSize,
        fragmentSize: settings.fragmentSize,
        flushThreshold: settings.flushThreshold,
        backoffBaseMs: settings.backoffBaseMs,
        backoffMaxMs: settings.backoffMaxMs,
        protocolMajor: settings.protocolMajor,
      },
      this.#transportHandler(),
      logger,
    )
  }

  /**
   * Starts a node: binds the TCP listener and returns once it accepts connections.
   *
   * Gotchas: binding a non-loopback host requires a `secret`; port 0 picks a free port, which is
   * then in `system.node.endpoint.port`.
   */
  static async start(settings: ClusterSystemSettings = {}): Promise<ClusterSystem> {
    const resolved = resolveSettings(settings)
    const base = settings.logger ?? pino({ level: settings.logLevel ?? process.env.SHOAL_LOG_LEVEL ?? 'info', base: { pid: process.pid, hostname: hostname() } })
    const uid = newNodeUid()
    const log = base.child({ system: resolved.name })
    // The port is known only after binding when 0 is asked for; the node identity waits for it.
    const provisional: ClusterNode = { endpoint: { name: resolved.name, host: resolved.host, port: resolved.port }, uid }
    const system = new ClusterSystem(resolved, log, provisional)
    let port: number
    try {
      port = await system.#transport.listen()
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message
      throw new ConfigError(`Could not listen on ${resolved.host}:${resolved.port} (${code}): pick another port, or port 0 for a free one.`)
    }
    const node: ClusterNode = { endpoint: { ...provisional.endpoint, port }, uid }
    ;(system as { node: ClusterNode }).node = node
    system.#transport.self = node
    system.#chainPrefix = `${uid}.`
    const swim = settings.cluster ? { ...settings.cluster.swim, seeds: settings.cluster.seeds } : settings.swim
    if (swim) {
      try {
        system.#swim = await SwimMember.start({
          host: resolved.host,
          port,
          uid,
          secret: resolved.secret,
          clusterName: resolved.clusterName,
          seeds: swim.seeds,
          settings: swim,
          logger: log,
          registry: system.metrics.registry,
          stream: new ControlStreamLink(system),
          insecure: settings.insecure,
        })
        if (settings.cluster) {
          system.#cluster = new Cluster(system, system.#swim, settings.cluster)
          system.#cluster.start()
        }
      } catch (e) {
        await system.shutdown()
        throw e
      }
    }
    try {
      system.#services(settings)
      await system.#startPlugins(settings.plugins ?? [])
    } catch (e) {
      await system.shutdown()
      throw e
    }
    log.info({ node: formatNode(node), cluster: resolved.clusterName, tls: Boolean(resolved.tls), secret: Boolean(resolved.secret), swim: Boolean(system.#swim), plugins: system.#plugins.map((p) => p.plugin.name) }, 'node started')
    return system
  }

  /**
   * @internal Registers the handler of one control-message kind (0-255) for cluster services
   * (membership, failure detection, watch). Control messages use the control lane: they are written
   * before any queued user traffic and between the fragments of large user messages.
   */
  onControl(kind: number, handler: (from: ClusterNode, body: Buffer) => void): void {
    if (!Number.isInteger(kind) || kind < 0 || kind > 255) throw new ConfigError(`Control kind ${kind} is outside 0..255.`)
    if (this.#controlHandlers.has(kind)) throw new ConfigError(`Control kind ${kind} already has a handler.`)
    this.#controlHandlers.set(kind, handler)
  }

  /**
   * @internal Sends a control message to a node (dialing if needed). Throws like a call would:
   * `NodeUnreachableError` during reconnect backoff, `SerializationError` above maxFrameSize.
   */
  sendControl(to: { host: string; port: number; uid?: string }, kind: number, body: Uint8Array): void {
    const frame = Buffer.allocUnsafe(1 + body.length)
    frame[0] = kind
    frame.set(body, 1)
    const assoc = this.#transport.association(to.host, to.port)
    this.#transport.send(assoc, 'control', { type: FrameType.Control, body: frame, uid: to.uid, callId: undefined })
  }

  #controlHandlers = new Map<number, (from: ClusterNode, body: Buffer) => void>()

  #onControl(assoc: Association, body: Buffer): void {
    if (body.length < 1) throw new Error('empty control frame')
    const handler = this.#controlHandlers.get(body[0]!)
    if (!handler) {
      this.log.debug({ kind: body[0] }, 'control message of unknown kind dropped')
      return
    }
    handler(assoc.peer!, body.subarray(1))
  }

  /** Starts the built-in cluster services every system has: receptionist and lifecycle watch. */
  #services(settings: ClusterSystemSettings): void {
    this.#receptionist = new Receptionist(this, this.#cluster, settings.receptionist)
    this.#receptionist.registerMetrics(this.metrics.registry)
    this.#watch = new LifecycleWatch(this, this.#cluster, settings.watch)
    this.#watch.registerMetrics(this.metrics.registry)
  }

  /**
   * Find actors by key anywhere in the cluster: `checkIn(actor, key)`, `checkOut`, `lookup(key)`,
   * `listing(key)`. See docs/receptionist.md. On a system without cluster membership it lists this
   * node's actors only.
   */
  get receptionist(): Receptionist {
    return this.#receptionist!
  }
  #receptionist: Receptionist | undefined
  #watch: LifecycleWatch | undefined

  /**
   * Resolves once, when the actor behind `target` terminates: it stopped, its node is down,
   * removed, shut down or replaced, or it never existed (see `DistributedActor.watch`).
   *
   * Gotchas: aborting `signal` unwatches and rejects with the signal's reason; shutdown of this
   * system rejects with SystemShutDownError. Without cluster membership a crashed (not shut down)
   * remote node is never reported.
   */
  watch(target: WatchTarget, options: { signal?: AbortSignal } = {}): Promise<Termination> {
    const id = targetId(target)
    const watch = this.#watch!
    const { signal } = options
    return new Promise<Termination>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const onAbort = (): void => {
        watch.unwatch(id, watcher)
        reject(signal!.reason)
      }
      const watcher = {
        terminated: (t: Termination) => {
          signal?.removeEventListener('abort', onAbort)
          resolve(t)
        },
        closed: () => {
          signal?.removeEventListener('abort', onAbort)
          reject(new SystemShutDownError('The actor system shut down while watching ' + id.toString() + '.'))
        },
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      watch.watch(id, watcher)
    })
  }

  /** @internal `DistributedActor.watch`. */
  watchFrom(cell: ActorCell, target: ActorId): void {
    const w = this.#watch!.cellWatcher(cell)
    if (cell.alive && w.add(target)) this.#watch!.watch(target, w)
  }

  /** @internal `DistributedActor.unwatch`. */
  unwatchFrom(cell: ActorCell, target: ActorId): void {
    const w = this.#watch!.cellWatcher(cell)
    if (w.remove(target)) this.#watch!.unwatch(target, w)
  }

  /** @internal `DistributedActor.isWatching`. */
  isWatchingFrom(cell: ActorCell, target: ActorId): boolean {
    return this.#watch!.cellWatcher(cell).has(target)
  }

  /** @internal True if `id` is an actor of this node that has not finished stopping. */
  hasActor(id: ActorId): boolean {
    return this.#localCell(id) !== undefined
  }

  /** @internal True if `id` is a live actor of this node. */
  isLocalAlive(id: ActorId): boolean {
    return this.#localCell(id)?.alive === true
  }

  /** @internal True if node incarnation `uid` is known gone (shut down, replaced, downed). */
  isTombstoned(uid: string): boolean {
    return this.#transport.isTombstoned(uid)
  }

  /** @internal A ref for `id`, typed by `Class` when given. */
  refOf(id: ActorId, Class: (abstract new (...args: never[]) => DistributedActor) | undefined): unknown {
    return Class ? this.resolve(Class, id) : makeRef(this, id, undefined, undefined, this.#localCell(id))
  }

  /**
   * SWIM failure detection of this node, when started with `swim` settings: its members, their
   * status changes (`subscribe`, `changes()`), `join(seeds)`. Shutdown leaves gracefully.
   */
  get swim(): SwimMember | undefined {
    return this.#swim
  }
  #swim: SwimMember | undefined

  /**
   * Cluster membership of this node: members and their status, the leader, events, `leave()`,
   * `down(node)`. Requires `cluster` settings at start.
   */
  get cluster(): Cluster {
    if (!this.#cluster) throw new ConfigError('This system runs without cluster membership: start it with `cluster: {}` (and seeds or discovery).')
    return this.#cluster
  }
  #cluster: Cluster | undefined

  /** True if the system was started with cluster membership. */
  get clustered(): boolean {
    return this.#cluster !== undefined
  }

  /** @internal Refuses the node's handshakes from now on and fails calls to it fast (it is down). */
  tombstoneNode(node: ClusterNode): void {
    this.#transport.tombstone(node)
  }

  /**
   * Starts a clusterd rendezvous daemon: a system named `clusterd` (127.0.0.1:3137 by default)
   * that nodes started with `cluster: { clusterd: true }` register with to find each other. Stop
   * it with `shutdown()`. Gotcha: it needs the cluster's secret like any node.
   */
  static async startClusterDaemon(settings: Omit<ClusterSystemSettings, 'cluster' | 'swim' | 'name'> = {}): Promise<ClusterSystem> {
    const system = await ClusterSystem.start({ ...settings, name: 'clusterd', host: settings.host ?? DEFAULT_CLUSTERD.host, port: settings.port ?? DEFAULT_CLUSTERD.port })
    system.#registry = new ClusterdRegistry(system)
    return system
  }
  #registry: ClusterdRegistry | undefined

  /** @internal The endpoints a clusterd daemon knows (undefined if this is not one). */
  get clusterdEndpoints(): readonly { host: string; port: number }[] | undefined {
    return this.#registry?.endpoints
  }

  /** True until shutdown begins. */
  get running(): boolean {
    return this.#state === 'running'
  }

  /**
   * Creates an actor on this node and returns a ref to it. `onStart` (if any) runs as its first
   * turn; calls made meanwhile wait for it.
   */
  spawn<T extends DistributedActor, A extends unknown[]>(Class: new (...args: A) => T, ...args: A): ActorRef<T> {
    if (this.#state !== 'running') throw new SystemShutDownError()
    const info = actorClassInfo(Class as unknown as ActorClass)
    const path = `/user/${info.name}-${(++this.#pathCounter).toString(36)}`
    const incarnation = 1 + Math.floor(Math.random() * 0xfffffffe)
    const cell = new ActorCell(this, new ActorId(this.node, path, incarnation), info)
    cell.actor = withConstructingCell(cell, () => new Class(...args))
    this.#actors.set(path, cell)
    cell.begin()
    return cell.ref() as ActorRef<T>
  }

  /**
   * A typed ref for any actor id (an `ActorId` or its string form), local or remote. Resolving never
   * fails: a call through a ref to a missing actor fails with `ActorNotFoundError`.
   */
  resolve<T extends DistributedActor>(Class: abstract new (...args: never[]) => T, id: ActorId | string): ActorRef<T> {
    const actorId = typeof id === 'string' ? ActorId.parse(id) : id
    const info = actorClassInfo(Class as unknown as ActorClass)
    return makeRef(this, actorId, info, undefined, this.#localCell(actorId)) as unknown as ActorRef<T>
  }

  /** Stops a local actor (see `DistributedActor.stop`); resolves after its `onStop`. No-op if already gone. */
  async stop(ref: ActorRef<unknown>): Promise<void> {
    const cell = this.#localCell(ref.id)
    if (cell) await cell.stop()
  }

  /** @internal Open sockets of this node's transport (tests of connection handling). */
  get socketCount(): number {
    return this.#transport.socketCount
  }

  /** Number of live local actors. */
  get actorCount(): number {
    return this.#actors.size
  }

  /**
   * Stops all actors (bounded by `shutdownTimeout`), fails pending calls with
   * `SystemShutDownError`, says goodbye to peers (who then fail calls to this node fast), closes
   * the listener and every socket. Resolves when all is released. Idempotent.
   */
  shutdown(): Promise<void> {
    return (this.#shutdown ??= this.#doShutdown().finally(() => this.#terminated.resolve()))
  }

  /**
   * Resolves once the system has shut down, for whatever reason: `shutdown()`, or the cluster
   * marking this node down. A CLI or server awaits it to exit.
   */
  get terminated(): Promise<void> {
    return this.#terminated.promise
  }
  readonly #terminated = deferred()

  async #doShutdown(): Promise<void> {
    this.#state = 'shutting-down'
    this.log.info('shutting down')
    // Plugins first, in reverse order: they hand over or passivate what they host while the
    // cluster and the actors still run.
    await this.#stopPlugins()
    // Tell the cluster first (down, unless it already left), then SWIM (left): peers remove this
    // node rather than wait to detect it.
    await this.#cluster?.stop()
    const leaving = this.#swim?.leave(2 * this.#swim.instance.settings.gossipInterval)
    const stops = Promise.all([...this.#actors.values()].map((c) => c.stop()))
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#settings.shutdownTimeout)))
    await Promise.race([stops, timedOut])
    clearTimeout(timer)
    await leaving
    this.#state = 'stopped'
    for (const entry of this.deadlines.clear()) (entry as PendingCall).fail(new SystemShutDownError('The actor system shut down before this call completed.'))
    this.#receptionist?.stop()
    this.#watch?.stop()
    await this.#transport.close('shutdown')
    this.log.info('shut down')
  }

  /** @internal A fresh, globally unique call-chain id. */
  newChain(): string {
    return this.#chainPrefix + (++this.#chainCounter).toString(36)
  }
  #chainPrefix = ''

  /** @internal */
  makeSelfRef(cell: ActorCell): unknown {
    return makeRef(this, cell.id, cell.info, undefined, cell)
  }

  /** @internal */
  cellStopped(cell: ActorCell): void {
    if (this.#actors.get(cell.id.path) === cell) this.#actors.delete(cell.id.path)
    this.#receptionist?.actorStopped(cell.id)
    this.#watch?.actorStopped(cell)
    this.#toPlugins('onActorStopped', (p) => p.onActorStopped?.(cell.id, cell.actor))
  }

  /** @internal */
  cellReady(cell: ActorCell): void {
    this.#toPlugins('onActorReady', (p) => p.onActorReady?.(cell.id, cell.actor))
  }

  /**
   * The facade of an installed plugin, by name. Throws ConfigError if no such plugin is installed.
   */
  plugin<F>(name: string): F {
    const entry = this.#plugins.find((e) => e.plugin.name === name)
    if (!entry) throw new ConfigError(`No plugin named "${name}" is installed: pass it in ClusterSystem.start({ plugins: [...] }).`)
    return entry.facade as F
  }

  readonly #plugins: { plugin: Plugin; facade: unknown }[] = []

  #toPlugins(hook: string, call: (p: Plugin) => void): void {
    for (const { plugin } of this.#plugins) {
      try {
        call(plugin)
      } catch (e) {
        this.log.error({ err: e, plugin: plugin.name, hook }, 'a plugin hook threw')
      }
    }
  }

  async #startPlugins(plugins: readonly Plugin[]): Promise<void> {
    const names = new Set<string>()
    for (const plugin of plugins) {
      if (names.has(plugin.name)) throw new ConfigError(`Two plugins are named "${plugin.name}": plugin names must be unique.`)
      names.add(plugin.name)
      if (plugin.facade !== undefined && plugin.facade in this) throw new ConfigError(`Plugin "${plugin.name}" wants to publish "${plugin.facade}", which the system already has.`)
      const facade = await plugin.start({ system: this, log: this.log.child({ plugin: plugin.name }) })
      this.#plugins.push({ plugin, facade })
      if (plugin.facade !== undefined) Object.defineProperty(this, plugin.facade, { value: facade, enumerable: true })
      this.log.debug({ plugin: plugin.name }, 'plugin started')
    }
    if (this.#cluster && this.#plugins.some((e) => e.plugin.onClusterEvent)) {
      const events = this.#cluster.events()
      void (async () => {
        for await (const e of events) this.#toPlugins('onClusterEvent', (p) => p.onClusterEvent?.(e))
      })()
    }
  }

  async #stopPlugins(): Promise<void> {
    for (const { plugin } of [...this.#plugins].reverse()) {
      try {
        await plugin.stop?.()
      } catch (e) {
        this.log.error({ err: e, plugin: plugin.name }, 'a plugin failed to stop')
      }
    }
  }

  /** @internal */
  onActorError(cell: ActorCell, where: string, error: unknown): void {
    this.log.error({ err: error, actor: cell.id.toString() }, `actor ${where} failed`)
  }

  /** A local cell, or the well-known target at an incarnation-0 path. */
  #localTarget(id: ActorId): LocalTarget | undefined {
    if (id.incarnation === 0 && id.node.uid === this.node.uid) return this.#wellKnown.get(id.path)
    return this.#localCell(id)
  }

  readonly #wellKnown = new Map<string, LocalTarget>()

  /**
   * @internal Registers a well-known target at `path` (incarnation 0) on this node, for services
   * such as the singleton proxy: refs to it (local, or sent to other nodes) deliver there.
   * Returns the unregister function.
   */
  registerWellKnown(path: string, target: LocalTarget): () => void {
    if (this.#wellKnown.has(path)) throw new ConfigError(`Well-known path ${path} is taken on this node.`)
    this.#wellKnown.set(path, target)
    return () => {
      if (this.#wellKnown.get(path) === target) this.#wellKnown.delete(path)
    }
  }

  /** @internal A ref to the well-known target at `path` on this node. */
  wellKnownRef(path: string, timeout?: number): unknown {
    return makeRef(this, new ActorId(this.node, path, 0), undefined, timeout, this.#wellKnown.get(path))
  }

  /**
   * @internal Sends a call on behalf of an invocation received elsewhere (a proxy forwarding it):
   * keeps its call chain (re-entrancy) and takes an explicit timeout.
   */
  forward(ref: ActorRef<unknown>, method: string, args: unknown[], chain: string, timeout: number): Promise<unknown> {
    if (this.#state !== 'running') return Promise.reject(markNotDelivered(new SystemShutDownError()))
    const impl = ref as unknown as ActorRefImpl
    if (impl.id.node.uid === this.node.uid) return this.#localCall(impl, method, args, chain, timeout)
    return this.#remoteCall(impl, method, args, chain, timeout)
  }

  /**
   * @internal Runs `fn` with the actor instance as a turn of local actor `id` (after the calls
   * already queued), bypassing the mailbox bound; for hooks like a singleton's `onPassivate`.
   * Rejects with ActorNotFoundError if the actor is not alive.
   */
  runTurn(id: ActorId, fn: (actor: DistributedActor) => unknown, options: { seal?: boolean } = {}): Promise<unknown> {
    const cell = this.#localCell(id)
    if (!cell?.alive) return Promise.reject(markNotDelivered(new ActorNotFoundError(`No live actor ${id} on this node.`)))
    // Sealed: calls arriving from now on are refused as notDelivered; the turn runs after those accepted.
    if (options.seal) cell.seal()
    return new Promise((resolve, reject) => {
      cell.deliver({ method: 'turn', args: [], chain: '', fn: () => fn(cell.actor), succeed: resolve, fail: reject })
    })
  }

  /** @internal Sets a check run as each call to local actor `id` starts (see ActorCell.guard); false if there is no such actor. */
  guardActor(id: ActorId, check: () => string | undefined): boolean {
    const cell = this.#localCell(id)
    cell?.guard(check)
    return cell !== undefined
  }

  #localCell(id: ActorId): ActorCell | undefined {
    if (id.node.uid !== this.node.uid) return undefined
    const cell = this.#actors.get(id.path)
    return cell && cell.id.incarnation === id.incarnation ? cell : undefined
  }

  #mailboxDepth(): number {
    let n = 0
    for (const c of this.#actors.values()) n += c.mailboxDepth
    return n
  }

  #refFromParts([name, host, port, uid, path, incarnation]: RefParts): unknown {
    let id: ActorId
    try {
      id = new ActorId({ endpoint: { name, host, port }, uid }, path, incarnation)
    } catch (e) {
      throw new SerializationError(`Malformed actor ref in payload: ${(e as Error).message}`)
    }
    return makeRef(this, id, undefined, undefined, this.#localCell(id))
  }

  // ---- calls -------------------------------------------------------------------------------

  /** @internal Entry point of every call through a ref. */
  invoke(ref: ActorRefImpl, method: string, args: unknown[]): Promise<unknown> {
    if (this.#state !== 'running') return Promise.reject(new SystemShutDownError())
    const chain = outgoingChain()
    const timeout = ref.timeout ?? this.callTimeout
    const id = ref.id
    if (id.node.uid === this.node.uid) return this.#localCall(ref, method, args, chain, timeout)
    return this.#remoteCall(ref, method, args, chain, timeout)
  }

  #localCall(ref: ActorRefImpl, method: string, args: unknown[], chain: string, timeout: number): Promise<unknown> {
    let cell = ref.target as LocalTarget | undefined
    if (!cell?.alive) {
      cell = this.#localTarget(ref.id)
      if (!cell?.alive) return Promise.reject(markNotDelivered(new ActorNotFoundError(`No live actor ${ref.id} on this node: it was never spawned here or has stopped.`)))
      ref.target = cell
    }
    const call = new PendingCall(this, method, args, chain, timeout, ref.id, this.metrics.callStarted(false), undefined, 0)
    const promise = promiseOf(call)
    if (this.#settings.serializeLocalCalls) {
      call.copyResultWith = this.serialization
      try {
        call.args = this.serialization.copy(args)
      } catch (e) {
        call.fail(e)
        return promise
      }
    }
    this.deadlines.add(call, timeout)
    cell.deliver(call)
    return promise
  }

  /**
   * Fails fast for an incarnation known to be gone. An association to another incarnation at the
   * same endpoint is not proof either way (the target may be the newer one), so such calls go out
   * and the receiving node answers for its own incarnation.
   */
  #checkTarget(id: ActorId): Error | undefined {
    if (this.#transport.isTombstoned(id.node.uid)) {
      return markNotDelivered(new NodeDownError(`Node ${formatNode(id.node)} is down (it shut down or was replaced); actor ${id.path} is gone with it.`))
    }
    return undefined
  }

  #association(ref: ActorRefImpl): Association {
    // Remote refs cache their association: the endpoint lookup builds a string key.
    const cached = ref.target as Association | undefined
    if (cached) return cached
    const assoc = this.#transport.association(ref.id.node.endpoint.host, ref.id.node.endpoint.port)
    ref.target = assoc
    return assoc
  }

  /** The encoded (uid, path, method) part of envelopes to this ref, cached on the ref per method. */
  #segment(ref: ActorRefImpl, method: string): Buffer {
    const segments = (ref.segments ??= new Map())
    let segment = segments.get(method)
    if (!segment) segments.set(method, (segment = encodeTargetSegment({ uid: ref.id.node.uid, path: ref.id.path, method })))
    return segment
  }

  #remoteCall(ref: ActorRefImpl, method: string, args: unknown[], chain: string, timeout: number): Promise<unknown> {
    const id = ref.id
    const assoc = this.#association(ref)
    const problem = this.#checkTarget(id)
    if (problem) return Promise.reject(problem)
    let head: Buffer
    let body: Buffer
    const callId = (this.#callIds = (this.#callIds + 1) >>> 0)
    try {
      body = this.serialization.encode(args)
      head = encodeCallHeadWith(this.#segment(ref, method), { callId, incarnation: id.incarnation, chain, timeoutMs: timeout })
    } catch (e) {
      return Promise.reject(markNotDelivered(e))
    }
    // Arguments are on the wire now; the pending call does not keep them alive.
    const call = new PendingCall(this, method, [], chain, timeout, id, this.metrics.callStarted(true), assoc, callId)
    const promise = promiseOf(call)
    assoc.pending.set(callId, call)
    this.deadlines.add(call, timeout)
    try {
      this.#transport.send(assoc, 'user', { type: FrameType.Call, head, body, uid: id.node.uid, callId })
    } catch (e) {
      call.fail(markNotDelivered(e))
    }
    return promise
  }

  /** @internal One-way send through `ref.tell`. */
  tell(ref: ActorRefImpl, method: string, args: unknown[]): void {
    if (this.#state !== 'running') throw new SystemShutDownError()
    if (ref.info && !ref.info.methods.has(method)) {
      throw new MethodNotDistributedError(`${ref.info.name}.${method} is not a distributed method: declare it with @distributed (or list it in static distributed) to send to it.`)
    }
    const chain = outgoingChain()
    const id = ref.id
    if (id.node.uid === this.node.uid) {
      const cell = this.#localTarget(id)
      if (!cell) {
        this.log.debug({ target: id.toString(), method }, 'one-way message to a missing actor dropped')
        return
      }
      const delivered = this.#settings.serializeLocalCalls ? this.serialization.copy(args) : args
      cell.deliver(new OneWayInvocation(this, method, delivered, chain))
      return
    }
    const assoc = this.#association(ref)
    const problem = this.#checkTarget(id)
    if (problem) {
      this.log.debug({ target: id.toString(), method, reason: problem.message }, 'one-way message dropped')
      return
    }
    const body = this.serialization.encode(args)
    const head = encodeOneWayHeadWith(this.#segment(ref, method), { incarnation: id.incarnation, chain })
    try {
      this.#transport.send(assoc, 'user', { type: FrameType.OneWay, head, body, uid: id.node.uid, callId: undefined })
    } catch (e) {
      this.log.debug({ target: id.toString(), method, err: e }, 'one-way message dropped')
    }
  }

  /** @internal Sends the outcome of an inbound call back to its caller. */
  reply(assoc: Association, callerUid: string, callId: number, ok: boolean, value: unknown): void {
    if (assoc.peer?.uid !== callerUid) {
      this.log.debug({ callId }, 'reply dropped: the calling node incarnation is gone')
      return
    }
    let payload: Buffer
    try {
      payload = this.serialization.encode(value)
    } catch (e) {
      // The result (or error) cannot cross the wire: tell the caller why instead of leaving it to time out.
      ok = false
      payload = this.serialization.encode(e instanceof SerializationError ? e : new SerializationError(`Could not encode the reply: ${(e as Error).message}`))
    }
    if (!ok && !(value instanceof ShoalError)) this.log.debug({ err: value }, 'distributed method threw')
    const peer = assoc.peer
    const refused = !ok && isNotDelivered(value)
    try {
      this.#transport.send(assoc, 'user', { type: FrameType.Reply, head: encodeReplyHead({ callId, ok, refused }), body: payload, uid: callerUid, callId: undefined })
    } catch (e) {
      this.log.warn({ err: e, peer: formatNode(peer) }, 'could not send a reply')
    }
  }

  // ---- inbound frames ----------------------------------------------------------------------

  #transportHandler(): TransportHandler {
    return {
      frame: (assoc, type, body) => this.#onFrame(assoc, type, body),
      dropped: (assoc, msg, error) => this.#onDropped(assoc, msg, error),
      associationLost: (assoc, peer, reason, gone) => {
        const error = gone
          ? new NodeDownError(`Node ${formatNode(peer)} shut down; the call may or may not have run.`)
          : new NodeUnreachableError(`Connection to ${formatNode(peer)} was lost (${reason}); the call may or may not have run.`)
        this.#failPending(assoc, error)
        if (gone) this.#watch?.nodeGone(peer)
      },
      refusedByPeer: (reason) => {
        // A peer refuses us because it knows this incarnation is down: a zombie learns its fate.
        if (this.#cluster && reason.includes(this.node.uid) && reason.includes('tombstoned')) this.#cluster.learnedDown(reason)
      },
      incarnationReplaced: (assoc, old) => {
        const error = new NodeDownError(`Node ${formatNode(old)} was replaced by a new incarnation; the call may or may not have run.`)
        this.#failPending(assoc, error, (call) => call.target.node.uid === old.uid)
        this.#watch?.nodeGone(old)
      },
      metrics: {
        bytes: (d, n) => this.metrics.bytes(d, n),
        frames: (d, n) => this.metrics.frames(d, n),
        associations: (n) => this.metrics.associations.set(n),
        refused: (reason) => this.metrics.refused.labels(reason).inc(),
      },
    }
  }

  #failPending(assoc: Association, error: Error, which: (call: PendingCall) => boolean = () => true): void {
    for (const call of [...assoc.pending.values()] as PendingCall[]) if (which(call)) call.fail(error)
  }

  #onDropped(assoc: Association, msg: OutboundMessage, error: Error): void {
    if (msg.callId === undefined) return
    ;(assoc.pending.get(msg.callId) as PendingCall | undefined)?.fail(markNotDelivered(error))
  }

  #onFrame(assoc: Association, type: number, body: Buffer): void {
    switch (type) {
      case FrameType.Call:
        return this.#onCall(assoc, body)
      case FrameType.Reply:
        return this.#onReply(assoc, body)
      case FrameType.OneWay:
        return this.#onOneWay(assoc, body)
      case FrameType.Control:
        return this.#onControl(assoc, body)
      default:
        throw new Error(`unknown frame type ${type}`)
    }
  }

  #decodeArgs(bytes: Uint8Array): unknown[] {
    let args: unknown
    try {
      args = this.serialization.decode(bytes)
    } catch (e) {
      this.metrics.decodeErrors.inc()
      throw e
    }
    if (!Array.isArray(args)) {
      this.metrics.decodeErrors.inc()
      throw new SerializationError('Call arguments must be an array.')
    }
    return args
  }

  #targetCell(uid: string, path: string, incarnation: number): LocalTarget | Error {
    if (uid !== this.node.uid) return new NodeDownError(`This node is incarnation ${this.node.uid}; incarnation ${uid} is gone.`)
    const cell = incarnation === 0 ? this.#wellKnown.get(path) : this.#actors.get(path)
    if (!cell || (cell instanceof ActorCell && cell.id.incarnation !== incarnation) || !cell.alive) {
      return new ActorNotFoundError(`No live actor at ${path}#${incarnation} on ${formatNode(this.node)}: it was never spawned or has stopped.`)
    }
    return cell
  }

  #onCall(assoc: Association, body: Buffer): void {
    const env = decodeCall(body, assoc.targets)
    const caller = assoc.peer!.uid
    if (this.#state !== 'running') return this.reply(assoc, caller, env.callId, false, markNotDelivered(new SystemShutDownError(`Node ${formatNode(this.node)} is shutting down.`)))
    const cell = this.#targetCell(env.uid, env.path, env.incarnation)
    if (cell instanceof Error) return this.reply(assoc, caller, env.callId, false, markNotDelivered(cell))
    if (cell.info && !cell.info.methods.has(env.method)) {
      // Probing for undeclared members is refused before the arguments are even decoded, and made visible.
      this.metrics.refused.labels('method').inc()
      this.log.warn({ peer: assoc.peer && formatNode(assoc.peer), actor: env.path, method: env.method.slice(0, 64) }, 'refused a call to an undeclared method')
      return this.reply(assoc, caller, env.callId, false, markNotDelivered(new MethodNotDistributedError(`${cell.info.name}.${env.method} is not a distributed method of ${env.path}.`)))
    }
    let args: unknown[]
    try {
      args = this.#decodeArgs(env.args)
    } catch (e) {
      this.log.warn({ peer: assoc.peer && formatNode(assoc.peer), method: env.method, reason: (e as Error).message }, 'refused call arguments')
      return this.reply(assoc, caller, env.callId, false, markNotDelivered(e))
    }
    cell.deliver(new InboundCall(this, assoc, caller, env.callId, env.method, args, env.chain, Date.now() + env.timeoutMs))
  }

  #onOneWay(assoc: Association, body: Buffer): void {
    const env = decodeOneWay(body, assoc.targets)
    if (this.#state !== 'running') return
    const cell = this.#targetCell(env.uid, env.path, env.incarnation)
    if (cell instanceof Error) {
      this.log.debug({ reason: cell.message }, 'one-way message dropped')
      return
    }
    if (cell.info && !cell.info.methods.has(env.method)) {
      this.metrics.refused.labels('method').inc()
      this.log.warn({ peer: assoc.peer && formatNode(assoc.peer), actor: env.path, method: env.method.slice(0, 64) }, 'refused a one-way message to an undeclared method')
      return
    }
    let args: unknown[]
    try {
      args = this.#decodeArgs(env.args)
    } catch (e) {
      this.log.warn({ method: env.method, reason: (e as Error).message }, 'refused one-way message')
      return
    }
    cell.deliver(new OneWayInvocation(this, env.method, args, env.chain))
  }

  #onReply(assoc: Association, body: Buffer): void {
    // Validate before looking up: a malformed reply is a protocol violation even when late.
    const { callId, ok, refused, payload } = decodeReply(body)
    const call = assoc.pending.get(callId) as PendingCall | undefined
    if (!call) {
      this.log.debug({ callId }, 'late reply dropped (the call already timed out or failed)')
      return
    }
    let value: unknown
    try {
      value = this.serialization.decode(payload)
    } catch (e) {
      this.metrics.decodeErrors.inc()
      call.fail(e)
      return
    }
    if (ok) call.succeed(value)
    else call.fail(refused ? markNotDelivered(value) : value)
  }
}

/** A promise and its resolver (Promise.withResolvers is Node 22+). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}
