/**
 * Where the client's promoted garbage comes from: objects that survive young-generation
 * collections (scavenges), are copied to the old generation, and die there. On this machine they
 * make most of the caller's GC time (see bench/notes/profile-2026-12-06.md).
 *
 * Runs a server of the peer in a child (profile/node.ts) and the client in this process, keeps
 * `--in-flight` calls going, and after the warm-up samples allocations with the inspector's
 * sampling heap profiler set to keep objects collected by major GCs but drop those collected by
 * scavenges. What remains at the end is (mostly) what was promoted and then freed, by allocation
 * stack.
 *
 * `node --conditions=source --import tsx bench/src/profile/promoted.ts [--peer=shoal] [--in-flight=100] [--seconds=3] [--depth=4]`
 * @module
 */
import { fork } from 'node:child_process'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'
import { makePayload } from '../harness.ts'
import type { RemotePeerName } from '../protocol.ts'
import { shortUrl } from './analyze.ts'
import type { NodeMessage } from './node.ts'

interface SamplingNode {
  readonly callFrame: { readonly functionName: string; readonly url: string }
  readonly selfSize: number
  readonly children: readonly SamplingNode[]
}

const flag = (name: string, fallback: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const peerName = flag('peer', 'shoal') as RemotePeerName
const inFlight = Number(flag('in-flight', '100'))
const seconds = Number(flag('seconds', '3'))
const depth = Number(flag('depth', '4'))

async function clientPeer(name: RemotePeerName) {
  if (name === 'raw-immediate' || name === 'raw-microtask') return (await import('../raw.ts')).rawPeer(name === 'raw-immediate' ? 'immediate' : 'microtask')
  if (name === 'shoal') return (await import('../shoal.ts')).remote
  throw new Error(`promoted.ts: peer ${name} is not supported (shoal, raw-immediate, raw-microtask)`)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function main(): Promise<void> {
  const peer = await clientPeer(peerName)
  const server = fork(fileURLToPath(new URL('./node.ts', import.meta.url)), [JSON.stringify({ role: 'server', peer: peerName })], {
    execArgv: process.execArgv,
  })
  try {
    const info = await new Promise<unknown>((resolve, reject) => {
      server.on('message', (m: NodeMessage) => (m.kind === 'ready' ? resolve(m.info) : m.kind === 'error' ? reject(new Error(m.message)) : undefined))
      server.once('exit', () => reject(new Error('server exited')))
    })
    const client = await peer.connect(info)
    const arg = makePayload()
    let running = true
    let calls = 0
    const workers = Array.from({ length: inFlight }, async () => {
      while (running) {
        await client.call(arg)
        calls++
      }
    })
    await sleep(1500)
    const session = new Session()
    session.connect()
    // Keep samples of objects freed by major GCs, drop those freed by scavenges (V8 11.3+ options).
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: false,
    } as never)
    const before = calls
    await sleep(seconds * 1000)
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SamplingNode } }
    const measured = calls - before
    running = false
    await Promise.all(workers)
    await client.close()

    const byStack = new Map<string, number>()
    const walk = (node: SamplingNode, stack: readonly string[]): void => {
      const where = shortUrl(node.callFrame.url)
      const frame = `${node.callFrame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`
      const here = [frame, ...stack]
      if (node.selfSize > 0) {
        const key = here.slice(0, depth).join(' < ')
        byStack.set(key, (byStack.get(key) ?? 0) + node.selfSize)
      }
      for (const child of node.children) walk(child, here)
    }
    walk(profile.head, [])
    const total = [...byStack.values()].reduce((a, b) => a + b, 0)
    console.log(
      `${peerName}, ${inFlight} in flight, ${seconds} s: ${measured.toLocaleString('en-US')} calls; sampled promoted-then-freed ≈ ${(total / 1024 / 1024).toFixed(1)} MB (${(total / measured).toFixed(0)} B per call)\n`,
    )
    console.log('| allocation stack (innermost first) | KB | B/call | % |\n|---|---:|---:|---:|')
    for (const [stack, bytes] of [...byStack].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      console.log(
        `| ${stack.replaceAll('|', '\\|')} | ${(bytes / 1024).toFixed(0)} | ${(bytes / measured).toFixed(1)} | ${((bytes / total) * 100).toFixed(1)} |`,
      )
    }
  } finally {
    server.kill()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
