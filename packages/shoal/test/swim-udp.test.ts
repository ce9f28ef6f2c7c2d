import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { createConnection } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { ClusterSystem, ConfigError, DistributedActor, distributed, type MemberStatus, SwimMember, type SwimNode } from 'shoal'
import { deriveKey, encodeMessage, type Message, seal, TcpStreamLink } from 'shoal/internal'
import { eventually } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

const SECRET = randomBytes(32).toString('hex')
const members: SwimMember[] = []
const systems: ClusterSystem[] = []
const children: ChildProcess[] = []

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT')
      c.kill('SIGKILL')
    }
  }
  await Promise.all(members.splice(0).map((m) => m.close()))
  await Promise.all(systems.splice(0).map((s) => s.shutdown()))
})

async function member(seed?: SwimMember, secret = SECRET): Promise<SwimMember> {
  const m = await SwimMember.start({ port: 0, secret, seeds: seed ? [`127.0.0.1:${seed.node.port}`] : [], logger: undefined })
  members.push(m)
  return m
}

async function cluster(n: number): Promise<SwimMember[]> {
  const first = await member()
  const rest: SwimMember[] = []
  for (let i = 1; i < n; i++) rest.push(await member(first))
  const all = [first, ...rest]
  await eventually(
    () => {
      for (const m of all) expect(m.liveMembers().length).toBe(n - 1)
    },
    { timeoutMs: 30_000 },
  )
  return all
}

function statusOf(observer: SwimMember, node: SwimNode): MemberStatus | undefined {
  return observer.instance.member(node)?.status
}

describe('SWIM over real UDP', () => {
  it('members joined through one seed all see each other; changes() yields the snapshot, then changes', async () => {
    const all = await cluster(5)
    const seen: string[] = []
    const iterate = (async () => {
      for await (const c of all[0]!.changes()) {
        seen.push(`${c.member.node.port}:${c.member.status}`)
        if (seen.length === 5) break
      }
    })()
    const late = await member(all[0])
    await iterate
    expect(seen.slice(0, 4).every((s) => s.endsWith(':alive'))).toBe(true)
    expect(seen[4]).toBe(`${late.node.port}:alive`)
  })

  it('a member that stops without a word is marked dead by all others, and nobody else is', async () => {
    const all = await cluster(5)
    const victim = all.pop()!
    await victim.close()
    await eventually(
      () => {
        for (const m of all) expect(statusOf(m, victim.node)).toBe('dead')
      },
      { timeoutMs: 30_000 },
    )
    // Nobody else is dead (a loaded machine may briefly suspect someone, which is not a verdict).
    for (const m of all) for (const other of all) if (other !== m) expect(statusOf(m, other.node)).not.toBe('dead')
  })

  it('a member that leaves is marked left by all, never suspected', async () => {
    const all = await cluster(4)
    const leaver = all.pop()!
    const suspected: string[] = []
    for (const m of all) m.subscribe((c) => c.member.node.uid === leaver.node.uid && c.member.status === 'suspect' && suspected.push(c.member.node.uid))
    await leaver.leave(300)
    await eventually(() => {
      for (const m of all) expect(statusOf(m, leaver.node)).toBe('left')
    })
    expect(suspected).toEqual([])
  })

  it('a member with the wrong secret is not admitted, and its datagrams are dropped as unauthenticated', async () => {
    const all = await cluster(2)
    const intruder = await member(all[0], randomBytes(32).toString('hex')) // strong, but another cluster's
    await new Promise((r) => setTimeout(r, 1500))
    for (const m of all) expect(statusOf(m, intruder.node)).toBeUndefined()
    expect(intruder.liveMembers()).toEqual([])
    const drops = all.reduce((n, m) => n + (m.traffic.dropped.get('auth') ?? 0) + (m.traffic.dropped.get('stream-auth') ?? 0), 0)
    expect(drops).toBeGreaterThan(0)
  })

  it('hostile datagrams are dropped and counted; they change nothing and the member keeps working', async () => {
    const [target, peer] = await cluster(2)
    const before = JSON.stringify(target!.members().map((m) => [m.node.uid, m.status, m.incarnation]))
    const key = deriveKey(SECRET)
    const raw = createSocket('udp4')
    const send = (b: Buffer): Promise<void> => new Promise((r) => raw.send(b, target!.node.port, '127.0.0.1', () => r()))
    const fake: SwimNode = { host: '127.0.0.1', port: 9, uid: 'abcdefabcdefabcd' }
    const ping: Message = { type: 'ping', seq: 1, from: fake, targetUid: target!.node.uid, updates: [] }
    const valid = seal(key, encodeMessage(ping))
    // Random junk of every size up to and beyond the datagram limit.
    for (let i = 0; i < 300; i++) await send(Buffer.from(Array.from({ length: i * 5 }, () => Math.floor(Math.random() * 256))))
    // Every truncation of a valid datagram.
    for (let len = 0; len < valid.length; len++) await send(valid.subarray(0, len))
    // Right key, wrong protocol version.
    const v2 = encodeMessage(ping)
    v2[0] = 2
    await send(seal(key, v2))
    // Wrong key; tampered byte; oversized.
    await send(seal(deriveKey('other'), encodeMessage(ping)))
    const tampered = Buffer.from(valid)
    tampered[5] = tampered[5]! ^ 1
    await send(tampered)
    await send(Buffer.alloc(2000, 7))
    // An authenticated but stale accusation: the peer dead at an older incarnation than it has.
    const peerNode = peer!.node
    await send(seal(key, encodeMessage({ type: 'gossip', from: fake, updates: [{ status: 'alive', node: peerNode, incarnation: 0, meta: new Uint8Array() }] })))
    raw.close()
    await eventually(() => {
      const d = target!.traffic.dropped
      expect(d.get('auth')).toBeGreaterThan(0)
      expect(d.get('truncated')).toBeGreaterThan(0)
      expect(d.get('version'), JSON.stringify([...d])).toBe(1)
      expect(d.get('oversized')).toBeGreaterThan(0)
    })
    const after = JSON.stringify(target!.members().map((m) => [m.node.uid, m.status, m.incarnation]))
    expect(after).toBe(before)
    // Still probing and answering: a new member is seen and sees it.
    const late = await member(target)
    await eventually(() => expect(statusOf(target!, late.node)).toBe('alive'))
    const metrics = await target!.registry.metrics()
    expect(metrics).toMatch(/shoal_swim_dropped_total\{reason="auth"\} [1-9]/)
  })
})

