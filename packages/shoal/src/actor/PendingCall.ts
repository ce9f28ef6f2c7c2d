/**
 * PendingCall: a call made from this node, local or remote, waiting for its outcome. It owns the
 * caller's promise, its deadline in the system's DeadlineQueue, and its entry in the calls metric;
 * a remote one is also listed in its peer's table of pending calls until it settles.
 *
 * It is also the Invocation a local target runs: a local call needs no second object.
 * @module
 */

import { isNotDelivered, ShoalError, TimeoutError } from '../errors.ts'
import type { CallTrace } from '../observability/CallTracing.ts'
import type { Metrics } from '../observability/Metrics.ts'
import type { Serialization } from '../serialization/Serialization.ts'
import type { Deadline, DeadlineQueue } from '../util/DeadlineQueue.ts'
import type { IdTable } from '../util/IdTable.ts'
import type { EnvelopeHeaders } from '../wire/Envelope.ts'
import type { ActorId } from './ActorId.ts'
import type { Invocation } from './Invocation.ts'
import type { CallRetry } from './Route.ts'

/** What every pending call of one system shares: the deadline queue and the metrics. */
export interface CallLedger {
  readonly deadlines: DeadlineQueue
  readonly metrics: Metrics
}

/** The pending calls to one peer, by call id (owned by remoting's Peer). */
export type PendingTable = IdTable<PendingCall>

const noop = (): void => {}

/**
 * Which setting a call's timeout came from, named in its TimeoutError: the system's `callTimeout`,
 * the ref's own (`withTimeout(ms)`, or a plugin's default for the refs it makes), or the timeout a plugin gave a call it forwards (a singleton proxy).
 */
export type TimeoutSource = 'callTimeout' | 'ref' | 'forward'

const SOURCE_TEXT: Readonly<Record<TimeoutSource, string>> = {
  callTimeout: "the system's callTimeout; raise it in ClusterSystem.start({ callTimeout }) or per ref with ref.withTimeout(ms)",
  ref: "the ref's own timeout, from ref.withTimeout(ms) or a plugin's default for its refs (a singleton proxy: allocationTimeout + callTimeout); change it with ref.withTimeout(ms)",
  forward: "the timeout of the plugin forwarding it, e.g. a singleton proxy; raise the caller's timeout with ref.withTimeout(ms)",
}

/** One call made from this node until it settles (see the module comment). */
export class PendingCall implements Deadline, Invocation {
  deadline = 0
  prevDeadline: Deadline | undefined = undefined
  nextDeadline: Deadline | undefined = undefined
  deadlineGroup: unknown = undefined
  resolve: (v: unknown) => void = noop
  reject: (e: unknown) => void = noop
  /** Asked first when the call fails (a remote call whose route can try elsewhere); see CallRetry. */
  retry: CallRetry | undefined = undefined
  /** Set when local results must be copied through the codec (`serializeLocalCalls`). */
  copyResultWith: Serialization | undefined = undefined
  #done = false

  constructor(
    readonly ledger: CallLedger,
    readonly method: string,
    public args: unknown[],
    readonly chain: string,
    readonly timeout: number,
    /** The setting `timeout` came from, named when the call times out. */
    readonly timeoutFrom: TimeoutSource,
    readonly target: ActorId,
    /** From `metrics.callStarted`: when the call started, or -1 if it is not timed. */
    readonly started: number,
    /** The peer's table this call is listed in (remote calls). */
    readonly table: PendingTable | undefined,
    readonly callId: number,
    readonly headers: EnvelopeHeaders | undefined,
    /** The caller side of a traced call, told when it settles. */
    readonly trace: CallTrace | undefined,
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
    this.ledger.metrics.callDone('ok', this.started, this.table !== undefined)
    this.trace?.settled(true, value)
    this.resolve(value)
  }

  fail(error: unknown): void {
    if (this.#done) return
    const retry = this.retry
    const left = retry ? this.ledger.deadlines.left(this) : 0
    this.#settle()
    this.trace?.settled(false, error)
    const instead = retry?.retry(error, this.method, this.args, this.chain, left, this.timeoutFrom)
    // Taken back by its route (a virtual actor's owner refused it before it ran): not a failure the
    // caller sees; the call that goes on in its place counts its own outcome. A proxy's hop (a
    // singleton proxy, a virtual-actor router: `forward`) refused before it ran is the same: the
    // proxy sends it again, or fails the call it stands for, which its caller counts.
    const takenBack = instead !== undefined || (this.timeoutFrom === 'forward' && isNotDelivered(error))
    const code = takenBack ? 'retried' : error instanceof ShoalError ? error.code : 'error'
    this.ledger.metrics.callDone(code, this.started, this.table !== undefined)
    if (instead) this.resolve(instead)
    else this.reject(error)
  }

  expire(): void {
    this.fail(
      new TimeoutError(
        `Call ${this.method} on ${this.target} got no reply within ${this.timeout} ms (${SOURCE_TEXT[this.timeoutFrom]}, if it is slow by design); the call may still run.`,
      ),
    )
  }

  #settle(): void {
    this.#done = true
    this.ledger.deadlines.remove(this)
    this.table?.delete(this.callId)
  }
}

/** The promise the caller awaits for `call`; call once, right after constructing it. */
export function promiseOf(call: PendingCall): Promise<unknown> {
  capturing = call
  const promise = new Promise(capture)
  capturing = undefined
  return promise
}

/** The call whose promise is being created; lets one shared executor stand in for a closure per call. */
let capturing: PendingCall | undefined
function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  capturing!.resolve = resolve
  capturing!.reject = reject
}
