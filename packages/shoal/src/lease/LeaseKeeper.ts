/**
 * LeaseKeeper: one owner's hold on one lease, kept alive. The shell around {@link LeaseTerm}.
 *
 * - **One operation at a time.** Acquire, renew and release of this keeper run in order on one
 *   chain, so a release is in the store before a later acquire by the same owner (on a pooled store
 *   they could otherwise pass each other, and an acquire that ran first would be undone by the
 *   release). Each operation is bounded (`opTimeout`): a store that stops answering fails the
 *   operation instead of freezing the chain.
 * - **Renewal** every quarter ttl while held; a renewal that comes back with another epoch (the
 *   lease lapsed in the store and was taken again) or refused counts as lost.
 * - **Lapse by the clock.** A timer fires when the term runs out, whatever the store does or does
 *   not answer, and reports the loss.
 *
 * Gotcha: an operation that timed out may still be executed by the store later (a connection that
 * stalled and recovered); a grant nobody knows of then simply expires after ttl.
 * @module
 */
import type { Logger } from 'pino'
import { type LeaseStore, LeaseTerm } from './Lease.ts'

export interface LeaseKeeperOptions {
  readonly store: LeaseStore
  readonly name: string
  readonly owner: string
  readonly ttl: number
  readonly log: Logger
  /** Called once per holding when it is lost (refused, another epoch, or lapsed by the clock). */
  readonly onLost: (why: string) => void
  /** Bound on one store operation, ms. Default ttl / 4. */
  readonly opTimeout?: number
  /** The monotonic clock terms are counted on (ms). Default `performance.now()`; pass the system's, so one clock is used. */
  readonly now?: () => number
  /**
   * Called on every grant, the acquisition and each renewal, with when its request was sent and the
   * epoch, after this keeper's own bookkeeping (so a holder can keep its own {@link LeaseTerm}).
   */
  readonly onGranted?: (sentAt: number, epoch: number) => void
}

export class LeaseKeeper {
  readonly #o: LeaseKeeperOptions
  readonly #opTimeout: number
  readonly #now: () => number
  #chain: Promise<unknown> = Promise.resolve()
  #term: LeaseTerm | undefined
  #epoch: number | undefined
  #renewTimer: NodeJS.Timeout | undefined
  #lapseTimer: NodeJS.Timeout | undefined

  constructor(options: LeaseKeeperOptions) {
    this.#o = options
    this.#opTimeout = options.opTimeout ?? options.ttl / 4
    this.#now = options.now ?? (() => performance.now())
  }

  /** The epoch (fencing token) of the current holding, while it is valid. */
  get epoch(): number | undefined {
    return this.valid() ? this.#epoch : undefined
  }

  /** Whether the lease is held and its term has not run out. */
  valid(now = this.#now()): boolean {
    return this.#term?.valid(now) === true
  }

  /** How long the current term lasts from now, ms (0 if not held). */
  remaining(now = this.#now()): number {
    return this.#term?.remaining(now) ?? 0
  }

  /**
   * Takes the lease (after any operation still pending). Resolves with its epoch if held from now
   * on (renewed until {@link release} or loss), undefined if someone else holds it; rejects if the
   * store failed or did not answer in time.
   */
  acquire(): Promise<number | undefined> {
    return this.#op(async () => {
      const sentAt = this.#now()
      const epoch = await this.#call(this.#o.store.acquireLease(this.#o.name, this.#o.owner, this.#o.ttl))
      if (epoch === undefined) return undefined
      const term = new LeaseTerm(this.#o.ttl)
      term.granted(sentAt)
      this.#term = term
      this.#epoch = epoch
      this.#armLapse(term)
      this.#scheduleRenewal(term)
      this.#granted(sentAt, epoch)
      return epoch
    })
  }

  /** Stops renewing and gives the lease up (in order after pending operations); errors are logged. */
  release(): Promise<void> {
    this.#drop()
    return this.#op(async () => {
      try {
        await this.#call(this.#o.store.releaseLease(this.#o.name, this.#o.owner))
      } catch (err) {
        this.#o.log.warn({ err, store: this.#o.store.name, lease: this.#o.name }, 'lease not released (it will expire)')
      }
    })
  }

  /** Resolves once every operation handed in so far is done, or after `ms`. */
  async settled(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.#chain.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))])
    clearTimeout(timer)
  }

  #scheduleRenewal(term: LeaseTerm): void {
    clearTimeout(this.#renewTimer)
    this.#renewTimer = setTimeout(() => void this.#renew(term), this.#o.ttl / 4)
    this.#renewTimer.unref()
  }

  async #renew(term: LeaseTerm): Promise<void> {
    try {
      await this.#op(async () => {
        if (this.#term !== term) return
        const sentAt = this.#now()
        const epoch = await this.#call(this.#o.store.acquireLease(this.#o.name, this.#o.owner, this.#o.ttl))
        if (this.#term !== term) return
        // Another epoch: the lease lapsed in the store and was taken again; someone may have held it between.
        if (epoch === undefined || epoch !== this.#epoch) return this.#lose(epoch === undefined ? 'another owner holds it' : 'it lapsed in the store')
        term.granted(sentAt)
        this.#armLapse(term)
        this.#granted(sentAt, epoch)
      })
    } catch (err) {
      if (this.#term === term)
        this.#o.log.warn(
          { err, store: this.#o.store.name, lease: this.#o.name, validForMs: Math.round(term.remaining(this.#now())) },
          'lease renewal failed; retrying',
        )
    }
    if (this.#term === term) this.#scheduleRenewal(term)
  }

  /** Fires when the term runs out by this clock, whatever the store does. */
  #armLapse(term: LeaseTerm): void {
    clearTimeout(this.#lapseTimer)
    this.#lapseTimer = setTimeout(() => {
      if (this.#term === term && !term.valid(this.#now())) this.#lose('not renewed in time')
      else if (this.#term === term) this.#armLapse(term)
    }, term.remaining(this.#now()) + 1)
    this.#lapseTimer.unref()
  }

  /** Tells the holder; its failure is logged, not the operation's. */
  #granted(sentAt: number, epoch: number): void {
    try {
      this.#o.onGranted?.(sentAt, epoch)
    } catch (err) {
      this.#o.log.error({ err, lease: this.#o.name }, 'a lease holder failed handling a grant')
    }
  }

  #lose(why: string): void {
    if (this.#term === undefined) return
    this.#drop()
    this.#o.onLost(why)
  }

  /** Forgets the holding: no renewal, no lapse timer, not valid. */
  #drop(): void {
    clearTimeout(this.#renewTimer)
    clearTimeout(this.#lapseTimer)
    this.#term?.lost()
    this.#term = undefined
    this.#epoch = undefined
  }

  #op<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn)
    this.#chain = run.catch(() => undefined)
    return run
  }

  /** A store call bounded by the operation timeout. */
  async #call<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the lease store ${this.#o.store.name} did not answer within ${Math.round(this.#opTimeout)} ms`)),
            this.#opTimeout,
          )
        }),
      ])
    } finally {
      clearTimeout(timer)
    }
  }
}
