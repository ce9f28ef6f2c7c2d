/**
 * The lifecycle of one cluster singleton's instance on one node, as a pure state machine: no
 * timers, sockets, promises or clock reads. Every input is an event carrying `now` (the cluster's
 * monotonic clock); every output is a list of {@link Directive}s that a shell carries out
 * (SingletonManager.ts in a running system, a deterministic simulator in tests).
 *
 * When to use: to decide or test what one node does with its instance (start, back off, take the
 * lease, stop) and, above all, whether that instance may take a call at a given instant
 * ({@link SingletonLifecycle.admits}), without starting a system.
 *
 * Details:
 * - Phases: `idle → acquiring` (lease only) `→ starting → running → passivating → idle`. `idle` is
 *   the only phase with nothing in flight, which is what a leaving node waits for.
 * - Placement is `allocate()` (Allocation.ts) fed with this core's own facts: whether it hosts, how
 *   long its side has looked doomed (`fencedFor`), whether members confirm it.
 * - With a lease, the core keeps its own {@link LeaseTerm}, fed with every grant's send time, so the
 *   safety check (term valid AND side confirmed) needs nobody else's clock or timer.
 * - A failed start (or an instance that stopped by itself) backs off 100 ms … 10 s; a refused or
 *   failed lease request waits a quarter ttl. The shell's periodic re-evaluation is the retry;
 *   {@link SingletonLifecycle.wakeAt} says when one would first act.
 *
 * Gotchas: confirmation is a query (`confirmedUntil`, from cluster/Downing.ts via the shell), read
 * lazily when the cached bound has passed; once it lapses only confirmations of heartbeats sent
 * after the lapse count, so a node back from a partition must be heard afresh. The shell must
 * apply directives in order, and report each `start-instance` back (`started`/`startFailed`).
 * @module
 */

import { ServingConfirmation } from '../cluster/ServingConfirmation.ts'
import { LeaseTerm } from '../lease/Lease.ts'
import { type Allocation, type AllocationSettings, type AllocationView, allocate, wouldBeDowned } from './Allocation.ts'

/** Where the local instance is: see the module comment. */
export type LifecyclePhase = 'idle' | 'acquiring' | 'starting' | 'running' | 'passivating'

/** Settings of one singleton's lifecycle. */
export interface LifecycleSettings extends AllocationSettings {
  /** Bound on `onPassivate`, ms. */
  readonly passivateTimeout: number
  /** How long a heartbeat confirmation counts, ms (for logs; the query applies it). */
  readonly confirmWindow: number
  /** With a lease: its ttl, ms, and the store's name (for logs). */
  readonly lease?: { readonly ttl: number; readonly store: string }
  /**
   * @internal Mutation tests only: `false` makes the core ignore lease validity when admitting
   * calls and when deciding to stop (lapse, loss, a grant that came back too late), to show
   * what the lease protects against. Default true; never turn it off in a real system.
   */
  readonly checkLease?: boolean
}

/** What the shell does, in order. */
export type Directive =
  /** Request the lease; answer with `leaseGranted`, `leaseRefused` or `leaseFailed`. */
  | { readonly kind: 'acquire-lease' }
  /** Give the lease up (stop renewing it, release it in the store). */
  | { readonly kind: 'release-lease' }
  /** Another owner holds the lease: the shell may find out who, for a log. */
  | { readonly kind: 'report-holder' }
  /** Make the instance now; answer with `started` or `startFailed`. */
  | { readonly kind: 'start-instance' }
  /** The instance runs: make it findable (receptionist), watch it, tell observers. */
  | { readonly kind: 'activated' }
  /** Stop the instance: seal it, run `onPassivate` unless `fenced`, for at most `boundMs`; answer with `passivated`. */
  | { readonly kind: 'passivate'; readonly fenced: boolean; readonly boundMs: number }
  /** The instance is gone after a passivation: tell observers. */
  | { readonly kind: 'passivated' }
  /** Nothing runs or is in flight here any more: forget the instance, wake those waiting for it. */
  | { readonly kind: 'idle' }
  /** Re-decide now (after the current turn when it comes from `guard`). */
  | { readonly kind: 'evaluate' }
  /** A log line; `withInstance`: add the instance's id. */
  | {
      readonly kind: 'log'
      readonly level: 'info' | 'warn' | 'error'
      readonly msg: string
      readonly fields: Readonly<Record<string, unknown>>
      readonly withInstance?: boolean
    }

