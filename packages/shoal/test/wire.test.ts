import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import type { ClusterNode } from 'shoal'
import {
  ClientHandshake,
  type DecodedItem,
  decodeCall,
  decodeOneWay,
  decodeReply,
  EnvelopeError,
  encodeCall,
  encodeFrame,
  encodeOneWay,
  encodeReply,
  FrameDecoder,
  FrameDecoderError,
  FrameType,
  type HandshakeDirective,
  HEADERS_MIN_MINOR,
  PROTOCOL_MINOR,
  preamble,
  ServerHandshake,
  TargetCache,
} from 'shoal/internal'
import { describe, expect, it } from 'vitest'

const frames = (items: DecodedItem[]) =>
  items.filter((i) => i.kind === 'frame').map((i) => (i.kind === 'frame' ? [i.type, Buffer.from(i.body).toString('hex')] : []))

describe('FrameDecoder', () => {
  const stream = Buffer.concat([preamble(), encodeFrame(1, Buffer.from('hello')), encodeFrame(2, Buffer.alloc(0x1234, 7)), encodeFrame(3, Buffer.of(0))])
  const expected = [
    [1, Buffer.from('hello').toString('hex')],
    [2, Buffer.alloc(0x1234, 7).toString('hex')],
    [3, '00'],
  ]

  it('decodes a stream fed one byte at a time', () => {
    const d = new FrameDecoder({ maxFrameSize: 1 << 20 })
    const out: DecodedItem[] = []
    for (const byte of stream) out.push(...d.push(Buffer.of(byte)))
    expect(out[0]).toEqual({ kind: 'preamble', major: 1, minor: PROTOCOL_MINOR })
    expect(frames(out)).toEqual(expected)
    expect(d.buffered).toBe(0)
  })

  it('property: any fragmentation of the stream decodes to the same frames', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: stream.length }), { maxLength: 20 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b)
        const d = new FrameDecoder({ maxFrameSize: 1 << 20 })
        const out: DecodedItem[] = []
        let last = 0
        for (const p of [...points, stream.length]) {
          out.push(...d.push(stream.subarray(last, p)))
          last = p
        }
        expect(frames(out)).toEqual(expected)
      }),
    )
  })

  it('property: random bytes either decode or fail with FrameDecoderError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, withPreamble) => {
        const d = new FrameDecoder({ maxFrameSize: 64 })
        try {
          d.push(Buffer.concat([withPreamble ? preamble() : Buffer.alloc(0), bytes]))
        } catch (e) {
          expect(e).toBeInstanceOf(FrameDecoderError)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses an oversized frame from its header, before the body arrives', () => {
    const d = new FrameDecoder({ maxFrameSize: 1024, preamble: false })
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1025)
    expect(() => d.push(header)).toThrow(/exceeds maxFrameSize/)
    expect(() => d.push(Buffer.of(1))).toThrow(FrameDecoderError)
  })

  it('refuses a peer that does not start with the magic bytes', () => {
    const d = new FrameDecoder({ maxFrameSize: 1024 })
    expect(() => d.push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/magic/)
  })
})

const node = (name: string, port: number): ClusterNode => ({ endpoint: { name, host: '127.0.0.1', port }, uid: randomBytes(8).toString('hex') })

/** Runs a client and a server handshake against each other, in memory, until both stop talking. */
function converse(client: ClientHandshake, server: ServerHandshake): { client: HandshakeDirective[]; server: HandshakeDirective[] } {
  const log = { client: [] as HandshakeDirective[], server: [] as HandshakeDirective[] }
  const toServer = new FrameDecoder({ maxFrameSize: 1 << 16 })
  const toClient = new FrameDecoder({ maxFrameSize: 1 << 16 })
  let pending: { to: 'client' | 'server'; bytes: Buffer }[] = []
  const collect = (from: 'client' | 'server', ds: HandshakeDirective[]) => {
    log[from].push(...ds)
    for (const d of ds) if (d.type === 'send') pending.push({ to: from === 'client' ? 'server' : 'client', bytes: d.bytes })
  }
  collect('client', client.start())
  while (pending.length > 0) {
    const batch = pending
    pending = []
    for (const { to, bytes } of batch) {
      for (const item of (to === 'server' ? toServer : toClient).push(bytes)) {
        collect(to, to === 'server' ? server.receive(item) : client.receive(item))
      }
    }
  }
  return log
}

