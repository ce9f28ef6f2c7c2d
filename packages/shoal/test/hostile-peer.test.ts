/**
 * Hostile peers: a real node (secret, small maxFrameSize, tight decode limits) is attacked over raw
 * sockets, at every stage: before the preamble, in the handshake, and after a successful handshake
 * with bad frames, bad envelopes, undeclared methods and hostile payloads.
 *
 * After every case (see afterEach) the node must still be running, still serve a well-behaved
 * peer's calls over its existing association, and still accept and serve a fresh connection.
 * Each refusal must be reported: `shoal_refused_total` / `shoal_decode_errors_total` and a log line.
 */
import { randomBytes } from 'node:crypto'
import { Packr } from 'msgpackr'
import { pino } from 'pino'
import { type ActorRef, ClusterSystem, DistributedActor, ErrorCode, MethodNotDistributedError, NodeUnreachableError, SerializationError } from 'shoal'
import { ClientHandshake, ExtType, FrameType, PROTOCOL_MAJOR, PROTOCOL_MINOR, preamble, type ReplyEnvelope } from 'shoal/internal'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { codec, counterValue, LogCapture, RawPeer } from './support/rawPeer.ts'

const SECRET = randomBytes(32).toString('hex')
const MAX_FRAME = 64 * 1024
const MAX_DEPTH = 32
const MAX_COLLECTION = 1000
const HANDSHAKE_TIMEOUT = 3000

/** Everything `inspect` received (one entry per call: its argument list). */
const inspected: unknown[][] = []
/** Names of members that ran although they are not distributed (must stay empty). */
const sideEffects: string[] = []

class Vault extends DistributedActor {
  static distributed = ['echo', 'inspect']
  echo(value: unknown): unknown {
    return value
  }
  inspect(...args: unknown[]): number {
    inspected.push(args)
    return args.length
  }
  notExposed(): string {
    sideEffects.push('notExposed')
    return 'ran'
  }
  get secretGetter(): string {
    sideEffects.push('secretGetter')
    return 'secret'
  }
}

/** Registered on the target only, to carry hostile data inside a class-instance extension. */
class Point {
  x = 0
}

const packr = new Packr({ useRecords: false })
const pack = (value: unknown): Buffer => packr.pack(value)
/** A Shoal tagged extension as msgpackr writes it: fixext 1 (type, 0) followed by the payload value. */
const tagged = (type: number, payload: unknown): Buffer => Buffer.concat([Buffer.from([0xd4, type, 0x00]), pack(payload)])
/** A MessagePack array (up to 15 items) of already-encoded items. */
const arrayOf = (...items: Uint8Array[]): Buffer => Buffer.concat([Buffer.from([0x90 | items.length]), ...items])
/** `levels` nested one-element arrays around nil; the outermost is the argument list itself. */
const nested = (levels: number): Buffer => Buffer.concat([Buffer.alloc(levels, 0x91), Buffer.from([0xc0])])
/** An argument list holding one array of `n` zeros. */
const zeros = (n: number): Buffer => Buffer.concat([Buffer.from([0x91, 0xdc, n >> 8, n & 0xff]), Buffer.alloc(n, 0x00)])

const hostileObject = (): unknown => JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"prototype":{"polluted":3}}')

const POLL = { timeout: 20_000, interval: 20 } as const

