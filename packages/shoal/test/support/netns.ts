/**
 * Test support: network partitions between real processes, made with Linux network namespaces.
 *
 * A {@link NetnsLab} of `n` members is `n` network namespaces, each with a veth pair: `eth0` inside
 * the namespace (address `<subnet>.<i+1>/24`, loopback up) and a host end that is a port of one of
 * two bridges, side A or side B. The bridges are joined by a veth pair, the trunk:
 *
 * ```text
 *   ns0 ns1 ns2            ns3 ns4
 *    |   |   |              |   |
 *   [    bridge A ]--trunk--[ bridge B ]
 * ```
 *
 * `partition(a, b)` moves the host end of every member of `a` to bridge A and of every member of
 * `b` to bridge B, then takes the trunk down: the two sides then share no link at all, so nothing
 * (TCP, UDP, ARP, IPv6) crosses. `heal()` brings the trunk up again. The host ends and the bridges
 * have no IP addresses (IPv6 link-local generation is off too), so the host cannot route between
 * the sides; the bridges do not call netfilter and run without STP, so ports forward at once.
 *
 * Needs root and iproute2 (`ip`); no iptables. Every `ip` call is `execFile` with an argument list.
 * @module
 */
import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

/** Runs an nftables script (`nft -f -`): one atomic transaction. */
async function nft(script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('nft', ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.once('error', reject)
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nft -f - failed (${code}): ${stderr.trim()}\n${script}`))))
    child.stdin.end(script)
  })
}

/**
 * Whether `nft` (nftables) works here, for the labs that cut single pairs of members ({@link
 * NetnsLab.drop}); `why` says what is missing, for a skip message.
 */
export async function nftAvailable(): Promise<{ ok: true } | { ok: false; why: string }> {
  try {
    await execFileP('nft', ['--version'], { timeout: 5_000 })
    return { ok: true }
  } catch (e) {
    return { ok: false, why: `nftables (\`nft\`) is not usable: ${(e as Error).message} (apt-get install nftables)` }
  }
}

/** Linux limits interface names to 15 bytes (IFNAMSIZ - 1). */
const IFNAMSIZ = 15

/** Runs `ip ...args`; the error names the command and carries its stderr. */
async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP('ip', args, { timeout: 15_000, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (e) {
    const err = e as { stderr?: unknown; code?: unknown; message?: string }
    const stderr = typeof err.stderr === 'string' && err.stderr.trim() !== '' ? err.stderr.trim() : (err.message ?? String(e))
    throw new Error(`\`ip ${args.join(' ')}\` failed (${String(err.code ?? 'error')}): ${stderr}`, { cause: e })
  }
}

/** Runs `ip ...args` and ignores failure (for cleanup of things that may not exist). */
async function ipQuiet(...args: string[]): Promise<void> {
  try {
    await ip(...args)
  } catch {
    // already gone, or never made
  }
}

async function netnsNames(): Promise<string[]> {
  const out = await ip('netns', 'list')
  // Lines look like `name` or `name (id: 3)`.
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '')
}

async function linkNames(): Promise<string[]> {
  const out = await ip('-o', 'link', 'show')
  // `12: name@peer: <...>` or `12: name: <...>`
  const names: string[] = []
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line)
    if (m?.[1] !== undefined) names.push(m[1])
  }
  return names
}

interface LinkState {
  readonly operstate: string
  readonly master: string | undefined
  /** Bridge port state (`forwarding`, `disabled`, ...), for a bridge port. */
  readonly portState: string | undefined
}

