/**
 * Lifecycle watch across in-process nodes over real TCP: local stop, remote stop, node down,
 * missing actors, unwatch, system.watch, and redelivery of lost system messages.
 */

import {
  AbortedError,
  ActorId,
  type ActorRef,
  ClusterSystem,
  DistributedActor,
  distributed,
  ErrorCode,
  SystemShutDownError,
  type TerminationReason,
  TimeoutError,
} from 'shoal'
import { servicesOf } from 'shoal/internal'
import { eventually, startCluster, type TestNodes } from 'shoal/testkit'
import { afterEach, describe, expect, it } from 'vitest'

class Target extends DistributedActor {
  @distributed async ping(): Promise<string> {
    return 'pong'
  }
}

/** Records every onTerminated it receives. */
class Watcher extends DistributedActor {
  readonly seen: { id: string; reason: TerminationReason }[] = []
  @distributed async watchIt(ref: ActorRef<Target>): Promise<void> {
    this.watch(ref)
  }
  @distributed async unwatchIt(ref: ActorRef<Target>): Promise<void> {
    this.unwatch(ref)
  }
  @distributed async watching(ref: ActorRef<Target>): Promise<boolean> {
    return this.isWatching(ref)
  }
  @distributed async busy(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms))
  }
  @distributed async terminations(): Promise<{ id: string; reason: TerminationReason }[]> {
    return this.seen
  }
  override onTerminated(id: ActorId, reason: TerminationReason): void {
    this.seen.push({ id: id.toString(), reason })
  }
}

let nodes: TestNodes | undefined
const extra: ClusterSystem[] = []
afterEach(async () => {
  await Promise.all(extra.splice(0).map((s) => s.shutdown()))
  await nodes?.shutdown()
  nodes = undefined
})

