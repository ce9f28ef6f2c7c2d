/**
 * Where the one-way receiver's promoted garbage comes from (the server side of
 * `bench:profile --scenario=oneway`): runs the Shoal server in this process and the one-way client in
 * a child (profile/node.ts), and samples allocations that survive scavenges, as promoted.ts does for
 * the caller of remote calls.
 *
 * `node --conditions=source --import tsx bench/src/profile/promoted-server.ts [--seconds=3] [--depth=5]`
 * @module
 */
import { fork } from 'node:child_process'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'
import { shortUrl } from './analyze.ts'
import type { NodeMessage } from './node.ts'

interface SamplingNode {
  readonly callFrame: { readonly functionName: string; readonly url: string }
  readonly selfSize: number
  readonly children: readonly SamplingNode[]
}

const flag = (name: string, fallback: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const seconds = Number(flag('seconds', '3'))
const depth = Number(flag('depth', '5'))
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function main(): Promise<void> {
  const server = await (await import('../shoal.ts')).remote.serve()
  const client = fork(
    fileURLToPath(new URL('./node.ts', import.meta.url)),
    [JSON.stringify({ role: 'client', peer: 'shoal', info: server.info, inFlight: 1, warmupMs: 1500, durationMs: seconds * 1000 + 1000, scenario: 'oneway' })],
    { execArgv: process.execArgv },
  )
  let messages = 0
  client.on('message', (m: NodeMessage) => {
    if (m.kind === 'window') messages = m.window.calls ?? 0
  })
  await sleep(1500)
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: false,
  } as never)
  await sleep(seconds * 1000)
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SamplingNode } }
  await new Promise((resolve) => client.once('exit', resolve))
  // The client's window is `seconds + 1` s long; scale to the sampled seconds.
  const measured = (messages * seconds) / (seconds + 1)
  const byStack = new Map<string, number>()
  const walk = (node: SamplingNode, stack: readonly string[]): void => {
    const where = shortUrl(node.callFrame.url)
    const here = [`${node.callFrame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`, ...stack]
    if (node.selfSize > 0) {
      const key = here.slice(0, depth).join(' < ')
      byStack.set(key, (byStack.get(key) ?? 0) + node.selfSize)
    }
    for (const child of node.children) walk(child, here)
  }
  walk(profile.head, [])
  const total = [...byStack.values()].reduce((a, b) => a + b, 0)
  console.log(
    `shoal one-way receiver, ${seconds} s: ≈${Math.round(measured).toLocaleString('en-US')} messages; promoted-then-freed ≈ ${(total / 1048576).toFixed(1)} MB (${(total / measured).toFixed(0)} B per message)\n`,
  )
  console.log('| allocation stack (innermost first) | KB | B/msg | % |\n|---|---:|---:|---:|')
  for (const [stack, bytes] of [...byStack].sort((a, b) => b[1] - a[1]).slice(0, 25))
    console.log(`| ${stack.replaceAll('|', '\\|')} | ${(bytes / 1024).toFixed(0)} | ${(bytes / measured).toFixed(1)} | ${((bytes / total) * 100).toFixed(1)} |`)
  await server.close()
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  },
)