/** The view an evaluation needs, less what the core knows itself; `undefined`: not in a cluster. */
export type EvaluateView = Omit<AllocationView, 'now' | 'hosting' | 'fencedFor' | 'confirmed'>

/** Inputs of one evaluation. */
export interface EvaluateInput {
  /** This node has a factory (`singleton.host` was called). */
  readonly canHost: boolean
  /** The membership view, or undefined outside a cluster (then this node hosts if it can). */
  readonly view: EvaluateView | undefined
}

/** The answer to a call starting on the instance. */
export interface CallAdmission {
  /** Why the call is refused; undefined: admitted. */
  readonly refuse: string | undefined
  /** To apply after the current turn (not from inside the cell that asked). */
  readonly directives: readonly Directive[]
}

/** Backoff between failed starts: 100 ms doubling, at most 10 s. */
const backoff = (failures: number): number => Math.min(10_000, 100 * 2 ** Math.min(failures - 1, 7))

/** One singleton's instance on one node; see the module comment. */
export class SingletonLifecycle {
  readonly #name: string
  readonly #s: LifecycleSettings
  readonly #checkLease: boolean
  readonly #confirmedUntilQuery: ((notBefore: number) => number) | undefined
  /** Whether a side that stays confirms this node (cluster/ServingConfirmation.ts). */
  readonly #confirmation: ServingConfirmation
  readonly #term: LeaseTerm | undefined
  #phase: LifecyclePhase = 'idle'
  #allocation: Allocation = { kind: 'wait', reason: 'no-candidate' }
  #stopped = false
  #warnedNoFactory = false
  #epoch: number | undefined
  #failures = 0
  /** No start before this (backoff after a failed one). */
  #retryAt = Number.NEGATIVE_INFINITY
  /** No lease request before this (refused or failed). */
  #leaseRetryAt = Number.NEGATIVE_INFINITY
  /** Since when the downing strategy would down this node's side (undefined: it would not). */
  #doomedSince: number | undefined
  #activations = 0
  #passivations = 0

  /**
   * @param confirmedUntil Until when members confirm this node's side, counting only heartbeats
   *   sent at or after `notBefore` (`cluster.confirmedUntil(window, notBefore)`); omit outside a
   *   cluster (always confirmed).
   */
  constructor(name: string, settings: LifecycleSettings, confirmedUntil?: (notBefore: number) => number) {
    this.#name = name
    this.#s = settings
    this.#checkLease = settings.checkLease !== false
    this.#confirmedUntilQuery = confirmedUntil
    this.#confirmation = new ServingConfirmation(settings.confirmWindow, confirmedUntil !== undefined)
    this.#term = settings.lease && new LeaseTerm(settings.lease.ttl)
  }

  get phase(): LifecyclePhase {
    return this.#phase
  }

  /** The last evaluation's decision. */
  get allocation(): Allocation {
    return this.#allocation
  }

  /** `stop` was called: nothing new starts. */
  get stopped(): boolean {
    return this.#stopped
  }

  /** An instance is starting, runs or passivates here (what `allocate` calls hosting). */
  get hosting(): boolean {
    return this.#phase !== 'idle' && this.#phase !== 'acquiring'
  }

  get activations(): number {
    return this.#activations
  }

  /** Instances gone here (passivated, or stopped by themselves). */
  get passivations(): number {
    return this.#passivations
  }

  /** With a lease, while an instance exists and the term is valid: the lease's epoch (fencing token). */
  leaseEpoch(now: number): number | undefined {
    return this.#hasInstance() && this.#term?.valid(now) ? this.#epoch : undefined
  }

