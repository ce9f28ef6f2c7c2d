/**
 * The cluster singleton across real OS processes (the fixture singleton-node.ts hosts singleton
 * "counter"; with --load it calls it in a loop, one call at a time, and logs every outcome as a
 * "call" line; the plugin logs "singleton activated" / "singleton passivated"):
 * - graceful hand-over: SIGTERM the host while two nodes call it densely; not one call fails, calls
 *   are in flight across the hand-over, and the old instance is passivated (after onPassivate)
 *   before the new one is activated;
 * - crash failover: kill -9 the host; a successor starts only the down margin after the down and
 *   serves calls; every call started after the death succeeds, and the at most one failure per
 *   node is the call in flight, failed as ambiguous (NodeUnreachable, not notDelivered);
 * - partition in network namespaces (5 nodes, 3|2, host on the minority side, then on the
 *   majority side): the minority downs itself and exits, the majority serves calls (a fenced host
 *   stops first; a successor starts on the majority), healing lets the restarted nodes rejoin and
 *   reach the same instance, and at no moment do two instances run, checked on the activation log
 *   of every process of both sides. Needs root and iproute2; otherwise skipped, saying why.
 * Every process logs Date.now() of the one machine clock, so their times compare.
 */

import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { eventually, type LogLine, NodeProcess } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { NetnsLab, netnsAvailable } from './support/netns.ts'

const SECRET = randomBytes(32).toString('hex')
const FIXTURE = fileURLToPath(new URL('./fixtures/singleton-node.ts', import.meta.url))
/**
 * Ms between two calls of a loading node (one call at a time). The graceful hand-over takes ~10 ms
 * on loopback, so its loaders call densely to have calls in flight during it.
 */
const LOAD = '20'
const DENSE_LOAD = '2'

/** A fixture process, and when the test saw it exit (an upper bound on when it died). */
interface Node {
  readonly proc: NodeProcess
  exitedAt: number | undefined
}

const nodes: Node[] = []
let lab: NetnsLab | undefined

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.proc.kill()))
  await lab?.destroy()
  lab = undefined
})

/** Starts a fixture process (through `exec`, e.g. inside a network namespace), ready once its management endpoint listens. */
async function start(args: string[], exec: (command: string, args: string[], options: SpawnOptions) => ChildProcess = spawn): Promise<Node> {
  const all = ['--http', '0', ...args]
  const proc = await NodeProcess.start('node', {
    args: all,
    env: { SHOAL_SECRET: SECRET },
    // NodeProcess runs the shoal CLI; the spawner runs the fixture instead, with the same Node flags.
    spawner: (command, _cliArgs, options) => exec(command, ['--conditions=source', '--import', 'tsx', FIXTURE, ...all], options),
  })
  const node: Node = { proc, exitedAt: undefined }
  void proc.exited.then(() => (node.exitedAt = Date.now()))
  nodes.push(node)
  return node
}

// ── reading the logs ──────────────────────────────────────────────────────────────────────────

interface Call {
  readonly ok: boolean
  readonly n?: number
  readonly host?: string
  readonly code?: string
  /** The error says the call never started; false: it may or may not have run (ambiguous). */
  readonly notDelivered?: boolean
  readonly message?: string
  readonly started: number
  readonly ms: number
}

const calls = (n: Node): Call[] => n.proc.lines.filter((l) => l.msg === 'call') as unknown as Call[]
const activations = (n: Node): LogLine[] => n.proc.lines.filter((l) => l.msg === 'singleton activated')
const passivations = (n: Node): LogLine[] => n.proc.lines.filter((l) => l.msg === 'singleton passivated')
const servedBy = (n: Node, host: Node, after = 0): Call[] => calls(n).filter((c) => c.ok && c.host === host.proc.address && c.started > after)

/** One instance's lifetime on one node, [from, to] in ms of the shared clock. */
interface Interval {
  readonly node: string
  readonly instance: string
  readonly from: number
  readonly to: number
  readonly end: 'passivated' | 'exit' | 'running'
}

