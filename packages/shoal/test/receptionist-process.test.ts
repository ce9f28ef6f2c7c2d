/**
 * The receptionist and lifecycle watch across real OS processes on loopback: four nodes (the
 * fixture reception-node.ts) each check in a Fish under one key and watch every other Fish, from
 * an actor and with system.watch. Kill -9 one: every survivor drops its entry and both watches
 * fire once with 'node-down'. Stop one Fish gracefully: every other node drops its entry and both
 * watches fire once with 'stopped', while its node stays up.
 */

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { eventually, NodeProcess } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

const SECRET = randomBytes(32).toString('hex')
const FIXTURE = fileURLToPath(new URL('./fixtures/reception-node.ts', import.meta.url))
const procs: NodeProcess[] = []

afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()))
})

/** A fixture process and the id of its Fish. */
interface Node {
  readonly proc: NodeProcess
  readonly fish: string
}

interface Fired {
  via: string
  target: string
  reason: string
}

interface ReceptionistJson {
  keys: { key: string; actors: string[] }[]
}

interface MembersJson {
  members: { node: string; status: string }[]
}

async function start(count: number, extra: string[] = []): Promise<Node> {
  const args = ['--port', '0', '--http', '0', '--expect', String(count), ...extra]
  // NodeProcess runs the shoal CLI; the spawner runs the fixture instead, with the same Node flags.
  const proc = await NodeProcess.start('node', {
    args,
    env: { SHOAL_SECRET: SECRET },
    spawner: (command, _cliArgs, options) => spawn(command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...args], options),
  })
  procs.push(proc)
  const line = await proc.waitForLine((l) => l.msg === 'fish checked in')
  return { proc, fish: String(line.fish) }
}

/**
 * `count` fixture processes seeded on the first, all up everywhere, each watching the other Fish.
 * (All up matters: with keep-majority only up members count, so a node killed while the others
 * are still joining may take them down with it.)
 */
async function cluster(count: number): Promise<Node[]> {
  const first = await start(count)
  const rest = await Promise.all(Array.from({ length: count - 1 }, () => start(count, ['--seed', first.proc.address])))
  const all = [first, ...rest]
  await eventually(
    async () => {
      for (const n of all) expect((await n.proc.get<MembersJson>('/cluster/members')).members.filter((m) => m.status === 'up')).toHaveLength(count)
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  )
  const fish = all.map((n) => n.fish).sort()
  expect(new Set(fish).size).toBe(count)
  for (const n of all) {
    const line = await n.proc.waitForLine((l) => l.msg === 'watching', 40_000)
    expect(line.targets).toEqual(fish.filter((f) => f !== n.fish))
    expect(await listed(n)).toEqual(fish)
  }
  return all
}

/** The Fish listed under "fish" in a node's GET /receptionist. */
async function listed(n: Node): Promise<string[]> {
  const { keys } = await n.proc.get<ReceptionistJson>('/receptionist')
  return keys.find((k) => k.key === 'fish')?.actors ?? []
}

/** Every termination a node's watchers were told of, in the order logged. */
function fired(n: Node): Fired[] {
  return n.proc.lines.filter((l) => l.msg === 'watch fired').map((l) => ({ via: String(l.via), target: String(l.target), reason: String(l.reason) }))
}

const sortFired = (f: Fired[]): Fired[] => [...f].sort((a, b) => `${a.via} ${a.target}`.localeCompare(`${b.via} ${b.target}`))
const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('receptionist and lifecycle watch across processes', () => {
  it('kill -9 a node: watchers on the others fire once with node-down and its registration disappears', async () => {
    const all = await cluster(4)
    const victim = all[2]!
    const survivors = all.filter((n) => n !== victim)
    // Nothing has fired while all four are alive.
    for (const n of all) expect(fired(n)).toEqual([])

    await victim.proc.kill()
    expect((await victim.proc.exited).signal).toBe('SIGKILL')

    const remaining = survivors.map((n) => n.fish).sort()
    const expected = sortFired([
      { via: 'actor', target: victim.fish, reason: 'node-down' },
      { via: 'system', target: victim.fish, reason: 'node-down' },
    ])
    await eventually(
      async () => {
        for (const n of survivors) {
          expect(n.proc.child.exitCode, `survivor ${n.proc.address} exited`).toBeNull()
          expect(await listed(n)).toEqual(remaining)
          expect(sortFired(fired(n))).toEqual(expected)
        }
      },
      { timeoutMs: 40_000, intervalMs: 200 },
    )
    // Give a duplicate or a spurious termination time to show up: there must be none.
    await settle(2000)
    for (const n of survivors) {
      expect(sortFired(fired(n))).toEqual(expected)
      expect(await listed(n)).toEqual(remaining)
      // The listing reported the removal too.
      const removed = n.proc.lines.filter((l) => l.msg === 'fish listing').flatMap((l) => l.removed as string[])
      expect(removed).toEqual([victim.fish])
    }
  })

  it('a Fish stopped gracefully: the others see stopped once and its entry removed; its node stays up', async () => {
    const all = await cluster(4)
    const stopper = all[1]!
    const others = all.filter((n) => n !== stopper)
    stopper.proc.signal('SIGUSR2')
    await stopper.proc.waitForLine((l) => l.msg === 'fish stopped')

    const remaining = others.map((n) => n.fish).sort()
    const expected = sortFired([
      { via: 'actor', target: stopper.fish, reason: 'stopped' },
      { via: 'system', target: stopper.fish, reason: 'stopped' },
    ])
    await eventually(
      async () => {
        for (const n of others) {
          expect(n.proc.child.exitCode, `node ${n.proc.address} exited`).toBeNull()
          expect(await listed(n)).toEqual(remaining)
          expect(sortFired(fired(n))).toEqual(expected)
        }
        // Checked out on its own node as well.
        expect(await listed(stopper)).toEqual(remaining)
      },
      { timeoutMs: 40_000, intervalMs: 200 },
    )
    await settle(2000)
    for (const n of others) expect(sortFired(fired(n))).toEqual(expected)
    // The stopper's own watchers: its Fish's watches ended with it, its system watches still wait.
    expect(fired(stopper)).toEqual([])
    expect(await listed(stopper)).toEqual(remaining)
    // Every node, the stopper included, is still running and sees all four up.
    for (const n of all) {
      expect(n.proc.child.exitCode).toBeNull()
      const { members } = await n.proc.get<MembersJson>('/cluster/members')
      expect(members.filter((m) => m.status === 'up')).toHaveLength(4)
    }
  })
})
