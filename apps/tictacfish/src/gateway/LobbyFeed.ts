/**
 * A gateway's subscription to the lobby's broadcasts: the lobby sends each "everyone but …" line
 * once per gateway, and the feed writes it to that gateway's lobby streams. The gateway renews the
 * subscription every few seconds, which is also how a lobby that just took over learns its feeds.
 */
import { DistributedActor, distributed } from 'shoal'
import type { LobbyMessage } from '../protocol/Messages.ts'

export class LobbyFeed extends DistributedActor {
  constructor(private readonly deliver: (message: LobbyMessage, except: readonly string[]) => void) {
    super()
  }

  /** A line for every lobby stream here but those of the `except` players (keys: lower-case ids). */
  @distributed async broadcast(message: LobbyMessage, except: readonly string[]): Promise<void> {
    this.deliver(message, except)
  }
}
