/**
 * ClusterSystem: one node of a Shoal cluster, and the facade users hold. It composes the parts
 * and exposes the public API; the work is done by the parts:
 * - `actor/LocalActors`: the actor table, local delivery, the one method check;
 * - `remoting/Remoting`: the transport, pending calls per peer, the outbound and inbound call engine;
 * - `system/Dispatcher`: where calls through refs enter (local/remote decided once per ref, tracing);
 * - `control/ControlRouter`: the control lane of cluster services;
 * - `system/PluginHost` and `system/SystemServices`: plugins and the port services use.
 *
 * How a call travels is in docs/architecture.md.
 * @module
 */
import type { Logger } from 'pino'
import type { ActorCell } from '../actor/ActorCell.ts'
import { ActorId } from '../actor/ActorId.ts'
import { type ActorRef } from '../actor/ActorRef.ts'
import { type ClusterNode, formatNode, newNodeUid } from '../actor/ClusterNode.ts'
import { type ActorClass, actorClassInfo, type DistributedActor, targetId, type WatchTarget } from '../actor/DistributedActor.ts'
import { LocalActors } from '../actor/LocalActors.ts'
import type { PendingCall } from '../actor/PendingCall.ts'
import type { Termination } from '../actor/Termination.ts'
import { Cluster } from '../cluster/Cluster.ts'
import { registerClusterMetrics } from '../cluster/ClusterMetrics.ts'
import { ControlRouter } from '../control/ControlRouter.ts'
import { ClusterdDirectory, clusterdAddress, DEFAULT_CLUSTERD } from '../discovery/Clusterd.ts'
import { ConfigError, SerializationError, SystemShutDownError } from '../errors.ts'
import { defaultLogger, tracedChild } from '../observability/Logging.ts'
import { Metrics } from '../observability/Metrics.ts'
import { NODE_STATUS_PATH, type NodeStatus, NodeStatusTarget, readNodeStatus } from '../observability/NodeStatus.ts'
import { otelSdkRegistered, useOpenTelemetry } from '../observability/OpenTelemetry.ts'
import { Receptionist } from '../receptionist/Receptionist.ts'
import { Remoting } from '../remoting/Remoting.ts'
import { type RefParts, Serialization } from '../serialization/Serialization.ts'
import { ControlStreamLink } from '../swim/ControlStreamLink.ts'
import { parseAddress, SwimMember } from '../swim/SwimMember.ts'
import type { SwimAddress } from '../swim/SwimNode.ts'
import { DeadlineQueue } from '../util/DeadlineQueue.ts'
import { LifecycleWatch } from '../watch/LifecycleWatch.ts'
import { Dispatcher } from './Dispatcher.ts'
import type { PluginFacades } from './Plugin.ts'
import { PluginHost } from './PluginHost.ts'
import { type ClusterSystemSettings, type ResolvedSettings, resolveSettings, transportSettings } from './Settings.ts'
import { registerServices, SystemServices } from './SystemServices.ts'

declare module '../actor/ActorSystem.ts' {
  // `actor.system` is the whole ClusterSystem, plugin facades included (see actor/ActorSystem.ts).
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ActorSystem extends ClusterSystem {}
}

/** Plugin facades (see {@link PluginFacades}) are members of the system. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface ClusterSystem extends PluginFacades {}

/**
 * One node of a Shoal cluster. Start with {@link ClusterSystem.start}; stop with
 * {@link ClusterSystem.shutdown}.
 */
