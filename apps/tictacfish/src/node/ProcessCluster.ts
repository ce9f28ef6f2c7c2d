/**
 * A TicTacFish cluster of real OS processes on loopback (each node `main.ts`), for the crash tests,
 * `npm run demo:chaos`, `npm run demo:rolling` and `npm run bench:demo`: start, wait until the
 * gateway serves a lobby, add a node, SIGTERM or kill -9 one, stop all. Ports are picked by the OS; the first node is everyone's seed.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeProcess } from 'shoal/testkit'
import { StreamClient } from '../client/StreamClient.ts'

const SIGNALS = ['SIGINT', 'SIGTERM'] as const
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url))

export interface ProcessClusterOptions {
  /** Node name → roles (comma-separated); the first is the seed, so give it a role that stays. */
  readonly nodes: readonly (readonly [string, string])[]
  /** Extra arguments for every node (e.g. `--stable-after 1000 --down-margin 2000`). */
  readonly args?: readonly string[]
  /** The journal (default: a SQLite file in a fresh temporary directory, removed by `stop`). */
  readonly journal?: string
  /** info (default) or more: the cluster reads its nodes' info lines (started, gateway listening, activations). */
  readonly logLevel?: 'info' | 'debug' | 'trace'
}

export class ProcessCluster {
  readonly nodes = new Map<string, NodeProcess>()
  /** Every process ever started, killed ones included (their log lines stay readable). */
  readonly all = new Map<string, NodeProcess>()
  url = ''
  readonly #dir: string
  readonly #o: ProcessClusterOptions
  readonly #secret = randomBytes(32).toString('hex')

  private constructor(o: ProcessClusterOptions) {
    this.#o = o
    this.#dir = mkdtempSync(join(tmpdir(), 'ttf-cluster-'))
    // Ctrl-C or SIGTERM of the benchmark or chaos run takes its nodes down with it.
    for (const sig of SIGNALS) process.once(sig, this.#onSignal)
  }

  readonly #onSignal = (sig: NodeJS.Signals): void => {
    void this.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  }

  /** Starts the nodes (seed first, then the rest at once) and resolves once a lobby is served. */
  static async start(o: ProcessClusterOptions): Promise<ProcessCluster> {
    const c = new ProcessCluster(o)
    try {
      const [[seedName, seedRoles], ...rest] = o.nodes as [readonly [string, string], ...(readonly [string, string])[]]
      const seed = await c.#start(seedName, seedRoles, [])
      await Promise.all(rest.map(([name, roles]) => c.#start(name, roles, ['--seed', seed.address])))
      const gateway = [...c.nodes.values()].map((n) => n.lines.find((l) => l.msg === 'gateway listening')).find(Boolean)
      if (!gateway) throw new Error('no node has the gateway role')
      c.url = `http://127.0.0.1:${gateway.port as number}`
      await c.waitServing()
      return c
    } catch (e) {
      await c.stop()
      throw e
    }
  }

  /** Resolves once a probe player gets its LobbyState through the gateway (gateway → player → lobby). */
  async waitServing(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const player = { playerId: crypto.randomUUID(), name: 'probe', team: 'fish' as const }
      const probe = StreamClient.lobby({ url: this.url, player })
      try {
        probe.status$(player, 'connect')
        await probe.next((l) => ((l as { message?: { waitingPlayers?: unknown } }).message?.waitingPlayers ? true : undefined), 3000)
        return
      } catch (e) {
        if (Date.now() > deadline) throw e
      } finally {
        probe.destroy()
      }
    }
  }

  /** Each live node's Prometheus metrics lines matching `pattern` (from its management endpoint). */
  async metrics(pattern: RegExp): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>()
    for (const [name, n] of this.nodes) {
      const text = await fetch(`http://127.0.0.1:${n.httpPort}/metrics`, { signal: AbortSignal.timeout(5000) })
        .then((r) => r.text())
        .catch((e: unknown) => `unavailable: ${String(e)}`)
      out.set(
        name,
        text.split('\n').filter((l) => pattern.test(l)),
      )
    }
    return out
  }

  /**
   * Starts one more node (seeded on a live node) and resolves once its management endpoint says it
   * is up in the cluster (`/ready`): the first half of a rolling restart's step.
   */
  async add(name: string, roles: string, timeoutMs = 60_000): Promise<NodeProcess> {
    const seed = [...this.nodes.values()][0]
    const p = await this.#start(name, roles, seed ? ['--seed', seed.address] : [])
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const status = await fetch(`http://127.0.0.1:${p.httpPort}/ready`, { signal: AbortSignal.timeout(5000) })
        .then((r) => r.status)
        .catch(() => 0)
      if (status === 200) return p
      if (Date.now() > deadline) throw new Error(`${name} was not ready within ${timeoutMs} ms (last /ready: ${status})`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** SIGTERM a node (a graceful leave) and resolve with its exit code once it is gone; kill -9 after `timeoutMs`. */
  async terminate(name: string, timeoutMs = 45_000): Promise<number | null> {
    const p = this.nodes.get(name)
    if (!p) throw new Error(`no live node ${name}`)
    p.signal('SIGTERM')
    const timer = setTimeout(() => p.signal('SIGKILL'), timeoutMs)
    const { code } = await p.exited
    clearTimeout(timer)
    this.nodes.delete(name)
    return code
  }

  /** kill -9 a node; resolves when it is gone. */
  async kill(name: string): Promise<void> {
    await this.nodes.get(name)?.kill()
    this.nodes.delete(name)
  }

  /** The node running the lobby singleton now (the last lobby node that logged its activation and is alive). */
  lobbyHost(): string | undefined {
    let best: { name: string; time: number } | undefined
    for (const [name, n] of this.nodes)
      for (const l of n.lines) if (l.msg === 'singleton activated' && (!best || l.time > best.time)) best = { name, time: l.time }
    return best?.name
  }

  /** Kills every node (kill -9: a test cluster has nothing to hand over) and removes the journal directory. */
  async stop(): Promise<void> {
    for (const sig of SIGNALS) process.off(sig, this.#onSignal)
    await Promise.all([...this.nodes.values()].map((n) => n.kill()))
    this.nodes.clear()
    rmSync(this.#dir, { recursive: true, force: true })
  }

  async #start(name: string, roles: string, extra: string[]): Promise<NodeProcess> {
    const journal = this.#o.journal ?? `sqlite:${join(this.#dir, 'journal.db')}`
    const p = await NodeProcess.startScript(MAIN, {
      args: [
        '--name',
        name,
        '--roles',
        roles,
        '--port',
        '0',
        '--http',
        '0',
        '--management',
        '0',
        '--journal',
        journal,
        '--log-level',
        this.#o.logLevel ?? 'info',
        ...(this.#o.args ?? []),
        ...extra,
      ],
      env: { SHOAL_SECRET: this.#secret },
      readyWhen: (l) => l.msg === 'tictacfish node started',
      timeout: 60_000,
    })
    this.nodes.set(name, p)
    this.all.set(name, p)
    return p
  }
}
