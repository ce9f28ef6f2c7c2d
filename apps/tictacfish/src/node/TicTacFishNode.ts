/**
 * One TicTacFish cluster node: a Shoal ClusterSystem with the singleton, virtual-actor and journal
 * plugins, hosting what its roles say. Written only against Shoal's public API, as an application
 * would be.
 *
 * | Role | Hosts |
 * |---|---|
 * | `gateway` | the HTTP/WebSocket gateway (Gateway.ts) and one PlayerStream actor per client stream |
 * | `players` | `NetworkPlayer` (keyed by player id) and `GameSession` (keyed by session id) virtual actors |
 * | `lobby` | the `GameLobby` singleton (`matchmaking_lobby`), on the oldest node with the role |
 *
 * A node may have several roles (the tests run one node with all three).
 */

import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { PostgresEventStore } from '@shoal/journal-postgres'
import { SqliteEventStore } from '@shoal/journal-sqlite'
import type { Logger } from 'pino'
import { type ActorRef, ClusterSystem, type ClusterSystemSettings, type EventStore, journalPlugin, singletonPlugin, virtualActorsPlugin } from 'shoal'
import { GameSession, type SessionLinks } from '../game/GameSession.ts'
import { Gateway, type GatewaySettings } from '../gateway/Gateway.ts'
import { LobbyFeed } from '../gateway/LobbyFeed.ts'
import { PlayerStream } from '../gateway/PlayerStream.ts'
import { GameLobby, type LobbyLinks } from '../lobby/GameLobby.ts'
import type { LobbySettings } from '../lobby/Lobby.ts'
import { NetworkPlayer, type PlayerLinks } from '../player/NetworkPlayer.ts'
import { uiFiles } from '../ui/bundle.ts'

/** How often a gateway renews its subscription to the lobby's broadcasts (ms). */
const FEED_RENEW = 3000

export type Role = 'gateway' | 'players' | 'lobby'
export const ROLES: readonly Role[] = ['gateway', 'players', 'lobby']

/** The lobby singleton's name (the seed's persistence id). */
export const LOBBY = 'matchmaking_lobby'

export interface TicTacFishNodeOptions {
  readonly roles: readonly Role[]
  /** Shoal's settings (address, seeds or clusterd, secret, logger…); roles and plugins are added. */
  readonly system?: ClusterSystemSettings
  /** `sqlite:<file>` (default `sqlite:./data/tictacfish.db`, shared by the nodes of one machine), `postgres://…`, or a store. */
  readonly journal?: string | EventStore
  /** The gateway's HTTP settings (port 8080 by default). */
  readonly gateway?: GatewaySettings
  readonly lobby?: Partial<LobbySettings>
  /** Time after a crashed node is downed before its lobby or actors start elsewhere (ms; Shoal's default). */
  readonly downMargin?: number
  /** Idle time before a player or session is passivated (ms; Shoal's default: 2 min). */
  readonly idleTimeout?: number
}

export interface TicTacFishNode {
  readonly system: ClusterSystem
  readonly gateway: Gateway | undefined
  readonly lobby: ActorRef<GameLobby>
  /** Leaves the cluster gracefully (hand-over), then stops everything. */
  stop(): Promise<void>
}