async function linkState(name: string): Promise<LinkState> {
  const out = await ip('-d', '-j', 'link', 'show', 'dev', name)
  const parsed = JSON.parse(out) as Array<{
    operstate?: string
    master?: string
    linkinfo?: { info_slave_data?: { state?: string } }
  }>
  const d = parsed[0]
  if (d === undefined) throw new Error(`\`ip -d -j link show dev ${name}\` returned no link`)
  return { operstate: d.operstate ?? 'UNKNOWN', master: d.master, portState: d.linkinfo?.info_slave_data?.state }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `check` every 10 ms until it returns undefined (done) or `timeoutMs` passes; then throws its last complaint. */
async function until(what: string, check: () => Promise<string | undefined>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const complaint = await check()
    if (complaint === undefined) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${complaint}`)
    await sleep(10)
  }
}

/**
 * Whether this process can build a {@link NetnsLab}: Linux, root, `ip` present, and creating (then
 * deleting) a network namespace, a veth pair into it and a bridge really works. `why` says what is
 * missing, for a skip message.
 */
export async function netnsAvailable(): Promise<{ ok: true } | { ok: false; why: string }> {
  if (process.platform !== 'linux') return { ok: false, why: `network namespaces need Linux (platform is ${process.platform})` }
  const uid = process.getuid?.()
  if (uid !== 0) return { ok: false, why: `network namespaces need root (uid is ${uid === undefined ? 'unknown' : String(uid)})` }
  try {
    await execFileP('ip', ['-V'], { timeout: 5_000 })
  } catch (e) {
    return { ok: false, why: `the \`ip\` command (iproute2) is not usable: ${(e as Error).message}` }
  }
  const tag = `shchk${process.pid.toString(36)}${randomBytes(2).toString('hex')}`.slice(0, 13)
  const ns = `${tag}n`
  const br = `${tag}b`
  const veth = `${tag}v`
  try {
    try {
      await ip('netns', 'add', ns)
    } catch (e) {
      return { ok: false, why: `cannot create a network namespace: ${(e as Error).message}` }
    }
    try {
      await ip('link', 'add', 'name', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0')
      await ip('link', 'set', br, 'up')
    } catch (e) {
      return { ok: false, why: `cannot create a bridge (is the bridge module available?): ${(e as Error).message}` }
    }
    try {
      await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      await ip('link', 'set', veth, 'master', br, 'up')
    } catch (e) {
      return { ok: false, why: `cannot create a veth pair into a namespace and attach it to a bridge: ${(e as Error).message}` }
    }
    return { ok: true }
  } finally {
    await ipQuiet('link', 'del', veth)
    await ipQuiet('link', 'del', br)
    await ipQuiet('netns', 'del', ns)
  }
}

export interface NetnsLabOptions {
  /**
   * Prefix of every name the lab makes: namespaces `${prefix}${i}`, host veth ends `${prefix}h${i}`,
   * bridges `${prefix}bA`/`${prefix}bB`, trunk `${prefix}tA`/`${prefix}tB`. Must be unique on the host
   * and short: the longest interface name must fit in 15 bytes. Default `sh<pid base 36>_<counter base 36>-`.
   */
  readonly prefix?: string
  /** First three octets of the /24 the members live in, `'10.77.5'` (or `'10.77.5.0/24'`). Default `10.77.<k>` with k from pid and counter. */
  readonly subnet?: string
}

let labCounter = 0

type Side = 'A' | 'B'

/** `n` network namespaces on two bridges joined by a trunk, with partition and heal. See the module doc. */
export class NetnsLab {
  readonly size: number
  readonly prefix: string
  /** The first three octets, e.g. `10.77.42`. */
  readonly subnet: string
  readonly #side: Side[]
  readonly #children = new Set<ChildProcess>()
  #destroyed = false

  private constructor(n: number, prefix: string, subnet: string) {
    this.size = n
    this.prefix = prefix
    this.subnet = subnet
    // Initially the first half is on side A and the rest on side B, so traffic already crosses the trunk.
    this.#side = Array.from({ length: n }, (_, i) => (i < Math.ceil(n / 2) ? 'A' : 'B'))
  }

