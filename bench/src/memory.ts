/**
 * Memory of Shoal, run in its own child process with --expose-gc: RSS of an idle node, and heap
 * bytes per idle actor. Shoal is imported only after the baseline is taken, so the baseline is
 * Node plus the TypeScript loader and nothing of Shoal.
 * @module
 */
import type { MemoryResult } from './protocol.ts'

/** Full collections with pauses between, so finalizers run and the heap stops moving. */
async function settle(): Promise<void> {
  const gc = globalThis.gc
  if (!gc) throw new Error('memory: run with --expose-gc')
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise<void>((resolve) => setTimeout(resolve, 50))
  }
}

export async function measureMemory(actors: number): Promise<MemoryResult> {
  await settle()
  const baselineRssBytes = process.memoryUsage().rss
  const { ClusterSystem, DistributedActor, distributed } = await import('shoal')

  class Tiny extends DistributedActor {
    @distributed async ping(): Promise<number> {
      return 1
    }
  }

  const system = await ClusterSystem.start({ name: 'bench-memory', host: '127.0.0.1', port: 0, logLevel: 'error' })
  try {
    await settle()
    const idleRssBytes = process.memoryUsage().rss
    // One spawn first, so per-class setup (metadata, ref class) is not charged to the measured actors.
    system.spawn(Tiny)
    await settle()
    const heapBefore = process.memoryUsage().heapUsed
    for (let i = 0; i < actors; i++) system.spawn(Tiny)
    await settle()
    const heapAfter = process.memoryUsage().heapUsed
    if (system.actorCount !== actors + 1) throw new Error(`memory: expected ${actors + 1} actors, found ${system.actorCount}`)
    return { baselineRssBytes, idleRssBytes, actors, heapPerActorBytes: (heapAfter - heapBefore) / actors }
  } finally {
    await system.shutdown()
  }
}
