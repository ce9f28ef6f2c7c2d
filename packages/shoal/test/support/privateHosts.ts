/**
 * Test support: child processes that resolve extra host names (`my_host` → 127.0.0.1) through the
 * ordinary resolver, without touching the machine's `/etc/hosts`.
 *
 * {@link PrivateHosts} writes a copy of `/etc/hosts` plus the extra entries to a temporary file;
 * its {@link PrivateHosts.spawner} starts each child in a mount namespace of its own
 * (`unshare --mount --propagation private`) where that file is bind-mounted over `/etc/hosts`,
 * then execs the command (same pid, so signals reach it). Private propagation keeps the bind
 * mount inside the namespace; it disappears with the child.
 *
 * Needs Linux, root and util-linux `unshare` and `mount`; {@link privateHostsAvailable} tries it
 * once and says what is missing, for a skip message.
 * @module
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { lookup } from 'node:dns/promises'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Bind-mounts `$0` over /etc/hosts, then execs the rest of the arguments. */
const MOUNT_AND_EXEC = 'mount --bind "$0" /etc/hosts && exec "$@"'

/** Extra host names and the addresses they resolve to, in the private hosts file. */
export class PrivateHosts {
  readonly file: string
  readonly #dir: string

  private constructor(dir: string) {
    this.#dir = dir
    this.file = join(dir, 'hosts')
  }

  /** Writes the machine's `/etc/hosts` plus `entries` (name → address) to a temporary file. */
  static async create(entries: Readonly<Record<string, string>>): Promise<PrivateHosts> {
    const hosts = new PrivateHosts(await mkdtemp(join(tmpdir(), 'shoal-hosts-')))
    const base = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1 localhost\n')
    const extra = Object.entries(entries).map(([name, address]) => `${address} ${name}`)
    await writeFile(hosts.file, `${base.endsWith('\n') ? base : `${base}\n`}# shoal test\n${extra.join('\n')}\n`)
    return hosts
  }

  /** `spawn`, but inside a mount namespace that sees the private hosts file (a NodeProcess spawner). */
  readonly spawner = (command: string, args: readonly string[], options: SpawnOptions): ChildProcess =>
    spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', MOUNT_AND_EXEC, this.file, command, ...args], options)

  /** Removes the temporary file. */
  async destroy(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true })
  }
}

/**
 * Whether {@link PrivateHosts} works here: Linux, root, and a child started by its spawner really
 * resolves a name that only the private file lists (while this process does not). `why` says
 * what is missing.
 */
export async function privateHostsAvailable(): Promise<{ ok: true } | { ok: false; why: string }> {
  if (process.platform !== 'linux') return { ok: false, why: `a private /etc/hosts needs Linux mount namespaces (platform is ${process.platform})` }
  const uid = process.getuid?.()
  if (uid !== 0)
    return { ok: false, why: `a private /etc/hosts needs root for unshare --mount and mount --bind (uid is ${uid === undefined ? 'unknown' : String(uid)})` }
  const name = `shoal_probe-${process.pid}`
  const hosts = await PrivateHosts.create({ [name]: '127.0.0.1' })
  try {
    const probe = `require('node:dns').lookup(${JSON.stringify(name)}, { family: 4 }, (e, a) => { process.stdout.write(e ? 'ERR ' + e.code : a) })`
    const child = hosts.spawner(process.execPath, ['-e', probe], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
    const code = await new Promise<number | null>((resolve) => {
      child.once('error', (e) => {
        err += e.message
        resolve(null)
      })
      child.once('exit', resolve)
    })
    if (code !== 0 || out !== '127.0.0.1')
      return {
        ok: false,
        why: `unshare --mount with a bind-mounted /etc/hosts does not work here (exit ${code}, output ${JSON.stringify(out)}): ${err.trim().slice(0, 300)}`,
      }
    const leaked = await lookup(name).then(
      () => true,
      () => false,
    )
    if (leaked) return { ok: false, why: `the private hosts entry ${name} leaked into this mount namespace` }
    return { ok: true }
  } finally {
    await hosts.destroy()
  }
}