/**
 * The activation intervals of one process, from its log. Soundness: `from` is the time of the
 * "singleton activated" line, logged synchronously right after the factory spawned the instance
 * and before it can be targeted by any call (the target is set after the line, calls arrive in
 * later turns), so no call is served before `from`. `to` is the time of the matching "singleton
 * passivated" line, logged after `system.stop(instance)` resolved, so the instance ran nothing
 * after it. An activation without a passivation line ends at the exit of the process as the test
 * saw it (`exitedAt`, later than the real death: the interval only grows, so an overlap is never
 * hidden), or is still running (`to` = +∞). (The factory's spawn, and so the actor's constructor,
 * comes just before `from`; the instance serves nothing then.)
 */
function intervals(n: Node): Interval[] {
  const out: Interval[] = []
  const ends = passivations(n)
  for (const a of activations(n)) {
    const instance = String(a.instance)
    const p = ends.find((l) => l.instance === instance)
    if (p) out.push({ node: n.proc.address, instance, from: a.time, to: p.time, end: 'passivated' })
    else if (n.exitedAt !== undefined) out.push({ node: n.proc.address, instance, from: a.time, to: n.exitedAt, end: 'exit' })
    else out.push({ node: n.proc.address, instance, from: a.time, to: Number.POSITIVE_INFINITY, end: 'running' })
  }
  return out
}

/** Asserts that no two activation intervals, over every process given, share a moment (touching ends are fine). */
function expectNoOverlap(all: readonly Node[], t0: number): Interval[] {
  const list = all.flatMap(intervals).sort((a, b) => a.from - b.from)
  const show = (i: Interval): string => `${i.node} ${i.instance} [${((i.from - t0) / 1000).toFixed(3)}, ${((i.to - t0) / 1000).toFixed(3)}] (${i.end})`
  for (let k = 1; k < list.length; k++) {
    const prev = list[k - 1]!
    const cur = list[k]!
    expect(cur.from, `instances overlap:\n${list.map(show).join('\n')}`).toBeGreaterThanOrEqual(prev.to)
  }
  return list
}

/** Every ok call was served while an instance ran on the node that answered (a check of the activation log itself). */
function expectCallsInsideIntervals(all: readonly Node[], list: readonly Interval[]): void {
  for (const n of all) {
    for (const c of calls(n).filter((x) => x.ok)) {
      const served = list.some((i) => i.node === c.host && i.from <= c.started + c.ms && c.started <= i.to)
      expect(served, `call ${JSON.stringify(c)} from ${n.proc.address} answered by ${c.host} outside any of its activations`).toBe(true)
    }
  }
}

interface MembersJson {
  members: { node: string; status: string }[]
}