describe('replayed datagrams of an old incarnation (issue 15)', () => {
  it('a fresh node fed them keeps the restarted incarnation alive; the restart itself is still found at once', async () => {
    const seed = await member()
    // A socket that the old incarnation answers: what it sends there is what an observer captures.
    const spy = createSocket('udp4')
    const captured: Buffer[] = []
    spy.on('message', (buf) => captured.push(buf))
    await new Promise<void>((r) => spy.bind(0, '127.0.0.1', () => r()))
    try {
      const key = deriveKey(SECRET)
      const spyNode = { host: '127.0.0.1', port: spy.address().port, uid: '5a5a5a5a5a5a5a5a' }
      const old = await member(seed)
      // At once, while its own `alive` is still queued and rides every datagram it sends.
      for (let seq = 1; seq <= 5; seq++)
        spy.send(seal(key, encodeMessage({ type: 'ping', seq, from: spyNode, targetUid: old.node.uid, updates: [] })), old.node.port, '127.0.0.1')
      await eventually(() => expect(captured.length).toBe(5))
      await eventually(() => expect(statusOf(seed, old.node)).toBe('alive'))

      await old.close()
      const restarted = await SwimMember.start({ port: old.node.port, secret: SECRET, seeds: [`127.0.0.1:${seed.node.port}`], logger: undefined })
      members.push(restarted)
      expect(restarted.node.uid).not.toBe(old.node.uid)
      // The seed hears the new uid from its join and replaces the old one once it answers a ping.
      const t0 = Date.now()
      await eventually(() => {
        expect(statusOf(seed, restarted.node)).toBe('alive')
        expect(statusOf(seed, old.node)).toBe('dead')
      })
      expect(Date.now() - t0).toBeLessThan(2000)

      const fresh = await member(seed)
      await eventually(() => expect(statusOf(fresh, restarted.node)).toBe('alive'))
      expect(statusOf(fresh, old.node)).toBeUndefined()
      const seen: string[] = []
      for (const m of [fresh, seed]) m.subscribe((c) => c.member.node.uid === restarted.node.uid && c.member.status !== 'alive' && seen.push(c.member.status))
      for (let round = 0; round < 3; round++) {
        for (const packet of captured) spy.send(packet, fresh.node.port, '127.0.0.1')
        await new Promise((r) => setTimeout(r, 300))
      }
      // The replayed uid answers no ping: it is suspected and dies; the live one never is.
      await eventually(() => expect(statusOf(fresh, old.node)).toBe('dead'), { timeoutMs: 30_000 })
      expect(seen).toEqual([])
      expect(statusOf(fresh, restarted.node)).toBe('alive')
      expect(statusOf(seed, restarted.node)).toBe('alive')
    } finally {
      spy.close()
    }
  })
})

