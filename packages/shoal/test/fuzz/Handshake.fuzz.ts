/**
 * Handshake machines (wire/Handshake.ts): documented never to throw (Connection treats a throw as a
 * bug and fails the connection). Generic over the message format: the seeds are what a real client
 * and server send each other (so they follow any redesign of the messages), cut into frames by the
 * FrameDecoder, then mutated; each side is fed the other side's items. Checks: no throw at all,
 * directives well formed, and a wrong-secret peer is never `established`.
 */
import fc from 'fast-check'
import type { ClusterNode } from '../../src/actor/ClusterNode.ts'
import { type DecodedItem, FrameDecoder } from '../../src/wire/FrameDecoder.ts'
import { ClientHandshake, type HandshakeConfig, type HandshakeDirective, ServerHandshake } from '../../src/wire/Handshake.ts'
import { type FuzzTarget, inputs, target } from './harness.ts'

const node = (port: number, uid: string): ClusterNode => ({ endpoint: { name: 'fuzz', host: '127.0.0.1', port }, uid })
const client = node(7001, '0123456789abcdef')
const server = node(7002, 'fedcba9876543210')
const random = (n: number) => Buffer.alloc(n, 0x5a)
const secret = Buffer.from('fuzzing secret')

function config(self: ClusterNode, s: Buffer | undefined): HandshakeConfig {
  return { self, secret: s, random }
}

function sent(ds: HandshakeDirective[]): Buffer[] {
  return ds.flatMap((d) => (d.type === 'send' ? [d.bytes] : []))
}

/** The bytes each side sends in a successful handshake, with and without a secret. */
function transcripts(s: Buffer | undefined): { toServer: Buffer; toClient: Buffer } {
  const c = new ClientHandshake(config(client, s), { host: '127.0.0.1', port: 7002 })
  const srv = new ServerHandshake({ ...config(server, s), admit: () => undefined })
  const toServer: Buffer[] = []
  const toClient: Buffer[] = []
  const cDec = new FrameDecoder({ maxFrameSize: 8192 })
  const sDec = new FrameDecoder({ maxFrameSize: 8192 })
  let forServer = sent(c.start())
  let forClient: Buffer[] = []
  for (let round = 0; round < 4; round++) {
    for (const b of forServer) {
      toServer.push(b)
      for (const item of sDec.push(b)) forClient.push(...sent(srv.receive(item)))
    }
    forServer = []
    for (const b of forClient) {
      toClient.push(b)
      for (const item of cDec.push(b)) forServer.push(...sent(c.receive(item)))
    }
    forClient = []
  }
  return { toServer: Buffer.concat(toServer), toClient: Buffer.concat(toClient) }
}

const plain = transcripts(undefined)
const withSecret = transcripts(secret)
const toServerSeeds = [plain.toServer, withSecret.toServer]
const toClientSeeds = [plain.toClient, withSecret.toClient]

function items(bytes: Buffer): DecodedItem[] {
  const d = new FrameDecoder({ maxFrameSize: 8192 })
  const out: DecodedItem[] = []
  for (let i = 0; i < bytes.length; i += 97) {
    try {
      out.push(...d.push(bytes.subarray(i, i + 97)))
    } catch {
      break
    }
  }
  return out
}

function checkDirectives(ds: HandshakeDirective[], mayEstablish: boolean): void {
  for (const d of ds) {
    if (d.type === 'send' && !Buffer.isBuffer(d.bytes)) throw new Error('send without bytes')
    if (d.type === 'failed' && typeof d.reason !== 'string') throw new Error('failed without a reason')
    if (d.type === 'established' && !mayEstablish) throw new Error('established with a peer that does not know the secret')
  }
}

/** Items from a mutated transcript, or arbitrary handshake-typed frames with random bodies. */
function itemArb(seeds: Buffer[]): fc.Arbitrary<DecodedItem[]> {
  const arbitrary = fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant('preamble' as const), major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }) }),
      fc.record({
        kind: fc.constant('frame' as const),
        type: fc.oneof(fc.integer({ min: 16, max: 20 }), fc.integer({ min: 0, max: 255 })),
        body: fc
          .oneof(
            fc.uint8Array({ maxLength: 300 }),
            fc.json().map((j) => new TextEncoder().encode(j)),
          )
          .map((b) => Buffer.from(b)),
      }),
    ),
    { maxLength: 6 },
  )
  return fc.oneof(inputs(seeds, 600).map(items), arbitrary)
}

export const serverHandshake: FuzzTarget = target(
  'ServerHandshake',
  fc.tuple(fc.boolean(), itemArb(toServerSeeds)),
  [],
  ([withKey, list]: [boolean, DecodedItem[]]) => {
    // The server has a secret the fuzzer does not know, or none.
    const srv = new ServerHandshake({ ...config(server, withKey ? Buffer.from('another secret') : undefined), admit: () => undefined })
    for (const item of list) checkDirectives(srv.receive(item), !withKey)
  },
)

export const clientHandshake: FuzzTarget = target(
  'ClientHandshake',
  fc.tuple(fc.boolean(), itemArb(toClientSeeds)),
  [],
  ([withKey, list]: [boolean, DecodedItem[]]) => {
    const c = new ClientHandshake(config(client, withKey ? Buffer.from('another secret') : undefined), { host: '127.0.0.1', port: 7002 })
    c.start()
    for (const item of list) checkDirectives(c.receive(item), !withKey)
  },
)
