/**
 * Heartbeats and reachability observations on the wire (control kinds `ControlKind.Heartbeat`
 * and `ControlKind.Reachability`), MessagePack arrays validated field by field:
 *
 * ```
 * request:      [ 1, 0, seq ]
 * answer:       [ 1, 1, seq, status | null, reachable ]      status: the requester's, as the answerer sees it
 * observations: [ 1, [[observerUid, seq, [subjectUid, …]], …] ]
 * ```
 * @module
 */
import { ControlDecodeError, ControlReader, controlPackr } from '../control/ControlCodec.ts'
import type { HeartbeatAnswer } from './Heartbeat.ts'
import { type MembershipStatus, STATUS_RANK } from './Member.ts'
import type { Observation, ObservationTable } from './Reachability.ts'

const VERSION = 1
const REQUEST = 0
const ANSWER = 1
const MAX_OBSERVERS = 10_000
const MAX_SUBJECTS = 10_000

/** A heartbeat or observation message that does not decode or validate; dropped and logged. */
export class HeartbeatDecodeError extends ControlDecodeError {}

const readBeat: ControlReader = new ControlReader('heartbeat', VERSION, HeartbeatDecodeError)
const readTable: ControlReader = new ControlReader('reachability observations', VERSION, HeartbeatDecodeError)

/** A heartbeat message: a request, or an answer about the requester. */
export type HeartbeatMessage = { readonly kind: 'request'; readonly seq: number } | ({ readonly kind: 'answer' } & HeartbeatAnswer)

export function encodeHeartbeatRequest(seq: number): Buffer {
  return controlPackr.pack([VERSION, REQUEST, seq])
}

export function encodeHeartbeatAnswer(a: HeartbeatAnswer): Buffer {
  return controlPackr.pack([VERSION, ANSWER, a.seq, a.status ?? null, a.reachable])
}

/** Decodes a heartbeat message; throws HeartbeatDecodeError, never anything else. */
export function decodeHeartbeat(bytes: Buffer): HeartbeatMessage {
  const raw = readBeat.open(bytes)
  const seq = readBeat.readSeq(raw[2], 1)
  if (raw[1] === REQUEST) {
    if (raw.length !== 3) readBeat.fail('a heartbeat request is a 3-element array')
    return { kind: 'request', seq }
  }
  if (raw[1] !== ANSWER || raw.length !== 5) readBeat.fail('a heartbeat answer is a 5-element array')
  const status = raw[3]
  if (status !== null && (typeof status !== 'string' || !Object.hasOwn(STATUS_RANK, status))) readBeat.fail('bad status')
  if (typeof raw[4] !== 'boolean') readBeat.fail('reachable must be a boolean')
  return { kind: 'answer', seq, status: status === null ? undefined : (status as MembershipStatus), reachable: raw[4] }
}

export function encodeObservations(table: ObservationTable): Buffer {
  return controlPackr.pack([VERSION, [...table].map(([observer, o]) => [observer, o.seq, [...o.unreachable]])])
}

/** Decodes an observation table; throws HeartbeatDecodeError, never anything else. */
export function decodeObservations(bytes: Buffer): ObservationTable {
  const raw = readTable.open(bytes)
  if (raw.length !== 2) readTable.fail('observations are a 2-element array')
  const out = new Map<string, Observation>()
  for (const e of readTable.readArray(raw[1], MAX_OBSERVERS, 'observers')) {
    if (!Array.isArray(e) || e.length !== 3) readTable.fail('an observation is [observer, seq, subjects]')
    const subjects = readTable.readArray(e[2], MAX_SUBJECTS, 'subjects').map((x) => readTable.readUid(x))
    out.set(readTable.readUid(e[0]), { seq: readTable.readSeq(e[1], 1), unreachable: [...new Set(subjects)].sort() })
  }
  return out
}
