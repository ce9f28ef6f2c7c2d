/**
 * A network partition between real `shoal node` processes, each in its own Linux network
 * namespace: split 3|2 under keep-majority. The two must down themselves (and exit 1), the three
 * must stay up and never down themselves; after healing, restarted nodes rejoin one cluster.
 * Needs root and iproute2; otherwise skipped, saying why.
 */

import { randomBytes } from 'node:crypto'
import { eventually, type LogLine, NodeProcess } from 'shoal/testkit'
import { afterAll, describe, expect, it } from 'vitest'
import { NetnsLab, netnsAvailable } from './support/netns.ts'

const available = await netnsAvailable()
const title = available.ok ? 'partition in network namespaces' : `partition in network namespaces — skipped: ${available.why}`
if (!available.ok) console.warn(`cluster-partition.test.ts: skipping: ${available.why}`)

const SECRET = randomBytes(32).toString('hex')
const PORT = 7400
let lab: NetnsLab | undefined
const procs: NodeProcess[] = []

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()))
  await lab?.destroy()
})

function start(i: number, seed: string | undefined): Promise<NodeProcess> {
  const l = lab!
  const args = ['--host', l.address(i), '--port', String(PORT), ...(seed ? ['--seed', seed] : [])]
  return NodeProcess.start('node', { args, env: { SHOAL_SECRET: SECRET }, spawner: (cmd, a, o) => l.exec(i, cmd, a, o) }).then((p) => {
    procs.push(p)
    return p
  })
}

/** Latest status of every member, by `host:port#uid`, from a node's log. */
function statuses(p: NodeProcess): Map<string, string> {
  const out = new Map<string, string>()
  for (const l of p.lines) if (l.msg === 'member status changed' && l.cluster === true) out.set(String(l.member).replace(/^[^@]*@/, ''), String(l.status))
  return out
}

const upCount = (p: NodeProcess): number => [...statuses(p).values()].filter((s) => s === 'up').length
const downedSelf = (l: LogLine): boolean => l.msg === 'this node was marked down'

describe.skipIf(!available.ok)(title, () => {
  it('3|2 under keep-majority: the two down themselves, the three stay; after healing one cluster again', async () => {
    lab = await NetnsLab.create(5)
    const seed = `${lab.address(0)}:${PORT}`
    const nodes = [await start(0, undefined)]
    nodes.push(...(await Promise.all([1, 2, 3, 4].map((i) => start(i, seed)))))
    await eventually(
      () => {
        for (const p of nodes) expect(upCount(p)).toBe(5)
      },
      { timeoutMs: 60_000 },
    )

    const split = Date.now()
    await lab.partition([0, 1, 2], [3, 4])
    const minority = nodes.slice(3)
    const majority = nodes.slice(0, 3)
    for (const p of minority) {
      const tail = (): string =>
        p.lines
          .slice(-25)
          .map((l) => `${((l.time - split) / 1000).toFixed(2)} ${l.msg} ${String(l.member ?? '')} ${String(l.status ?? l.reachability ?? '')}`)
          .join('\n')
      const { code } = await Promise.race([
        p.exited,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`a minority node did not stop within 120 s; its last log lines:\n${tail()}`)), 120_000),
        ),
      ])
      expect(code).toBe(1)
      expect(p.lines.some(downedSelf)).toBe(true)
    }
    const minorityDownAfter = (Date.now() - split) / 1000
    await eventually(
      () => {
        for (const p of majority) {
          for (const m of minority) expect(statuses(p).get(`${m.address}#${m.uid}`)).toMatch(/down|removed/)
        }
      },
      { timeoutMs: 60_000 },
    )
    for (const p of majority) {
      expect(p.lines.some(downedSelf)).toBe(false)
      expect(p.child.exitCode).toBeNull()
    }

    await lab.heal()
    const healed = Date.now()
    const restarted = await Promise.all([3, 4].map((i) => start(i, seed)))
    await eventually(
      () => {
        for (const p of [...majority, ...restarted]) {
          const s = statuses(p)
          for (const q of [...majority, ...restarted]) expect(s.get(`${q.address}#${q.uid}`) ?? (p === q ? 'up' : undefined)).toBe('up')
        }
      },
      { timeoutMs: 60_000 },
    )
    console.log(
      `partition: minority stopped ${minorityDownAfter.toFixed(1)} s after the split; one cluster again ${((Date.now() - healed) / 1000).toFixed(1)} s after healing`,
    )
  }, 300_000)
})
