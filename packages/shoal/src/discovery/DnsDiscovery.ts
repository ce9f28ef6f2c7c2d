/**
 * Discovery through DNS: the addresses of a name (A and/or AAAA records), or the targets of its SRV
 * records. Made for Kubernetes headless services, whose DNS name resolves to one address per pod,
 * but works with any DNS server that publishes the nodes.
 * @module
 */
import { Resolver } from 'node:dns/promises'
import { isIP } from 'node:net'
import { ConfigError } from '../errors.ts'
import type { DiscoveredEndpoint, DiscoveryProvider } from './Discovery.ts'

/** One SRV record as `resolveSrv` returns it (node's `SrvRecord` fits). */
export interface DnsSrvRecord {
  /** Target host name (or, unusually, an IP address). `.` means "no service here" and is skipped. */
  readonly name: string
  readonly port: number
  readonly priority?: number
  readonly weight?: number
}

/**
 * What {@link DnsDiscovery} needs from a resolver: node's `dns.promises.Resolver` fits, and tests pass
 * a fake. Lookups that find nothing should reject with code `ENOTFOUND` (NXDOMAIN) or `ENODATA`
 * (the name exists but has no record of that type), as node's resolver does, or resolve to `[]`.
 */
export interface DnsResolver {
  resolve4(hostname: string): Promise<readonly string[]>
  resolve6(hostname: string): Promise<readonly string[]>
  resolveSrv(hostname: string): Promise<readonly DnsSrvRecord[]>
  /** Cancels every outstanding query of this resolver (they reject with `ECANCELLED`). */
  cancel?(): void
}

/**
 * Which records {@link DnsDiscovery} asks for.
 * - `A`, `AAAA`, `A+AAAA`: the addresses of the name, all on the configured `port`.
 * - `SRV`: host and port from each record; each target is resolved to its A and AAAA addresses.
 */
export type DnsRecordType = 'A' | 'AAAA' | 'A+AAAA' | 'SRV'

/** Settings of {@link DnsDiscovery}. */
export interface DnsDiscoveryOptions {
  /**
   * The DNS name to resolve. Use the fully qualified name, e.g. `shoal.default.svc.cluster.local`
   * (or `_shoal._tcp.shoal.default.svc.cluster.local` for SRV): resolver queries do not apply the
   * `search` domains of `/etc/resolv.conf`, so a short name like `shoal` does not resolve.
   */
  readonly name: string
  /**
   * The cluster port of every address found, for `A`, `AAAA` and `A+AAAA` (required there: address
   * records carry no port). Not allowed with `SRV`, whose records carry the port.
   */
  readonly port?: number
  /**
   * Default `A+AAAA`: both families are asked; either may be empty (an IPv4-only or IPv6-only
   * cluster answers ENODATA for the other family), so it works on single- and dual-stack clusters.
   */
  readonly type?: DnsRecordType
  /**
   * Poll interval in ms. Default 5000: Kubernetes DNS (CoreDNS) answers with a 5 s TTL by default,
   * so polling faster mostly sees the same answer.
   */
  readonly interval?: number
  /**
   * The resolver to ask. Default: a `dns.promises.Resolver` of this provider's own, using the system's
   * name servers, with a 2 s query timeout and 2 tries: a dead name server is reported after about
   * 6 s, where node's defaults (4 tries, doubling timeout) take about 27 s, and polls are 5 s apart.
   * When the `list()` signal aborts, the resolver's `cancel()` is called (if it has one), which
   * cancels *every* outstanding query of that resolver: do not share it with other code.
   */
  readonly resolver?: DnsResolver
}

/** The error codes of node's resolver that mean "no such record" rather than "could not ask". */
const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA'])
/** At most this many SRV targets are resolved at once. */
const TARGET_CONCURRENCY = 16
const NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$/
const TYPES: readonly DnsRecordType[] = ['A', 'AAAA', 'A+AAAA', 'SRV']

/** The outcome of asking for one record type: addresses, nothing (NXDOMAIN/ENODATA), or a failure. */
type Answer<T> = { readonly ok: true; readonly records: readonly T[] } | { readonly ok: false; readonly notFound: boolean; readonly error: unknown }

const codeOf = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

async function ask<T>(query: () => Promise<readonly T[]>): Promise<Answer<T>> {
  try {
    return { ok: true, records: await query() }
  } catch (error) {
    return { ok: false, notFound: NOT_FOUND.has(codeOf(error) ?? ''), error }
  }
}