export async function startTicTacFishNode(options: TicTacFishNodeOptions): Promise<TicTacFishNode> {
  const roles = [...new Set(options.roles)]
  const store = await openJournal(options.journal ?? 'sqlite:./data/tictacfish.db')
  const settings = options.system ?? {}
  const system = await ClusterSystem.start({
    ...settings,
    cluster: { ...settings.cluster, roles: [...(settings.cluster?.roles ?? []), ...roles] },
    plugins: [
      ...(settings.plugins ?? []),
      singletonPlugin(margin(options.downMargin)),
      virtualActorsPlugin(margin(options.downMargin)),
      journalPlugin({ store: store.store }),
    ],
  })
  const log = system.log as Logger
  const session = (id: string): ActorRef<GameSession> => system.virtualActors.get(GameSession, id, { type: 'GameSession' })
  const player = (key: string): ActorRef<NetworkPlayer> => system.virtualActors.get(NetworkPlayer, key, { type: 'NetworkPlayer' })

  const lobbyLinks: LobbyLinks = {
    send: (to, message) => player(to.playerId.toLowerCase()).tell('lobbyMessage', message),
    startSession: async (game) => {
      try {
        await session(game.sessionId).start(game)
      } catch (e) {
        // Its players start it with their first move (NetworkPlayer.move) if this did not.
        log.warn({ err: e, session: game.sessionId }, 'could not start a game session; its first move will')
      }
    },
    now: () => performance.now(),
    random: Math.random,
  }
  const lobby = roles.includes('lobby')
    ? system.singleton.host(LOBBY, (s) => s.spawn(GameLobby, lobbyLinks, options.lobby ?? {}), { role: 'lobby' })
    : system.singleton.proxy(GameLobby, LOBBY, { role: 'lobby' })

  if (roles.includes('players')) {
    const playerLinks: PlayerLinks = { lobby, session }
    const sessionLinks: SessionLinks = {
      opponentMoved: (playerId, sessionId, index, move) => player(playerId.toLowerCase()).tell('opponentMoved', sessionId, index, move),
      // Until the lobby has it (a lobby failing over may take a while), or this node stops.
      completed: (game) =>
        retry(
          () => lobby.sessionCompleted(game),
          () => stopping !== undefined,
        ),
    }
    const idle = options.idleTimeout === undefined ? {} : { idleTimeout: options.idleTimeout }
    system.virtualActors.host(NetworkPlayer, (id) => new NetworkPlayer(id, playerLinks), { role: 'players', type: 'NetworkPlayer', ...idle })
    system.virtualActors.host(GameSession, (id) => new GameSession(id, sessionLinks), { role: 'players', type: 'GameSession', ...idle })
  }

  const gateway = roles.includes('gateway')
    ? await Gateway.start(
        { player, spawnStream: (sink) => system.spawn(PlayerStream, sink), stopStream: (ref) => void system.stop(ref) },
        { ui: await uiFiles(), ...options.gateway },
        log,
      )
    : undefined

  // The gateway's feed of lobby broadcasts, subscribed now and renewed every few seconds.
  let renew: NodeJS.Timeout | undefined
  if (gateway) {
    const feed = system.spawn(LobbyFeed, (message, except) => gateway.broadcast(message, except))
    const subscribe = (): void => void lobby.subscribe(feed).catch((e: unknown) => log.debug({ err: e }, 'lobby feed subscription failed; trying again'))
    subscribe()
    renew = setInterval(subscribe, FEED_RENEW)
    renew.unref()
  }

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      clearInterval(renew)
      await gateway?.close()
      await system.cluster.leave().catch(() => undefined)
      await system.shutdown()
      await store.close()
    })())
  return { system, gateway, lobby, stop }
}

const margin = (downMargin: number | undefined): { downMargin?: number } => (downMargin === undefined ? {} : { downMargin })

async function openJournal(journal: string | EventStore): Promise<{ store: EventStore; close(): Promise<void> }> {
  if (typeof journal !== 'string') return { store: journal, close: async () => {} }
  if (/^postgres(ql)?:\/\//.test(journal)) {
    const store = await PostgresEventStore.open(journal)
    return { store, close: () => store.close() }
  }
  const file = journal.startsWith('sqlite:') ? journal.slice('sqlite:'.length) : journal
  mkdirSync(dirname(file), { recursive: true })
  const store = SqliteEventStore.open(file)
  return { store, close: () => store.close() }
}

/** Calls `fn` until it succeeds or `stopped()`, 1 s apart at first, then up to 5 s (fails with the last error once stopped). */
async function retry(fn: () => Promise<unknown>, stopped: () => boolean): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await fn()
      return
    } catch (e) {
      if (stopped()) throw e
      await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** Math.min(i, 3), 5000)).unref())
    }
  }
}