describe('SWIM shell robustness', () => {
  it('a membership listener that throws does not stop the detector', async () => {
    const all = await cluster(3)
    all[0]!.subscribe(() => {
      throw new Error('listener bug')
    })
    const late = await member(all[0])
    await eventually(() => expect(statusOf(all[0]!, late.node)).toBe('alive'))
    await late.close()
    await eventually(() => expect(statusOf(all[0]!, late.node)).toBe('dead'), { timeoutMs: 30_000 })
  })

  it('refuses a non-loopback host without a secret, unless insecure', async () => {
    const saved = process.env.SHOAL_SECRET
    delete process.env.SHOAL_SECRET
    try {
      await expect(SwimMember.start({ host: '0.0.0.0', port: 0 })).rejects.toBeInstanceOf(ConfigError)
      members.push(await SwimMember.start({ host: '0.0.0.0', port: 0, insecure: true }))
    } finally {
      if (saved !== undefined) process.env.SHOAL_SECRET = saved
    }
  })

  it('binds a host name (localhost: IPv4); refuses an invalid host or a name that does not resolve', async () => {
    const named = await SwimMember.start({ host: 'localhost', port: 0 })
    members.push(named)
    expect(named.node.host).toBe('localhost')
    await expect(SwimMember.start({ host: 'a b', port: 0 })).rejects.toThrow('SWIM host "a b" is not a host a node can use: use an IPv4 address')
    await expect(SwimMember.start({ host: 'no_such_host.invalid', port: 0 })).rejects.toThrow(/does not resolve/)
  })

  it('the TCP stream link drops slow trickles at a deadline and bounds unauthenticated bytes', async () => {
    const link = await TcpStreamLink.listen('127.0.0.1', 0, { readTimeout: 300, maxInbound: 2, maxBuffered: 4096 })
    link.serve((body) => Buffer.concat([Buffer.from('echo:'), body]))
    try {
      const trickle = () => {
        const s = createConnection({ host: '127.0.0.1', port: link.port })
        s.on('error', () => undefined)
        // Announce a 100-byte request, then send it one byte at a time.
        s.write(Buffer.from([0, 0, 0, 100]))
        const t = setInterval(() => s.write(Buffer.from([0])), 50)
        s.on('close', () => clearInterval(t))
        return s
      }
      const slow = [trickle(), trickle()]
      await eventually(() => {
        for (const s of slow) expect(s.destroyed).toBe(true)
      })
      expect(link.refused.get('timeout')).toBe(2)
      expect((await link.request({ host: '127.0.0.1', port: link.port }, Buffer.from('hi'), 2000)).toString()).toBe('echo:hi')
      // A request announcing 10 kB against a 4 kB budget is cut off.
      const big = Buffer.alloc(4 + 10_000)
      big.writeUInt32BE(10_000, 0)
      await expect(link.request({ host: '127.0.0.1', port: link.port }, big.subarray(4), 2000)).rejects.toThrow()
      expect(link.refused.get('buffer-full')).toBe(1)
    } finally {
      await link.close()
    }
  })
})

describe('SWIM in a cluster system', () => {
  it('nodes find each other through a seed; a node that shuts down is marked left everywhere', async () => {
    const a = await ClusterSystem.start({ port: 0, logLevel: 'silent', swim: {} })
    systems.push(a)
    const seeds = [`127.0.0.1:${a.node.endpoint.port}`]
    const b = await ClusterSystem.start({ port: 0, logLevel: 'silent', swim: { seeds } })
    const c = await ClusterSystem.start({ port: 0, logLevel: 'silent', swim: { seeds } })
    systems.push(b, c)
    await eventually(() => {
      for (const s of [a, b, c]) expect(s.swim!.liveMembers().length).toBe(2)
    })
    expect(b.swim!.node.uid).toBe(b.node.uid)
    await c.shutdown()
    await eventually(() => {
      for (const s of [a, b]) expect(statusOf(s.swim!, c.swim!.node)).toBe('left')
    })
    expect(await a.metrics.registry.metrics()).toMatch(/shoal_swim_members\{status="left",system="shoal"\} 1/)
  })
})