// The interface above only adds the plugin facades, which plugins set on the instance (PluginHost).
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class ClusterSystem {
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
  readonly #settings: ResolvedSettings
  readonly #deadlines = new DeadlineQueue(() => this.now())
  readonly #actors: LocalActors
  readonly #remoting: Remoting
  readonly #control: ControlRouter
  readonly #dispatcher: Dispatcher
  readonly #plugins: PluginHost
  readonly #services: SystemServices
  readonly #terminated = deferred()
  #state: 'running' | 'shutting-down' | 'stopped' = 'running'
  #shutdown: Promise<void> | undefined
  /** Ends this system's use of the OpenTelemetry bridge (set when tracing is on). */
  #untrace: (() => void) | undefined
  #swim: SwimMember | undefined
  #cluster: Cluster | undefined
  #receptionist: Receptionist | undefined
  #watch: LifecycleWatch | undefined
  #clusterd: ClusterdDirectory | undefined

  private constructor(settings: ResolvedSettings, logger: Logger, node: ClusterNode) {
    this.#settings = settings
    this.node = node
    this.callTimeout = settings.callTimeout
    this.maxMailbox = settings.maxMailbox
    this.log = logger
    this.metrics = new Metrics(
      { system: settings.name },
      () => this.#actors.mailboxDepth,
      () => this.#actors.size,
    )
    this.serialization = new Serialization((parts) => this.#refFromParts(parts), settings.serializationOptions)
    const ledger = { deadlines: this.#deadlines, metrics: this.metrics }
    const nodeOf = (): ClusterNode => this.node
    const running = (): boolean => this.#state === 'running'
    this.#plugins = new PluginHost(logger)
    this.#actors = new LocalActors({
      node: nodeOf,
      system: this,
      log: logger,
      ledger,
      serialization: this.serialization,
      maxMailbox: settings.maxMailbox,
      stopTimeout: settings.shutdownTimeout,
      serializeLocalCalls: settings.serializeLocalCalls,
      cellReady: (cell) => this.#plugins.actorReady(cell.id, cell.actor),
      cellStopped: (cell) => this.#cellStopped(cell),
    })
    this.#control = new ControlRouter(logger, (to, frame) => this.#remoting.sendControl(to, frame))
    this.#remoting = new Remoting(
      {
        node: nodeOf,
        log: logger,
        ledger,
        serialization: this.serialization,
        actors: this.#actors,
        control: this.#control,
        running,
        now: () => this.now(),
        nodeGone: (peer) => this.#watch?.nodeGone(peer),
        // A peer refuses us because it knows this incarnation is down: a zombie learns its fate.
        refusedByPeer: (reason) => {
          if (this.#cluster && reason.includes(this.node.uid) && reason.includes('tombstoned')) this.#cluster.learnedDown(reason)
        },
      },
      transportSettings(settings),
    )
    this.metrics.inboundBytes = () => this.#remoting.transport.inboundBytes()
    this.#dispatcher = new Dispatcher({ node: nodeOf, running, callTimeout: settings.callTimeout, actors: this.#actors, remoting: this.#remoting })
    this.#services = new SystemServices({
      system: this,
      node: nodeOf,
      log: logger,
      actors: this.#actors,
      remoting: this.#remoting,
      control: this.#control,
      dispatcher: this.#dispatcher,
      now: () => this.now(),
      shutdown: () => this.shutdown(),
    })
    registerServices(this, this.#services)
  }

  /**
   * Starts a node: binds the TCP listener and returns once it accepts connections.
   *
   * Gotchas: binding a non-loopback host requires a `secret`; port 0 picks a free port, which is
   * then in `system.node.endpoint.port`.
   */
  static async start(settings: ClusterSystemSettings = {}): Promise<ClusterSystem> {
    const resolved = resolveSettings(settings)
    const base = settings.logger ?? defaultLogger(settings.logLevel)
    const uid = newNodeUid()
    const tracing = resolved.tracing === 'auto' ? otelSdkRegistered() : resolved.tracing
    const log = tracing ? tracedChild(base, { system: resolved.name }) : base.child({ system: resolved.name })
    // The port is known only after binding when 0 is asked for; the node identity waits for it.
    const provisional: ClusterNode = { endpoint: { name: resolved.name, host: resolved.host, port: resolved.port }, uid }
    const system = new ClusterSystem(resolved, log, provisional)
    const transport = system.#remoting.transport
    let port: number
    try {
      port = await transport.listen()
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message
      throw new ConfigError(`Could not listen on ${resolved.host}:${resolved.port} (${code}): pick another port, or port 0 for a free one.`)
    }
    const node: ClusterNode = { endpoint: { ...provisional.endpoint, port }, uid }
    ;(system as { node: ClusterNode }).node = node
    transport.self = node
    if (tracing) system.#untrace = useOpenTelemetry()
    try {
      await system.#startMembership(settings, port)
      system.#startServices(settings)
      await system.#plugins.start(settings.plugins ?? [], system, (pluginLog) => system.#services.pluginContext(pluginLog), system.#cluster)
    } catch (e) {
      await system.shutdown()
      throw e
    }
    log.info(
      {
        node: formatNode(node),
        cluster: resolved.clusterName,
        tls: Boolean(resolved.tls),
        secret: Boolean(resolved.secret),
        swim: Boolean(system.#swim),
        plugins: system.#plugins.names,
      },
      'node started',
    )
    return system
  }

  /** SWIM on the node's port and, with `cluster` settings, cluster membership. */
  async #startMembership(settings: ClusterSystemSettings, port: number): Promise<void> {
    const swim = settings.cluster ? { ...settings.cluster.swim, seeds: settings.cluster.seeds } : settings.swim
    if (!swim) return
    const resolved = this.#settings
    this.#describeEndpoints(swim.seeds ?? [], settings.cluster?.clusterd)
    this.#swim = await SwimMember.start({
      host: resolved.host,
      port,
      uid: this.node.uid,
      secret: resolved.secret,
      clusterName: resolved.clusterName,
      seeds: swim.seeds,
      settings: swim,
      logger: this.log,
      registry: this.metrics.registry,
      stream: new ControlStreamLink(this.#services),
      insecure: settings.insecure,
    })
    if (settings.cluster) {
      this.#cluster = new Cluster(this.#services, this.#swim, settings.cluster)
      registerClusterMetrics(this.#cluster, this.metrics.registry)
      this.#cluster.start()
    }
  }

  /** Names the seeds and clusterd in the transport's logs about reaching them ("seed H:P not reachable"). */
  #describeEndpoints(seeds: readonly (string | SwimAddress)[], clusterd: string | true | undefined): void {
    const transport = this.#remoting.transport
    const describe = (spec: () => SwimAddress, role: string): void => {
      try {
        const { host, port } = spec()
        transport.describeEndpoint(host, port, role)
      } catch {
        // An invalid address: the SWIM member or the cluster refuses it with a ConfigError.
      }
    }
    for (const seed of seeds) describe(() => parseAddress(seed), 'seed')
    if (clusterd !== undefined) describe(() => clusterdAddress(clusterd), 'clusterd')
  }

  /** Starts the built-in cluster services every system has: receptionist and lifecycle watch. */
  #startServices(settings: ClusterSystemSettings): void {
    this.#receptionist = new Receptionist(this.#services, this.#cluster, settings.receptionist)
    this.#receptionist.registerMetrics(this.metrics.registry)
    const watch = new LifecycleWatch(this.#services, this.#cluster, settings.watch)
    watch.registerMetrics(this.metrics.registry)
    this.#watch = watch
    this.#actors.attach(this.#dispatcher, watch)
    this.#actors.registerWellKnown(NODE_STATUS_PATH, new NodeStatusTarget(() => this.nodeStatus()))
  }

  /**
   * The system's monotonic clock (ms, arbitrary origin): `performance.now()`, which SWIM and the
   * membership read too (`cluster.now()` is the same clock). Plugins decide on it (backoffs,
   * hand-over and fencing deadlines) and every call deadline is on it, so that a node reads one
   * clock; never compare it with `Date.now()`.
   */
  now(): number {
    return performance.now()
  }

  /**
   * What this node reports about itself to a dashboard (`/dashboard/state` of any node asks every
   * up member for it): actors by type, calls by outcome and their latency, the methods it served,
   * virtual-actor shards and active ids, singletons, associations, refusals, memory.
   *
   * Details: read when asked, nothing sampled in between. A read turns on per-method sampling (one
   * served call in 16 timed, as the metrics time local calls) for the next 30 s, so figures per
   * method are estimates over the time since the first of a run of reads (`methods.since`); a node
   * nobody reads pays one boolean check per call for it.
   */
  nodeStatus(): Promise<NodeStatus> {
    return readNodeStatus({ system: this, actorsByType: () => this.#actors.countsByType(), methods: this.#actors.methodStats })
  }

  /**
   * Find actors by key anywhere in the cluster: `checkIn(actor, key)`, `checkOut`, `lookup(key)`,
   * `listing(key)`. See docs/receptionist.md. On a system without cluster membership it lists this
   * node's actors only.
   */
  get receptionist(): Receptionist {
    return this.#receptionist!
  }

  /**
   * Resolves once, when the actor behind `target` terminates: it stopped, its node is down,
   * removed, shut down or replaced, or it never existed (see `DistributedActor.watch`).
   *
   * Gotchas: aborting `signal` unwatches and rejects with `TimeoutError` (`AbortSignal.timeout(ms)`)
   * or `AbortedError` (any other abort; a Shoal error given as reason is passed on), the signal's
   * reason as `cause`; shutdown of this system rejects with SystemShutDownError. Without cluster membership a crashed (not shut down)
   * remote node is never reported.
   */
  watch(target: WatchTarget, options: { signal?: AbortSignal } = {}): Promise<Termination> {
    return this.#watch!.until(targetId(target), options.signal)
  }

  /**
   * SWIM failure detection of this node, when started with `swim` settings: its members, their
   * status changes (`subscribe`, `changes()`), `join(seeds)`. Shutdown leaves gracefully.
   */
  get swim(): SwimMember | undefined {
    return this.#swim
  }

  /**
   * Cluster membership of this node: members and their status, the leader, events, `leave()`,
   * `down(node)`. Requires `cluster` settings at start.
   */
  get cluster(): Cluster {
    if (!this.#cluster) throw new ConfigError('This system runs without cluster membership: start it with `cluster: {}` (and seeds or discovery).')
    return this.#cluster
  }

  /** True if the system was started with cluster membership. */
  get clustered(): boolean {
    return this.#cluster !== undefined
  }

  /**
   * Starts a clusterd rendezvous daemon: a system named `clusterd` (127.0.0.1:3137 by default)
   * that nodes started with `cluster: { clusterd: true }` register with to find each other. Stop
   * it with `shutdown()`. Gotcha: it needs the cluster's secret like any node.
   */
  static async startClusterDaemon(settings: Omit<ClusterSystemSettings, 'cluster' | 'swim' | 'name'> = {}): Promise<ClusterSystem> {
    const system = await ClusterSystem.start({
      ...settings,
      name: 'clusterd',
      host: settings.host ?? DEFAULT_CLUSTERD.host,
      port: settings.port ?? DEFAULT_CLUSTERD.port,
    })
    system.#clusterd = new ClusterdDirectory(system.#services)
    return system
  }

  /** The endpoints a clusterd daemon knows (undefined unless this system is one). */
  get clusterdEndpoints(): readonly { host: string; port: number }[] | undefined {
    return this.#clusterd?.endpoints
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
    return this.#actors.spawn(Class as unknown as ActorClass, args) as ActorRef<T>
  }

  /**
   * A typed ref for any actor id (an `ActorId` or its string form, as `id.toString()` prints it),
   * local or remote. Resolving a well-formed id never fails and looks nothing up: a call through a
   * ref to a missing actor fails then, with `ActorNotFoundError` (or `NodeUnreachableError` /
   * `NodeDownError` when its node cannot be reached or is gone).
   *
   * Gotcha: a string that is not an actor id throws `ConfigError` at once, naming the expected form
   * `shoal://name@host:port/<16 hex uid>/path#incarnation`.
   */
  resolve<T extends DistributedActor>(Class: abstract new (...args: never[]) => T, id: ActorId | string): ActorRef<T> {
    const actorId = typeof id === 'string' ? ActorId.parse(id) : id
    const info = actorClassInfo(Class as unknown as ActorClass)
    return this.#dispatcher.refTo(actorId, info) as unknown as ActorRef<T>
  }

  /** Stops a local actor (see `DistributedActor.stop`); resolves after its `onStop`. No-op if already gone. */
  async stop(ref: ActorRef<unknown>): Promise<void> {
    const cell = this.#actors.cell(ref.id)
    if (cell) await cell.stop()
  }

  /** Number of live local actors. */
  get actorCount(): number {
    return this.#actors.size
  }

  /**
   * The facade of an installed plugin, by name. Throws ConfigError if no such plugin is installed.
   */
  plugin<F>(name: string): F {
    return this.#plugins.facade(name) as F
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

  async #doShutdown(): Promise<void> {
    this.#state = 'shutting-down'
    this.log.info('shutting down')
    // Plugins first, in reverse order: they hand over or passivate what they host while the
    // cluster and the actors still run.
    await this.#plugins.stop()
    // Tell the cluster first (down, unless it already left), then SWIM (left): peers remove this
    // node rather than wait to detect it.
    await this.#cluster?.stop()
    const leaving = this.#swim?.leave(2 * this.#swim.instance.settings.gossipInterval)
    const stops = this.#actors.stopAll()
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#settings.shutdownTimeout)))
    await Promise.race([stops, timedOut])
    clearTimeout(timer)
    await leaving
    this.#state = 'stopped'
    for (const entry of this.#deadlines.clear()) (entry as PendingCall).fail(new SystemShutDownError('The actor system shut down before this call completed.'))
    this.#receptionist?.stop()
    this.#watch?.stop()
    this.#actors.methodStats.stop()
    await this.#remoting.transport.close('shutdown')
    this.#untrace?.()
    this.log.info('shut down')
  }

  #cellStopped(cell: ActorCell): void {
    this.#receptionist?.actorStopped(cell.id)
    this.#watch?.actorStopped(cell)
    this.#plugins.actorStopped(cell.id, cell.actor)
  }

  #refFromParts([name, host, port, uid, path, incarnation]: RefParts): unknown {
    let id: ActorId
    try {
      id = new ActorId({ endpoint: { name, host, port }, uid }, path, incarnation)
    } catch (e) {
      throw new SerializationError(`Malformed actor ref in payload: ${(e as Error).message}`)
    }
    return this.#dispatcher.refTo(id, undefined)
  }
}

/** A promise and its resolver (Promise.withResolvers is Node 22+). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}