const outcome = (ds: HandshakeDirective[]) => ds.find((d) => d.type !== 'send')

describe('Handshake', () => {
  const a = node('a', 1001)
  const b = node('b', 1002)
  const secret = Buffer.from('cluster-secret')

  it('establishes both sides when they share the secret, which never crosses the wire', () => {
    const client = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const log = converse(client, server)
    expect(outcome(log.client)).toEqual({ type: 'established', peer: b, minor: PROTOCOL_MINOR })
    expect(outcome(log.server)).toEqual({ type: 'established', peer: a, minor: PROTOCOL_MINOR })
    const wire = Buffer.concat([...log.client, ...log.server].flatMap((d) => (d.type === 'send' ? [d.bytes] : [])))
    expect(wire.includes(secret)).toBe(false)
  })

  it('establishes nodes at any host isValidHost accepts (my_host, an IPv6 zone), and refuses others', () => {
    const at = (n: ClusterNode, host: string): ClusterNode => ({ ...n, endpoint: { ...n.endpoint, host } })
    for (const [ha, hb] of [
      ['my_host', 'fe80::1%eth0'],
      ['node-1.shoal.svc', '::1'],
    ] as const) {
      const log = converse(
        new ClientHandshake({ self: at(a, ha), secret, random: randomBytes }, { host: hb, port: 1002 }),
        new ServerHandshake({ self: at(b, hb), secret, random: randomBytes, admit: () => undefined }),
      )
      expect(outcome(log.client)).toMatchObject({ type: 'established', peer: at(b, hb) })
      expect(outcome(log.server)).toMatchObject({ type: 'established', peer: at(a, ha) })
    }
    const log = converse(
      new ClientHandshake({ self: at(a, 'a b'), secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(log.server)).toMatchObject({ type: 'failed' })
  })

  it('refuses a wrong secret on both sides', () => {
    const client = new ClientHandshake({ self: a, secret: Buffer.from('other'), random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const log = converse(client, server)
    expect(outcome(log.client)).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/^cluster secrets differ: .* both have a cluster secret, but not the same one/),
    })
    expect(outcome(log.server)).toMatchObject({ type: 'failed', byPeer: true, reason: expect.stringMatching(/^cluster secrets differ/) })
  })

  it('refuses a missing secret on either side', () => {
    const noSecretClient = converse(
      new ClientHandshake({ self: a, secret: undefined, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(noSecretClient.client)).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/\(accepting\) has a cluster secret, .* \(dialing\) has none/),
    })
    const noSecretServer = converse(
      new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret: undefined, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(noSecretServer.client)).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/\(dialing\) has a cluster secret, .* \(accepting\) has none/),
    })
    expect(outcome(noSecretServer.server)).toMatchObject({ type: 'failed', byPeer: true, reason: expect.stringMatching(/\(accepting\) has none/) })
  })

  it('refuses a protocol major version mismatch with the reason on both sides', () => {
    const client = new ClientHandshake({ self: a, secret, random: randomBytes, major: 2 }, { host: '127.0.0.1', port: 1002 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const log = converse(client, server)
    expect(outcome(log.server)).toMatchObject({ type: 'failed', reason: expect.stringContaining(`version mismatch: peer speaks 2.${PROTOCOL_MINOR}`) })
    expect(outcome(log.client)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/version mismatch/) })
  })

  it('lets the server refuse an authenticated peer through admit', () => {
    const client = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => 'node is down (tombstoned)' })
    const log = converse(client, server)
    expect(outcome(log.client)).toEqual({ type: 'failed', reason: 'node is down (tombstoned)', byPeer: true })
  })

  it('refuses a peer of another cluster on both sides, naming both clusters', () => {
    const log = converse(
      new ClientHandshake({ self: a, clusterName: 'games', secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, clusterName: 'chat', secret, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(log.server)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/belongs to cluster "games", this node to "chat"/) })
    expect(outcome(log.client)).toMatchObject({ type: 'failed', byPeer: true, reason: expect.stringMatching(/cluster "games", this node to "chat"/) })
    // The client checks the Challenge too: its Hello rewritten to claim "chat" passes the server, whose Challenge it then refuses.
    const server = new ServerHandshake({ self: b, clusterName: 'chat', secret, random: randomBytes, admit: () => undefined })
    const client = new ClientHandshake({ self: a, clusterName: 'games', secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const rewrite = (items: ReturnType<FrameDecoder['push']>, cluster: string | undefined) =>
      items.map((i) =>
        i.kind === 'frame' && i.type === FrameType.Hello ? { ...i, body: Buffer.from(JSON.stringify({ ...JSON.parse(i.body.toString()), cluster })) } : i,
      )
    const hello = (client.start()[0] as { bytes: Buffer }).bytes
    const challenge = rewrite(new FrameDecoder({ maxFrameSize: 1 << 16 }).push(hello), 'chat').flatMap((i) => server.receive(i))
    const answer = new FrameDecoder({ maxFrameSize: 1 << 16 }).push((challenge[0] as { bytes: Buffer }).bytes).flatMap((i) => client.receive(i))
    expect(outcome(answer)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/belongs to cluster "chat", this node to "games"/) })
    // A Hello with no cluster name counts as "shoal": refused by a "chat" server.
    const other = new ServerHandshake({ self: b, clusterName: 'chat', secret, random: randomBytes, admit: () => undefined })
    const unnamed = rewrite(new FrameDecoder({ maxFrameSize: 1 << 16 }).push(hello), undefined).flatMap((i) => other.receive(i))
    expect(outcome(unnamed)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/cluster "shoal", this node to "chat"/) })
  })

  it('a peer that sends no cluster name counts as the default cluster "shoal"', () => {
    const log = converse(
      new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, clusterName: 'shoal', secret, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(log.client)).toEqual({ type: 'established', peer: b, minor: PROTOCOL_MINOR })
  })

  it('negotiates the lower protocol minor: a 1.1 peer on either side makes the association 1.1', () => {
    for (const [clientMinor, serverMinor] of [
      [1, PROTOCOL_MINOR],
      [PROTOCOL_MINOR, 1],
    ] as const) {
      const log = converse(
        new ClientHandshake({ self: a, secret, random: randomBytes, minor: clientMinor }, { host: '127.0.0.1', port: 1002 }),
        new ServerHandshake({ self: b, secret, random: randomBytes, minor: serverMinor, admit: () => undefined }),
      )
      expect(outcome(log.client)).toEqual({ type: 'established', peer: b, minor: 1 })
      expect(outcome(log.server)).toEqual({ type: 'established', peer: a, minor: 1 })
    }
    expect(PROTOCOL_MINOR).toBeGreaterThanOrEqual(HEADERS_MIN_MINOR)
  })

  it('refuses a hello addressed to another port', () => {
    const client = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 9999 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    expect(outcome(converse(client, server).client)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/port 9999/) })
  })

  it('refuses proofs whose UTF-8 length differs from their string length, without throwing', () => {
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const client = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    server.receive({ kind: 'preamble', major: 1, minor: 0 })
    const hello = client.start()[0]!
    const helloFrame = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(hello.type === 'send' ? hello.bytes : Buffer.alloc(0))[1]!
    server.receive(helloFrame)
    const proof = encodeFrame(FrameType.Proof, Buffer.from(JSON.stringify({ proof: 'é'.repeat(64) })))
    const out = server.receive({ kind: 'frame', type: FrameType.Proof, body: proof.subarray(5) })
    expect(outcome(out)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/cluster secrets differ/) })
    const client2 = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    client2.start()
    client2.receive({ kind: 'preamble', major: 1, minor: 0 })
    const challenge = Buffer.from(
      JSON.stringify({ node: { name: 'b', host: '127.0.0.1', port: 1002, uid: b.uid }, nonce: 'ab'.repeat(16), proof: 'é'.repeat(64) }),
    )
    expect(outcome(client2.receive({ kind: 'frame', type: FrameType.Challenge, body: challenge }))).toMatchObject({ type: 'failed' })
  })

  it('property: random frames never establish an unauthenticated server handshake', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.uint8Array({ maxLength: 80 })), { maxLength: 5 }), (input) => {
        const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
        const ds = server.receive({ kind: 'preamble', major: 1, minor: 0 })
        for (const [type, body] of input) ds.push(...server.receive({ kind: 'frame', type, body: Buffer.from(body) }))
        expect(ds.some((d) => d.type === 'established')).toBe(false)
      }),
    )
  })
})

