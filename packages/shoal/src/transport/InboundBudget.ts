/**
 * InboundBudget: the bytes of inbound work one connection has handed to this node and that are
 * not finished yet, and the read pausing that bounds them.
 *
 * Each inbound call or one-way message takes its frame bytes when it is delivered to a mailbox and
 * gives them back exactly once, when its turn settles or it is refused or dropped (see
 * {@link InboundCredit}). Above `maxInboundBytes` the connection stops reading its socket, so TCP
 * backpressure reaches the sender (its writes wait for `drain`, its user lane fills up to
 * `maxOutboundBytes`, then its new calls fail with `OverloadedError`); reading resumes once the
 * outstanding bytes fall to half the budget. A lost connection closes its budget: credits still
 * out are then returned to nothing, and the next connection starts from zero.
 * @module
 */

/** What a budget drives: the socket's reads, and the metrics. */
export interface InboundBudgetHooks {
  pause(): void
  resume(): void
  /** Reading was paused because the budget was exceeded (`shoal_inbound_paused_total`). */
  paused(): void
}

export class InboundBudget {
  readonly limit: number
  readonly #hooks: InboundBudgetHooks
  #bytes = 0
  #paused = false
  #closed = false

  constructor(limit: number, hooks: InboundBudgetHooks) {
    this.limit = limit
    this.#hooks = hooks
  }

  /** Bytes of inbound work outstanding. */
  get bytes(): number {
    return this.#bytes
  }

  /** True while reading is paused. */
  get isPaused(): boolean {
    return this.#paused
  }

  /** Takes `n` bytes for one inbound message; pauses reading when the budget is exceeded. */
  take(n: number): InboundCredit {
    const credit = new InboundCredit(this, n)
    if (this.#closed) return credit
    this.#bytes += n
    if (!this.#paused && this.#bytes > this.limit) {
      this.#paused = true
      this.#hooks.paused()
      this.#hooks.pause()
    }
    return credit
  }

  /** Gives back `n` bytes (through {@link InboundCredit.release} only). */
  giveBack(n: number): void {
    if (this.#closed) return
    this.#bytes -= n
    if (this.#paused && this.#bytes <= this.limit / 2) {
      this.#paused = false
      this.#hooks.resume()
    }
  }

  /** The connection is gone: outstanding credits no longer count. */
  close(): void {
    this.#closed = true
    this.#bytes = 0
    this.#paused = false
  }
}

/** The bytes one inbound message holds; released exactly once (later releases are ignored). */
export class InboundCredit {
  #budget: InboundBudget | undefined
  readonly bytes: number

  constructor(budget: InboundBudget, bytes: number) {
    this.#budget = budget
    this.bytes = bytes
  }

  get released(): boolean {
    return this.#budget === undefined
  }

  release(): void {
    const budget = this.#budget
    if (budget === undefined) return
    this.#budget = undefined
    budget.giveBack(this.bytes)
  }
}
