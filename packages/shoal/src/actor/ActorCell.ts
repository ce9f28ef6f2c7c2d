/**
 * ActorCell: one live actor's mailbox and turn discipline.
 *
 * Rules, in the order they are checked when a call arrives:
 * 1. A stopping or stopped actor fails the call with `ActorNotFoundError` (if `onStart` failed, saying
 *    why, with the reason as `cause`: a journal outage at recovery, say).
 * 2. A call whose chain is already running in this actor (A → B → A) starts at once: it is part of
 *    the turn that is waiting for it, so queueing it would deadlock.
 * 3. With nothing queued, a call starts at once if no turn runs, or if it interleaves (once
 *    `onStart` has finished).
 * 4. Otherwise it is queued (bounded: `maxMailbox`, then `OverloadedError`). Queued calls start in
 *    arrival order, which gives per-sender FIFO because senders deliver in send order.
 *
 * A turn lasts until the method's promise settles.
 * @module
 */

import type { Logger } from 'pino'
import { ActorNotFoundError, ActorStartFailedError, markNotDelivered, OverloadedError } from '../errors.ts'
import { CallTrace } from '../observability/CallTracing.ts'
import { callTracing, startHasStores, tracingActive } from '../observability/Channels.ts'
import type { MethodStats } from '../observability/MethodStats.ts'
import { Deque } from '../util/Deque.ts'
import { isThenable } from '../util/isThenable.ts'
import type { ActorId } from './ActorId.ts'
import type { ActorSystem } from './ActorSystem.ts'
import { type CallContext, callContext } from './CallContext.ts'
import type { ClusterNode } from './ClusterNode.ts'
import type { ActorClassInfo, DistributedActor, MethodInfo } from './DistributedActor.ts'
import { type Invocation, OneWayInvocation } from './Invocation.ts'

export type { Invocation }

/** What a cell needs from its host (the node's actor table). */
export interface CellHost {
  readonly log: Logger
  /** Per-method figures of the calls this node serves, sampled while a dashboard reads them. */
  readonly methodStats: MethodStats
  readonly system: ActorSystem
  readonly maxMailbox: number
  /** How long `stop` waits for a running turn to settle before running `onStop` anyway (ms). */
  readonly stopTimeout: number
  newChain(): string
  makeSelfRef(cell: ActorCell): unknown
  cellStopped(cell: ActorCell): void
  /** `onStart` finished (or there was none): the actor serves calls. */
  cellReady(cell: ActorCell): void
  onActorError(cell: ActorCell, where: string, error: unknown): void
  /** The cell refused a call before its method ran (stopped, sealed, mailbox full, guard): publish it. */
  cellRefused(cell: ActorCell, inv: Invocation, error: Error): void
  /** Lifecycle watch on behalf of the cell's actor (`actor.watch(target)`). */
  watchFrom(cell: ActorCell, target: ActorId): void
  unwatchFrom(cell: ActorCell, target: ActorId): void
  isWatchingFrom(cell: ActorCell, target: ActorId): boolean
}

type State = 'starting' | 'running' | 'stopping' | 'stopped'

function invokeMethod(fn: Function, actor: DistributedActor, args: unknown[]): unknown {
  return fn.apply(actor, args)
}

/** A traced turn's method, inside the context a `start` subscriber asked for (`enter`), if any. */
function invokeTraced(ctx: CallContext, fn: Function, actor: DistributedActor, args: unknown[]): unknown {
  const enter = ctx.trace?.enter
  return enter === undefined ? callContext.run(ctx, invokeMethod, fn, actor, args) : enter(() => callContext.run(ctx, invokeMethod, fn, actor, args))
}

/** An actor cell's per-turn callbacks (see ActorCell.#turnHandlers). */
interface TurnHandlers {
  readonly ok: (v: unknown) => void
  readonly failed: (e: unknown) => void
  readonly invoke: () => unknown
}