  /**
   * May the running instance take a call at `now`: it runs, its lease term is valid (with a lease,
   * unless `checkLease` is off) and members confirm its side. A query: changes nothing.
   */
  admits(now: number): boolean {
    if (this.#phase !== 'running' || !this.#leaseOk(now)) return false
    return this.#confirmation.wouldServe(now, this.#ask)
  }

  /**
   * A call starts on the instance at `now` (the cell's guard): refuses it if the side is not
   * confirmed (then re-decides) or the lease term ran out (then passivates, fenced). Records a lapse.
   */
  guard(now: number): CallAdmission {
    const out: Directive[] = []
    if (!this.#confirmed(now, out)) {
      out.push({ kind: 'evaluate' })
      return { refuse: `the host of singleton ${this.#name} is not confirmed by a side of the cluster that stays`, directives: out }
    }
    if (!this.#leaseOk(now)) {
      this.#lost(now, 'a call found it lapsed', out)
      return { refuse: `the lease of singleton ${this.#name} may have lapsed`, directives: out }
    }
    return { refuse: undefined, directives: out }
  }

  /** When the core would first act without news (a backoff or lease retry ending, the term running out), if ever. */
  wakeAt(now: number): number | undefined {
    if (this.#stopped) return undefined
    if (this.#phase === 'idle') {
      const at = Math.max(this.#retryAt, this.#leaseRetryAt)
      return at > now ? at : undefined
    }
    if (this.#phase === 'running' && this.#term && this.#checkLease) return now + this.#term.remaining(now)
    return undefined
  }

  /** Re-decides where the singleton runs and acts on it: start, take the lease, or stop the instance. */
  evaluate(now: number, input: EvaluateInput): Directive[] {
    if (this.#stopped) return []
    const out: Directive[] = []
    this.#lapse(now, out)
    const a = this.#decide(now, input, out)
    this.#allocation = a
    if (a.kind === 'host') {
      if (!input.canHost) this.#noFactory(out)
      else if (this.#phase === 'idle' && this.#term) this.#acquire(now, out)
      else if (this.#phase === 'idle') this.#start(now, out)
    } else if (this.#phase === 'running') {
      this.#passivate(now, a.kind === 'wait' && (a.reason === 'fenced' || a.reason === 'unconfirmed'), out)
    }
    return out
  }

  /** Time passed with no other news: a lease term that ran out by the clock stops the instance. */
  tick(now: number): Directive[] {
    const out: Directive[] = []
    if (!this.#stopped) this.#lapse(now, out)
    return out
  }

  /**
   * The store granted a lease request sent at `sentAt`: the answer to `acquire-lease`, or a
   * renewal while held. An acquisition starts the instance if this node is still to host it and
   * the term is still good; otherwise the lease is given back.
   */
  leaseGranted(now: number, sentAt: number, epoch: number): Directive[] {
    const term = this.#term
    if (!term) return []
    if (this.#phase !== 'acquiring') {
      if (this.#hasInstance() || this.#phase === 'starting') term.granted(sentAt) // a renewal
      return []
    }
    const out: Directive[] = []
    this.#phase = 'idle'
    term.granted(sentAt)
    this.#epoch = epoch
    if (this.#stopped || this.#allocation.kind !== 'host' || !this.#leaseOk(now) || now < this.#retryAt) {
      this.#giveBack(out)
      out.push({ kind: 'idle' })
      return out
    }
    this.#phase = 'starting'
    out.push({ kind: 'start-instance' })
    return out
  }

  /** Another owner holds the lease: try again in a quarter ttl. */
  leaseRefused(now: number): Directive[] {
    if (this.#phase !== 'acquiring') return []
    this.#phase = 'idle'
    this.#leaseRetryAt = now + this.#s.lease!.ttl / 4
    return [{ kind: 'report-holder' }, { kind: 'idle' }]
  }

  /** The store failed or did not answer: try again in a quarter ttl. */
  leaseFailed(now: number, err: unknown): Directive[] {
    if (this.#phase !== 'acquiring') return []
    this.#phase = 'idle'
    this.#leaseRetryAt = now + this.#s.lease!.ttl / 4
    return [
      { kind: 'log', level: 'warn', msg: 'singleton lease store failed: not starting the instance', fields: { err, store: this.#s.lease!.store } },
      { kind: 'idle' },
    ]
  }

  /** The lease is gone (refused on renewal, another epoch, lapsed by the shell's timer): stop at once. */
  leaseLost(now: number, why: string): Directive[] {
    const out: Directive[] = []
    this.#term?.lost()
    this.#lost(now, why, out)
    return out
  }

  /** The instance asked for by `start-instance` runs. */
  started(now: number): Directive[] {
    if (this.#phase !== 'starting') return []
    this.#phase = 'running'
    this.#activations++
    const out: Directive[] = [
      { kind: 'log', level: 'info', msg: 'singleton activated', fields: { event: 'activated' }, withInstance: true },
      { kind: 'activated' },
    ]
    if (this.#stopped) this.#passivate(now, false, out)
    else if (this.#term) out.push({ kind: 'evaluate' }) // started from a grant, outside an evaluation
    return out
  }

  /** The factory failed: back off; with a lease, give it back. */
  startFailed(now: number, err: unknown): Directive[] {
    if (this.#phase !== 'starting') return []
    this.#phase = 'idle'
    this.#failed(now)
    const out: Directive[] = [{ kind: 'log', level: 'error', msg: 'the singleton factory failed', fields: { err, retryInMs: this.#retryAt - now } }]
    this.#giveBack(out)
    out.push({ kind: 'idle' })
    return out
  }

  /** The running instance stopped by itself (a failed onStart, stop()): another starts after a backoff. */
  instanceEnded(now: number): Directive[] {
    if (this.#phase !== 'running') return []
    this.#failed(now)
    const out: Directive[] = [
      {
        kind: 'log',
        level: 'warn',
        msg: 'the singleton instance stopped by itself; starting another after a pause',
        fields: { retryInMs: this.#retryAt - now },
        withInstance: true,
      },
    ]
    this.#released(out)
    return out
  }

  /** The passivation asked for by `passivate` is done: the instance is stopped. */
  passivated(_now: number): Directive[] {
    if (this.#phase !== 'passivating') return []
    const out: Directive[] = []
    this.#released(out)
    out.push(
      { kind: 'log', level: 'info', msg: 'singleton passivated', fields: { event: 'passivated' }, withInstance: true },
      { kind: 'passivated' },
      { kind: 'evaluate' },
    )
    return out
  }

  /** Shutdown: nothing new starts (not even from a lease request in flight); a running instance passivates. */
  stop(now: number): Directive[] {
    this.#stopped = true
    const out: Directive[] = []
    if (this.#phase === 'running') this.#passivate(now, false, out)
    return out
  }

  // ── deciding ────────────────────────────────────────────────────────────────

  #decide(now: number, { canHost, view }: EvaluateInput, out: Directive[]): Allocation {
    if (!view) return canHost ? { kind: 'host' } : { kind: 'wait', reason: 'no-candidate' }
    const s = this.#s
    const doomed = s.downing !== undefined && wouldBeDowned(view, s.downing)
    if (!doomed) this.#doomedSince = undefined
    else this.#doomedSince ??= now
    const fencedFor = this.#doomedSince === undefined ? 0 : now - this.#doomedSince
    // Spelled out: on Node 20 a spread followed by keys the source lacks takes V8's slow path (~0.5 µs a key).
    const { self, members, leader, downSince, listedElsewhere } = view
    const a = allocate({ self, members, leader, downSince, listedElsewhere, now, hosting: this.hosting, fencedFor, confirmed: this.#confirmed(now, out) }, s)
    // A fence: confirmations from before it no longer count, the node must hear afresh.
    if (a.kind === 'wait' && a.reason === 'fenced') this.#unconfirmedSince(now, out)
    return a
  }

  #noFactory(out: Directive[]): void {
    if (this.#warnedNoFactory) return
    this.#warnedNoFactory = true
    out.push({
      kind: 'log',
      level: 'error',
      msg: 'this node was chosen to host the singleton but never called singleton.host() for it: every node that may host (every node with its role) must call host(); give proxy-only nodes no such role',
      fields: { role: this.#s.role ?? null },
    })
  }

  // ── confirmation ────────────────────────────────────────────────────────────

  /** The cluster's answer, for the confirmation (a `never` node's query is never asked). */
  readonly #ask = (_window: number, notBefore: number): number => this.#confirmedUntilQuery?.(notBefore) ?? Number.POSITIVE_INFINITY

  /** Whether members confirm this node's side at `now`; records a lapse, logs a re-confirmation. */
  #confirmed(now: number, out: Directive[]): boolean {
    const c = this.#confirmation
    const confirmed = c.check(now, this.#ask)
    if (c.change === 'again')
      out.push({ kind: 'log', level: 'info', msg: 'confirmed again by a side that stays: may host the singleton again', fields: { event: 'confirmed' } })
    else if (c.change === 'lapsed') this.#logLapse(out)
    return confirmed
  }

  /** A fence: confirmations from before `now` no longer count. */
  #unconfirmedSince(now: number, out: Directive[]): void {
    if (this.#confirmation.lapse(now)) this.#logLapse(out)
  }

  #logLapse(out: Directive[]): void {
    if (this.#hasInstance())
      out.push({
        kind: 'log',
        level: 'warn',
        msg: 'singleton host not confirmed by a side that stays: refusing calls until members confirm it again',
        fields: { event: 'unconfirmed', windowMs: this.#s.confirmWindow },
      })
  }

  // ── lease ───────────────────────────────────────────────────────────────────

  /** No lease, or its term is valid at `now` (or the mutation ignores it). */
  #leaseOk(now: number): boolean {
    return !this.#term || !this.#checkLease || this.#term.valid(now)
  }

  #acquire(now: number, out: Directive[]): void {
    if (now < this.#leaseRetryAt || now < this.#retryAt) return
    this.#phase = 'acquiring'
    out.push({ kind: 'acquire-lease' })
  }

  /** The term ran out by the clock while running: as lost. */
  #lapse(now: number, out: Directive[]): void {
    if (this.#phase === 'running' && !this.#leaseOk(now)) this.#lost(now, 'its term ran out by the clock', out)
  }

  /** Stops a running instance at once, fenced (no onPassivate), unless the mutation ignores the lease. */
  #lost(now: number, why: string, out: Directive[]): void {
    if (this.#phase !== 'running' || !this.#checkLease) return
    out.push({ kind: 'log', level: 'warn', msg: 'singleton lease lost: stopping the instance', fields: { event: 'lease-lost', why }, withInstance: true })
    this.#passivate(now, true, out)
  }

  /** With a lease: forget the term and release it. */
  #giveBack(out: Directive[]): void {
    if (!this.#term) return
    this.#term.lost()
    out.push({ kind: 'release-lease' })
  }

  // ── instance ────────────────────────────────────────────────────────────────

  #hasInstance(): boolean {
    return this.#phase === 'running' || this.#phase === 'passivating'
  }

  #start(now: number, out: Directive[]): void {
    if (now < this.#retryAt) return
    this.#phase = 'starting'
    out.push({ kind: 'start-instance' })
  }

  #failed(now: number): void {
    this.#failures++
    this.#retryAt = now + backoff(this.#failures)
  }

  #passivate(now: number, fenced: boolean, out: Directive[]): void {
    this.#phase = 'passivating'
    this.#failures = 0
    const s = this.#s
    // Fenced: the other side may start its instance `margin` after downing this one; be done well before.
    let boundMs = fenced ? Math.min(s.passivateTimeout, s.margin / 2) : s.passivateTimeout
    // With a lease, onPassivate gets no longer than the term: after it, another node may hold the lease.
    if (this.#term && this.#checkLease) boundMs = Math.min(boundMs, this.#term.remaining(now))
    out.push(
      { kind: 'log', level: 'info', msg: 'singleton passivating', fields: { event: 'passivating', fenced }, withInstance: true },
      { kind: 'passivate', fenced, boundMs },
    )
  }

  /** The instance is gone: back to idle, the lease given back. */
  #released(out: Directive[]): void {
    this.#phase = 'idle'
    this.#passivations++
    this.#giveBack(out)
    out.push({ kind: 'idle' })
  }
}