const explain = (e: unknown): string => {
  const code = codeOf(e)
  const message = e instanceof Error ? e.message : String(e)
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message
}

/** Deduplicated, sorted by host then port (plain code-unit order, the same on every machine). */
function uniqueSorted(endpoints: Iterable<DiscoveredEndpoint>): DiscoveredEndpoint[] {
  const byKey = new Map<string, DiscoveredEndpoint>()
  for (const e of endpoints) byKey.set(`${e.host}\n${e.port}`, e)
  return [...byKey.values()].sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : a.port - b.port))
}

/** Rejects with the signal's reason as soon as it aborts; otherwise settles like `work`. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e instanceof Error ? e : new Error(String(e)))
      },
    )
  })
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/**
 * Lists nodes from DNS, every `interval` ms (default 5 s).
 *
 * With a Kubernetes headless service (`clusterIP: None`) selecting the Shoal pods,
 * `new DnsDiscovery({ name: 'shoal.default.svc.cluster.local', port: 7355 })` finds one address per
 * pod. Gotchas:
 * - A headless service publishes only *ready* pods unless it sets `publishNotReadyAddresses: true`.
 *   If the pods' readiness probe waits for the cluster to form, no pod ever becomes ready and none
 *   is published: either publish not-ready addresses or keep readiness independent of membership.
 * - Use the fully qualified name: resolver queries ignore the `search` domains of `/etc/resolv.conf`.
 * - With `SRV` (`_<port-name>._tcp.<service>.<namespace>.svc.cluster.local`, published for named
 *   service ports) each target is resolved again with A and AAAA queries; a target that is already an
 *   IP address is used as it is.
 *
 * `list()` returns endpoints deduplicated and sorted by host, then port. It throws a plain `Error`
 * saying what to check when nothing could be found (NXDOMAIN or no records for every family asked),
 * or when lookups failed (timeout, SERVFAIL) and found nothing. When one family answers and the
 * other fails, the answer is returned: discovery only adds candidates, so a partial list is useful.
 */
export class DnsDiscovery implements DiscoveryProvider {
  /** `dns:<name>`, for logs and metrics. */
  readonly name: string
  readonly interval: number
  readonly #host: string
  readonly #port: number | undefined
  readonly #type: DnsRecordType
  readonly #resolver: DnsResolver
  /** The resolver was made here, so `close()` may cancel it. */
  readonly #ownResolver: boolean

