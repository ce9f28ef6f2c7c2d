/**
 * `GET /cluster/events`: this node's membership events as Server-Sent Events, for the dashboard and
 * for tools (`curl -N`, `new EventSource(…)`): a `snapshot` first (the members as `/cluster/members`
 * gives them), then `member` (a status change, with the previous status), `reachability` and
 * `leader`, in the order this node saw them, and this node's own moves: `singleton` (an instance
 * activated or passivated here) and `shards` (a newer shard table adopted: how many shards moved,
 * gained, lost), each `data:` one JSON line. Every node's page shows its own moves; the
 * membership events are the same everywhere.
 *
 * Bounded: at most `maxStreams` at once per node (beyond: 503), a comment line every 15 s keeps
 * proxies from closing an idle stream, and a client that stops reading (more than 1 MiB queued) is
 * cut off rather than buffered. Nothing is computed for the events while no stream is open.
 * @module
 */
import type { ServerResponse } from 'node:http'
import type { ClusterEvent } from '../cluster/Cluster.ts'
import type { ClusterMember } from '../cluster/Member.ts'
import { type ShardTableMessage, type SingletonChangeMessage, shardTableChannel, singletonChangeChannel } from '../observability/Channels.ts'
import type { ClusterSystem } from '../system/ClusterSystem.ts'

/** Idle streams get a comment line this often, ms. */
const KEEP_ALIVE = 15_000
/** A client with this many bytes unread is cut off. */
const MAX_QUEUED = 1024 * 1024

export class ClusterEventStream {
  readonly #open = new Set<ServerResponse>()
  readonly #max: number
  readonly #json: (m: ClusterMember) => unknown

  constructor(maxStreams: number, memberJson: (m: ClusterMember) => unknown) {
    this.#max = maxStreams
    this.#json = memberJson
  }

  /** Streams open now. */
  get open(): number {
    return this.#open.size
  }

  /** False when `maxStreams` are open already (the caller answers 503). */
  accepts(): boolean {
    return this.#open.size < this.#max
  }

  /** Serves one stream until the client goes or the server closes. */
  serve(system: ClusterSystem, res: ServerResponse): void {
    this.#open.add(res)
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Content-Type-Options': 'nosniff',
      'X-Accel-Buffering': 'no',
    })
    const send = (type: string, data: unknown): void => {
      if (res.writableLength > MAX_QUEUED) return void res.destroy()
      res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`)
    }
    const { self, leader, members } = system.cluster.membership
    send('snapshot', { self: this.#json(self), leader: leader ? this.#json(leader) : null, members: members.map(this.#json) })
    const unsubscribeCluster = system.cluster.subscribe((e) => this.#event(e, send))
    const unsubscribeMoves = subscribeMoves(system.node.uid, send)
    const unsubscribe = (): void => {
      unsubscribeCluster()
      unsubscribeMoves()
    }
    const ping = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE)
    ping.unref()
    res.once('close', () => {
      unsubscribe()
      clearInterval(ping)
      this.#open.delete(res)
    })
  }

  #event(e: ClusterEvent, send: (type: string, data: unknown) => void): void {
    if (e.type === 'member') send('member', { member: this.#json(e.member), previous: e.previous ?? null })
    else if (e.type === 'reachability') send('reachability', { member: this.#json(e.member) })
    else if (e.type === 'leader') send('leader', { leader: e.leader ? this.#json(e.leader) : null })
  }
}

/**
 * Singleton and shard moves this node makes, as `singleton` and `shards` events (from the
 * `shoal:singleton:change` and `shoal:virtual:table` channels, subscribed while the stream is open).
 */
function subscribeMoves(uid: string, send: (type: string, data: unknown) => void): () => void {
  const address = (m: { self: { endpoint: { host: string; port: number } } }): string => `${m.self.endpoint.host}:${m.self.endpoint.port}`
  const singleton = (message: unknown): void => {
    const m = message as SingletonChangeMessage
    if (m.self.uid === uid) send('singleton', { node: address(m), singleton: m.singleton, event: m.event, instance: m.instance })
  }
  const shards = (message: unknown): void => {
    const m = message as ShardTableMessage
    if (m.self.uid === uid) send('shards', { node: address(m), role: m.role, version: m.version, moved: m.moved, gained: m.gained, lost: m.lost })
  }
  singletonChangeChannel.subscribe(singleton)
  shardTableChannel.subscribe(shards)
  return () => {
    singletonChangeChannel.unsubscribe(singleton)
    shardTableChannel.unsubscribe(shards)
  }
}