const settle = (ms = 300): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('lifecycle watch', () => {
  it('fires once for a local stop, and the watcher stops watching', async () => {
    const s = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    extra.push(s)
    const target = s.spawn(Target)
    const watcher = s.spawn(Watcher)
    await watcher.watchIt(target)
    await watcher.watchIt(target) // twice is one watch
    expect(await watcher.watching(target)).toBe(true)
    await s.stop(target)
    await eventually(async () => expect(await watcher.terminations()).toEqual([{ id: target.id.toString(), reason: 'stopped' }]))
    expect(await watcher.watching(target)).toBe(false)
    await settle()
    expect(await watcher.terminations()).toHaveLength(1)
  })

  it('a full mailbox does not lose the notice: onTerminated is a system turn', async () => {
    const s = await ClusterSystem.start({ port: 0, logLevel: 'silent', maxMailbox: 1 })
    extra.push(s)
    const target = s.spawn(Target)
    const watcher = s.spawn(Watcher)
    await watcher.watchIt(target)
    const turn = watcher.busy(300)
    const queued = watcher.busy(0) // fills the mailbox
    await s.stop(target)
    await Promise.all([turn, queued])
    await eventually(async () => expect((await watcher.terminations()).map((t) => t.reason)).toEqual(['stopped']))
  })

  it('fires for a remote stop, for a node down, and at once for missing actors', async () => {
    nodes = await startCluster(3, { cluster: { downing: 'none' } })
    const [a, b, c] = nodes.systems as [ClusterSystem, ClusterSystem, ClusterSystem]
    const watcher = a.spawn(Watcher)
    const onB = b.spawn(Target)
    const onC = c.spawn(Target)
    await watcher.watchIt(a.resolve(Target, onB.id))
    await watcher.watchIt(a.resolve(Target, onC.id))
    const missing = new ActorId(b.node, '/user/Nobody-1', 7)
    await watcher.watchIt(a.resolve(Target, missing))
    await eventually(async () => expect(await watcher.terminations()).toEqual([{ id: missing.toString(), reason: 'not-found' }]))
    await b.stop(onB)
    await eventually(async () => expect((await watcher.terminations()).map((t) => t.reason)).toEqual(['not-found', 'stopped']))
    a.cluster.down(c.node)
    await eventually(async () => expect(await watcher.terminations()).toContainEqual({ id: onC.id.toString(), reason: 'node-down' }))
    await settle()
    expect(await watcher.terminations()).toHaveLength(3)
    // A node known down: a new watch fires at once.
    const late = a.spawn(Watcher)
    await late.watchIt(a.resolve(Target, new ActorId(c.node, '/user/Target-9', 3)))
    await eventually(async () => expect((await late.terminations()).map((t) => t.reason)).toEqual(['node-down']))
  })

  it('does not fire after unwatch (local and remote)', async () => {
    nodes = await startCluster(2)
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const watcher = a.spawn(Watcher)
    const local = a.spawn(Target)
    const remote = b.spawn(Target)
    const control = b.spawn(Target)
    await watcher.watchIt(local)
    await watcher.watchIt(a.resolve(Target, remote.id))
    await watcher.watchIt(a.resolve(Target, control.id))
    await watcher.unwatchIt(local)
    await watcher.unwatchIt(a.resolve(Target, remote.id))
    await a.stop(local)
    await b.stop(remote)
    await b.stop(control)
    // The control watch proves notices flow; the unwatched ones must not have followed it.
    await eventually(async () => expect((await watcher.terminations()).map((t) => t.id)).toContain(control.id.toString()))
    await settle()
    expect((await watcher.terminations()).map((t) => t.id)).toEqual([control.id.toString()])
  })

  it("an aborted system.watch rejects with Shoal's errors: TimeoutError for AbortSignal.timeout, AbortedError otherwise, the reason as cause", async () => {
    const s = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    try {
      const target = s.spawn(Target)
      const timedOut = (await s.watch(target, { signal: AbortSignal.timeout(20) }).catch((e: unknown) => e)) as TimeoutError
      expect(timedOut).toBeInstanceOf(TimeoutError)
      expect(timedOut.code).toBe(ErrorCode.Timeout)
      expect(timedOut.message).toContain('timed out')
      expect((timedOut.cause as Error).name).toBe('TimeoutError')
      expect(timedOut.cause).not.toBeInstanceOf(TimeoutError)
      const abort = new AbortController()
      const pending = s.watch(target, { signal: abort.signal })
      abort.abort()
      const aborted = (await pending.catch((e: unknown) => e)) as AbortedError
      expect(aborted).toBeInstanceOf(AbortedError)
      expect(aborted.code).toBe('SHOAL_ABORTED')
      expect((aborted.cause as Error).name).toBe('AbortError')
      // Already aborted: the same, at once.
      await expect(s.watch(target, { signal: AbortSignal.abort('gone') })).rejects.toThrow(/aborted \(gone\)/)
      // A Shoal error as reason is passed on as is.
      const mine = new SystemShutDownError('mine')
      await expect(s.watch(target, { signal: AbortSignal.abort(mine) })).rejects.toBe(mine)
      // Each aborted watch was removed: the actor's stop is reported to a new watch only.
      const still = s.watch(target)
      await s.stop(target)
      expect((await still).reason).toBe('stopped')
    } finally {
      await s.shutdown()
    }
  })

  it('system.watch resolves for remote stops and node down; abort rejects', async () => {
    nodes = await startCluster(3, { cluster: { downing: 'none' } })
    const [a, b, c] = nodes.systems as [ClusterSystem, ClusterSystem, ClusterSystem]
    const onB = b.spawn(Target)
    const onC = c.spawn(Target)
    const stopped = a.watch(a.resolve(Target, onB.id))
    const down = a.watch(a.resolve(Target, onC.id))
    const abort = new AbortController()
    const aborted = a.watch(a.resolve(Target, onC.id), { signal: abort.signal })
    abort.abort(new Error('no longer interested'))
    await expect(aborted).rejects.toThrow('no longer interested')
    await expect(aborted).rejects.toBeInstanceOf(AbortedError)
    await b.stop(onB)
    expect(await stopped).toMatchObject({ reason: 'stopped' })
    expect((await stopped).id.equals(onB.id)).toBe(true)
    b.cluster.down(c.node)
    expect(await down).toMatchObject({ reason: 'node-down' })
    expect((await a.watch(new ActorId(a.node, '/user/None-1', 1))).reason).toBe('not-found')
  })

  it('a graceful shutdown of the watched node fires the watch; pending system watches reject at shutdown', async () => {
    const a = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    const b = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    extra.push(a)
    const onB = b.spawn(Target)
    const ref = a.resolve(Target, onB.id)
    expect(await ref.ping()).toBe('pong') // associate
    const watched = a.watch(ref)
    await b.shutdown()
    expect((await watched).reason).toMatch(/node-down|stopped/)
    const c = await ClusterSystem.start({ port: 0, logLevel: 'silent' })
    extra.push(c)
    const pending = a.watch(a.resolve(Target, c.spawn(Target).id))
    await a.shutdown()
    await expect(pending).rejects.toBeInstanceOf(SystemShutDownError)
  })

  it('a lost terminated notice is redelivered', async () => {
    nodes = await startCluster(2, { watch: { redeliverAfter: 200 } })
    const [a, b] = nodes.systems as [ClusterSystem, ClusterSystem]
    const target = b.spawn(Target)
    const watched = a.watch(a.resolve(Target, target.id))
    // Wait until b knows of the watch, then lose b's next two watch frames on the floor.
    await settle(500)
    const services = servicesOf(b)
    const send = services.sendControl.bind(services)
    let dropped = 0
    services.sendControl = (to, kind, body) => {
      if (kind === 5 && dropped < 2) {
        dropped++
        return
      }
      send(to, kind, body)
    }
    await b.stop(target)
    expect((await watched).reason).toBe('stopped')
    expect(dropped).toBe(2)
  })
})
