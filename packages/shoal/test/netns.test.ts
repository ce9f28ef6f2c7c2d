import { execFile } from 'node:child_process'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { NetnsLab, netnsAvailable } from './support/netns.ts'

const execFileP = promisify(execFile)
const available = await netnsAvailable()
const title = available.ok ? 'NetnsLab (network namespaces)' : `NetnsLab (network namespaces) — skipped: ${available.why}`
// The default reporter only counts skipped tests; say why where it shows.
if (!available.ok) console.warn(`netns.test.ts: skipping the network-namespace tests: ${available.why}`)

const TCP_PORT = 7000
const UDP_PORT = 7001

/** TCP echo on 7000 and UDP echo on 7001, all addresses; prints `ready` when both listen. */
const ECHO_SERVER = `
const net = require('node:net'), dgram = require('node:dgram')
net.createServer((c) => { c.on('error', () => {}); c.pipe(c) }).listen(${TCP_PORT}, '0.0.0.0', () => {
  const u = dgram.createSocket('udp4')
  u.on('message', (m, r) => u.send(m, r.port, r.address))
  u.bind(${UDP_PORT}, '0.0.0.0', () => console.log('ready'))
})`

/**
 * `node -e CLIENT <host> tcp|udp`: sends a token to the echo server and exits 0 when it comes back,
 * 2 after 1.5 s without an answer, 3 on a wrong answer, 4 on a socket error (refused, unreachable).
 */
const CLIENT = `
const net = require('node:net'), dgram = require('node:dgram')
const [host, kind] = process.argv.slice(1)
setTimeout(() => process.exit(2), 1500)
const token = 'tok-' + process.pid
if (kind === 'tcp') {
  const c = net.connect(${TCP_PORT}, host, () => c.write(token))
  c.on('data', (d) => process.exit(String(d) === token ? 0 : 3))
  c.on('error', () => process.exit(4))
} else {
  const u = dgram.createSocket('udp4')
  u.on('message', (m) => process.exit(String(m) === token ? 0 : 3))
  u.on('error', () => process.exit(4))
  u.send(token, ${UDP_PORT}, host)
}`

const OK = 0
/** Exit codes that mean "no answer": timed out, or the kernel gave up (EHOSTUNREACH). */
const BLOCKED = [2, 4]