  /**
   * Creates the namespaces, veths, bridges and trunk and waits until every port forwards. On failure
   * it removes what it made and rethrows. Call {@link destroy} when done (also after a failed create,
   * it is harmless).
   */
  static async create(n: number, opts: NetnsLabOptions = {}): Promise<NetnsLab> {
    if (!Number.isInteger(n) || n < 1 || n > 253) throw new RangeError(`a lab has 1 to 253 members, not ${n}`)
    const count = labCounter++
    const prefix = opts.prefix ?? `sh${process.pid.toString(36)}_${count.toString(36)}-`
    if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`lab prefix ${JSON.stringify(prefix)} must be letters, digits, _ or -`)
    const longest = prefix.length + 1 + String(n - 1).length
    if (longest > IFNAMSIZ) throw new Error(`lab prefix ${JSON.stringify(prefix)} is too long: interface names would be ${longest} > ${IFNAMSIZ} bytes`)
    const subnet = normalizeSubnet(opts.subnet ?? `10.77.${((process.pid * 7 + count) % 250) + 1}`)
    const lab = new NetnsLab(n, prefix, subnet)
    try {
      await lab.#build()
    } catch (e) {
      await lab.destroy().catch(() => undefined)
      throw e
    }
    return lab
  }

  /** The namespace's IPv4 address (no prefix length). */
  address(i: number): string {
    this.#check(i)
    return `${this.subnet}.${i + 1}`
  }

  /** The namespace's name, for `ip netns exec` and friends. */
  name(i: number): string {
    this.#check(i)
    return `${this.prefix}${i}`
  }

  /** The host end of member i's veth pair. */
  hostVeth(i: number): string {
    this.#check(i)
    return `${this.prefix}h${i}`
  }

  /** The side (bridge) member i's host veth is attached to now. */
  sideOf(i: number): Side {
    this.#check(i)
    return this.#side[i]!
  }

  /**
   * Spawns `command ...args` inside namespace i via `ip netns exec` (which execs the command, so the
   * child's pid is the command's). `options` go to `spawn` unchanged. {@link destroy} kills children
   * still running.
   */
  exec(i: number, command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    if (this.#destroyed) throw new Error(`lab ${this.prefix} is destroyed`)
    const child = spawn('ip', ['netns', 'exec', this.name(i), command, ...args], options)
    this.#children.add(child)
    child.once('exit', () => this.#children.delete(child))
    child.once('error', () => this.#children.delete(child))
    return child
  }

  /**
   * Cuts the lab in two: members of `groupA` can reach each other, members of `groupB` each other,
   * and nothing crosses between them. Members in neither group stay on the side they are on now.
   * Resolves once the kernel reports the new port states.
   */
  async partition(groupA: readonly number[], groupB: readonly number[]): Promise<void> {
    for (const i of [...groupA, ...groupB]) this.#check(i)
    const overlap = groupA.filter((i) => groupB.includes(i))
    if (overlap.length > 0) throw new Error(`members ${overlap.join(', ')} are in both groups`)
    // Trunk first, so no packet crosses while ports move.
    await ip('link', 'set', this.#trunk('A'), 'down')
    await ip('link', 'set', this.#trunk('B'), 'down')
    for (const [group, side] of [
      [groupA, 'A'],
      [groupB, 'B'],
    ] as const) {
      for (const i of group) {
        if (this.#side[i] !== side) {
          await ip('link', 'set', this.hostVeth(i), 'master', this.#bridge(side))
          this.#side[i] = side
        }
      }
    }
    await this.#settle(false)
  }

  /**
   * Drops, silently and from now on, every packet from member `from` to member `to` for each pair
   * (pass both directions for a two-way cut), replacing the pairs dropped before; `drop([])` lets
   * everything through again. Packets are dropped on the bridges by an nftables table in the root
   * namespace (one atomic transaction), so a sender sees no error, as on a lossy wire. Any shape is
   * possible: a bridge partition ({A,B}×{D,E} with C reaching all), one-way loss. Needs `nft`.
   */
  async drop(pairs: ReadonlyArray<readonly [from: number, to: number]>): Promise<void> {
    for (const [a, b] of pairs) {
      this.#check(a)
      this.#check(b)
    }
    const table = this.#nftTable()
    const rules = pairs.map(([a, b]) => `add rule bridge ${table} cuts ip saddr ${this.address(a)} ip daddr ${this.address(b)} drop`)
    const create = this.#nftMade ? '' : `add table bridge ${table}\nadd chain bridge ${table} cuts { type filter hook forward priority 0; policy accept; }\n`
    await nft(`${create}flush chain bridge ${table} cuts\n${rules.join('\n')}\n`)
    this.#nftMade = true
  }

  #nftMade = false

  #nftTable(): string {
    return `shoal_${this.prefix.replace(/[^A-Za-z0-9_]/g, '_')}`
  }

  /** Joins the two sides again (brings the trunk up); members stay on their bridges. */
  async heal(): Promise<void> {
    await ip('link', 'set', this.#trunk('A'), 'up')
    await ip('link', 'set', this.#trunk('B'), 'up')
    await this.#settle(true)
  }

  /**
   * Kills children spawned by {@link exec} that still run, then deletes every namespace, veth, bridge
   * and trunk with this lab's prefix (whatever of them exists: safe after a half-done create, and
   * idempotent). Throws if something with the prefix survives.
   */
  async destroy(): Promise<void> {
    this.#destroyed = true
    for (const child of this.#children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    this.#children.clear()
    if (this.#nftMade) await nft(`delete table bridge ${this.#nftTable()}\n`).catch(() => undefined)
    await NetnsLab.destroyPrefix(this.prefix)
  }

  /**
   * Deletes every namespace `${prefix}<digits>` and every link `${prefix}h<digits>`, `${prefix}bA|bB`,
   * `${prefix}tA|tB` that exists; throws if any survive. For an `afterAll` whose `create()` threw
   * before returning a lab (pass the same explicit `prefix`); `create()` itself already cleans up
   * when it fails.
   */
  static async destroyPrefix(prefix: string): Promise<void> {
    const p = prefix
    if (p === '') throw new Error('refusing to clean up an empty prefix')
    const own = (name: string): boolean => name.startsWith(p) && /^(h\d+|b[AB]|t[AB])$/.test(name.slice(p.length))
    const ownNs = (name: string): boolean => name.startsWith(p) && /^\d+$/.test(name.slice(p.length))
    // Deleting one end of a veth pair deletes the other (host ends take eth0 in the namespace along;
    // tA takes tB). Delete explicitly instead of relying on namespace teardown, which is asynchronous.
    for (const link of (await linkNames()).filter(own)) await ipQuiet('link', 'del', link)
    for (const ns of (await netnsNames()).filter(ownNs)) await ipQuiet('netns', 'del', ns)
    const leftLinks = (await linkNames()).filter(own)
    const leftNs = (await netnsNames()).filter(ownNs)
    if (leftLinks.length > 0 || leftNs.length > 0) {
      throw new Error(`lab ${p} cleanup left links [${leftLinks.join(', ')}] and namespaces [${leftNs.join(', ')}]`)
    }
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new RangeError(`member ${i} is not in a lab of ${this.size}`)
  }

  #bridge(side: Side): string {
    return `${this.prefix}b${side}`
  }

  #trunk(side: Side): string {
    return `${this.prefix}t${side}`
  }

  async #build(): Promise<void> {
    for (const side of ['A', 'B'] as const) {
      const br = this.#bridge(side)
      // No STP and no forward delay: ports forward as soon as they are up. No netfilter on bridged
      // frames (br_netfilter may be loaded with bridge-nf-call-iptables=1). No IPv6 link-local.
      await ip(
        'link',
        'add',
        'name',
        br,
        'type',
        'bridge',
        'stp_state',
        '0',
        'forward_delay',
        '0',
        'nf_call_iptables',
        '0',
        'nf_call_ip6tables',
        '0',
        'nf_call_arptables',
        '0',
        'mcast_snooping',
        '0',
      )
      await ip('link', 'set', br, 'addrgenmode', 'none')
      await ip('link', 'set', br, 'up')
    }
    await ip('link', 'add', this.#trunk('A'), 'type', 'veth', 'peer', 'name', this.#trunk('B'))
    for (const side of ['A', 'B'] as const) {
      await ip('link', 'set', this.#trunk(side), 'addrgenmode', 'none')
      await ip('link', 'set', this.#trunk(side), 'master', this.#bridge(side), 'up')
    }
    for (let i = 0; i < this.size; i++) {
      const ns = this.name(i)
      const host = this.hostVeth(i)
      await ip('netns', 'add', ns)
      await ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      await ip('link', 'set', host, 'addrgenmode', 'none')
      await ip('link', 'set', host, 'master', this.#bridge(this.#side[i]!), 'up')
      await ip('-n', ns, 'link', 'set', 'lo', 'up')
      await ip('-n', ns, 'addr', 'add', `${this.address(i)}/24`, 'dev', 'eth0')
      await ip('-n', ns, 'link', 'set', 'eth0', 'up')
    }
    await this.#settle(true)
  }

  /** Waits until every member port forwards on its side's bridge and the trunk forwards (`trunkUp`) or not. */
  async #settle(trunkUp: boolean): Promise<void> {
    await until(`lab ${this.prefix} ports to settle (trunk ${trunkUp ? 'up' : 'down'})`, async () => {
      for (let i = 0; i < this.size; i++) {
        const s = await linkState(this.hostVeth(i))
        const want = this.#bridge(this.#side[i]!)
        if (s.master !== want || s.portState !== 'forwarding')
          return `${this.hostVeth(i)} is ${s.portState ?? 'no port'} on ${s.master ?? 'no bridge'}, want forwarding on ${want}`
      }
      for (const side of ['A', 'B'] as const) {
        const s = await linkState(this.#trunk(side))
        const forwarding = s.portState === 'forwarding' && s.operstate === 'UP'
        if (forwarding !== trunkUp) return `${this.#trunk(side)} is ${s.operstate}/${s.portState ?? 'no port'}`
      }
      return undefined
    })
  }
}

function normalizeSubnet(subnet: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\.0\/24)?$/.exec(subnet)
  if (m === null || m.slice(1, 4).some((o) => Number(o) > 255)) {
    throw new Error(`subnet ${JSON.stringify(subnet)} must be three octets like "10.77.5" (or "10.77.5.0/24")`)
  }
  return `${m[1]}.${m[2]}.${m[3]}`
}
