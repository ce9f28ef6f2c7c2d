/**
 * PluginHost: starts a system's plugins in order, publishes their facades, feeds them cluster and
 * actor lifecycle events, and stops them in reverse order at shutdown. A throwing hook is logged
 * and ignored; a failing `start` fails `ClusterSystem.start`.
 * @module
 */
import type { Logger } from 'pino'
import type { ActorId } from '../actor/ActorId.ts'
import type { DistributedActor } from '../actor/DistributedActor.ts'
import type { Cluster } from '../cluster/Cluster.ts'
import { ConfigError } from '../errors.ts'
import type { Plugin, PluginContext } from './Plugin.ts'

/**
 * The facades of Shoal's own plugins, by property, with how to install each. Until its plugin
 * publishes it, reading one of these on a system throws a ConfigError saying so, rather than
 * handing back `undefined` (the augmented type says it is always there).
 */
const BUILTIN_FACADES: Readonly<Record<string, { readonly plugin: string; readonly install: string }>> = {
  singleton: { plugin: 'singleton', install: 'singletonPlugin()' },
  journal: { plugin: 'journal', install: 'journalPlugin({ store: new MemoryEventStore() }) (or a SQLite/PostgreSQL store)' },
}

/** The error reading built-in facade `facade` throws on a system without its plugin. */
function missingFacadeError(facade: string, { plugin, install }: { readonly plugin: string; readonly install: string }): ConfigError {
  return new ConfigError(`system.${facade} needs the ${plugin} plugin, which this system was started without: ClusterSystem.start({ plugins: [${install}] }).`)
}

export class PluginHost {
  readonly #entries: { plugin: Plugin; facade: unknown }[] = []
  readonly #log: Logger

  constructor(log: Logger) {
    this.#log = log
  }

  get names(): string[] {
    return this.#entries.map((e) => e.plugin.name)
  }

  /**
   * Starts `plugins` in order. `owner` is the object facades are published on; `context` makes each
   * plugin's context (its own logger).
   */
  async start(plugins: readonly Plugin[], owner: object, context: (log: Logger) => PluginContext, cluster: Cluster | undefined): Promise<void> {
    const names = new Set<string>()
    // Built-in facades no plugin published (yet) throw a ConfigError naming the plugin to install.
    const placeholders = new Set<string>()
    for (const [facade, known] of Object.entries(BUILTIN_FACADES)) {
      if (facade in owner) continue
      placeholders.add(facade)
      Object.defineProperty(owner, facade, {
        get: () => {
          throw missingFacadeError(facade, known)
        },
        enumerable: false,
        configurable: true,
      })
    }
    for (const plugin of plugins) {
      if (names.has(plugin.name)) throw new ConfigError(`Two plugins are named "${plugin.name}": plugin names must be unique.`)
      names.add(plugin.name)
      if (plugin.facade !== undefined && plugin.facade in owner && !placeholders.has(plugin.facade))
        throw new ConfigError(`Plugin "${plugin.name}" wants to publish "${plugin.facade}", which the system already has.`)
      const facade = await plugin.start(context(this.#log.child({ plugin: plugin.name })))
      this.#entries.push({ plugin, facade })
      if (plugin.facade !== undefined) {
        placeholders.delete(plugin.facade)
        Object.defineProperty(owner, plugin.facade, { value: facade, enumerable: true, configurable: false, writable: false })
      }
      this.#log.debug({ plugin: plugin.name }, 'plugin started')
    }
    if (cluster && this.#entries.some((e) => e.plugin.onClusterEvent)) {
      const events = cluster.events()
      void (async () => {
        for await (const e of events) this.#each('onClusterEvent', (p) => p.onClusterEvent?.(e))
      })()
    }
  }

  /** The facade of plugin `name`; ConfigError if none is installed. */
  facade(name: string): unknown {
    const entry = this.#entries.find((e) => e.plugin.name === name)
    if (!entry) throw new ConfigError(`No plugin named "${name}" is installed: pass it in ClusterSystem.start({ plugins: [...] }).`)
    return entry.facade
  }

  actorReady(id: ActorId, actor: DistributedActor): void {
    this.#each('onActorReady', (p) => p.onActorReady?.(id, actor))
  }

  actorStopped(id: ActorId, actor: DistributedActor): void {
    this.#each('onActorStopped', (p) => p.onActorStopped?.(id, actor))
  }

  /** Stops every started plugin, last first; a failure is logged and the others still stop. */
  async stop(): Promise<void> {
    for (const { plugin, facade } of [...this.#entries].reverse()) {
      try {
        await plugin.stop?.(facade)
      } catch (e) {
        this.#log.error({ err: e, plugin: plugin.name }, 'a plugin failed to stop')
      }
    }
  }

  #each(hook: string, call: (p: Plugin) => void): void {
    for (const { plugin } of this.#entries) {
      try {
        call(plugin)
      } catch (e) {
        this.#log.error({ err: e, plugin: plugin.name, hook }, 'a plugin hook threw')
      }
    }
  }
}
