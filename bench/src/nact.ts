/**
 * nact 7: an in-process actor answering `query` (ask) with the argument it received.
 *
 * nact names each ask's temporary reply reference with a random 32-bit id (`random * MAX | 0`), so
 * among 1000 concurrent asks two occasionally share an id and one of them is never answered. Such
 * an ask would hold its whole batch until the query timeout; a short timeout bounds that stall,
 * and the lost asks are counted and reported instead of failing the run.
 * @module
 */
import { dispatch, query, type Ref, spawnStateless, start, stop } from 'nact'
import type { Payload } from './harness.ts'
import type { LocalPeer, LocalTarget } from './protocol.ts'

/** Far above a batch's latency (a few ms), short enough that a lost ask costs little. */
const QUERY_TIMEOUT_MS = 250

interface Ask {
  readonly sender: Ref<Payload>
  readonly arg: Payload
}

function open(): Promise<LocalTarget> {
  const system = start()
  const echo = spawnStateless(system, (msg: Ask) => dispatch(msg.sender, msg.arg), 'echo')
  let lost = 0
  const countLost = (error: unknown): undefined => {
    if (!(error instanceof Error && error.message === 'Query Timeout')) throw error
    lost++
    return undefined
  }
  return Promise.resolve({
    call: (arg: Payload) => query(echo, (sender: Ref<Payload>): Ask => ({ sender, arg }), QUERY_TIMEOUT_MS).catch(countLost),
    notes: () => (lost > 0 ? [`${lost} ask(s) got no answer within ${QUERY_TIMEOUT_MS} ms (nact temporary-id collisions) and were counted as done`] : []),
    close: () => {
      stop(system)
      return Promise.resolve()
    },
  })
}

export const local: LocalPeer = { open }
