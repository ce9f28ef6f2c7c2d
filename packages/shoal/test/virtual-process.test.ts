/**
 * Virtual actors across real processes on loopback: a graceful leave (SIGTERM) and a kill -9 of an
 * owner under load. After a leave, every id is served again with no failed call; after a kill, its
 * ids are served again only after the node was downed, removed and the margin passed, and at no
 * moment is one id active in two live processes.
 */
import { type SpawnOptions, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually, NodeProcess } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { NetnsLab, netnsAvailable } from './support/netns.ts'
import { checkVirtualRun } from './support/virtualChecker.ts'

const SECRET = randomBytes(32).toString('hex')
const netns = await netnsAvailable()
if (!netns.ok) console.warn(`virtual-process.test.ts: skipping the partition test: ${netns.why}`)
const FIXTURE = fileURLToPath(new URL('./fixtures/virtual-node.ts', import.meta.url))
const IDS = 24
const procs: NodeProcess[] = []
const exitedAt = new Map<NodeProcess, number>()

let lab: NetnsLab | undefined
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.kill()))
  await lab?.destroy()
  lab = undefined
})

async function start(args: string[], exec: (command: string, args: string[], options: SpawnOptions) => ReturnType<typeof spawn> = spawn): Promise<NodeProcess> {
  const all = ['--http', '0', '--port', '0', '--load', '20', '--ids', String(IDS), ...args]
  const proc = await NodeProcess.start('node', {
    args: all,
    env: { SHOAL_SECRET: SECRET },
    // NodeProcess runs the shoal CLI; the spawner runs the fixture instead, with the same Node flags.
    spawner: (command, _cli, options) => spawnFixture(command, all, options, exec as typeof spawn),
  })
  void proc.exited.then(() => exitedAt.set(proc, Date.now()))
  procs.push(proc)
  return proc
}

function spawnFixture(command: string, args: string[], options: SpawnOptions, exec: typeof spawn = spawn) {
  return exec(command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...args], options)
}

type Call = { ok: boolean; id: string; node?: string; code?: string; started: number; ms: number }
const calls = (p: NodeProcess): Call[] => p.lines.filter((l) => l.msg === 'call') as unknown as Call[]

/** What the chaos checker finds wrong over the given processes: an id active twice, a call served outside its activation. */
function overlaps(all: readonly NodeProcess[], frozen = new Map<NodeProcess, [number, number]>()): readonly string[] {
  const logs = all.map((p) => ({ name: p.address, lines: p.lines, exitedAt: exitedAt.get(p), frozen: frozen.has(p) ? [frozen.get(p)!] : [] }))
  return checkVirtualRun(logs, Date.now()).violations
}

