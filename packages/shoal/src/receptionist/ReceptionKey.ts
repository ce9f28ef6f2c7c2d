/**
 * ReceptionKey: the typed name under which actors are checked in with the receptionist.
 * @module
 */
import type { DistributedActor } from '../actor/DistributedActor.ts'
import { ConfigError } from '../errors.ts'
import { isValidKey } from './ReceptionistCodec.ts'

/**
 * A key actors are checked in under, typed by the actors it lists, so lookups return typed refs:
 *
 * ```ts
 * const lobbies = new ReceptionKey<GameLobby>('lobby')
 * system.receptionist.lookup(lobbies) // ActorRef<GameLobby>[]
 * ```
 *
 * Details: the id is 1..256 characters without control characters. Passing the class as well
 * (`new ReceptionKey('lobby', GameLobby)`) makes the refs check method names locally, as refs from
 * `system.resolve` do; without it, a call to an undeclared method fails on the actor's node.
 *
 * Gotcha: the type parameter is a promise of the caller, not checked across nodes: two nodes that
 * use one key id for different classes get refs that fail with `MethodNotDistributedError`.
 */
export class ReceptionKey<T extends DistributedActor = DistributedActor> {
  /** The key's name, shared by every node. */
  readonly id: string
  /** The class of the listed actors, when given: refs are then typed at run time too. */
  readonly actorClass: (abstract new (...args: never[]) => T) | undefined

  constructor(id: string, actorClass?: abstract new (...args: never[]) => T) {
    if (!isValidKey(id))
      throw new ConfigError(`Reception key ${JSON.stringify(String(id).slice(0, 80))} is invalid: use 1..256 characters without control characters.`)
    this.id = id
    this.actorClass = actorClass
  }

  toString(): string {
    return `ReceptionKey(${this.id})`
  }
}
