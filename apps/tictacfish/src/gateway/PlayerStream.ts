/**
 * The distributed face of one client stream on the gateway: what NetworkPlayers call to send the
 * client a line. It only hands each call to its StreamSession (which owns the stream's state) and
 * never blocks a caller.
 */
import { DistributedActor, distributed } from 'shoal'
import type { GameMove, LobbyMessage } from '../protocol/Messages.ts'

/** What a PlayerStream delivers to; implemented by StreamSession. */
export interface StreamSink {
  /** A lobby line for the client. */
  lobbyLine(message: LobbyMessage): void
  /** The opponent's move `index` of game `sessionId` (sent unless the client has it). */
  opponentMove(sessionId: string, index: number, move: GameMove): void
  /** Ends the stream. */
  close(reason: string): void
}

export class PlayerStream extends DistributedActor {
  constructor(private readonly sink: StreamSink) {
    super()
  }

  /** A lobby line for the client. */
  @distributed async push(message: LobbyMessage): Promise<void> {
    this.sink.lobbyLine(message)
  }

  /** The opponent's move `index` of game `sessionId`. */
  @distributed async pushMove(sessionId: string, index: number, move: GameMove): Promise<void> {
    this.sink.opponentMove(sessionId, index, move)
  }

  /** Ends the stream (replaced by a newer one of the same player). */
  @distributed async close(reason: string): Promise<void> {
    this.sink.close(reason)
  }
}
