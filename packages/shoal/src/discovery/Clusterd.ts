/**
 * `clusterd`: a rendezvous daemon (127.0.0.1:3137 by default), like Erlang's epmd. Nodes started
 * with `cluster: { clusterd: true }` register their endpoint with it every couple of seconds and
 * get back the endpoints registered recently, which they join. The daemon is a cluster system
 * (same secret, same authenticated transport) but not a cluster member: it never counts toward a
 * majority or leads.
 *
 * Start one with `npx shoal clusterd` or `ClusterSystem.startClusterDaemon()`.
 * @module
 */
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { endpointKey, isValidHost } from '../actor/ClusterNode.ts'
import type { ControlChannel } from '../control/ControlChannel.ts'
import { ControlKind } from '../control/ControlKind.ts'
import { ControlStreamLink } from '../swim/ControlStreamLink.ts'
import { parseAddress } from '../swim/SwimMember.ts'
import { SECRET_PROBLEM } from '../wire/Handshake.ts'
import type { DiscoveredEndpoint, DiscoveryProvider } from './Discovery.ts'

/** Where clusterd listens unless told otherwise (the reference's port). */
export const DEFAULT_CLUSTERD: DiscoveredEndpoint = { host: '127.0.0.1', port: 3137 }
/** A registration lasts this long without renewal. */
const REGISTRATION_TTL = 15_000
const MAX_REGISTRATIONS = 10_000

/** The daemon's registry, served over the control lane of its system. */
export class ClusterdDirectory {
  readonly #registrations = new Map<string, { endpoint: DiscoveredEndpoint; at: number }>()

  constructor(channel: ControlChannel) {
    const link = new ControlStreamLink(channel, ControlKind.Clusterd)
    link.serve((body) => this.#register(body))
  }

  /** Endpoints registered within the TTL. */
  get endpoints(): DiscoveredEndpoint[] {
    this.#expire()
    return [...this.#registrations.values()].map((r) => r.endpoint)
  }

  #register(body: Buffer): Buffer | undefined {
    const endpoint = parseEndpoint(body)
    if (!endpoint) return undefined
    this.#expire()
    const key = endpointKey(endpoint)
    if (this.#registrations.size < MAX_REGISTRATIONS || this.#registrations.has(key)) this.#registrations.set(key, { endpoint, at: performance.now() })
    return Buffer.from(JSON.stringify(this.endpoints))
  }

  #expire(): void {
    const horizon = performance.now() - REGISTRATION_TTL
    for (const [k, r] of this.#registrations) if (r.at < horizon) this.#registrations.delete(k)
  }
}

/** Registers with a clusterd and lists what it knows. Built by the cluster for `clusterd: true`. */
export class ClusterdDiscovery implements DiscoveryProvider {
  readonly name: string
  readonly interval: number
  readonly #daemon: DiscoveredEndpoint
  readonly #self: ClusterNode
  readonly #link: ControlStreamLink
  readonly #channel: ControlChannel

  constructor(channel: ControlChannel, self: ClusterNode, daemon: DiscoveredEndpoint = DEFAULT_CLUSTERD, interval = 2000) {
    this.#daemon = daemon
    this.#self = self
    this.interval = interval
    this.name = `clusterd:${endpointKey(daemon)}`
    this.#link = new ControlStreamLink(channel, ControlKind.Clusterd)
    this.#channel = channel
  }

  async list(): Promise<readonly DiscoveredEndpoint[]> {
    const me = Buffer.from(JSON.stringify({ host: this.#self.endpoint.host, port: this.#self.endpoint.port }))
    let reply: Buffer
    try {
      reply = await this.#link.request(this.#daemon, me, 3000)
    } catch (e) {
      throw new Error(this.#unanswered((e as Error).message), { cause: e })
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(reply.toString('utf8'))
    } catch {
      throw new Error(`clusterd at ${endpointKey(this.#daemon)} answered with malformed JSON`)
    }
    if (!Array.isArray(parsed)) throw new Error(`clusterd at ${endpointKey(this.#daemon)} answered with something other than a list`)
    return parsed.flatMap((e) => {
      const ep = parseEndpoint(Buffer.from(JSON.stringify(e)))
      return ep ? [ep] : []
    })
  }

  /** Why clusterd did not answer, and what to do: start it, or fix what made it refuse this node. */
  #unanswered(error: string): string {
    const at = `clusterd at ${endpointKey(this.#daemon)}`
    const problem = this.#channel.connectProblem?.(this.#daemon)
    if (problem?.startsWith(SECRET_PROBLEM)) {
      return `${at} is running but refused this node because their cluster secrets do not match (${problem}). Start clusterd with the same SHOAL_SECRET (or --secret-file) as the nodes.`
    }
    if (problem !== undefined && !/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|did not complete/.test(problem)) {
      return `${at} is running but the connection to it was refused (${problem}).`
    }
    return `${at} did not answer (${problem ?? error}): start it with \`npx shoal clusterd\` (with the same SHOAL_SECRET as the nodes).`
  }

  close(): Promise<void> {
    return this.#link.close()
  }
}

function parseEndpoint(body: Buffer): DiscoveredEndpoint | undefined {
  if (body.length > 1024) return undefined
  let v: unknown
  try {
    v = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const { host, port } = v as { host?: unknown; port?: unknown }
  if (!isValidHost(host) || !Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) return undefined
  return { host, port: port as number }
}

/** Parses `host:port` for `--clusterd`; the default daemon without an argument. */
export function clusterdAddress(spec: string | true): DiscoveredEndpoint {
  return spec === true || spec === '' ? DEFAULT_CLUSTERD : parseAddress(spec)
}