describe('a node under attack by hostile peers', () => {
  const logs = new LogCapture()
  const replies = codec()
  const peers: RawPeer[] = []
  let target: ClusterSystem
  let good: ClusterSystem
  let vault: ActorRef<Vault>
  let goodRef: ActorRef<Vault>
  let port: number
  let healthChecks = 0

  const refused = (reason: 'handshake' | 'protocol' | 'method'): Promise<number> => counterValue(target, 'shoal_refused_total', { reason })
  const decodeErrors = (): Promise<number> => counterValue(target, 'shoal_decode_errors_total')

  async function rawPeer(): Promise<RawPeer> {
    const p = await RawPeer.connect(port)
    peers.push(p)
    return p
  }

  async function establishedPeer(): Promise<RawPeer> {
    const p = await rawPeer()
    await p.establish(SECRET)
    return p
  }

  const callVault = (p: RawPeer, method: string, args: Uint8Array): Promise<ReplyEnvelope> =>
    p.call({ uid: vault.id.node.uid, path: vault.id.path, incarnation: vault.id.incarnation, method, args })

  /** The decoded error of a failed reply. */
  function replyError(reply: ReplyEnvelope): unknown {
    expect(reply.ok).toBe(false)
    return replies.decode(reply.payload)
  }

  /** The peer's association still works: a valid call on the same connection succeeds. */
  async function expectConnectionStillServes(p: RawPeer): Promise<void> {
    const reply = await callVault(p, 'echo', pack(['still here']))
    expect(reply.ok).toBe(true)
    expect(replies.decode(reply.payload)).toBe('still here')
    expect(p.isClosed).toBe(false)
  }

  beforeAll(async () => {
    target = await ClusterSystem.start({
      name: 'target',
      port: 0,
      secret: SECRET,
      maxFrameSize: MAX_FRAME,
      handshakeTimeout: HANDSHAKE_TIMEOUT,
      serialization: { limits: { maxDepth: MAX_DEPTH, maxCollectionSize: MAX_COLLECTION } },
      logger: pino({ level: 'debug' }, logs),
    })
    target.serialization.register(Point)
    port = target.node.endpoint.port
    vault = target.spawn(Vault)
    good = await ClusterSystem.start({ name: 'good', port: 0, secret: SECRET })
    goodRef = good.resolve(Vault, vault.id)
    await expect(goodRef.echo('hello')).resolves.toBe('hello')
  })

  afterEach(async () => {
    for (const p of peers.splice(0)) {
      p.destroy()
      await p.closed
    }
    // Whatever the hostile peer did, the node is still up and serving:
    expect(target.running).toBe(true)
    const n = ++healthChecks
    // ...the well-behaved peer's existing association,
    await expect(goodRef.echo({ n })).resolves.toEqual({ n })
    // ...and a brand-new connection through the listener.
    const fresh = await RawPeer.connect(port)
    try {
      await fresh.establish(SECRET)
      const reply = await callVault(fresh, 'echo', pack([n]))
      expect(reply.ok).toBe(true)
      expect(replies.decode(reply.payload)).toBe(n)
    } finally {
      fresh.destroy()
      await fresh.closed
    }
    // No undeclared member ever ran, and the actor is alive.
    expect(sideEffects).toEqual([])
    expect(target.actorCount).toBe(1)
  })

  afterAll(async () => {
    await good?.shutdown()
    await target?.shutdown()
  })

  describe('before and during the handshake', () => {
    test('garbage bytes instead of the magic: closed without an answer, refused and logged', async () => {
      const before = await refused('handshake')
      const p = await rawPeer()
      p.write(Buffer.from('GET / HTTP/1.1\r\nHost: shoal\r\n\r\n'))
      await p.waitClosedByNode()
      expect(p.received.length).toBe(0)
      await expect.poll(() => refused('handshake'), POLL).toBe(before + 1)
      await expect.poll(() => logs.find('handshake failed', `127.0.0.1:${p.node.endpoint.port}`, 'bad magic bytes').length, POLL).toBe(1)
    })

    test('a partial magic followed by garbage is refused too', async () => {
      const before = await refused('handshake')
      const p = await rawPeer()
      p.write(Buffer.from([0x53, 0x48, 0x4c, 0x00, 0x01, 0x00]))
      await p.waitClosedByNode()
      expect(p.received.length).toBe(0)
      await expect.poll(() => refused('handshake'), POLL).toBe(before + 1)
      // Same source and reason as the test before, within the log window: counted, not logged again
      // (one count line per window; see refusal-logs.test.ts).
      expect(logs.find('handshake failed', `127.0.0.1:${p.node.endpoint.port}`, 'bad magic bytes')).toHaveLength(0)
    })

    test('a peer that connects and never completes the handshake is dropped after handshakeTimeout', async () => {
      const before = await refused('handshake')
      const p = await rawPeer()
      p.write(Buffer.from([0x53, 0x48, 0x4c])) // three bytes of the magic, then silence
      await p.waitClosedByNode()
      await expect.poll(() => refused('handshake'), POLL).toBe(before + 1)
      const lines = logs.find('handshake failed', `127.0.0.1:${p.node.endpoint.port}`, `handshake did not complete within ${HANDSHAKE_TIMEOUT} ms`)
      expect(lines).toHaveLength(1)
    })

    test('protocol version mismatch (major 9): the node answers with its preamble and a Reject naming the mismatch, then closes', async () => {
      const before = await refused('handshake')
      const p = await rawPeer()
      // The real client machine, speaking major 9: preamble 9.<minor> + Hello.
      const start = new ClientHandshake(
        { self: p.node, secret: Buffer.from(SECRET), random: (n) => Buffer.alloc(n, 7), major: 9 },
        { host: '127.0.0.1', port },
      ).start()
      for (const d of start) if (d.type === 'send') p.write(d.bytes)

      const pre = await p.next()
      expect(pre).toEqual({ kind: 'preamble', major: PROTOCOL_MAJOR, minor: expect.any(Number) })
      const reject = await p.next()
      if (reject?.kind !== 'frame') throw new Error('expected a Reject frame')
      expect(reject.type).toBe(FrameType.Reject)
      const reason = reject.body.toString('utf8')
      expect(reason).toContain('protocol version mismatch')
      expect(reason).toContain(`peer speaks 9.${PROTOCOL_MINOR}`)
      expect(reason).toContain(`this node ${PROTOCOL_MAJOR}.`)
      // Nothing else (no Challenge), then the node closes.
      expect(await p.next()).toBeUndefined()
      expect(p.isClosed).toBe(true)

      await expect.poll(() => refused('handshake'), POLL).toBe(before + 1)
      expect(logs.find('handshake failed', `127.0.0.1:${p.node.endpoint.port}`, `protocol version mismatch: peer speaks 9.${PROTOCOL_MINOR}`)).toHaveLength(1)
    })

    test('a frame longer than maxFrameSize during the handshake: closed, refused and logged', async () => {
      const before = await refused('handshake')
      const p = await rawPeer()
      const header = Buffer.alloc(5)
      header.writeUInt32BE(MAX_FRAME + 1, 0)
      header[4] = FrameType.Hello
      p.write(Buffer.concat([preamble(), header]))
      await p.waitClosedByNode()
      await expect.poll(() => refused('handshake'), POLL).toBe(before + 1)
      expect(logs.find('handshake failed', `127.0.0.1:${p.node.endpoint.port}`, `exceeds maxFrameSize ${MAX_FRAME}`)).toHaveLength(1)
    })

    test('control: a peer that forges the proof with the right secret is accepted (validates the forging peer)', async () => {
      const p = await rawPeer()
      const answer = await p.forgeProof(SECRET)
      expect(answer).toMatchObject({ kind: 'frame', type: FrameType.Accept })
    })

    test.each([
      { case: 'wrong secret', proofSecret: 'wrong', reason: 'cluster secrets differ' },
      { case: 'missing secret (empty proof)', proofSecret: undefined, reason: '(dialing) has none' },
    ])('$case: an attacker that ignores the node proof is rejected with a Reject frame and refused', async ({ proofSecret, reason }) => {
      const before = await refused('handshake')
      const p = await rawPeer()
      const answer = await p.forgeProof(proofSecret)
      if (answer?.kind !== 'frame') throw new Error('expected a Reject frame')
      expect(answer.type).toBe(FrameType.Reject)
      expect(answer.body.toString('utf8')).toContain(reason)
      await p.waitClosedByNode()
      await expect.poll(() => refused('handshake'), POLL).toBe(before + 1)
      expect(logs.find('handshake failed', `127.0.0.1:${p.node.endpoint.port}`, reason).filter((l) => l.refusedBy === 'this node')).toHaveLength(1)
    })

    test.each([
      { case: 'wrong secret', secret: randomBytes(32).toString('hex'), reason: 'cluster secrets differ' },
      { case: 'missing secret', secret: undefined, reason: '(accepting) has a cluster secret' },
    ])('$case with the real client handshake: the node refuses the client (which proves first) and logs it', async ({ secret, reason }) => {
      const p = await rawPeer()
      const outcome = await p.handshake(secret === undefined ? {} : { secret })
      expect(outcome).toMatchObject({ ok: false, byPeer: true, reason: expect.stringContaining(reason) })
      await p.waitClosedByNode()
      await expect
        .poll(() => logs.find('handshake failed', `127.0.0.1:${p.node.endpoint.port}`, reason).filter((l) => l.refusedBy === 'this node').length, POLL)
        .toBe(1)
    })

    test.each([
      { case: 'wrong secret', secret: randomBytes(32).toString('hex'), reason: 'cluster secrets differ' },
      { case: 'no secret', secret: '', reason: '(accepting) has a cluster secret' },
    ])('a ClusterSystem with a $case cannot call: SHOAL_NODE_UNREACHABLE, and the actor never runs', async ({ secret, reason }) => {
      const logged = logs.find('handshake failed', reason).length
      const intruder = await ClusterSystem.start({ name: 'intruder', port: 0, secret })
      try {
        const ref = intruder.resolve(Vault, vault.id)
        const call = ref.inspect('from the intruder')
        await expect(call).rejects.toBeInstanceOf(NodeUnreachableError)
        await expect(call).rejects.toMatchObject({ code: ErrorCode.NodeUnreachable, message: expect.stringContaining(reason) })
        expect(inspected.flat()).not.toContain('from the intruder')
        await expect.poll(() => logs.find('handshake failed', reason).length, POLL).toBeGreaterThan(logged)
      } finally {
        await intruder.shutdown()
      }
    })
  })

  describe('after a successful handshake: bad frames close the association', () => {
    const truncatedCall = Buffer.from([0, 0, 0, 1])
    const zeroLengthUid = Buffer.concat([Buffer.alloc(12), Buffer.from([0])])
    const uidTooLong = Buffer.concat([Buffer.alloc(12), Buffer.from([17]), Buffer.alloc(17, 0x61)])
    const pathBeyondBody = Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x61, 0x03, 0xe8, 0x2f])])
    test.each([
      { case: 'a truncated Call envelope', type: FrameType.Call, body: truncatedCall, reason: 'truncated envelope' },
      { case: 'a Call envelope with an empty node uid', type: FrameType.Call, body: zeroLengthUid, reason: 'node uid of 0 bytes is outside 1..16' },
      { case: 'a Call envelope with an oversized node uid', type: FrameType.Call, body: uidTooLong, reason: 'node uid of 17 bytes is outside 1..16' },
      { case: 'a Call envelope whose path runs past the body', type: FrameType.Call, body: pathBeyondBody, reason: 'truncated envelope' },
      { case: 'a truncated Reply envelope', type: FrameType.Reply, body: Buffer.from([0, 0, 0, 1, 1]), reason: 'truncated reply envelope' },
      { case: 'a Reply with a status byte other than 0 or 1', type: FrameType.Reply, body: Buffer.from([0, 0, 0, 1, 7, 0xc0]), reason: 'reply status byte 7' },
      { case: 'an unknown frame type', type: 9, body: Buffer.from([1]), reason: 'unknown frame type 9' },
      { case: 'a handshake frame after the handshake', type: FrameType.Hello, body: Buffer.from('{}'), reason: 'handshake frame 16 after the handshake' },
      {
        case: 'a fragment whose inner frame is a fragment',
        type: FrameType.Fragment,
        body: Buffer.from([1, FrameType.Fragment, 0]),
        reason: 'frame type 4 cannot be fragmented',
      },
    ])('$case: protocol violation, connection closed, refused and logged', async ({ type, body, reason }) => {
      const before = await refused('protocol')
      const p = await establishedPeer()
      p.sendFrame(type, body)
      await p.waitClosedByNode()
      await expect.poll(() => refused('protocol'), POLL).toBe(before + 1)
      expect(logs.find('protocol violation: closing the association', p.node.uid, reason)).toHaveLength(1)
    })

    test('fragments adding up to more than maxFrameSize: protocol violation before buffering it all', async () => {
      const before = await refused('protocol')
      const p = await establishedPeer()
      const piece = Buffer.alloc(MAX_FRAME - 64, 0x61)
      p.sendFrame(FrameType.Fragment, Buffer.concat([Buffer.from([0, FrameType.Call]), piece]))
      p.sendFrame(FrameType.Fragment, Buffer.concat([Buffer.from([1]), piece]))
      await p.waitClosedByNode()
      await expect.poll(() => refused('protocol'), POLL).toBe(before + 1)
      expect(logs.find('protocol violation: closing the association', p.node.uid, `fragmented message exceeds maxFrameSize ${MAX_FRAME}`)).toHaveLength(1)
    })

    test('a frame header announcing more than maxFrameSize: the node closes the connection without reading the body', async () => {
      const p = await establishedPeer()
      await expectConnectionStillServes(p)
      const header = Buffer.alloc(5)
      header.writeUInt32BE(MAX_FRAME + 1, 0)
      header[4] = FrameType.Call
      p.write(header)
      await p.waitClosedByNode()
    })

    // A decoder failure on an established connection (oversized or empty frame, second preamble)
    // is a protocol violation like any other: counted and logged, not a silent close.
    test('counts and logs an oversized frame after the handshake as a protocol violation', async () => {
      const before = await refused('protocol')
      const p = await establishedPeer()
      const header = Buffer.alloc(5)
      header.writeUInt32BE(MAX_FRAME + 1, 0)
      header[4] = FrameType.Call
      p.write(header)
      await p.waitClosedByNode()
      await expect.poll(() => refused('protocol'), { timeout: 2000, interval: 20 }).toBe(before + 1)
      expect(logs.find('protocol violation: closing the association', p.node.uid, 'exceeds maxFrameSize')).toHaveLength(1)
    })
  })

  describe('after a successful handshake: hostile calls fail alone, the association stays', () => {
    test('prototype pollution keys in arguments: nothing is polluted, the actor gets plain data without them', async () => {
      const objectProtoKeys = Reflect.ownKeys(Object.prototype)
      const pointProtoKeys = Reflect.ownKeys(Point.prototype)
      const args = arrayOf(
        pack(hostileObject()),
        pack({ nested: { deeper: hostileObject() } }),
        tagged(ExtType.Class, ['Point', 1, hostileObject()]),
        tagged(ExtType.Error, ['SerializationError', 'hostile', ErrorCode.Serialization, null, hostileObject()]),
        tagged(ExtType.Map, ['__proto__', { polluted: 4 }]),
      )
      // The bytes really carry the keys (JSON.parse makes "__proto__" an own key, which msgpackr writes).
      expect(args.includes(Buffer.from('__proto__'))).toBe(true)
      expect(args.includes(Buffer.from('constructor'))).toBe(true)

      const p = await establishedPeer()
      const callsBefore = inspected.length
      const reply = await callVault(p, 'inspect', args)
      expect(reply.ok).toBe(true)
      expect(replies.decode(reply.payload)).toBe(5)

      // Nothing global was touched.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect(Reflect.ownKeys(Object.prototype)).toEqual(objectProtoKeys)
      expect(Reflect.ownKeys(Point.prototype)).toEqual(pointProtoKeys)
      expect(Object.getPrototypeOf({})).toBe(Object.prototype)

      expect(inspected).toHaveLength(callsBefore + 1)
      const [plain, wrapper, point, error, map] = inspected.at(-1) as [object, { nested: { deeper: object } }, object, object, Map<unknown, unknown>]
      // Plain objects stay plain: msgpackr renames an own "__proto__" key to "__proto_" instead of
      // assigning the prototype; "constructor" and "prototype" are inert own data properties.
      for (const o of [plain, wrapper.nested.deeper]) {
        expect(Object.getPrototypeOf(o)).toBe(Object.prototype)
        expect(Object.keys(o)).toEqual(['__proto_', 'constructor', 'prototype'])
        expect((o as { polluted?: unknown }).polluted).toBeUndefined()
        expect(Object.getOwnPropertyDescriptor(o, 'constructor')?.value).toEqual({ prototype: { polluted: 2 } })
      }
      // Class instances and errors are built with Object.create and the forbidden keys are dropped.
      expect(point).toBeInstanceOf(Point)
      expect(Object.getPrototypeOf(point)).toBe(Point.prototype)
      expect(Object.keys(point)).toEqual([])
      expect((point as { polluted?: unknown }).polluted).toBeUndefined()
      expect(error).toBeInstanceOf(SerializationError)
      expect(error).toMatchObject({ message: 'hostile', code: ErrorCode.Serialization })
      expect(Object.keys(error).filter((k) => k !== 'code')).toEqual([])
      expect((error as { polluted?: unknown }).polluted).toBeUndefined()
      // A Map key "__proto__" is just a key.
      expect(map).toBeInstanceOf(Map)
      expect([...map.entries()]).toEqual([['__proto__', { polluted: 4 }]])

      await expectConnectionStillServes(p)
    })

    // Serialization classifies values by prototype, so plain data with an own "constructor" key
    // (valid JSON) is still plain data and can be sent back.
    test('echoes back plain data with a "constructor" key (as decoded from a hostile payload)', async () => {
      const p = await establishedPeer()
      const reply = await callVault(p, 'echo', pack([{ constructor: 'Ferrari', wins: 16 }]))
      expect(reply.ok).toBe(true)
      expect(Object.entries(replies.decode(reply.payload) as object)).toEqual([
        ['constructor', 'Ferrari'],
        ['wins', 16],
      ])
    })

    test.each(['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'notExposed', 'secretGetter', 'stop', 'onStop', 'then', 'self', 'ECHO'])(
      'an undeclared member (%s) in a raw Call: error reply SHOAL_METHOD_NOT_DISTRIBUTED, nothing runs',
      async (method) => {
        const p = await establishedPeer()
        const callsBefore = inspected.length
        const refusedBefore = await refused('method')
        const reply = await callVault(p, method, pack(['x']))
        const error = replyError(reply)
        expect(await refused('method')).toBe(refusedBefore + 1)
        expect(error).toBeInstanceOf(MethodNotDistributedError)
        expect(error).toMatchObject({ code: ErrorCode.MethodNotDistributed, message: expect.stringContaining(`Vault.${method} is not a distributed method`) })
        expect(sideEffects).toEqual([])
        expect(inspected).toHaveLength(callsBefore)
        await expectConnectionStillServes(p)
      },
    )

    const classInstance = (name: string): Buffer => arrayOf(tagged(ExtType.Class, [name, 1, { a: 1 }]))
    test.each([
      { case: 'an unknown class', args: classInstance('NotRegisteredHere'), reason: 'unregistered class "NotRegisteredHere"' },
      { case: 'class "Object"', args: classInstance('Object'), reason: 'unregistered class "Object"' },
      { case: 'class "__proto__"', args: classInstance('__proto__'), reason: 'unregistered class "__proto__"' },
      { case: 'a registered error class used as a plain class', args: classInstance('TimeoutError'), reason: 'unregistered class "TimeoutError"' },
      { case: 'a newer version of a registered class', args: arrayOf(tagged(ExtType.Class, ['Point', 2, { x: 1 }])), reason: '"Point" version 2' },
      { case: 'a malformed class-instance extension', args: arrayOf(tagged(ExtType.Class, 'not a tuple')), reason: 'Malformed class instance' },
      { case: 'a malformed actor ref', args: arrayOf(tagged(ExtType.Ref, ['x'])), reason: 'Malformed actor ref' },
      { case: 'arguments that are not an array', args: pack({ 0: 'a' }), reason: 'Call arguments must be an array' },
      { case: 'nesting one level deeper than the limit', args: nested(MAX_DEPTH + 1), reason: `nesting exceeds the limit of ${MAX_DEPTH} levels` },
      { case: 'a 60,000-level nesting bomb', args: nested(60_000), reason: `nesting exceeds the limit of ${MAX_DEPTH} levels` },
      {
        case: 'an array one larger than the limit',
        args: zeros(MAX_COLLECTION + 1),
        reason: `a collection of ${MAX_COLLECTION + 1} elements exceeds the limit of ${MAX_COLLECTION}`,
      },
      {
        case: 'a map with more entries than the limit',
        args: arrayOf(pack(Object.fromEntries(Array.from({ length: MAX_COLLECTION + 1 }, (_, i) => [`k${i}`, 0])))),
        reason: 'exceeds the limit of 1000',
      },
      {
        case: 'an array32 header announcing 4 billion elements',
        args: Buffer.from([0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00]),
        reason: 'a collection of 4294967295 elements exceeds the limit',
      },
      {
        case: 'an array header announcing more elements than bytes',
        args: Buffer.from([0x91, 0xdc, 0x03, 0x00, 0x00]),
        reason: 'announces 768 elements but only 1 bytes remain',
      },
      { case: 'a str32 header announcing 4 GiB', args: Buffer.from([0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]), reason: 'truncated value' },
      { case: 'the never-used byte 0xc1', args: Buffer.from([0x91, 0xc1]), reason: 'byte 0xc1 is never used' },
      { case: 'an extension type not on the allow-list', args: Buffer.from([0x91, 0xd4, 0x01, 0x00]), reason: 'extension type 0x1 is not allowed' },
      { case: 'trailing bytes after the arguments', args: Buffer.from([0x90, 0x00]), reason: '1 trailing bytes after the value' },
    ])('$case in Call arguments: error reply SHOAL_SERIALIZATION, counted and logged, the actor never runs', async ({ args, reason }) => {
      const before = await decodeErrors()
      const p = await establishedPeer()
      const callsBefore = inspected.length
      const error = replyError(await callVault(p, 'inspect', args))
      expect(error).toBeInstanceOf(SerializationError)
      expect(error).toMatchObject({ code: ErrorCode.Serialization, message: expect.stringContaining(reason) })
      expect(inspected).toHaveLength(callsBefore)
      expect(await decodeErrors()).toBe(before + 1)
      expect(logs.find('refused call arguments', p.node.uid, reason)).toHaveLength(1)
      await expectConnectionStillServes(p)
    })

    test('control: arguments exactly at the depth and collection limits are accepted', async () => {
      const p = await establishedPeer()
      const callsBefore = inspected.length
      const deep = await callVault(p, 'inspect', nested(MAX_DEPTH))
      expect(deep.ok).toBe(true)
      const wide = await callVault(p, 'inspect', zeros(MAX_COLLECTION))
      expect(wide.ok).toBe(true)
      expect(inspected).toHaveLength(callsBefore + 2)
      expect((inspected.at(-1)![0] as unknown[]).length).toBe(MAX_COLLECTION)
    })

    test('from the well-behaved node: an instance of an unregistered class is refused at the sender, naming the class', async () => {
      class Unregistered {
        secret = 'not for the wire'
      }
      const before = await decodeErrors()
      const callsBefore = inspected.length
      const call = goodRef.inspect(new Unregistered())
      await expect(call).rejects.toBeInstanceOf(SerializationError)
      await expect(call).rejects.toMatchObject({
        code: ErrorCode.Serialization,
        message: expect.stringContaining('Cannot serialize an instance of Unregistered'),
      })
      expect(inspected).toHaveLength(callsBefore)
      expect(await decodeErrors()).toBe(before)
    })

    test('from the well-behaved node: arguments beyond the target limits are refused by the target with SHOAL_SERIALIZATION', async () => {
      const before = await decodeErrors()
      const callsBefore = inspected.length
      let deep: unknown = 'bottom'
      for (let i = 0; i < MAX_DEPTH + 4; i++) deep = [deep]
      const call = goodRef.inspect(deep)
      await expect(call).rejects.toBeInstanceOf(SerializationError)
      await expect(call).rejects.toMatchObject({
        code: ErrorCode.Serialization,
        message: expect.stringContaining(`nesting exceeds the limit of ${MAX_DEPTH} levels`),
      })
      expect(inspected).toHaveLength(callsBefore)
      expect(await decodeErrors()).toBe(before + 1)
    })
  })
})
