/**
 * Discovery: where a node looks for others to join. A provider lists endpoints; the cluster polls
 * every provider continuously and joins endpoints that are not members yet. Disappearance from a
 * listing means nothing: membership and failure detection decide who is gone.
 * @module
 */

/** A place a node can be reached: its cluster port (TCP, and UDP for SWIM, same number). */
export interface DiscoveredEndpoint {
  readonly host: string
  readonly port: number
}

/**
 * A source of endpoints. `list()` is called every `interval` ms; it should return what it sees now
 * and throw (with a message that says what to fix) when it cannot tell.
 */
export interface DiscoveryProvider {
  /** For logs and metrics, e.g. `seeds`, `clusterd`, `dns:shoal.default.svc`, `k8s:app=shoal`. */
  readonly name: string
  /** Poll interval in ms. */
  readonly interval: number
  list(signal: AbortSignal): Promise<readonly DiscoveredEndpoint[]>
  /** Releases what the provider holds (sockets, timers). */
  close?(): Promise<void> | void
}

/** Fixed seed endpoints (`host:port`). */
export class StaticDiscovery implements DiscoveryProvider {
  readonly name = 'seeds'
  readonly interval: number
  readonly #endpoints: readonly DiscoveredEndpoint[]

  constructor(endpoints: readonly DiscoveredEndpoint[], interval = 5000) {
    this.#endpoints = endpoints
    this.interval = interval
  }

  list(): Promise<readonly DiscoveredEndpoint[]> {
    return Promise.resolve(this.#endpoints)
  }
}