describe('Envelope', () => {
  it('round-trips calls, one-way messages and replies', () => {
    const call = {
      callId: 42,
      uid: '0123456789abcdef',
      path: '/user/Island-1',
      incarnation: 7,
      method: 'addRock',
      chain: '0123456789abcdef.1',
      timeoutMs: 5000,
      args: Buffer.of(0x91, 0x03),
    }
    expect(decodeCall(encodeCall(call))).toEqual(call)
    const oneWay = { uid: '0123456789abcdef', path: '/user/ü', incarnation: 0, method: 'm', chain: 'c', args: Buffer.of(0x90) }
    expect(decodeOneWay(encodeOneWay(oneWay))).toEqual(oneWay)
    expect(decodeReply(encodeReply({ callId: 1, ok: false, payload: Buffer.of(0xc0) }))).toEqual({
      callId: 1,
      ok: false,
      refused: false,
      payload: Buffer.of(0xc0),
    })
    expect(decodeReply(encodeReply({ callId: 2, ok: false, refused: true, payload: Buffer.of(0xc0) }))).toEqual({
      callId: 2,
      ok: false,
      refused: true,
      payload: Buffer.of(0xc0),
    })
  })

  it('property: random bodies either decode or throw EnvelopeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        for (const decode of [decodeCall, decodeOneWay, decodeReply]) {
          try {
            decode(Buffer.from(bytes))
          } catch (e) {
            expect(e).toBeInstanceOf(EnvelopeError)
          }
        }
      }),
      { numRuns: 3000 },
    )
  })

  it('refuses fields outside their limits when encoding', () => {
    expect(() =>
      encodeCall({ callId: 1, uid: 'x'.repeat(17), path: '/p', incarnation: 1, method: 'm', chain: 'c', timeoutMs: 1, args: Buffer.alloc(0) }),
    ).toThrow(EnvelopeError)
  })

  it('keeps frame types stable (wire compatibility)', () => {
    expect(FrameType).toMatchObject({ Call: 1, Reply: 2, OneWay: 3, Fragment: 4, Control: 5, Goodbye: 6, Hello: 16, Reject: 20 })
  })
})

