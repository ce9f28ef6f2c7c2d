/**
 * Entry point of every benchmark child process. argv[2] is a JSON ChildConfig; results go back to
 * the runner over IPC. Peers are imported on demand so each process loads only the one it measures.
 * @module
 */
import { batchLoop, closedLoop, type LoadResult, makePayload, type OneWayResult, oneWayRun } from './harness.ts'
import type { ChildConfig, ChildMessage, LocalPeer, LocalPeerName, LocalResult, RemotePeer, RemotePeerName, RemoteResult } from './protocol.ts'

const remotePeers: Record<RemotePeerName, () => Promise<RemotePeer>> = {
  'raw-immediate': async () => (await import('./raw.ts')).rawPeer('immediate'),
  'raw-microtask': async () => (await import('./raw.ts')).rawPeer('microtask'),
  shoal: async () => (await import('./shoal.ts')).remote,
  'shoal-traced': async () => (await import('./shoal.ts')).tracedRemote,
  'shoal-otel': async () => (await import('./shoal.ts')).otelRemote,
  'shoal-dashboard': async () => (await import('./shoal.ts')).dashboardRemote,
  moleculer: async () => (await import('./moleculer.ts')).remote,
  grpc: async () => (await import('./grpc.ts')).remote,
}

const localPeers: Record<LocalPeerName, () => Promise<LocalPeer>> = {
  shoal: async () => (await import('./shoal.ts')).local,
  direct: async () => (await import('./direct.ts')).local,
  nact: async () => (await import('./nact.ts')).local,
}

function post(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error('bench child started without an IPC channel'))
    process.send(message, (error: Error | null) => (error ? reject(error) : resolve()))
  })
}

function progress(text: string): void {
  void post({ kind: 'progress', text }).catch(() => undefined)
}

async function runServer(peer: RemotePeerName): Promise<void> {
  const server = await (await remotePeers[peer]()).serve()
  let closing = false
  const close = (): void => {
    if (closing) return
    closing = true
    // A server that cannot close promptly must still go: the runner waits for this exit.
    const force = setTimeout(() => process.exit(0), 3000)
    force.unref()
    void server.close().finally(() => process.exit(0))
  }
  process.on('SIGTERM', close)
  process.removeAllListeners('disconnect')
  process.on('disconnect', close)
  await post({ kind: 'ready', info: server.info })
}

async function runClient(config: Extract<ChildConfig, { role: 'client' }>): Promise<RemoteResult> {
  const client = await (await remotePeers[config.peer]()).connect(config.info)
  try {
    const arg = makePayload()
    const calls: LoadResult[] = []
    for (const n of config.inFlight) {
      progress(`${n} in flight`)
      calls.push(await closedLoop(client.call, arg, n, config.timing))
    }
    let oneWay: OneWayResult | undefined
    if (config.oneWay && client.oneWay) {
      progress(`one-way, ${config.oneWay.total.toLocaleString('en-US')} messages`)
      oneWay = await oneWayRun(client.oneWay, arg, config.oneWay.total, config.oneWay.window)
    }
    return { calls, oneWay, notes: client.notes?.() ?? [] }
  } finally {
    await client.close()
  }
}

async function runLocal(config: Extract<ChildConfig, { role: 'local' }>): Promise<LocalResult> {
  const target = await (await localPeers[config.peer]()).open()
  try {
    const result = await batchLoop(target.call, makePayload(), config.batch, config.timing)
    return { ...result, notes: target.notes?.() ?? [] }
  } finally {
    await target.close()
  }
}

async function runMemory(actors: number): Promise<unknown> {
  const { measureMemory } = await import('./memory.ts')
  return measureMemory(actors)
}

async function main(config: ChildConfig): Promise<void> {
  if (config.role === 'server') return runServer(config.peer)
  const result = config.role === 'client' ? await runClient(config) : config.role === 'local' ? await runLocal(config) : await runMemory(config.actors)
  await post({ kind: 'result', result })
  process.exit(0)
}

// If the runner goes away, so does this process: no orphan keeps a port or a core busy.
process.on('disconnect', () => process.exit(0))
main(JSON.parse(process.argv[2] ?? '{}') as ChildConfig).catch(async (error: unknown) => {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
  await post({ kind: 'error', message }).catch(() => undefined)
  process.exit(1)
})