export class ActorCell {
  readonly id: ActorId
  readonly info: ActorClassInfo
  readonly host: CellHost
  actor!: DistributedActor
  #state: State = 'starting'
  #queue: Deque<Invocation> | undefined
  /** The method each queued invocation was delivered with, in step with `#queue`. */
  #queuedMethods: Deque<MethodInfo> | undefined
  /** The invocation holding the turn (its chain is the turn's chain, minted lazily), if any. */
  #turn: CallContext | undefined
  /** Chains of interleaved calls still running, with counts (allocated only when used). */
  #interleaved: Map<string, number> | undefined
  #draining = false
  /** The invocation holding the turn (its context is `#turn`), for the settle handlers below. */
  #turnInv: Invocation | undefined
  /** The method and arguments `invoke` applies (set just before `callContext.run` calls it). */
  #invokeFn: Function | undefined
  #invokeArgs: unknown[] | undefined
  /**
   * The turn's settle handlers and the method caller, made once per busy spell of the cell rather
   * than closures per call (only one turn runs at a time, and the next starts only after #finish
   * cleared it), and dropped when the cell goes idle, so an idle actor does not carry them.
   */
  #handlers: TurnHandlers | undefined

  #turnHandlers(): TurnHandlers {
    return (this.#handlers ??= {
      ok: (v: unknown): void => this.#finish(this.#turnInv!, this.#turn!, true, v),
      failed: (e: unknown): void => this.#finish(this.#turnInv!, this.#turn!, false, e),
      invoke: (): unknown => {
        const fn = this.#invokeFn!
        const args = this.#invokeArgs!
        this.#invokeFn = undefined
        this.#invokeArgs = undefined
        return fn.apply(this.actor, args)
      },
    })
  }
  /** Runs `fn` on the actor inside `ctx` through the cell's shared invoker (see #turnHandlers). */
  #invoke(ctx: CallContext, fn: Function, args: unknown[]): unknown {
    this.#invokeFn = fn
    this.#invokeArgs = args
    return callContext.run(ctx, this.#turnHandlers().invoke)
  }

  #turnEnded: (() => void) | undefined
  #stopped: Promise<void> | undefined
  #ref: unknown
  #log: Logger | undefined

  /**
   * When `self` and this actor sent in a call address not this incarnation but the well-known id at
   * its path on this node (a virtual actor's reserved node: the id, not this activation). The id is
   * made only if the actor hands itself out.
   */
  readonly publicNode: ClusterNode | undefined
  /** What the service that made this cell runs once it has stopped, however it stopped. */
  readonly onStopped: ((id: ActorId) => void) | undefined

  constructor(host: CellHost, id: ActorId, info: ActorClassInfo, publicNode?: ClusterNode, onStopped?: (id: ActorId) => void) {
    this.host = host
    this.id = id
    this.info = info
    this.publicNode = publicNode
    this.onStopped = onStopped
  }

  /** The system hosting this actor. */
  get system(): ActorSystem {
    return this.host.system
  }

  get alive(): boolean {
    return this.#state === 'starting' || this.#state === 'running'
  }

  get mailboxDepth(): number {
    return this.#queue?.length ?? 0
  }

  logger(): Logger {
    return (this.#log ??= this.host.log.child({ actor: this.id.path }))
  }

  ref(): unknown {
    return (this.#ref ??= this.host.makeSelfRef(this))
  }

  /** Runs `onStart` as the first turn; calls delivered meanwhile queue behind it. */
  begin(): void {
    const onStart = this.actor.onStart
    if (!onStart) {
      this.#state = 'running'
      this.host.cellReady(this)
      return
    }
    const ctx: CallContext = { actor: this, chain: '', turn: true, active: true, trace: undefined, sampledAt: -1 }
    this.#turn = ctx
    let result: unknown
    try {
      result = callContext.run(ctx, invokeMethod, onStart, this.actor, [])
    } catch (e) {
      this.#onStartFailed(e)
      return
    }
    if (isThenable(result)) {
      result.then(
        () => this.#started(),
        (e: unknown) => this.#onStartFailed(e),
      )
    } else this.#started()
  }

  #started(): void {
    this.#endTurn()
    if (this.#state === 'starting') {
      this.#state = 'running'
      this.host.cellReady(this)
    }
    this.#afterTurn()
  }

  #onStartFailed(e: unknown): void {
    this.#startFailed = true
    this.#startError = e
    this.host.onActorError(this, 'onStart', e)
    this.#endTurn()
    void this.stop()
  }

  /**
   * Refuses every new call from now on (`notDelivered`, so a proxy may send it elsewhere) while
   * the calls already accepted and system turns still run: a service moving the actor (a
   * singleton hand-over) seals it, runs `onPassivate` after what it accepted, then stops it.
   */
  seal(): void {
    this.#sealed = true
  }

  /**
   * Sets a check run as each call is about to start (not when it is queued): a reason refuses the
   * call as notDelivered and seals the actor. A singleton whose lease may have lapsed must not
   * start another call, even one that queued while the lease was valid.
   */
  guard(check: (inv: Invocation) => string | undefined): void {
    this.#guard = check
  }

  #guard: ((inv: Invocation) => string | undefined) | undefined

  #sealed = false
  /** Why `onStart` failed, if it did: what calls that waited for it are told. */
  #startError: unknown
  #startFailed = false

  /**
   * The error for a call refused because the actor stopped: ActorNotFoundError, always
   * `notDelivered` (the method never ran, so a retry or a singleton proxy may send it elsewhere). If
   * the actor never started, it says why, with the reason as `cause` (a journal outage at recovery:
   * a JournalUnavailableError; an undecodable event: a JournalDecodeError naming where).
   */
  #stoppedError(message: string): Error {
    if (!this.#startFailed) return markNotDelivered(new ActorNotFoundError(message))
    const e = this.#startError
    const why = e instanceof Error ? `${e.message}${(e as { code?: unknown }).code ? ` (${String((e as { code?: unknown }).code)})` : ''}` : String(e)
    return markNotDelivered(
      new ActorStartFailedError(`Actor ${this.id} failed to start: ${why}. It has stopped; spawn it again once the cause is fixed.`, { cause: e }),
    )
  }

  /**
   * Delivers a call whose method the caller of this function resolved (the one check, see
   * LocalActors); `method` is undefined only for system turns (`inv.fn`).
   */
  deliver(inv: Invocation, method: MethodInfo | undefined): void {
    if (this.#sealed && !inv.fn)
      return this.#refuse(inv, markNotDelivered(new ActorNotFoundError(`Actor ${this.id} is being passivated (moved elsewhere): it takes no new calls.`)))
    if (this.#state === 'stopping' || this.#state === 'stopped')
      return this.#refuse(inv, this.#stoppedError(`Actor ${this.id} has stopped: resolve or spawn a live actor.`))
    const m = method ?? this.#methodOf(inv)
    const interleave = m.interleave || this.info.interleaveAll
    const chain = inv.chain
    const turn = this.#turn
    if (turn && chain !== '' && (chain === turn.chain || this.#interleaved?.has(chain))) {
      this.#start(inv, m.fn, false)
    } else if ((this.#queue === undefined || this.#queue.length === 0) && (!turn || (interleave && this.#state === 'running'))) {
      // Interleaving calls may run beside a turn, but never beside onStart.
      this.#start(inv, m.fn, !interleave)
    } else {
      const queue = (this.#queue ??= new Deque())
      if (queue.length >= this.host.maxMailbox && !inv.fn) {
        return this.#refuse(
          inv,
          markNotDelivered(new OverloadedError(`Mailbox of ${this.id} holds ${queue.length} calls (maxMailbox): slow down or raise maxMailbox.`)),
        )
      }
      const methods = (this.#queuedMethods ??= new Deque())
      queue.push(inv)
      methods.push(m)
    }
  }

  #refuse(inv: Invocation, error: Error): void {
    this.host.cellRefused(this, inv, error)
    inv.fail(error)
  }

  /** The method of a system turn, or of an invocation delivered without its method. */
  #methodOf(inv: Invocation): MethodInfo {
    return inv.fn ? { fn: inv.fn, interleave: false } : this.info.methods.get(inv.method)!
  }

  #start(inv: Invocation, fn: Function, turn: boolean): void {
    const refusal = inv.fn ? undefined : this.#guard?.(inv)
    if (refusal !== undefined) {
      this.#sealed = true
      return this.#refuse(inv, markNotDelivered(new ActorNotFoundError(`Actor ${this.id} takes no calls: ${refusal}.`)))
    }
    const ctx: CallContext = { actor: this, chain: inv.chain, turn, active: true, trace: undefined, sampledAt: -1 }
    if (turn) {
      this.#turn = ctx
      this.#turnInv = inv
    } else if (inv.chain !== '') this.#addInterleaved(inv.chain)
    if (!inv.fn) {
      // Traced turns take their own path: the untraced one stays small (and inlined) without them.
      if (tracingActive()) return this.#startTraced(inv, ctx, fn, turn)
      if (this.host.methodStats.active) ctx.sampledAt = this.host.methodStats.sample()
    }
    let result: unknown
    try {
      result = this.#invoke(ctx, fn, inv.args)
    } catch (e) {
      this.#finish(inv, ctx, false, e)
      return
    }
    this.#settleWith(inv, ctx, turn, result)
  }

  /** `#start` of a traced call: publishes `start` (in its bound stores, if any) and `end` around the method. */
  #startTraced(inv: Invocation, ctx: CallContext, fn: Function, turn: boolean): void {
    const trace = this.#trace(inv)
    ctx.trace = trace
    if (this.host.methodStats.active) ctx.sampledAt = this.host.methodStats.sample()
    let result: unknown
    try {
      if (startHasStores()) result = callTracing.start.runStores(trace, invokeTraced, undefined, ctx, fn, this.actor, inv.args)
      else {
        callTracing.start.publish(trace)
        // Unless a start subscriber asked to enter its context: the shared invoker, no arguments
        // array or closure per call.
        result = trace.enter === undefined ? this.#invoke(ctx, fn, inv.args) : invokeTraced(ctx, fn, this.actor, inv.args)
      }
    } catch (e) {
      trace.dispatched()
      this.#finish(inv, ctx, false, e)
      return
    }
    trace.dispatched()
    this.#settleWith(inv, ctx, turn, result)
  }

  /** Ends the invocation when `result` settles (now, if it is not a thenable). */
  #settleWith(inv: Invocation, ctx: CallContext, turn: boolean, result: unknown): void {
    // The shared handlers only for a native promise: it settles once, and never synchronously
    // inside `then`; any other thenable might call back twice, and after the next turn began.
    if (turn && result instanceof Promise) {
      const h = this.#turnHandlers()
      result.then(h.ok, h.failed)
    } else if (isThenable(result)) {
      result.then(
        (v: unknown) => this.#finish(inv, ctx, true, v),
        (e: unknown) => this.#finish(inv, ctx, false, e),
      )
    } else this.#finish(inv, ctx, true, result)
  }

  /** Why the actor ended, once stopped: it failed to start, was passivated (sealed), or was stopped. */
  get endReason(): 'stopped' | 'failed' | 'passivated' {
    return this.#startFailed ? 'failed' : this.#sealed ? 'passivated' : 'stopped'
  }

  /** The callee side of a traced call (`shoal.call`): published as the method starts, ends when it settles. */
  #trace(inv: Invocation): CallTrace {
    const id = this.id
    return new CallTrace(
      'callee',
      this.info.name,
      inv.method,
      id.toString(),
      id.node,
      inv.from === undefined,
      inv instanceof OneWayInvocation,
      undefined,
      inv.headers,
    )
  }

  /**
   * Gives an invocation that makes an outgoing call a chain id, so calls coming back on it are
   * recognised as re-entrant.
   */
  mintChain(ctx: CallContext): string {
    ctx.chain = this.host.newChain()
    // The turn's chain is its context's, so it follows; an interleaved invocation registers it.
    if (ctx.active && !ctx.turn) this.#addInterleaved(ctx.chain)
    return ctx.chain
  }

  #endTurn(): void {
    if (this.#turn) this.#turn.active = false
    this.#turn = undefined
    this.#turnInv = undefined
  }

  #addInterleaved(chain: string): void {
    const map = (this.#interleaved ??= new Map())
    map.set(chain, (map.get(chain) ?? 0) + 1)
  }

  #finish(inv: Invocation, ctx: CallContext, ok: boolean, value: unknown): void {
    // Once per invocation: a thenable that settles twice must not end a later turn.
    if (!ctx.active) return
    if (ctx.turn) this.#endTurn()
    else if (ctx.chain !== '') {
      const map = this.#interleaved!
      const n = map.get(ctx.chain)! - 1
      if (n === 0) map.delete(ctx.chain)
      else map.set(ctx.chain, n)
    }
    ctx.active = false
    ctx.trace?.settled(ok, value)
    if (ctx.sampledAt >= 0) this.host.methodStats.record(this.info.name, inv.method, ok, ctx.sampledAt)
    if (ok) inv.succeed(value)
    else inv.fail(value)
    this.#afterTurn()
  }

  #afterTurn(): void {
    if (this.#turn === undefined && this.#turnEnded) {
      const done = this.#turnEnded
      this.#turnEnded = undefined
      done()
    }
    if (!this.#draining) this.#drain()
    // Idle: let the turn handlers go (made again by the next call), so an actor that waits between
    // calls, as most do, keeps no closures alive (~250 bytes per actor: many virtual actors).
    if (this.#turn === undefined && !this.#draining) this.#handlers = undefined
    if (this.#stopWhenIdle) this.#stopIfIdle()
  }

  /** Set by the actor's `deactivateOnIdle()`: stop as soon as no call runs or waits. */
  #stopWhenIdle = false

  /** Stops the actor once no call runs or waits (now, if none does). */
  stopWhenIdle(): void {
    this.#stopWhenIdle = true
    this.#stopIfIdle()
  }

  #stopIfIdle(): void {
    if (this.#state !== 'running' || this.#turn !== undefined || (this.#queue?.length ?? 0) > 0 || (this.#interleaved?.size ?? 0) > 0) return
    // Sealed first: a call arriving while onStop runs is refused as not delivered, so a virtual
    // actor's caller routes it to the next activation.
    this.#sealed = true
    void this.stop()
  }

  #drain(): void {
    const queue = this.#queue
    if (!queue) return
    this.#draining = true
    try {
      while (this.#turn === undefined && queue.length > 0 && this.alive) {
        const inv = queue.shift()!
        const method = this.#queuedMethods!.shift()!
        this.#start(inv, method.fn, !(method.interleave || this.info.interleaveAll))
      }
    } finally {
      this.#draining = false
    }
  }

  /**
   * Stops the actor: fails queued calls, lets the running turn finish, runs `onStop`, then
   * unregisters. Idempotent; every caller gets the same promise.
   */
  stop(): Promise<void> {
    return (this.#stopped ??= this.#stop())
  }

  async #stop(): Promise<void> {
    this.#state = 'stopping'
    const queued = this.#queue?.drain() ?? []
    this.#queuedMethods?.drain()
    for (const inv of queued) this.#refuse(inv, this.#stoppedError(`Actor ${this.id} stopped before this call started.`))
    if (this.#turn !== undefined) {
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.#turnEnded = resolve
        timer = setTimeout(resolve, this.host.stopTimeout)
      })
      clearTimeout(timer)
    }
    const onStop = this.actor.onStop
    if (onStop) {
      try {
        await callContext.run({ actor: this, chain: '', turn: false, active: false, trace: undefined, sampledAt: -1 }, invokeMethod, onStop, this.actor, [])
      } catch (e) {
        this.host.onActorError(this, 'onStop', e)
      }
    }
    this.#state = 'stopped'
    this.host.cellStopped(this)
  }
}