describe('Envelope - target cache', () => {
  it('decodes the same fields with and without the cache, including after the target changes', () => {
    const cache = new TargetCache()
    const base = { uid: '0123456789abcdef', incarnation: 7, timeoutMs: 5000, args: Buffer.of(0x90) }
    const calls = [
      { ...base, callId: 1, path: '/user/A-1', method: 'go', chain: 'c.1' },
      { ...base, callId: 2, path: '/user/A-1', method: 'go', chain: 'c.2' },
      { ...base, callId: 3, path: '/user/A-1', method: 'stop', chain: 'c.3' },
      { ...base, callId: 4, path: '/user/B-22', method: 'go', chain: 'c.4' },
      { ...base, callId: 5, path: '/user/B-22', method: 'go', chain: 'c.5' },
    ]
    for (const c of calls) expect(decodeCall(encodeCall(c), cache)).toEqual(decodeCall(encodeCall(c)))
    expect(cache.path).toBe('/user/B-22')
  })

  it('property: a cache never changes what random bodies decode to', () => {
    const cache = new TargetCache()
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        const body = Buffer.from(bytes)
        let plain: unknown, cached: unknown
        try {
          plain = decodeCall(body)
        } catch (e) {
          plain = (e as Error).message
        }
        try {
          cached = decodeCall(body, cache)
        } catch (e) {
          cached = (e as Error).message
        }
        expect(cached).toEqual(plain)
      }),
      { numRuns: 3000 },
    )
  })
})