/** `count` loopback processes seeded on the first (which becomes the oldest, so the host); the others run load. All up everywhere. */
async function loopbackCluster(count: number, load = LOAD): Promise<{ host: Node; loaders: Node[]; all: Node[] }> {
  const host = await start(['--port', '0'])
  const loaders = await Promise.all(Array.from({ length: count - 1 }, () => start(['--port', '0', '--seed', host.proc.address, '--load', load])))
  const all = [host, ...loaders]
  await eventually(
    async () => {
      for (const n of all) expect((await n.proc.get<MembersJson>('/cluster/members')).members.filter((m) => m.status === 'up')).toHaveLength(count)
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  )
  // The first node is the oldest: it hosts, and both loaders reach it.
  await eventually(
    () => {
      expect(activations(host)).toHaveLength(1)
      for (const l of loaders) expect(servedBy(l, host).length).toBeGreaterThanOrEqual(20)
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  )
  for (const l of loaders) expect(activations(l)).toEqual([])
  return { host, loaders, all }
}

/** The one node among `candidates` that activated an instance (after `since`), once there is one. */
async function newHost(candidates: readonly Node[], since: number, timeoutMs: number): Promise<Node> {
  return eventually(
    () => {
      const hosts = candidates.filter((n) => activations(n).some((a) => a.time >= since))
      expect(hosts).toHaveLength(1)
      return hosts[0]!
    },
    { timeoutMs, intervalMs: 100 },
  )
}

const sec = (ms: number): string => (ms / 1000).toFixed(2)

/** The default downMargin of the fixture: max(2 s, stableAfter) + 2 s, stableAfter 3 s by default. */
const MARGIN = 5000

/** When `n` first logged `victim` (this incarnation) down or removed. */
function downSeenBy(n: Node, victim: Node): number | undefined {
  return n.proc.lines.find(
    (l) => l.msg === 'member status changed' && String(l.member).endsWith(`#${victim.proc.uid}`) && (l.status === 'down' || l.status === 'removed'),
  )?.time
}

describe('cluster singleton across processes', () => {
  it('the host gets SIGTERM: hand-over after passivation, not one failed call on any node', async () => {
    const { host, loaders, all } = await loopbackCluster(3, DENSE_LOAD)
    const term = Date.now()
    host.proc.signal('SIGTERM')
    // It left (handing over) and shut down by itself; it was not downed.
    expect(await host.proc.exited).toEqual({ code: 0, signal: null })
    expect(host.proc.lines.some((l) => l.msg === 'leaving the cluster')).toBe(true)
    expect(host.proc.lines.some((l) => l.msg === 'this node was marked down')).toBe(false)
    const successor = await newHost(loaders, term, 30_000)
    // The new instance serves both loaders.
    await eventually(
      () => {
        for (const l of loaders) expect(servedBy(l, successor, term).length).toBeGreaterThanOrEqual(20)
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )
    // Not one call failed, anywhere.
    for (const l of loaders) expect(calls(l).filter((c) => !c.ok)).toEqual([])
    // The old instance ran onPassivate and was passivated before the new one was activated.
    const handingOver = host.proc.lines.find((l) => l.msg === 'counter handing over')
    const passivated = passivations(host)
    const activated = activations(successor)
    expect(handingOver).toBeDefined()
    expect(passivated).toHaveLength(1)
    expect(activated).toHaveLength(1)
    expect(handingOver!.time).toBeLessThanOrEqual(passivated[0]!.time)
    expect(passivated[0]!.time).toBeLessThanOrEqual(activated[0]!.time)
    const list = expectNoOverlap(all, term)
    expectCallsInsideIntervals(all, list)
    // How long calls waited in the proxies during the hand-over.
    const waited = Math.max(
      ...loaders.flatMap((l) =>
        calls(l)
          .filter((c) => c.started + c.ms >= term)
          .map((c) => c.ms),
      ),
    )
    const firstNew = Math.min(...loaders.flatMap((l) => servedBy(l, successor, term).map((c) => c.started + c.ms)))
    const passivating = host.proc.lines.find((l) => l.msg === 'singleton passivating')!.time
    const across = loaders.flatMap((l) => calls(l).filter((c) => c.started <= activated[0]!.time && c.started + c.ms >= passivating))
    // Whether calls were in flight or held between passivating and activation depends on timing (the
    // window is ~10 ms against a call every 2 ms per loader): reported, not asserted; the
    // assertions above hold either way.
    console.log(
      `hand-over: ${across.length} calls across the window ${JSON.stringify(across.map((c) => ({ s: c.started - term, ms: c.ms })))}; SIGTERM → passivated ${sec(passivated[0]!.time - term)} s → activated on ${successor.proc.address} ${sec(activated[0]!.time - term)} s → first call served ${sec(firstNew - term)} s; longest call wait ${waited} ms`,
    )
  })

  it('kill -9 the host: a new instance serves calls; every call started after the kill succeeds', async () => {
    const { host, loaders, all } = await loopbackCluster(3)
    const kill = Date.now()
    await host.proc.kill()
    expect((await host.proc.exited).signal).toBe('SIGKILL')
    const died = host.exitedAt!
    // Failure detection (~1 s) + stableAfter (3 s) + the margin (5 s): generously bounded.
    const successor = await newHost(loaders, kill, 40_000)
    await eventually(
      () => {
        for (const l of loaders) expect(servedBy(l, successor, kill).length).toBeGreaterThanOrEqual(20)
      },
      { timeoutMs: 40_000, intervalMs: 100 },
    )
    // Which calls may fail: only a call already sent to the old host, whose reply never comes: the
    // connection is reset and the call fails with NodeUnreachable, "may or may not have run"
    // (ambiguous, not notDelivered, so the proxy cannot hold it for the next instance). That is the
    // call in flight at the kill, or one started in the ~20-50 ms the killed process takes to die
    // and its sockets to close (measured: failures started 5-40 ms after the signal), so the bound is
    // the exit as the test saw it (`died`, later than the real death) plus a small epsilon for the
    // survivor to read the reset. Each loader has one call in flight at a time: at most one failure
    // per loader. Calls started after that are refused before sending (not delivered: held, then
    // re-sent) or held while no instance is known, and all are served by the successor.
    const EPSILON = 100
    const failures = loaders.map((l) => calls(l).filter((c) => !c.ok))
    for (const failed of failures) {
      expect(failed.length).toBeLessThanOrEqual(1)
      for (const c of failed) {
        expect(c.code).toBe('SHOAL_NODE_UNREACHABLE')
        expect(c.notDelivered).toBe(false) // ambiguous: "may or may not have run"
        expect(c.started).toBeLessThanOrEqual(died + EPSILON)
      }
    }
    for (const l of loaders) expect(calls(l).filter((c) => c.started > died + EPSILON && !c.ok)).toEqual([])
    const list = expectNoOverlap(all, kill)
    expectCallsInsideIntervals(all, list)
    const activated = activations(successor)[0]!
    // The successor may start only `downMargin` (default max(2 s, stableAfter) = 3 s) after it saw
    // the old host downed.
    const downSeen = downSeenBy(successor, host)
    expect(downSeen).toBeDefined()
    expect(activated.time).toBeGreaterThanOrEqual(downSeen!)
    expect(activated.time - downSeen!).toBeGreaterThanOrEqual(MARGIN)
    const firstNew = Math.min(...loaders.flatMap((l) => servedBy(l, successor, kill).map((c) => c.started + c.ms)))
    const waited = Math.max(
      ...loaders.flatMap((l) =>
        calls(l)
          .filter((c) => c.ok && c.started + c.ms >= kill)
          .map((c) => c.ms),
      ),
    )
    console.log(
      `failover: kill -9 → down seen by the successor ${sec(downSeen! - kill)} s → activated on ${successor.proc.address} ${sec(activated.time - kill)} s (${activated.time - downSeen!} ms after the down, margin ${MARGIN} ms) → first call served ${sec(firstNew - kill)} s; longest held call ${waited} ms; died ${died - kill} ms after the kill; failed calls ${JSON.stringify(failures.flat().map((c) => ({ code: c.code, started: c.started - kill, ms: c.ms, message: c.message })))}`,
    )
  })
})

// ── partition in network namespaces ───────────────────────────────────────────────────────────

const available = await netnsAvailable()
const title = available.ok
  ? 'cluster singleton under a partition in network namespaces'
  : `cluster singleton under a partition in network namespaces — skipped: ${available.why}`
if (!available.ok) console.warn(`singleton-process.test.ts: skipping the partition tests: ${available.why}`)

const PORT = 7400
/** Every node of the partition tests calls the singleton, the host too (its calls are local). */
const PARTITION_LOAD = '50'
/**
 * The cluster's stableAfter in the partition tests (and so the singleton's downMargin): the
 * default. (With it, a 3|2 split used to end in split brain about one run in three: the minority's
 * leader decided while a majority member not yet probed still looked reachable. Downing now waits
 * until the members a side counts on have been heard from since the trouble began.)
 */
const STABLE_AFTER = process.env.SHOAL_TEST_STABLE_AFTER ?? '3000'

/** Member i of the lab, in its namespace, seeded on `seed`. */
function startIn(i: number, seed: string | undefined): Promise<Node> {
  const l = lab!
  const args = ['--host', l.address(i), '--port', String(PORT), '--load', PARTITION_LOAD, '--stable-after', STABLE_AFTER, ...(seed ? ['--seed', seed] : [])]
  return start(args, (cmd, a, o) => l.exec(i, cmd, a, o))
}

/** Latest status of every member (`host:port#uid`), from a node's log. */
function statuses(n: Node): Map<string, string> {
  const out = new Map<string, string>()
  for (const l of n.proc.lines) if (l.msg === 'member status changed' && l.cluster === true) out.set(String(l.member).replace(/^[^@]*@/, ''), String(l.status))
  return out
}

const key = (n: Node): string => `${n.proc.address}#${n.proc.uid}`
const downedSelf = (n: Node): LogLine | undefined => n.proc.lines.find((l) => l.msg === 'this node was marked down')

/** When `n` first logged `other` (this incarnation) unreachable. */
function unreachableSeenBy(n: Node, other: Node): number | undefined {
  return n.proc.lines.find(
    (l) => l.msg === 'member reachability changed' && String(l.member).endsWith(`#${other.proc.uid}`) && l.reachability === 'unreachable',
  )?.time
}

/** Waits until every node in `live` sees every one of them up. */
async function allUp(live: readonly Node[]): Promise<void> {
  await eventually(
    () => {
      for (const n of live) {
        const s = statuses(n)
        for (const m of live) expect(s.get(key(m)) ?? (n === m ? 'up' : undefined), `${m.proc.address} as seen by ${n.proc.address}`).toBe('up')
      }
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  )
}

/** The last log lines of a node, relative to `t0`, for a failure message. */
function tail(n: Node, t0: number): string {
  const skip = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'node', 'cluster', 'system'])
  return n.proc.lines
    .filter((l) => l.msg !== 'call')
    .slice(-30)
    .map((l) => `${sec(l.time - t0)} ${l.msg} ${JSON.stringify(Object.fromEntries(Object.entries(l).filter(([k]) => !skip.has(k))))}`)
    .join('\n')
}

/**
 * Five nodes, one per namespace, all calling the singleton; node 0 (the seed, so the oldest) hosts.
 * Split into `majorityIdx` | `minorityIdx`; the minority must down itself and exit, the majority
 * must serve calls (from the same instance if the host is on its side, else from a successor on its
 * side). Then heal and restart the minority nodes: they join and reach the same instance. Finally
 * no two activation intervals overlap, over every process that ever ran, both sides.
 */
async function partitionScenario(majorityIdx: number[], minorityIdx: number[]): Promise<void> {
  lab = await NetnsLab.create(5)
  const seed = `${lab.address(0)}:${PORT}`
  const first = await startIn(0, undefined)
  const all = [first, ...(await Promise.all([1, 2, 3, 4].map((i) => startIn(i, seed))))]
  await allUp(all)
  const host = all[0]!
  await eventually(
    () => {
      expect(activations(host)).toHaveLength(1)
      for (const n of all) expect(servedBy(n, host).length).toBeGreaterThanOrEqual(5)
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  )
  for (const n of all.slice(1)) expect(activations(n)).toEqual([])

  const split = Date.now()
  for (const n of all) expect(calls(n).filter((c) => !c.ok)).toEqual([]) // a healthy cluster so far
  await lab.partition(majorityIdx, minorityIdx)
  const majority = majorityIdx.map((i) => all[i]!)
  const minority = minorityIdx.map((i) => all[i]!)
  const hostOnMajority = majority.includes(host)

  // The minority downs itself and exits (the fixture exits 1 when its system terminates).
  for (const n of minority) {
    const { code } = await Promise.race([
      n.proc.exited,
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`minority node ${n.proc.address} did not stop within 120 s; its last log lines (s after the split):\n${tail(n, split)}`)),
          120_000,
        ),
      ),
    ])
    expect(code).toBe(1)
    expect(downedSelf(n)).toBeDefined()
  }
  const minorityGone = Math.max(...minority.map((n) => n.exitedAt!))

  // The majority serves calls, has downed the minority, and never downed itself.
  const serving = hostOnMajority ? host : await newHost(majority, split, 60_000)
  await eventually(
    () => {
      for (const n of majority) expect(servedBy(n, serving, split).length).toBeGreaterThanOrEqual(10)
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  )
  await eventually(
    () => {
      for (const n of majority) for (const m of minority) expect(statuses(n).get(key(m))).toMatch(/down|removed/)
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  )
  for (const n of majority) {
    expect(downedSelf(n)).toBeUndefined()
    expect(n.proc.child.exitCode).toBeNull()
  }
  const firstServed = Math.min(...majority.flatMap((n) => servedBy(n, serving, split).map((c) => c.started + c.ms)))

  if (hostOnMajority) {
    // One instance all along: nobody else ever activated one, and no call on the majority failed.
    expect(activations(host)).toHaveLength(1)
    expect(passivations(host)).toEqual([])
    for (const n of all.slice(1)) expect(activations(n)).toEqual([])
    for (const n of majority) expect(calls(n).filter((c) => !c.ok)).toEqual([])
  } else {
    // Fencing: the old host stopped its instance (fenced) before its own side marked it down.
    const passivating = host.proc.lines.find((l) => l.msg === 'singleton passivating')
    expect(passivating?.fenced).toBe(true)
    const passivated = passivations(host)
    expect(passivated).toHaveLength(1)
    expect(passivated[0]!.time).toBeLessThanOrEqual(downedSelf(host)!.time)
    // Which majority calls may fail: one sent to the old host before this node saw it unreachable
    // goes into the partition and its reply never comes; it fails once the host is downed (NodeDown,
    // or NodeUnreachable if the connection drops first), "may or may not have run", so the proxy
    // cannot give it to the successor. Each node has one call in flight at a time: at most one.
    // Calls started after the host looked unreachable are held and served by the successor.
    for (const n of majority) {
      const failed = calls(n).filter((c) => !c.ok)
      expect(failed.length, `failed calls of ${n.proc.address}: ${JSON.stringify(failed)}`).toBeLessThanOrEqual(1)
      for (const c of failed) {
        expect(c.code).toMatch(/^SHOAL_NODE_(DOWN|UNREACHABLE)$/)
        expect(c.notDelivered).toBe(false)
        expect(c.started).toBeLessThanOrEqual(unreachableSeenBy(n, host)!)
      }
    }
  }

  // Heal and restart the minority: the restarted (younger) nodes join and reach the same instance.
  await lab.heal()
  const healed = Date.now()
  const restarted = await Promise.all(minorityIdx.map((i) => startIn(i, majority[0]!.proc.address)))
  await allUp([...majority, ...restarted])
  await eventually(
    () => {
      for (const n of restarted) expect(servedBy(n, serving, healed).length).toBeGreaterThanOrEqual(5)
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  )
  for (const n of restarted) expect(activations(n)).toEqual([])
  for (const n of [...majority, ...restarted]) expect(calls(n).filter((c) => !c.ok && c.started >= healed)).toEqual([])

  // At no moment two instances: over the activation log of every process that ever ran, both sides.
  const everyone = [...all, ...restarted]
  const list = expectNoOverlap(everyone, split)
  expectCallsInsideIntervals(everyone, list)

  const failed = majority.map((n) => ({
    node: n.proc.address,
    failed: calls(n)
      .filter((c) => !c.ok)
      .map((c) => ({ code: c.code, started: c.started - split, ms: c.ms })),
  }))
  const shown = list.map((i) => `${i.node} [${sec(i.from - split)}, ${Number.isFinite(i.to) ? sec(i.to - split) : '…'}] (${i.end})`)
  console.log(
    `partition, host on the ${hostOnMajority ? 'majority' : 'minority'} (s after the split): minority exited ${sec(minorityGone - split)}; ` +
      `${hostOnMajority ? 'instance kept' : `successor on ${serving.proc.address}`}; first call served on the majority after the split ${sec(firstServed - split)}; ` +
      `instances: ${shown.join(', ')}; failed majority calls ${JSON.stringify(failed)}; one cluster again ${sec(Date.now() - healed)} s after healing`,
  )
}

describe.skipIf(!available.ok)(title, () => {
  it('the host on the minority side: fenced, the majority starts a successor, never two instances', async () => {
    await partitionScenario([2, 3, 4], [0, 1])
  }, 300_000)

  it('the host on the majority side: the instance stays, the minority never starts one', async () => {
    await partitionScenario([0, 1, 2], [3, 4])
  }, 300_000)
})

// ── a lease against a frozen host ─────────────────────────────────────────────────────────────

/**
 * Three loopback processes sharing an SQLite lease file, all calling the singleton (the host too,
 * through its own proxy, so a woken host would reach its own instance first). The host is frozen
 * with SIGSTOP until a successor serves calls (failure detection, stableAfter, the margin, and the
 * lease's expiry in the store), then woken.
 */
async function frozenHostRun(leaseFile: string | undefined): Promise<{ host: Node; successor: Node; successorAt: number; all: Node[] }> {
  const lease = leaseFile === undefined ? [] : ['--lease', leaseFile]
  const host = await start(['--port', '0', '--load', LOAD, ...lease])
  const loaders = await Promise.all([1, 2].map(() => start(['--port', '0', '--seed', host.proc.address, '--load', LOAD, ...lease])))
  const all = [host, ...loaders]
  await eventually(
    () => {
      expect(activations(host)).toHaveLength(1)
      for (const n of all) expect(servedBy(n, host).length).toBeGreaterThanOrEqual(20)
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  )
  const frozen = Date.now()
  host.proc.signal('SIGSTOP')
  const successor = await newHost(loaders, frozen, 40_000)
  const successorAt = activations(successor).find((a) => a.time >= frozen)!.time
  await eventually(() => expect(servedBy(loaders.find((l) => l !== successor)!, successor, successorAt).length).toBeGreaterThanOrEqual(10), {
    timeoutMs: 30_000,
    intervalMs: 100,
  })
  host.proc.signal('SIGCONT')
  // Woken, it learns it was downed and exits.
  await host.proc.exited
  return { host, successor, successorAt, all }
}

describe('cluster singleton without a lease: the confirmation fence alone', () => {
  it('the host (the first node: it formed the cluster alone) frozen past failover: woken, its instance serves nothing', async () => {
    // A node alone needs no confirmation; before the fix the first node cached that answer after
    // others joined and was never fenced again (found by chaos:virtual for virtual actors).
    const { host, successor, successorAt, all } = await frozenHostRun(undefined)
    for (const n of all) expect(calls(n).filter((c) => c.ok && c.host === host.proc.address && c.started + c.ms > successorAt)).toEqual([])
    expect(successor).not.toBe(host)
  }, 120_000)
})

describe('cluster singleton with a lease (SQLite file shared by the processes)', () => {
  it('a host frozen (SIGSTOP) past failover: its instance serves nothing once woken; the successor served after the lease expired', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-lease-'))
    try {
      const { host, successor, successorAt, all } = await frozenHostRun(join(dir, 'leases.db'))
      // No call anywhere was answered by the old host's instance after the successor activated.
      for (const n of all) expect(calls(n).filter((c) => c.ok && c.host === host.proc.address && c.started + c.ms > successorAt)).toEqual([])
      // The woken instance refused and was stopped: its lease had lapsed, and its confirmations too
      // (whichever guard it checked first; before the fence fix of 3a97876 the first node was never
      // fenced, so only the lease could stop it).
      const refusals = [
        'singleton lease lost: stopping the instance',
        'singleton host not confirmed by a side that stays: refusing calls until members confirm it again',
      ]
      expect(
        host.proc.lines.some((l) => refusals.includes(String(l.msg))),
        JSON.stringify(host.proc.lines.slice(-20).map((l) => l.msg)),
      ).toBe(true)
      expect(successor).not.toBe(host)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
