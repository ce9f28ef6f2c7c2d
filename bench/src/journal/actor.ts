/**
 * The event-sourced actor of bench:journal: an account whose state is a balance and an event
 * count, folded from `Deposited` events of about 90 bytes (msgpack). The load loops run inside the
 * actor, so what is timed is `emit` itself: persist (the store's group commit), then apply.
 * @module
 */
import { distributed, EventSourcedActor } from 'shoal'

export interface Deposited {
  readonly type: 'Deposited'
  readonly amount: number
  readonly note: string
}

/** The one event every writer appends (framework and raw baselines alike). */
export const EVENT: Deposited = { type: 'Deposited', amount: 1, note: 'a'.repeat(60) }

export interface Balance {
  readonly balance: number
  readonly count: number
}

export class Account extends EventSourcedActor<Balance, Deposited> {
  readonly persistenceId: string

  constructor(
    accountId: string,
    /** Receives the duration of each timed emit, ms. */
    readonly sink?: (ms: number) => void,
  ) {
    super()
    this.persistenceId = `account-${accountId}`
  }

  initialState(): Balance {
    return { balance: 0, count: 0 }
  }

  applyEvent(s: Balance, e: Deposited): Balance {
    return { balance: s.balance + e.amount, count: s.count + 1 }
  }

  /** The balance: the first served call after recovery. */
  @distributed async balance(): Promise<Balance> {
    return this.state
  }

  /**
   * Emits in a loop, awaiting each emit, until `to` (performance.now() of this process); returns how
   * many emits completed in [from, to). With `sink`, times every emit that started at or after `from`.
   */
  @distributed async pump(from: number, to: number): Promise<number> {
    let completed = 0
    for (;;) {
      const t0 = performance.now()
      if (t0 >= to) return completed
      await this.emit(EVENT)
      const t1 = performance.now()
      if (t1 >= from && t1 < to) {
        completed++
        if (t0 >= from) this.sink?.(t1 - t0)
      }
    }
  }
}
