/**
 * Reliable, ordered delivery of system messages (watch, unwatch, terminated) to one peer node
 * incarnation, as a pure state machine: no sockets, no timers, the clock passed in.
 *
 * User calls are at-most-once; a lost "terminated" notice would leave a watcher waiting forever,
 * so system messages are numbered per peer, kept until the peer acknowledges them cumulatively,
 * and sent again after `redeliverAfter` until it does. The receiver delivers only the next
 * expected number and re-acknowledges duplicates, so every message is delivered exactly once and
 * in order, across reconnects. A new peer incarnation (new uid) gets a new channel: numbering
 * never continues across incarnations.
 * @module
 */

/** A run of consecutive messages starting at `first`. */
export interface Batch<M> {
  readonly first: number
  readonly messages: readonly M[]
}

/** Bounds and timing of a channel. */
export interface SystemChannelOptions {
  /** Send again what is unacknowledged this long after its last send, ms. Default 1000. */
  readonly redeliverAfter?: number
  /** Most messages per batch. Default 500. */
  readonly maxBatch?: number
  /** Most unacknowledged messages; `send` refuses beyond. Default 100,000. */
  readonly maxUnacked?: number
}

interface Outgoing<M> {
  readonly seq: number
  readonly message: M
  sentAt: number
}

/** The channel to one peer incarnation (both directions); see the module comment. */
export class SystemChannel<M> {
  readonly #redeliverAfter: number
  readonly #maxBatch: number
  readonly #maxUnacked: number
  readonly #unacked: Outgoing<M>[] = []
  #nextSeq = 1
  /** Highest sequence number received in order from the peer. */
  #received = 0

  constructor(o: SystemChannelOptions = {}) {
    this.#redeliverAfter = o.redeliverAfter ?? 1000
    this.#maxBatch = o.maxBatch ?? 500
    this.#maxUnacked = o.maxUnacked ?? 100_000
  }

  /** Messages sent and not yet acknowledged. */
  get unacked(): number {
    return this.#unacked.length
  }

  /** Highest sequence number received in order (what an ack acknowledges). */
  get received(): number {
    return this.#received
  }

  /**
   * Numbers `message` and returns the batch to transmit now, or undefined when `maxUnacked`
   * messages already wait (the peer has not acknowledged anything for a long time: it is about
   * to be declared down, which settles every watch involving it).
   */
  send(message: M, now: number): Batch<M> | undefined {
    if (this.#unacked.length >= this.#maxUnacked) return undefined
    const seq = this.#nextSeq++
    this.#unacked.push({ seq, message, sentAt: now })
    return { first: seq, messages: [message] }
  }

  /** The peer has everything up to `seq`. Acks of numbers never sent are ignored. */
  acknowledge(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq >= this.#nextSeq) return
    let n = 0
    while (n < this.#unacked.length && this.#unacked[n]!.seq <= seq) n++
    if (n > 0) this.#unacked.splice(0, n)
  }

  /**
   * A batch arrived: returns the messages to deliver (those that continue the sequence, once
   * each) and the cumulative ack to send back. A gap delivers nothing past it: the sender
   * redelivers from the first missing number.
   */
  receive(batch: Batch<unknown>): { deliver: unknown[]; ack: number } {
    const deliver: unknown[] = []
    const { first, messages } = batch
    for (let i = 0; i < messages.length; i++) {
      const seq = first + i
      if (seq <= this.#received) continue
      if (seq !== this.#received + 1) break
      this.#received = seq
      deliver.push(messages[i])
    }
    return { deliver, ack: this.#received }
  }

  /** Batches of what has waited `redeliverAfter` since its last send; marks them sent at `now`. */
  redeliver(now: number): Batch<M>[] {
    const due = this.#unacked.filter((o) => now - o.sentAt >= this.#redeliverAfter)
    const out: Batch<M>[] = []
    let run: Outgoing<M>[] = []
    const flush = (): void => {
      if (run.length > 0) out.push({ first: run[0]!.seq, messages: run.map((o) => o.message) })
      run = []
    }
    for (const o of due) {
      // Batches carry consecutive numbers only; a message sent recently splits the run.
      if (run.length === this.#maxBatch || (run.length > 0 && o.seq !== run[run.length - 1]!.seq + 1)) flush()
      run.push(o)
      o.sentAt = now
    }
    flush()
    return out
  }
}
