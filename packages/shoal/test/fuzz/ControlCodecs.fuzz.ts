/**
 * Control-lane codecs, each documented to throw only its ControlDecodeError subclass:
 * ControlReader.open (control/ControlCodec.ts), gossip (cluster/GossipCodec.ts), receptionist
 * (receptionist/ReceptionistCodec.ts), watch (watch/WatchCodec.ts). SWIM's binary codec
 * (swim/Codec.ts: decodeMessage, decodePushPull, open) throws SwimCodecError only.
 */
import fc from 'fast-check'
import { decodeGossip, encodeGossip, GossipDecodeError } from '../../src/cluster/GossipCodec.ts'
import { ControlDecodeError, ControlReader, controlPackr } from '../../src/control/ControlCodec.ts'
import { decodeReceptionist, encodeDelta, encodeDigest, ReceptionistDecodeError } from '../../src/receptionist/ReceptionistCodec.ts'
import { decodeMessage, decodePushPull, deriveKey, encodeMessage, encodePushPull, type Message, open, SwimCodecError, seal } from '../../src/swim/Codec.ts'
import { decodeWatchFrame, encodeAck, encodeBatch, WatchDecodeError } from '../../src/watch/WatchCodec.ts'
import { type FuzzTarget, inputs, target } from './harness.ts'

const uid = '0123456789abcdef'
const uid2 = 'fedcba9876543210'
const node = { endpoint: { name: 'fuzz', host: '127.0.0.1', port: 7001 }, uid }
const node2 = { endpoint: { name: 'other', host: '::1', port: 65535 }, uid: uid2 }

class FuzzDecodeError extends ControlDecodeError {}
const reader = new ControlReader('fuzz message', 1, FuzzDecodeError)

const gossipSeeds = [
  encodeGossip(uid, {
    members: new Map([
      [uid, { node, status: 'up', upNumber: 1, roles: ['a', 'b'] }],
      [uid2, { node: node2, status: 'leaving', upNumber: 2, roles: [] }],
    ]),
    version: new Map([[uid, 3]]),
    seen: new Set([uid, uid2]),
  }),
  encodeGossip(uid2, { members: new Map(), version: new Map(), seen: new Set() }),
]

const actor = (n: number) => `fuzz@127.0.0.1:7001#${uid}/user/a-${n}#${n}`
const receptionistSeeds = [
  encodeDigest(
    new Map([
      [uid, 3],
      [uid2, 0],
    ]),
    false,
  ),
  encodeDigest(new Map(), true),
  (() => {
    try {
      return encodeDelta(node, {
        owner: uid,
        kind: 'ops',
        ops: [
          { seq: 1, kind: 'add', key: 'k', actor: actor(1) },
          { seq: 2, kind: 'remove', key: 'k', actor: actor(1) },
        ],
      } as never)
    } catch {
      return controlPackr.pack([1, 1, [uid, 'fuzz', '127.0.0.1', 7001], [[1, 1, 'k', '/user/a-1#1']]])
    }
  })(),
  (() => {
    try {
      return encodeDelta(node, { owner: uid, kind: 'snapshot', seq: 4, part: 0, parts: 1, entries: [{ key: 'k', actor: actor(2) }] } as never)
    } catch {
      return controlPackr.pack([1, 2, [uid, 'fuzz', '127.0.0.1', 7001], 4, 0, 1, [['k', '/user/a-2#2']]])
    }
  })(),
]

const watchSeeds = [
  encodeBatch({
    first: 1,
    messages: [
      { type: 'watch', path: '/user/a-1', incarnation: 5 },
      { type: 'unwatch', path: '/user/a-1', incarnation: 5 },
      { type: 'terminated', path: '/user/b-2', incarnation: 0xffffffff, reason: 'not-found' },
    ],
  }),
  encodeAck(12345),
]

const swimFrom = { host: '127.0.0.1', port: 7001, uid }
const swimTo = { host: '10.0.0.2', port: 7002, uid: uid2 }
const updates = [
  { status: 'alive' as const, node: swimTo, incarnation: 3, meta: Uint8Array.of(1, 2, 3) },
  { status: 'suspect' as const, node: swimFrom, incarnation: 4, by: uid2 },
  { status: 'dead' as const, node: swimTo, incarnation: 5, by: uid },
  { status: 'left' as const, node: swimTo, incarnation: 6 },
]
const messages: Message[] = [
  { type: 'ping', seq: 1, from: swimFrom, targetUid: uid2, updates },
  { type: 'pingReq', seq: 2, from: swimFrom, target: swimTo, updates: [] },
  { type: 'ack', seq: 3, from: swimTo, updates },
  { type: 'nack', seq: 4, from: swimTo, updates: [] },
  { type: 'gossip', from: swimFrom, updates },
] as never
const swimSeeds = [
  ...messages.map((m) => encodeMessage(m)),
  encodePushPull({ type: 'pushPull', from: swimFrom, join: true, members: updates } as never),
  encodePushPull({ type: 'pushPullReply', from: swimTo, join: false, members: [] } as never),
]
const key = deriveKey(undefined)
const sealedSeeds = swimSeeds.map((s) => seal(key, s))

export const controlReader: FuzzTarget = target(
  'ControlReader',
  inputs([...gossipSeeds, ...receptionistSeeds, ...watchSeeds], 300),
  [FuzzDecodeError],
  (b: Buffer) => {
    const raw = reader.open(b)
    reader.readArray(raw[1], 16, 'list')
    reader.readUid(raw[2])
    reader.readNode(raw[2], raw[3], raw[4], raw[5])
  },
)

export const gossip: FuzzTarget = target('Gossip', inputs(gossipSeeds, 400), [GossipDecodeError], (b: Buffer) => decodeGossip(b))

export const receptionist: FuzzTarget = target('Receptionist', inputs(receptionistSeeds, 400), [ReceptionistDecodeError], (b: Buffer) => decodeReceptionist(b))

export const watch: FuzzTarget = target('Watch', inputs(watchSeeds, 300), [WatchDecodeError], (b: Buffer) => decodeWatchFrame(b))

export const swim: FuzzTarget = target(
  'SwimCodec',
  fc.tuple(fc.constantFrom('message' as const, 'pushPull' as const, 'open' as const), inputs([...swimSeeds, ...sealedSeeds], 400)),
  [SwimCodecError],
  ([k, b]: [string, Buffer]) => {
    if (k === 'message') decodeMessage(b)
    else if (k === 'pushPull') decodePushPull(b, 64)
    else {
      const end = open(key, b)
      decodeMessage(b, end)
    }
  },
)