class Echo extends DistributedActor {
  pings = 0
  @distributed async ping(): Promise<number> {
    return ++this.pings
  }
}

describe('cluster names', () => {
  /** A port free for both TCP and UDP right now. */
  async function freePort(): Promise<number> {
    const probe = await ClusterSystem.start({ port: 0, logLevel: 'silent', swim: {} })
    const port = probe.node.endpoint.port
    await probe.shutdown()
    return port
  }

  /**
   * A node keeps re-joining a seed address; a node of another cluster then binds that address
   * (as when one cluster's node takes a port another cluster's dead node had). Same name: they
   * merge (the cross-talk the name prevents). Different names: the newcomer refuses the handshake
   * of every join (and would drop stray datagrams as not authentic), and neither lists the other.
   */
  it.each([
    ['the same name', 'alpha', true],
    ['different names', 'beta', false],
  ])('a node at a seed address of another cluster: %s', async (_, otherName, merges) => {
    const port = await freePort()
    const a = await ClusterSystem.start({ port: 0, logLevel: 'silent', clusterName: 'alpha', swim: { seeds: [`127.0.0.1:${port}`] } })
    systems.push(a)
    const b = await ClusterSystem.start({ port, logLevel: 'silent', clusterName: otherName, swim: {} })
    systems.push(b)
    if (merges) {
      await eventually(() => {
        expect(a.swim!.liveMembers().map((m) => m.node.uid)).toContain(b.node.uid)
        expect(b.swim!.liveMembers().map((m) => m.node.uid)).toContain(a.node.uid)
      })
      return
    }
    // The join (push-pull over the node's transport) is refused at the handshake, again and again.
    const refusedHandshakes = async (): Promise<number> =>
      Number(/shoal_refused_total\{reason="handshake"[^}]*\} (\d+)/.exec(await b.metrics.registry.metrics())?.[1] ?? 0)
    await eventually(async () => expect(await refusedHandshakes()).toBeGreaterThan(1), { timeoutMs: 15_000 })
    expect(a.swim!.liveMembers()).toEqual([])
    expect(b.swim!.liveMembers()).toEqual([])
    // Calls are refused at the handshake, saying why, and never run.
    const echo = b.spawn(Echo)
    await expect(a.resolve(Echo, echo.id).ping()).rejects.toMatchObject({
      code: 'SHOAL_NODE_UNREACHABLE',
      message: expect.stringMatching(/belongs to cluster "(alpha|beta)", this node to "(alpha|beta)"/),
    })
    expect(await echo.ping()).toBe(1)
  })
})

const fixture = fileURLToPath(new URL('./fixtures/swim-member.ts', import.meta.url))

async function memberProcess(port: number, seed: SwimMember): Promise<{ child: ChildProcess; node: SwimNode }> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', fixture], {
    env: { ...process.env, PORT: String(port), SEEDS: `127.0.0.1:${seed.node.port}`, SHOAL_SECRET: SECRET, SHOAL_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  children.push(child)
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`member process exited with ${code}`)))
  })
  const { port: bound, uid } = JSON.parse(line) as { port: number; uid: string }
  return { child, node: { host: '127.0.0.1', port: bound, uid } }
}

describe('SWIM members in other processes', () => {
  it('SIGSTOP shorter than the suspicion timeout: not declared dead; SIGKILL: dead everywhere; restart on the port: a new member', async () => {
    const all = await cluster(3)
    const { child, node } = await memberProcess(0, all[0]!)
    await eventually(() => {
      for (const m of all) expect(statusOf(m, node)).toBe('alive')
    })
    const deaths: string[] = []
    for (const m of all) m.subscribe((c) => c.member.node.uid === node.uid && c.member.status === 'dead' && deaths.push('dead'))
    child.kill('SIGSTOP')
    await new Promise((r) => setTimeout(r, 1500))
    child.kill('SIGCONT')
    await eventually(() => {
      for (const m of all) expect(statusOf(m, node)).toBe('alive')
    })
    expect(deaths).toEqual([])

    child.kill('SIGKILL')
    await eventually(
      () => {
        for (const m of all) expect(statusOf(m, node)).toBe('dead')
      },
      { timeoutMs: 30_000 },
    )

    const restarted = await memberProcess(node.port, all[0]!)
    expect(restarted.node.uid).not.toBe(node.uid)
    await eventually(() => {
      for (const m of all) {
        expect(statusOf(m, restarted.node)).toBe('alive')
        expect(statusOf(m, node)).toBe('dead')
      }
    })
  })
})
