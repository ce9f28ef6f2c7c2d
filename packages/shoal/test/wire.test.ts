import { createHmac, randomBytes } from 'node:crypto'
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
  getU16,
  getU32,
  type HandshakeDirective,
  HEADERS_MIN_MINOR,
  PROTOCOL_MAJOR,
  PROTOCOL_MINOR,
  preamble,
  putU16,
  putU32,
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
    expect(out[0]).toEqual({ kind: 'preamble', major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR })
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

  it('decode hands frames to a sink as ranges of the read itself; a frame split across reads is joined alone, not with the whole next read', () => {
    const body = (n: number) => Buffer.alloc(n, n & 0xff)
    const wire = Buffer.concat([encodeFrame(1, body(10)), encodeFrame(2, body(300)), encodeFrame(3, body(20)), encodeFrame(4, body(30))])
    const cut = 4 + 11 + 100 // inside frame 2's body
    const d = new FrameDecoder({ maxFrameSize: 1024, preamble: false })
    const seen: { type: number; inRead: boolean; body: string }[] = []
    for (const read of [wire.subarray(0, cut), wire.subarray(cut)]) {
      d.decode(Buffer.from(read), {
        preamble: () => expect.unreachable(),
        frame: (type, buf, start, end) => seen.push({ type, inRead: buf.length === read.length, body: buf.subarray(start, end).toString('hex') }),
      })
    }
    expect(seen.map((f) => f.type)).toEqual([1, 2, 3, 4])
    expect(seen.map((f) => f.body)).toEqual([body(10), body(300), body(20), body(30)].map((b) => b.toString('hex')))
    // Frames 1, 3 and 4 are ranges of their reads; frame 2 alone was joined (exactly its own bytes).
    expect(seen.map((f) => f.inRead)).toEqual([true, false, true, true])
    expect(d.buffered).toBe(0)
  })

  it('refuses an oversized frame whose header was split across reads, before buffering its body', () => {
    const d = new FrameDecoder({ maxFrameSize: 1024, preamble: false })
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1 << 30)
    d.push(header.subarray(0, 2))
    expect(() => d.push(Buffer.concat([header.subarray(2), Buffer.alloc(5000)]))).toThrow(/exceeds maxFrameSize/)
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
/** The bytes of all `send` directives. */
const sent = (ds: HandshakeDirective[]) => Buffer.concat(ds.flatMap((d) => (d.type === 'send' ? [d.bytes] : [])))

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

  it("refuses a wrong secret on both sides: the acceptor finds the dialer's confirmation wrong and says so", () => {
    const client = new ClientHandshake({ self: a, secret: Buffer.from('other'), random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const log = converse(client, server)
    expect(outcome(log.server)).toMatchObject({
      type: 'failed',
      byPeer: false,
      reason: expect.stringMatching(/^cluster secrets differ: .* both have a cluster secret, but not the same one/),
    })
    expect(outcome(log.client)).toMatchObject({ type: 'failed', byPeer: true, reason: expect.stringMatching(/^cluster secrets differ/) })
    // The acceptor sent nothing after the dialer's failed confirmation but its Reject: no Accept, no confirmation.
    expect(log.server.filter((d) => d.type === 'send').map((d) => (d.type === 'send' ? d.bytes[4] : 0))).not.toContain(FrameType.Accept)
  })

  it('refuses a missing secret on either side', () => {
    const noSecretClient = converse(
      new ClientHandshake({ self: a, secret: undefined, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(noSecretClient.server)).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/^cluster secret missing: .* \(accepting\) has a cluster secret, .* \(dialing\) has none/),
    })
    expect(outcome(noSecretClient.client)).toMatchObject({ type: 'failed', byPeer: true, reason: expect.stringMatching(/\(dialing\) has none/) })
    const noSecretServer = converse(
      new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret: undefined, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(noSecretServer.server)).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/^cluster secret missing: .* \(dialing\) has a cluster secret, .* \(accepting\) has none/),
    })
    expect(outcome(noSecretServer.client)).toMatchObject({ type: 'failed', byPeer: true, reason: expect.stringMatching(/\(accepting\) has none/) })
  })

  it('refuses a protocol major version mismatch (a 1.x peer) with the reason on both sides, saying to upgrade every node', () => {
    expect(PROTOCOL_MAJOR).toBe(2)
    const upgrade = 'upgrade every node (and clusterd) to the same major version'
    const log = converse(
      new ClientHandshake({ self: a, secret, random: randomBytes, major: 1 }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(log.server)).toMatchObject({
      type: 'failed',
      reason: expect.stringContaining(`protocol version mismatch: peer speaks 1.${PROTOCOL_MINOR}, this node 2.${PROTOCOL_MINOR}: `),
    })
    expect(outcome(log.server)).toMatchObject({ reason: expect.stringContaining(upgrade) })
    expect(outcome(log.client)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/version mismatch/) })
    const old = converse(
      new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret, random: randomBytes, major: 1, minor: 2, admit: () => undefined }),
    )
    expect(outcome(old.client)).toMatchObject({ type: 'failed', reason: expect.stringContaining(`peer speaks 1.2, this node 2.${PROTOCOL_MINOR}: `) })
    expect(outcome(old.client)).toMatchObject({ reason: expect.stringContaining(upgrade) })
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
    // Protocol 2 requires the name (1.0 peers, which sent none, speak another major).
    const other = new ServerHandshake({ self: b, clusterName: 'chat', secret, random: randomBytes, admit: () => undefined })
    const unnamed = rewrite(new FrameDecoder({ maxFrameSize: 1 << 16 }).push(hello), undefined).flatMap((i) => other.receive(i))
    expect(outcome(unnamed)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/sent an invalid cluster name/) })
  })

  it('the default cluster name is "shoal"', () => {
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

  it('refuses confirmations and shares whose UTF-8 length differs from their string length, without throwing', () => {
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const client = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const toClient = new FrameDecoder({ maxFrameSize: 1 << 16 })
    const challenge = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(client.start())).flatMap((i) => server.receive(i))
    const proof = toClient.push(sent(challenge)).flatMap((i) => client.receive(i))
    const real = JSON.parse(sent(proof).subarray(5).toString()) as { share: string; confirm: string }
    const forged = Buffer.from(JSON.stringify({ share: real.share, confirm: 'é'.repeat(64) }))
    expect(outcome(server.receive({ kind: 'frame', type: FrameType.Proof, body: forged }))).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/cluster secrets differ/),
    })
    const client2 = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    client2.start()
    client2.receive({ kind: 'preamble', major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR })
    const body = Buffer.from(
      JSON.stringify({
        node: { name: 'b', host: '127.0.0.1', port: 1002, uid: b.uid },
        cluster: 'shoal',
        nonce: 'ab'.repeat(16),
        auth: 'cpace',
        share: 'é'.repeat(64),
      }),
    )
    expect(outcome(client2.receive({ kind: 'frame', type: FrameType.Challenge, body }))).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/key share/),
    })
  })

  /** Body of the first frame of type `type` in `ds`'s sends, parsed. */
  const body = (ds: HandshakeDirective[], type: number): Record<string, unknown> => {
    const item = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(ds)).find((i) => i.kind === 'frame' && i.type === type)
    return JSON.parse(item?.kind === 'frame' ? item.body.toString() : 'null') as Record<string, unknown>
  }

  it('gives a dialer without the secret nothing derived from it but a key share: no proof it could test guesses against offline', () => {
    // Protocol 1 answered any Hello with proof = HMAC(secret, "shoal/server|nonceC|nonceS|uids"): one
    // Hello, then guesses tested offline at HMAC speed. Protocol 2's Challenge carries only Yb = yb·G.
    const client = new ClientHandshake({ self: a, secret: Buffer.from('a guess'), random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const hello = client.start()
    const challengeOut = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(hello)).flatMap((i) => server.receive(i))
    const challenge = body(challengeOut, FrameType.Challenge)
    expect(Object.keys(challenge).sort()).toEqual(['auth', 'cluster', 'node', 'nonce', 'share'])
    expect(challenge.share).toMatch(/^[0-9a-f]{64}$/)
    // The old offline test, with the right secret as the "guess", finds nothing to compare with.
    const helloBody = JSON.parse(sent(hello).subarray(11).toString()) as { nonce: string }
    const oldProof = createHmac('sha256', secret)
      .update(`shoal/server|${helloBody.nonce}|${String(challenge.nonce)}|${a.uid}|${b.uid}`)
      .digest('hex')
    expect(sent(challengeOut).toString('latin1')).not.toContain(oldProof)
    // Fresh scalars: the same secret and session give a different share every time.
    const fixed = (n: number) => Buffer.alloc(n, 7)
    const share = (r: (n: number) => Buffer) => {
      const fresh = new ServerHandshake({ self: b, secret, random: r, admit: () => undefined })
      return body(
        new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(hello)).flatMap((i) => fresh.receive(i)),
        FrameType.Challenge,
      ).share
    }
    expect(share(fixed)).toBe(share(fixed))
    expect(share(randomBytes)).not.toBe(share(randomBytes))
  })

  it('never sends the acceptor confirmation before the dialer proved: a wrong or missing confirmation gets a Reject only', () => {
    for (const forge of [(p: { share: string }) => ({ share: p.share, confirm: '0'.repeat(64) }), (p: { share: string }) => ({ share: p.share })]) {
      const client = new ClientHandshake({ self: a, secret: Buffer.from('a guess'), random: randomBytes }, { host: '127.0.0.1', port: 1002 })
      const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
      const challenge = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(client.start())).flatMap((i) => server.receive(i))
      const proof = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(challenge)).flatMap((i) => client.receive(i))
      const real = JSON.parse(sent(proof).subarray(5).toString()) as { share: string }
      const answer = server.receive({ kind: 'frame', type: FrameType.Proof, body: Buffer.from(JSON.stringify(forge(real))) })
      expect(answer.map((d) => (d.type === 'send' ? d.bytes[4] : d.type))).toEqual([FrameType.Reject, 'failed'])
      expect(sent(answer).toString()).not.toMatch(/confirm/)
    }
  })

  it('a fake acceptor (listening where a node dials) that cannot confirm is refused by the dialer, which never establishes', () => {
    const impostor = new ServerHandshake({ self: b, secret: Buffer.from('a guess'), random: randomBytes, admit: () => undefined })
    const client = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const challenge = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(client.start())).flatMap((i) => impostor.receive(i))
    const toClient = new FrameDecoder({ maxFrameSize: 1 << 16 })
    toClient.push(sent(challenge)).flatMap((i) => client.receive(i))
    // The impostor ignores the dialer's confirmation and accepts with a made-up one.
    const accept = encodeFrame(FrameType.Accept, Buffer.from(JSON.stringify({ confirm: 'f'.repeat(64) })))
    expect(outcome(toClient.push(accept).flatMap((i) => client.receive(i)))).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/^cluster secret not proven: .* \(accepting\) accepted without proving the cluster secret/),
    })
    // A fake acceptor claiming to have no secret does not downgrade a dialer that has one.
    const noAuth = new ServerHandshake({ self: b, secret: undefined, random: randomBytes, admit: () => undefined })
    const client2 = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const hello = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(client2.start()))
    const asIfNone = hello.map((i) => (i.kind === 'frame' ? { ...i, body: Buffer.from(i.body.toString().replace('"cpace"', '"none"')) } : i))
    const reply = asIfNone.flatMap((i) => noAuth.receive(i))
    expect(outcome(new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(reply)).flatMap((i) => client2.receive(i)))).toMatchObject({
      type: 'failed',
      reason: expect.stringMatching(/^cluster secret missing: .* \(dialing\) has a cluster secret, .* \(accepting\) has none/),
    })
  })

  it('binds the preambles: a man in the middle lowering the advertised minor fails the key confirmation', () => {
    const client = new ClientHandshake({ self: a, secret, random: randomBytes }, { host: '127.0.0.1', port: 1002 })
    const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
    const hello = sent(client.start())
    hello[5] = 1 // the dialer's preamble, minor 2 → 1, as the acceptor receives it
    const toServer = new FrameDecoder({ maxFrameSize: 1 << 16 })
    const challenge = toServer.push(hello).flatMap((i) => server.receive(i))
    const proof = new FrameDecoder({ maxFrameSize: 1 << 16 }).push(sent(challenge)).flatMap((i) => client.receive(i))
    const answer = toServer.push(sent(proof)).flatMap((i) => server.receive(i))
    expect(outcome(answer)).toMatchObject({ type: 'failed', reason: expect.stringMatching(/^cluster secrets differ/) })
  })

  it('without a secret on either side, establishes with empty shares and confirmations', () => {
    const log = converse(
      new ClientHandshake({ self: a, secret: undefined, random: randomBytes }, { host: '127.0.0.1', port: 1002 }),
      new ServerHandshake({ self: b, secret: undefined, random: randomBytes, admit: () => undefined }),
    )
    expect(outcome(log.client)).toEqual({ type: 'established', peer: b, minor: PROTOCOL_MINOR })
    expect(outcome(log.server)).toEqual({ type: 'established', peer: a, minor: PROTOCOL_MINOR })
    expect(body(log.server, FrameType.Challenge)).toMatchObject({ auth: 'none', share: '' })
  })

  it('property: random frames never establish an unauthenticated server handshake', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.uint8Array({ maxLength: 80 })), { maxLength: 5 }), (input) => {
        const server = new ServerHandshake({ self: b, secret, random: randomBytes, admit: () => undefined })
        const ds = server.receive({ kind: 'preamble', major: PROTOCOL_MAJOR, minor: 0 })
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
    expect(cache.current?.path).toBe('/user/B-22')
    expect(cache.size).toBe(3)
  })

  it('keeps what the reader attached to each target, however many other targets came between', () => {
    const cache = new TargetCache<string>()
    const base = { uid: '0123456789abcdef', incarnation: 7, timeoutMs: 5000, args: Buffer.of(0x90), chain: '' }
    decodeCall(encodeCall({ ...base, callId: 1, path: '/user/A-1', method: 'go' }), cache)
    cache.current!.resolved = 'A-1 go'
    // Another incarnation, a chain, a one-way message: the same target bytes, the same entry.
    decodeCall(encodeCall({ ...base, callId: 2, path: '/user/A-1', method: 'go', incarnation: 8, chain: 'c.2' }), cache)
    expect(cache.current?.resolved).toBe('A-1 go')
    decodeOneWay(encodeOneWay({ ...base, path: '/user/A-1', method: 'go' }), cache)
    expect(cache.current?.resolved).toBe('A-1 go')
    // A different method or path is a different target: nothing attached yet.
    for (const changed of [
      { path: '/user/A-1', method: 'stop' },
      { path: '/user/A-2', method: 'go' },
    ]) {
      decodeCall(encodeCall({ ...base, callId: 3, ...changed }), cache)
      expect(cache.current?.resolved).toBeUndefined()
      cache.current!.resolved = `${changed.path} ${changed.method}`
    }
    // Many targets in turn (a node calling a thousand actors round robin): each keeps its own.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 1000; i++) {
        decodeCall(encodeCall({ ...base, callId: i, path: `/user/P-${i}`, method: 'go' }), cache)
        if (round === 0) {
          expect(cache.current?.resolved).toBeUndefined()
          cache.current!.resolved = `P-${i}`
        } else expect(cache.current?.resolved).toBe(`P-${i}`)
      }
    }
    decodeCall(encodeCall({ ...base, callId: 5, path: '/user/A-1', method: 'go' }), cache)
    expect(cache.current?.resolved).toBe('A-1 go')
    // A target that fails to decode leaves no entry current.
    const bad = encodeCall({ ...base, callId: 6, path: '/user/A-1', method: 'go' })
    expect(() => decodeCall(bad.subarray(0, 20), cache)).toThrow()
    expect(cache.current).toBeUndefined()
  })

  it('starts over when full, and never takes one target for another on a hash collision', () => {
    const cache = new TargetCache<string>(4)
    const base = { uid: '0123456789abcdef', incarnation: 7, timeoutMs: 5000, args: Buffer.of(0x90), chain: '' }
    const calls = Array.from({ length: 9 }, (_, i) => ({ ...base, callId: i, path: `/user/Q-${i}`, method: 'go' }))
    for (const c of calls) {
      expect(decodeCall(encodeCall(c), cache)).toEqual(decodeCall(encodeCall(c)))
      expect(cache.size).toBeLessThanOrEqual(4)
    }
    // Two different targets under one hash: the bytes decide.
    const a = Buffer.from('\x02ab\x00\x02/a\x01m')
    const b = Buffer.from('\x02ab\x00\x02/b\x01m')
    const c2 = new TargetCache<string>()
    c2.add(42, a, 0, a.length, 'ab', '/a', 'm').resolved = 'a'
    expect(c2.find(42, a, 0, a.length)?.resolved).toBe('a')
    expect(c2.find(42, b, 0, b.length)).toBeUndefined()
  })

  it('tells apart targets that differ in any one byte, wherever the body sits in its buffer', () => {
    const base = { uid: '0123456789abcdef', incarnation: 7, timeoutMs: 5000, args: Buffer.of(0x90), chain: '', callId: 1 }
    const primed = encodeCall({ ...base, path: '/user/A-1', method: 'go' })
    // The target segment follows callId, incarnation and timeout (12 bytes); vary each of its letters.
    const uidAt = 12 + 1
    const pathAt = uidAt + 16 + 2
    const methodAt = pathAt + '/user/A-1'.length + 1
    for (const at of [uidAt, uidAt + 5, uidAt + 15, pathAt, pathAt + 8, methodAt, methodAt + 1]) {
      for (const offset of [0, 1, 3, 6]) {
        const cache = new TargetCache<string>()
        decodeCall(primed, cache)
        cache.current!.resolved = 'A-1 go'
        // One shared memory for both, at an odd offset: the word-at-a-time compare must not care.
        const memory = Buffer.alloc(offset + primed.length)
        primed.copy(memory, offset)
        memory[offset + at] = memory[offset + at]! ^ 0x01
        const body = memory.subarray(offset)
        expect(decodeCall(body, cache)).toEqual(decodeCall(Buffer.from(body)))
        expect(cache.current?.resolved).toBeUndefined()
      }
    }
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

describe('Bytes', () => {
  it('reads and writes big-endian integers as Buffer does, at any offset', () => {
    for (const v of [0, 1, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff, 0x12345678]) {
      for (const at of [0, 1, 3]) {
        const mine = Buffer.alloc(10)
        const theirs = Buffer.alloc(10)
        putU32(mine, at, v)
        theirs.writeUInt32BE(v, at)
        expect(mine).toEqual(theirs)
        expect(getU32(theirs, at)).toBe(v)
        if (v <= 0xffff) {
          putU16(mine, at + 4, v)
          theirs.writeUInt16BE(v, at + 4)
          expect(mine).toEqual(theirs)
          expect(getU16(theirs, at + 4)).toBe(v)
        }
      }
    }
  })
})
