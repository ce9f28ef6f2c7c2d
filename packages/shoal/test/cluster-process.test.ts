/**
 * Real `shoal node` processes on loopback, signalled: formation, kill -9, SIGSTOP/SIGCONT,
 * restart on the same port, graceful leave on SIGTERM, discovery through clusterd, a wrong secret.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually, NodeProcess } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

const SECRET = randomBytes(32).toString('hex')
const procs: NodeProcess[] = []

afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()))
})

interface MembersJson {
  self: string
  leader: string | null
  members: { node: string; uid: string; status: string; reachability: string; upNumber: number; roles: string[] }[]
}

async function node(args: string[], env: NodeJS.ProcessEnv = {}): Promise<NodeProcess> {
  const p = await NodeProcess.start('node', { args: ['--port', '0', '--http', '0', ...args], env: { SHOAL_SECRET: SECRET, ...env } })
  procs.push(p)
  return p
}

async function cluster(n: number, extra: string[] = []): Promise<NodeProcess[]> {
  const first = await node(extra)
  const rest = await Promise.all(Array.from({ length: n - 1 }, () => node(['--seed', first.address, ...extra])))
  const all = [first, ...rest]
  await eventually(
    async () => {
      for (const p of all) {
        const m = await p.get<MembersJson>('/cluster/members')
        expect(m.members.filter((x) => x.status === 'up')).toHaveLength(n)
      }
    },
    { timeoutMs: 30_000 },
  )
  return all
}

const view = (p: NodeProcess): Promise<MembersJson> => p.get<MembersJson>('/cluster/members')
const statusIn = (m: MembersJson, address: string, uid?: string) => m.members.find((x) => x.node === address && (uid === undefined || x.uid === uid))

describe('shoal node processes', () => {
  it('five form a cluster: all up, distinct up-numbers, one leader (the lowest address) everywhere', async () => {
    const all = await cluster(5)
    const views = await Promise.all(all.map(view))
    const leaders = new Set(views.map((v) => v.leader))
    expect(leaders.size).toBe(1)
    const lowest = [...all.map((p) => p.address)].sort((a, b) => Number(a.split(':')[1]) - Number(b.split(':')[1]))[0]
    expect(views[0]!.leader).toBe(lowest)
    expect(new Set(views[0]!.members.map((m) => m.upNumber)).size).toBe(5)
  })

  it('kill -9: the others see it down, then removed', async () => {
    const all = await cluster(4)
    const victim = all.pop()!
    await victim.kill()
    await eventually(
      async () => {
        for (const p of all) expect(statusIn(await view(p), victim.address)?.status ?? 'removed').toMatch(/down|removed/)
      },
      { timeoutMs: 40_000 },
    )
    await eventually(
      async () => {
        for (const p of all) expect(statusIn(await view(p), victim.address)?.status ?? 'removed').toBe('removed')
      },
      { timeoutMs: 20_000 },
    )
  })

  it('SIGSTOP then SIGCONT: unreachable, then reachable again, status unchanged', async () => {
    const all = await cluster(3, ['--stable-after', '60000'])
    const stopped = all[2]!
    stopped.signal('SIGSTOP')
    await eventually(
      async () => {
        for (const p of all.slice(0, 2)) expect(statusIn(await view(p), stopped.address)?.reachability).toBe('unreachable')
      },
      { timeoutMs: 40_000 },
    )
    stopped.signal('SIGCONT')
    await eventually(
      async () => {
        for (const p of all) {
          const m = statusIn(await view(p), stopped.address)
          expect(m?.reachability).toBe('reachable')
          expect(m?.status).toBe('up')
        }
      },
      { timeoutMs: 30_000 },
    )
  })

  it('frozen through its own down and removal: once woken it stops and exits 1, never 0', async () => {
    const all = await cluster(3, ['--stable-after', '1000'])
    const frozen = all[2]!
    frozen.signal('SIGSTOP')
    // The others down it and, once that has converged, remove it: the woken node never saw `down`.
    await eventually(
      async () => {
        for (const p of all.slice(0, 2)) expect(statusIn(await view(p), frozen.address)?.status ?? 'removed').toBe('removed')
      },
      { timeoutMs: 40_000 },
    )
    frozen.signal('SIGCONT')
    const { code } = await frozen.exited
    expect(code).toBe(1)
    expect(frozen.lines.find((l) => l.msg === 'node stopped')).toMatchObject({ downed: true })
  })

  it('restart on the same port: the old incarnation is downed and removed, the new one is up', async () => {
    // Downing waits a minute here, so only the replacement rule can down the old incarnation in time.
    const all = await cluster(3, ['--stable-after', '60000'])
    const old = all.pop()!
    const port = old.address.split(':')[1]!
    await old.kill()
    const fresh = await NodeProcess.start('node', {
      args: ['--port', port, '--http', '0', '--seed', all[0]!.address, '--stable-after', '60000'],
      env: { SHOAL_SECRET: SECRET },
    })
    procs.push(fresh)
    expect(fresh.uid).not.toBe(old.uid)
    await eventually(
      async () => {
        for (const p of all) {
          const v = await view(p)
          expect(statusIn(v, old.address, fresh.uid)?.status).toBe('up')
          expect(statusIn(v, old.address, old.uid)?.status ?? 'removed').toMatch(/down|removed/)
        }
      },
      { timeoutMs: 30_000 },
    )
  })

  it('SIGTERM: graceful leave, exit 0, removed everywhere and never unreachable', async () => {
    const all = await cluster(3)
    const leaver = all.pop()!
    leaver.signal('SIGTERM')
    expect((await leaver.exited).code).toBe(0)
    await eventually(async () => {
      for (const p of all) expect(statusIn(await view(p), leaver.address)?.status ?? 'removed').toBe('removed')
    })
    for (const p of all) {
      const unreachable = p.lines.filter((l) => l.msg === 'member reachability changed' && String(l.member).includes(`@${leaver.address}#`))
      expect(unreachable).toEqual([])
      expect(p.statusLines(leaver.address, 'down')).toEqual([])
    }
  })

  it('discovery through clusterd: nodes that know only the daemon form one cluster', async () => {
    const daemon = await NodeProcess.start('clusterd', { args: ['--port', '0'], env: { SHOAL_SECRET: SECRET } })
    procs.push(daemon)
    const nodes = await Promise.all([0, 1, 2].map(() => node(['--clusterd', daemon.address])))
    await eventually(
      async () => {
        for (const p of nodes) expect((await view(p)).members.filter((m) => m.status === 'up')).toHaveLength(3)
      },
      { timeoutMs: 30_000 },
    )
  })

  it('a node with the wrong secret is refused and never becomes a member', async () => {
    const all = await cluster(2)
    const intruder = await node(['--seed', all[0]!.address], { SHOAL_SECRET: randomBytes(32).toString('hex') })
    await new Promise((r) => setTimeout(r, 3000))
    for (const p of all) expect(statusIn(await view(p), intruder.address)).toBeUndefined()
    const own = await view(intruder)
    expect(own.members.map((m) => m.node)).toEqual([intruder.address])
    expect(all[0]!.lines.some((l) => l.msg === 'handshake failed' && String(l.reason).includes('secret'))).toBe(true)
  })

  it("--journal sqlite:PATH opens (and creates) the node's event store; an unknown store is refused clearly", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-cli-journal-'))
    try {
      const p = await node(['--journal', `sqlite:${join(dir, 'data', 'node.db')}`])
      expect(existsSync(join(dir, 'data', 'node.db'))).toBe(true)
      p.signal('SIGTERM')
      expect((await p.exited).code).toBe(0)
      const bad = await NodeProcess.start('node', {
        args: ['--port', '0', '--journal', 'mongodb://x'],
        env: { SHOAL_SECRET: SECRET },
        readyWhen: () => false,
        timeout: 30_000,
      }).catch((e: unknown) => e)
      expect(String(bad)).toMatch(/exited \(2\)/) // bad usage, with the accepted forms on stderr
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