  /** @throws {ConfigError} for an invalid name, type, port or interval, or a missing `port` with address records. */
  constructor(options: DnsDiscoveryOptions) {
    const { name, port, type = 'A+AAAA', interval = 5000, resolver } = options
    if (typeof name !== 'string' || !NAME.test(name) || name.includes('..')) {
      throw new ConfigError(`DnsDiscovery name ${JSON.stringify(name)} is not a DNS name: use a fully qualified name such as shoal.default.svc.cluster.local.`)
    }
    if (!TYPES.includes(type)) throw new ConfigError(`DnsDiscovery type ${JSON.stringify(type)} is invalid: use ${TYPES.join(', ')}.`)
    if (type === 'SRV') {
      if (port !== undefined) throw new ConfigError(`DnsDiscovery for ${name}: SRV records carry the port; remove port (${port}) or use type A+AAAA.`)
    } else if (port === undefined) {
      throw new ConfigError(`DnsDiscovery for ${name}: ${type} records carry no port; set port to the nodes' cluster port, or use type SRV.`)
    } else if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ConfigError(`DnsDiscovery port ${port} is invalid: use 1..65535.`)
    }
    if (!Number.isFinite(interval) || interval <= 0) throw new ConfigError(`DnsDiscovery interval must be a positive number of ms (got ${interval}).`)
    this.name = `dns:${name}`
    this.interval = interval
    this.#host = name
    this.#port = port
    this.#type = type
    this.#ownResolver = resolver === undefined
    this.#resolver = resolver ?? new Resolver({ timeout: 2000, tries: 2 })
  }

  /**
   * Resolves the name now. Aborting `signal` rejects at once with its reason and cancels the
   * resolver's outstanding queries. Calls should not overlap (the cancel is resolver-wide).
   */
  async list(signal: AbortSignal): Promise<readonly DiscoveredEndpoint[]> {
    signal.throwIfAborted()
    const cancel = (): void => this.#resolver.cancel?.()
    signal.addEventListener('abort', cancel, { once: true })
    try {
      return await untilAborted(this.#type === 'SRV' ? this.#listSrv() : this.#listAddresses(), signal)
    } finally {
      signal.removeEventListener('abort', cancel)
    }
  }

  /** Cancels outstanding queries of the resolver this provider made itself; an injected one is left alone. */
  close(): void {
    if (this.#ownResolver) this.#resolver.cancel?.()
  }

  async #listAddresses(): Promise<DiscoveredEndpoint[]> {
    const port = this.#port!
    const families: readonly ('A' | 'AAAA')[] = this.#type === 'A' ? ['A'] : this.#type === 'AAAA' ? ['AAAA'] : ['A', 'AAAA']
    const { addresses, failures } = await this.#resolveAddresses(this.#host, families)
    if (addresses.length > 0) return uniqueSorted(addresses.map((host) => ({ host, port })))
    throw this.#nothingFound(this.#host, families.join(' or '), failures)
  }

  async #listSrv(): Promise<DiscoveredEndpoint[]> {
    const srv = await ask(() => this.#resolver.resolveSrv(this.#host))
    if (!srv.ok) throw this.#nothingFound(this.#host, 'SRV', [{ type: 'SRV', answer: srv }])
    const records = srv.records.filter(
      (r) => typeof r?.name === 'string' && r.name !== '' && r.name !== '.' && Number.isInteger(r.port) && r.port > 0 && r.port <= 65535,
    )
    if (records.length === 0) {
      throw new Error(`DNS ${this.#host}: no usable SRV records (target and port). Check that the service names its port and that pods are published.`)
    }
    const targets = [...new Set(records.map((r) => r.name))]
    const resolved = new Map<string, readonly string[]>()
    const failures: string[] = []
    await mapLimited(targets, TARGET_CONCURRENCY, async (target) => {
      if (isIP(target) !== 0) {
        resolved.set(target, [target])
        return
      }
      const { addresses, failures: f } = await this.#resolveAddresses(target, ['A', 'AAAA'])
      if (addresses.length > 0) resolved.set(target, addresses)
      else failures.push(`${target}: ${f.map((x) => (x.answer.ok ? `${x.type} empty` : `${x.type} ${explain(x.answer.error)}`)).join(', ')}`)
    })
    const endpoints = records.flatMap((r) => (resolved.get(r.name) ?? []).map((host) => ({ host, port: r.port })))
    if (endpoints.length > 0) return uniqueSorted(endpoints)
    throw new Error(`DNS ${this.#host}: SRV targets have no A or AAAA records (${failures.slice(0, 5).join('; ')}${failures.length > 5 ? '; …' : ''}).`)
  }

  /** A and/or AAAA for `host`, in parallel; `failures` lists the families that gave nothing. */
  async #resolveAddresses(
    host: string,
    families: readonly ('A' | 'AAAA')[],
  ): Promise<{ addresses: string[]; failures: { type: string; answer: Answer<string> }[] }> {
    const answers = await Promise.all(
      families.map(async (type) => ({ type, answer: await ask(() => (type === 'A' ? this.#resolver.resolve4(host) : this.#resolver.resolve6(host))) })),
    )
    const addresses: string[] = []
    const failures: { type: string; answer: Answer<string> }[] = []
    for (const { type, answer } of answers) {
      const valid = answer.ok ? answer.records.filter((a) => typeof a === 'string' && isIP(a) !== 0).map((a) => a.toLowerCase()) : []
      if (valid.length > 0) addresses.push(...valid)
      else failures.push({ type, answer })
    }
    return { addresses, failures }
  }

  /** The error for "nothing found": a lookup failure if there was one, else NXDOMAIN/ENODATA. */
  #nothingFound(host: string, what: string, failures: readonly { type: string; answer: Answer<unknown> }[]): Error {
    const hard = failures.find((f) => !f.answer.ok && !f.answer.notFound)
    if (hard !== undefined && !hard.answer.ok) {
      return new Error(
        `DNS ${hard.type} lookup of ${host} failed (${explain(hard.answer.error)}): check that the name servers in /etc/resolv.conf are reachable.`,
        {
          cause: hard.answer.error,
        },
      )
    }
    const first = failures.find((f) => !f.answer.ok)
    return new Error(
      `DNS ${host} has no ${what} records: check the name is fully qualified (e.g. <service>.<namespace>.svc.cluster.local) and that the service has ready endpoints (or publishNotReadyAddresses: true).`,
      first !== undefined && !first.answer.ok ? { cause: first.answer.error } : undefined,
    )
  }
}
