/**
 * Envelopes (wire/Envelope.ts): decodeCall, decodeOneWay (with and without the peer's TargetCache,
 * decoded twice so the second hits the cache) and decodeReply. Documented: EnvelopeError only.
 * A decoded envelope must respect the limits (EnvelopeLimits, HeaderLimits) and headers must be a
 * frozen null-prototype object.
 */
import fc from 'fast-check'
import {
  type CallEnvelope,
  decodeCall,
  decodeOneWay,
  decodeReply,
  EnvelopeError,
  EnvelopeLimits,
  encodeCall,
  encodeOneWay,
  encodeReply,
  HeaderLimits,
  type OneWayEnvelope,
  TargetCache,
} from '../../src/wire/Envelope.ts'
import { type FuzzTarget, inputs, target } from './harness.ts'

const args = Buffer.from([0x91, 0x03])
const call: CallEnvelope = {
  callId: 7,
  incarnation: 0x01020304,
  timeoutMs: 5000,
  uid: '0123456789abcdef',
  path: '/user/island-1',
  method: 'addRock',
  chain: 'abc.1',
  headers: undefined,
  args,
}
const headers = Object.freeze({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'a=b' }) as never
const seeds = [
  encodeCall(call),
  encodeCall({ ...call, headers, chain: '' }),
  encodeCall({ ...call, path: `/${'p'.repeat(1023)}`, method: 'm'.repeat(255), chain: 'c'.repeat(128) }),
  encodeOneWay({ incarnation: 9, uid: call.uid, path: call.path, method: call.method, chain: '', headers: undefined, args } as OneWayEnvelope),
  encodeOneWay({ incarnation: 9, uid: call.uid, path: call.path, method: call.method, chain: 'x', headers, args } as OneWayEnvelope),
  encodeReply({ callId: 7, ok: true, refused: false, payload: args }),
  encodeReply({ callId: 8, ok: false, refused: true, payload: Buffer.alloc(0) }),
]

// Limits are in bytes on the wire; a decoded string has at most one UTF-16 unit per byte (a
// malformed byte decodes to one U+FFFD), so its length is checked against the byte limit.
function checkTarget(e: { uid: string; path: string; method: string; chain: string; headers?: unknown }): void {
  if (e.uid.length < 1 || e.uid.length > EnvelopeLimits.uid) throw new Error('uid outside its limits')
  if (e.path.length < 1 || e.path.length > EnvelopeLimits.path) throw new Error('path outside its limits')
  if (e.method.length < 1 || e.method.length > EnvelopeLimits.method) throw new Error('method outside its limits')
  if (e.chain.length > EnvelopeLimits.chain) throw new Error('chain outside its limits')
  const h = e.headers
  if (h === undefined) return
  if (typeof h !== 'object' || h === null || Object.getPrototypeOf(h) !== null || !Object.isFrozen(h))
    throw new Error('headers not a frozen null-prototype object')
  const entries = Object.entries(h)
  if (entries.length < 1 || entries.length > HeaderLimits.entries) throw new Error('header count outside its limits')
}

const kind = fc.constantFrom('call' as const, 'oneWay' as const, 'reply' as const)

export const envelope: FuzzTarget = target('Envelope', fc.tuple(kind, inputs(seeds, 300)), [EnvelopeError], ([k, body]: [string, Buffer]) => {
  if (k === 'reply') {
    const r = decodeReply(body)
    if (!Number.isInteger(r.callId) || r.callId < 0) throw new Error('bad callId')
    return
  }
  const cache = new TargetCache()
  for (const c of [undefined, cache, cache]) {
    const e = k === 'call' ? decodeCall(body, c) : decodeOneWay(body, c)
    checkTarget(e)
  }
})
