/**
 * A harness that runs `shoal node` (and `shoal clusterd`) as real OS processes and signals them,
 * for multi-process tests and benchmarks: kill -9, SIGSTOP/SIGCONT, SIGTERM, restart on the same
 * port. It reads the JSON log lines the CLI writes when stdout is not a terminal.
 * @module
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The `shoal` CLI entry point of this package. */
export const SHOAL_BIN = fileURLToPath(new URL('../../bin/shoal.js', import.meta.url))

/** One parsed log line. */
export interface LogLine {
  readonly level: number
  readonly time: number
  readonly msg: string
  readonly [key: string]: unknown
}

/** How to start a `shoal` process. */
export interface NodeProcessOptions {
  /** Extra CLI arguments after `node` (or `clusterd`). */
  readonly args: readonly string[]
  readonly env?: NodeJS.ProcessEnv
  /** Spawns through this instead (e.g. `ip netns exec`): gets the command and arguments. */
  readonly spawner?: (command: string, args: string[], options: SpawnOptions) => ChildProcess
  /** Resolve `start` once this message is logged. Default: the management endpoint or clusterd listening, or node started. */
  readonly readyWhen?: (line: LogLine) => boolean
  /** Max wait for readiness, ms. Default 30 s. */
  readonly timeout?: number
}

/** A running `shoal node` or `shoal clusterd` process, its parsed log lines and signals. */
export class NodeProcess {
  readonly child: ChildProcess
  readonly lines: LogLine[] = []
  /** `host:port` of the node (from its "node started" line). */
  address = ''
  /** This incarnation's uid. */
  uid = ''
  /** The management endpoint's port, if `--http` was given. */
  httpPort = 0
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly #waiters = new Set<(l: LogLine) => void>()

  private constructor(child: ChildProcess) {
    this.child = child
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    let buffered = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8')
      let nl
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        let line: LogLine
        try {
          line = JSON.parse(text) as LogLine
        } catch {
          continue
        }
        this.#onLine(line)
      }
    })
  }

  /** Starts `shoal <command> …args` and resolves once it is ready. */
  static start(command: 'node' | 'clusterd', o: NodeProcessOptions): Promise<NodeProcess> {
    const ready = (l: LogLine) =>
      l.msg === (o.args.includes('--http') ? 'management endpoint listening' : command === 'clusterd' ? 'clusterd listening' : 'node started')
    return NodeProcess.#run(`shoal ${command}`, [SHOAL_BIN, command, ...o.args], o, ready)
  }

  /**
   * Starts an application's own node script (TypeScript or JavaScript; `…args` after it) that logs
   * pino JSON lines on stdout like `shoal node`, and resolves once `readyWhen` (default: "node
   * started") is logged. For applications' multi-process tests.
   */
  static startScript(script: string, o: NodeProcessOptions): Promise<NodeProcess> {
    return NodeProcess.#run(script, [script, ...o.args], o, (l) => l.msg === 'node started')
  }

  static async #run(what: string, script: string[], o: NodeProcessOptions, defaultReady: (l: LogLine) => boolean): Promise<NodeProcess> {
    const args = ['--conditions=source', '--import', 'tsx', ...script]
    const options: SpawnOptions = { env: { ...process.env, SHOAL_LOG_LEVEL: 'info', ...o.env }, stdio: ['ignore', 'pipe', 'inherit'] }
    const child = o.spawner ? o.spawner(process.execPath, args, options) : spawn(process.execPath, args, options)
    const p = new NodeProcess(child)
    await Promise.race([
      p.waitForLine(o.readyWhen ?? defaultReady, o.timeout ?? 30_000),
      p.exited.then(({ code, signal }) => {
        throw new Error(`${what} exited (${signal ?? code}) before it was ready: ${p.lines.map((l) => l.msg).join(' | ')}`)
      }),
    ])
    return p
  }

  #onLine(line: LogLine): void {
    this.lines.push(line)
    if (line.msg === 'node started' && typeof line.node === 'string') {
      const m = /@(.+)#([0-9a-f]{16})$/.exec(line.node)
      if (m) {
        this.address = m[1]!
        this.uid = m[2]!
      }
    }
    if (line.msg === 'clusterd listening' && typeof line.endpoint === 'string') this.address = line.endpoint
    if (line.msg === 'management endpoint listening' && typeof line.port === 'number') this.httpPort = line.port
    for (const w of [...this.#waiters]) w(line)
  }

  /** Resolves with the first line (already logged or future) matching `pred`. */
  waitForLine(pred: (l: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> {
    const found = this.lines.find(pred)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check)
        reject(new Error(`no matching log line from ${this.address || 'the process'} within ${timeoutMs} ms`))
      }, timeoutMs)
      const check = (l: LogLine): void => {
        if (!pred(l)) return
        clearTimeout(timer)
        this.#waiters.delete(check)
        resolve(l)
      }
      this.#waiters.add(check)
    })
  }

  /** Lines saying `member` (an address) changed to `status`. */
  statusLines(member: string, status: string): LogLine[] {
    return this.lines.filter(
      (l) => l.msg === 'member status changed' && typeof l.member === 'string' && l.member.includes(`@${member}#`) && l.status === status,
    )
  }

  /** GETs a path of the management endpoint (needs `--http`). */
  async get<T = unknown>(path: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}${path}`, { signal: AbortSignal.timeout(5000) })
    if (!res.ok) throw new Error(`GET ${path}: ${res.status}`)
    return (await res.json()) as T
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig)
  }

  /** SIGKILL (after SIGCONT, in case it was stopped) and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGCONT')
    this.signal('SIGKILL')
    await this.exited
  }
}