describe.skipIf(!available.ok)(title, () => {
  // An explicit prefix, so afterAll can clean up even if create() never returned a lab.
  const prefix = `nt${process.pid.toString(36)}-`
  let lab: NetnsLab | undefined

  function theLab(): NetnsLab {
    if (lab === undefined) throw new Error('lab not created')
    return lab
  }

  /** Exit code of the client run in namespace `from` against member `to`. */
  function probe(from: number, to: number, kind: 'tcp' | 'udp'): Promise<number | null> {
    const l = theLab()
    const child = l.exec(from, process.execPath, ['-e', CLIENT, l.address(to), kind], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`probe ${from}->${to} ${kind} hung`))
      }, 10_000)
      child.once('error', reject)
      child.once('exit', (code) => {
        clearTimeout(guard)
        if (code === 1) reject(new Error(`probe script failed: ${stderr}`))
        else resolve(code)
      })
    })
  }

  /** Runs all probes at once; returns `"from->to kind": exitCode`. */
  async function probes(pairs: ReadonlyArray<readonly [number, number]>): Promise<Record<string, number | null>> {
    const runs = pairs.flatMap(([f, t]) => (['tcp', 'udp'] as const).map(async (k) => [`${f}->${t} ${k}`, await probe(f, t, k)] as const))
    return Object.fromEntries(await Promise.all(runs))
  }

  beforeAll(async () => {
    lab = await NetnsLab.create(5, { prefix })
    await Promise.all(
      Array.from({ length: lab.size }, async (_, i) => {
        const server = theLab().exec(i, process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] })
        await new Promise<void>((resolve, reject) => {
          createInterface({ input: server.stdout! }).once('line', () => resolve())
          server.once('exit', (code) => reject(new Error(`echo server in ${theLab().name(i)} exited with ${code}`)))
          server.once('error', reject)
        })
      }),
    )
  })

  afterAll(async () => {
    // destroy() kills the echo servers (it spawned them) and removes everything with the prefix.
    await (lab ? lab.destroy() : NetnsLab.destroyPrefix(prefix))
    const { stdout: ns } = await execFileP('ip', ['netns', 'list'])
    const { stdout: links } = await execFileP('ip', ['-o', 'link', 'show'])
    expect(ns.split('\n').filter((l) => l.startsWith(prefix))).toEqual([])
    expect(links.split('\n').filter((l) => l.includes(` ${prefix}`))).toEqual([])
  })

  it('builds namespaces with eth0 at 10.77.x.(i+1), loopback up, and no IP on the host side', async () => {
    const l = theLab()
    expect(l.address(0)).toMatch(/^10\.77\.\d+\.1$/)
    expect(l.address(4)).toBe(`${l.subnet}.5`)
    const { stdout } = await execFileP('ip', ['-n', l.name(3), '-j', 'addr', 'show'])
    const addrs = JSON.parse(stdout) as Array<{ ifname: string; operstate: string; addr_info: Array<{ family: string; local: string }> }>
    const eth0 = addrs.find((a) => a.ifname === 'eth0')
    expect(eth0?.addr_info.filter((a) => a.family === 'inet').map((a) => a.local)).toEqual([l.address(3)])
    expect(addrs.find((a) => a.ifname === 'lo')?.addr_info.map((a) => a.local)).toContain('127.0.0.1')
    for (const dev of [l.hostVeth(0), l.hostVeth(4), `${l.prefix}bA`, `${l.prefix}bB`, `${l.prefix}tA`]) {
      const { stdout: host } = await execFileP('ip', ['-j', 'addr', 'show', 'dev', dev])
      expect((JSON.parse(host) as Array<{ addr_info: unknown[] }>)[0]?.addr_info, dev).toEqual([])
    }
  })

  it('everyone reaches everyone at first, TCP and UDP (0 and 4 sit on different bridges)', async () => {
    expect([theLab().sideOf(0), theLab().sideOf(4)]).toEqual(['A', 'B'])
    expect(
      await probes([
        [0, 4],
        [4, 0],
        [0, 2],
        [3, 4],
      ]),
    ).toEqual({
      '0->4 tcp': OK,
      '0->4 udp': OK,
      '4->0 tcp': OK,
      '4->0 udp': OK,
      '0->2 tcp': OK,
      '0->2 udp': OK,
      '3->4 tcp': OK,
      '3->4 udp': OK,
    })
  })

  it('partition([0,1,2],[3,4]) blocks TCP and UDP across, both ways, and keeps each side connected', async () => {
    await theLab().partition([0, 1, 2], [3, 4])
    const r = await probes([
      [0, 4],
      [4, 0],
      [2, 3],
      [0, 2],
      [2, 1],
      [3, 4],
      [4, 3],
    ])
    for (const across of ['0->4', '4->0', '2->3']) {
      for (const k of ['tcp', 'udp']) expect(BLOCKED, `${across} ${k}`).toContain(r[`${across} ${k}`])
    }
    for (const within of ['0->2', '2->1', '3->4', '4->3']) {
      for (const k of ['tcp', 'udp']) expect(r[`${within} ${k}`], `${within} ${k}`).toBe(OK)
    }
  })

  it('heal() restores 0->4 (and the rest)', async () => {
    await theLab().heal()
    expect(
      await probes([
        [0, 4],
        [4, 0],
        [1, 3],
      ]),
    ).toEqual({
      '0->4 tcp': OK,
      '0->4 udp': OK,
      '4->0 tcp': OK,
      '4->0 udp': OK,
      '1->3 tcp': OK,
      '1->3 udp': OK,
    })
  })

  it('partitions again after healing, with members moved to the other sides', async () => {
    await theLab().partition([0, 4], [1, 2, 3])
    const r = await probes([
      [0, 4],
      [0, 1],
      [3, 1],
      [4, 2],
    ])
    expect([r['0->4 tcp'], r['0->4 udp'], r['3->1 tcp'], r['3->1 udp']]).toEqual([OK, OK, OK, OK])
    for (const key of ['0->1 tcp', '0->1 udp', '4->2 tcp', '4->2 udp']) expect(BLOCKED, key).toContain(r[key])
    await theLab().heal()
    expect(await probe(4, 1, 'tcp')).toBe(OK)
  })
})
