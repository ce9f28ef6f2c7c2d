/**
 * Runner side of the child processes: fork with the runner's execArgv (so TypeScript loads the same
 * way), wait for typed messages, and make sure no child outlives the run.
 * @module
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type ChildConfig, type ChildMessage, isChildMessage } from './protocol.ts'

const CHILD_ENTRY = fileURLToPath(new URL('./child.ts', import.meta.url))
const live = new Set<ChildProcess>()

/** Kills every child still running; safe to call from an 'exit' handler (synchronous). */
export function killAll(): void {
  for (const proc of live) proc.kill('SIGKILL')
  live.clear()
}

/** One forked child and the messages it sent that nobody has taken yet. */
export class Child {
  readonly #proc: ChildProcess
  readonly #inbox: ChildMessage[] = []
  #wake: (() => void) | undefined
  #exit: string | undefined

  constructor(
    readonly label: string,
    config: ChildConfig,
    onProgress: (text: string) => void,
    extraExecArgv: readonly string[] = [],
  ) {
    this.#proc = fork(CHILD_ENTRY, [JSON.stringify(config)], {
      execArgv: [...process.execArgv, ...extraExecArgv, ...childNodeArgs()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    live.add(this.#proc)
    this.#proc.on('message', (message: unknown) => {
      if (!isChildMessage(message)) return
      if (message.kind === 'progress') onProgress(message.text)
      else this.#deliver(message)
    })
    this.#proc.on('exit', (code, signal) => this.#exited(`exited (${signal ?? `code ${code}`})`))
    this.#proc.on('error', (error) => this.#exited(`failed: ${error.message}`))
  }

  #deliver(message: ChildMessage): void {
    this.#inbox.push(message)
    this.#wake?.()
  }

  #exited(how: string): void {
    live.delete(this.#proc)
    this.#exit ??= how
    this.#wake?.()
  }

  /** The payload of the next `ready` (server info) or `result` message; throws on error, exit or timeout. */
  async next(kind: 'ready' | 'result', timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const message = this.#inbox.shift()
      if (message?.kind === 'error') throw new Error(`${this.label}: ${message.message}`)
      if (message?.kind === 'ready' && kind === 'ready') return message.info
      if (message?.kind === 'result' && kind === 'result') return message.result
      if (message) continue
      if (this.#exit) throw new Error(`${this.label} ${this.#exit} before sending its ${kind}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.label}: no ${kind} within ${Math.round(timeoutMs / 1000)} s`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          this.#wake = undefined
          resolve()
        }
      })
    }
  }

  /** Asks the child to stop (SIGTERM), then kills it if it has not exited within 5 s. */
  async stop(): Promise<void> {
    const proc = this.#proc
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}

/**
 * Extra Node options for every child, from `BENCH_NODE_ARGS` (space-separated), e.g.
 * `BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p"` to profile the children of a run (NODE_OPTIONS
 * refuses --cpu-prof).
 */
function childNodeArgs(): string[] {
  return (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
}
