/**
 * A node whose host name has an underscore (`my_host`, legal in DNS and /etc/hosts, not in RFC 952
 * host names) works end to end: three real processes, two bound to and advertised as `my_host` and
 * one as 127.0.0.1, form a cluster (SWIM and membership gossip carry the name), find each other's
 * Greeter with the receptionist, and call it, passing refs to `my_host` actors both ways.
 *
 * `my_host` resolves to 127.0.0.1 only inside the nodes: each runs in a mount namespace with a
 * private /etc/hosts (support/privateHosts.ts); the machine's /etc/hosts is not touched. Needs
 * root; skipped with the reason otherwise.
 */
import { fileURLToPath } from 'node:url'
import { eventually, NodeProcess } from 'shoal/testkit'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { PrivateHosts, privateHostsAvailable } from './support/privateHosts.ts'

const HOST = 'my_host'
const FIXTURE = fileURLToPath(new URL('./fixtures/named-host-node.ts', import.meta.url))
const available = await privateHostsAvailable()
const title = available.ok ? `a node at ${HOST}` : `a node at ${HOST} — skipped: ${available.why}`
// The default reporter only counts skipped tests; say why where it shows.
if (!available.ok) console.warn(`named-host.test.ts: skipping the ${HOST} end-to-end test: ${available.why}`)

interface MembersJson {
  members: { node: string; status: string }[]
}

interface Called {
  target: string
  greeting: string
  echoed: string
}

describe.skipIf(!available.ok)(title, () => {
  let hosts: PrivateHosts | undefined
  const procs: NodeProcess[] = []

  beforeAll(async () => {
    hosts = await PrivateHosts.create({ [HOST]: '127.0.0.1' })
  })

  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill()))
  })

  afterAll(async () => {
    await hosts?.destroy()
  })

  /** A fixture node at `host`, in a mount namespace that resolves my_host; resolves with its Greeter's id. */
  async function start(host: string, expect: number, seed?: string): Promise<{ proc: NodeProcess; greeter: string }> {
    const args = ['--host', host, '--port', '0', '--http', '0', '--expect', String(expect), ...(seed === undefined ? [] : ['--seed', seed])]
    const proc = await NodeProcess.start('node', {
      args,
      // NodeProcess runs the shoal CLI; this runs the fixture instead, with the same Node flags.
      spawner: (command, _cliArgs, options) => hosts!.spawner(command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...args], options),
    })
    procs.push(proc)
    const line = await proc.waitForLine((l) => l.msg === 'greeter checked in')
    return { proc, greeter: String(line.greeter) }
  }

  it('forms a cluster, finds every Greeter with the receptionist and calls it', async () => {
    const a = await start(HOST, 3)
    expect(a.proc.address).toMatch(/^my_host:\d+$/)
    const [b, c] = await Promise.all([start(HOST, 3, a.proc.address), start('127.0.0.1', 3, a.proc.address)])
    const all = [a, b, c]
    expect(a.greeter).toMatch(/^shoal:\/\/named@my_host:\d+\/[0-9a-f]{16}\/user\/Greeter-\d+#\d+$/)

    await eventually(
      async () => {
        for (const n of all) {
          const up = (await n.proc.get<MembersJson>('/cluster/members')).members.filter((m) => m.status === 'up')
          expect(up.map((m) => m.node).sort()).toEqual(all.map((x) => x.proc.address).sort())
        }
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )

    for (const n of all) {
      const line = await n.proc.waitForLine((l) => l.msg === 'greeters called' || l.msg === 'greeters failed', 30_000)
      expect(line.error, `${n.proc.address}: ${String(line.error)}`).toBeUndefined()
      const results = (line.results as Called[]).sort((x, y) => x.target.localeCompare(y.target))
      const others = all
        .filter((x) => x !== n)
        .map((x) => x.greeter)
        .sort()
      expect(results.map((r) => r.target)).toEqual(others)
      for (const r of results) {
        expect(r.greeting).toBe(`hello ${n.proc.address.split(':')[0]} from ${r.target}`)
        expect(r.echoed).toBe(n.greeter)
      }
    }
  })
})