async function cluster(args: string[] = []): Promise<NodeProcess[]> {
  const first = await start(args)
  const rest = await Promise.all([1, 2].map(() => start([...args, '--seed', first.address])))
  const all = [first, ...rest]
  // Every node has served every id at least once, and the ids have spread over all three nodes.
  await eventually(
    () => {
      for (const p of all)
        expect(
          new Set(
            calls(p)
              .filter((c) => c.ok)
              .map((c) => c.id),
          ).size,
        ).toBe(IDS)
      expect(new Set(latestOwner(all[0]!).values())).toEqual(new Set(all.map((p) => p.address)))
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  )
  return all
}

/**
 * Waits until every one of `stayers` has had each id of `owned` served by a node other than
 * `victim` in a call started after `since`; returns when the first of those calls was answered.
 */
async function servedElsewhere(
  stayers: readonly NodeProcess[],
  victim: NodeProcess,
  owned: ReadonlySet<string>,
  since: number,
  timeoutMs: number,
): Promise<number> {
  await eventually(
    () => {
      for (const p of stayers) {
        const served = new Set(
          calls(p)
            .filter((c) => c.ok && c.started > since && c.node !== victim.address)
            .map((c) => c.id),
        )
        for (const id of owned) expect(served.has(id), id).toBe(true)
      }
    },
    { timeoutMs, intervalMs: 100 },
  )
  return Math.min(
    ...stayers.flatMap((p) =>
      calls(p)
        .filter((c) => c.ok && c.started > since && owned.has(c.id))
        .map((c) => c.started + c.ms),
    ),
  )
}

/** Where each id last ran, as `p` saw in its calls. */
function latestOwner(p: NodeProcess): Map<string, string> {
  const out = new Map<string, string>()
  for (const c of calls(p)) if (c.ok && c.node) out.set(c.id, c.node)
  return out
}

describe('virtual actors across processes', () => {
  it('SIGTERM: the leaver hands its ids over; not one call fails anywhere; no id is active twice', async () => {
    const all = await cluster()
    const leaver = all[2]!
    const term = Date.now()
    leaver.signal('SIGTERM')
    expect((await leaver.exited).code).toBe(0)
    const stayers = all.slice(0, 2)
    await eventually(
      () => {
        for (const p of stayers)
          expect(
            new Set(
              calls(p)
                .filter((c) => c.ok && c.started > term + 500)
                .map((c) => c.id),
            ).size,
          ).toBe(IDS)
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )
    // The nodes that stay never failed a call; the leaver's own calls may fail once its system stops.
    const show = (c: Call) => ({ id: c.id, code: c.code, message: (c as { message?: string }).message, at: c.started - term, ms: c.ms })
    for (const p of stayers)
      expect(
        calls(p)
          .filter((c) => !c.ok)
          .map(show),
      ).toEqual([])
    expect(
      calls(leaver)
        .filter((c) => !c.ok && c.started < term)
        .map(show),
    ).toEqual([])
    expect(overlaps(all)).toEqual([])
  }, 120_000)

  it('kill -9 of an owner: its ids are served again after down, removal and the margin; none is active twice', async () => {
    const all = await cluster()
    const victim = all[2]!
    const owned = new Set([...latestOwner(all[0]!)].filter(([, node]) => node === victim.address).map(([id]) => id))
    expect(owned.size).toBeGreaterThan(0)
    const kill = Date.now()
    await victim.kill()
    const stayers = all.slice(0, 2)
    const back = await servedElsewhere(stayers, victim, owned, kill, 60_000)
    // Detection (1-2 s) + stableAfter (3 s) + removal + margin (5 s): not before ~8 s, and generously bounded.
    expect(back - kill).toBeGreaterThan(5000)
    expect(back - kill).toBeLessThan(40_000)
    expect(overlaps(all)).toEqual([])
    console.log(`kill -9: ${owned.size} ids of the killed node served again after ${((back - kill) / 1000).toFixed(1)} s`)
  }, 120_000)

  it('with a lease (an SQLite file shared by the processes), an owner frozen past it: its ids move only once its lease expired, and woken it serves nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-virtual-lease-'))
    const ttl = 15_000
    try {
      const all = await cluster(['--lease', join(dir, 'leases.db'), '--lease-ttl', String(ttl)])
      const victim = all[2]!
      const owned = new Set([...latestOwner(all[0]!)].filter(([, node]) => node === victim.address).map(([id]) => id))
      expect(owned.size).toBeGreaterThan(0)
      const frozenAt = Date.now()
      victim.signal('SIGSTOP')
      const stayers = all.slice(0, 2)
      const back = await servedElsewhere(stayers, victim, owned, frozenAt, 90_000)
      // Renewed every ttl/4, the frozen owner's lease expires in the store 0.75-1 ttl after the freeze;
      // detection, removal and the margin alone take ~9 s, less than that.
      expect(back - frozenAt).toBeGreaterThanOrEqual(0.75 * ttl)
      const wokenAt = Date.now()
      victim.signal('SIGCONT')
      // Woken, it learns it was downed and exits 1, having served nothing.
      expect((await victim.exited).code).toBe(1)
      expect(calls(victim).filter((c) => c.ok && c.node === victim.address && c.started + c.ms > frozenAt)).toEqual([])
      for (const p of stayers) expect(calls(p).filter((c) => c.ok && c.node === victim.address && c.started > frozenAt)).toEqual([])
      expect(overlaps(all, new Map([[victim, [frozenAt, wokenAt]]]))).toEqual([])
      console.log(`lease: ${owned.size} ids of the frozen owner served again after ${((back - frozenAt) / 1000).toFixed(1)} s (ttl ${ttl / 1000} s)`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)

  it('without a lease, the first node (it formed the cluster alone) frozen past detection and the margin: woken, it serves nothing', async () => {
    // Found by chaos:virtual: a node alone is confirmed for ever (no member can down it), and the
    // first node cached that answer after others joined, so it was never fenced again; woken from a
    // freeze, its own next call was served by its stale activation before it learned it was down.
    const all = await cluster()
    const victim = all[0]!
    const owned = new Set([...latestOwner(all[1]!)].filter(([, node]) => node === victim.address).map(([id]) => id))
    expect(owned.size).toBeGreaterThan(0)
    const frozenAt = Date.now()
    victim.signal('SIGSTOP')
    const stayers = all.slice(1)
    await servedElsewhere(stayers, victim, owned, frozenAt, 60_000)
    const wokenAt = Date.now()
    victim.signal('SIGCONT')
    expect((await victim.exited).code).toBe(1)
    expect(calls(victim).filter((c) => c.ok && c.node === victim.address && c.started + c.ms > frozenAt)).toEqual([])
    for (const p of stayers) expect(calls(p).filter((c) => c.ok && c.node === victim.address && c.started > frozenAt)).toEqual([])
    expect(overlaps(all, new Map([[victim, [frozenAt, wokenAt]]]))).toEqual([])
  }, 120_000)

  it.skipIf(!netns.ok)(
    `a partition 3|2 with ids owned on both sides: the minority stops serving and exits 1, its ids move, none is active twice${netns.ok ? '' : ` — skipped: ${netns.why}`}`,
    async () => {
      const l = (lab = await NetnsLab.create(5))
      const inNs = (i: number) => (command: string, args: string[], options: SpawnOptions) => l.exec(i, command, args, options)
      const at = (i: number) => ['--host', l.address(i), '--port', '7500']
      const first = await start(at(0), inNs(0) as unknown as typeof spawn)
      const rest = await Promise.all([1, 2, 3, 4].map((i) => start([...at(i), '--seed', `${l.address(0)}:7500`], inNs(i) as unknown as typeof spawn)))
      const all = [first, ...rest]
      await eventually(
        () => {
          for (const p of all)
            expect(
              new Set(
                calls(p)
                  .filter((c) => c.ok)
                  .map((c) => c.id),
              ).size,
            ).toBe(IDS)
          expect(new Set(latestOwner(all[0]!).values()).size).toBe(5)
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      )
      const split = Date.now()
      await l.partition([0, 1, 2], [3, 4])
      const minority = [all[3]!, all[4]!]
      for (const p of minority) expect((await p.exited).code).toBe(1)
      const majority = all.slice(0, 3)
      // Every id is served on the majority again.
      await eventually(
        () => {
          for (const p of majority)
            expect(
              new Set(
                calls(p)
                  .filter((c) => c.ok && c.started > split)
                  .map((c) => c.id),
              ).size,
            ).toBe(IDS)
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      )
      expect(overlaps(all)).toEqual([])
    },
    180_000,
  )
})
