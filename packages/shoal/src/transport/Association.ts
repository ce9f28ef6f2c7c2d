/**
 * Association: everything this node holds for one peer endpoint: the chosen connection, the
 * outbound lanes, and the reconnect backoff.
 *
 * Outbound traffic has two lanes. The control lane (SWIM, membership, receptionist, watch)
 * is always written first. The user lane carries calls, replies and one-way messages; it is bounded
 * in bytes (full → `OverloadedError` at once), and messages larger than `fragmentSize` are cut into
 * fragments so a big payload delays control traffic by at most one fragment. Frames queued in one
 * job and the promise jobs it sets off are written with one `socket.write` (coalescing), on sockets with TCP_NODELAY;
 * once `flushThreshold` bytes are queued the batch is written at once, so sender and receiver
 * overlap instead of alternating.
 *
 * Before the handshake completes, messages wait in the same bounded lanes. After a failed connect,
 * sends fail fast with `NodeUnreachableError` until the backoff (exponential with jitter) expires.
 * @module
 */
import type { ClusterNode } from '../actor/ClusterNode.ts'
import { NodeUnreachableError, OverloadedError, SerializationError } from '../errors.ts'
import { Deque } from '../util/Deque.ts'
import { putU32 } from '../wire/Bytes.ts'
import { FrameType } from '../wire/Frame.ts'
import type { Connection } from './Connection.ts'

/**
 * One queued message: frame body = `head` + `body` (kept apart so an envelope header and an encoded
 * payload reach the batch buffer without being joined first). `uid` is the peer incarnation it is
 * meant for; `callId` lets the system fail it.
 */
export interface OutboundMessage {
  readonly type: number
  readonly head?: Uint8Array
  readonly body: Uint8Array
  readonly uid: string | undefined
  readonly callId: number | undefined
}

export type Lane = 'control' | 'user'

export interface AssociationSettings {
  readonly maxOutboundBytes: number
  readonly maxFrameSize: number
  readonly fragmentSize: number
  /** Queued user bytes at which a batch is written at once instead of at the end of the turn. */
  readonly flushThreshold: number
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
}

export interface AssociationHooks {
  /** Called for queued messages that will not be sent (connect failed, peer is another incarnation). */
  dropped(msg: OutboundMessage, error: Error): void
  bytesOut(n: number, frames: number): void
  now(): number
  random(): number
}

const BATCH_BUDGET = 256 * 1024
/** Scratch list of the messages of one batch (flushes never overlap: one thread). */
const BATCH: OutboundMessage[] = []
const MORE = Uint8Array.of(0)
const LAST = Uint8Array.of(1)

function sizeOf(m: OutboundMessage): number {
  return (m.head?.length ?? 0) + m.body.length
}

export class Association {
  readonly key: string
  readonly host: string
  readonly port: number
  state: 'idle' | 'connecting' | 'associated' | 'backoff' = 'idle'
  /** The peer incarnation, once a handshake completed. */
  peer: ClusterNode | undefined
  connection: Connection | undefined
  /** Outbound connection being dialed or handshaken. */
  dialing: Connection | undefined
  #failures = 0
  #retryAt = 0
  #lastError = ''
  #control: OutboundMessage[] = []
  #controlBytes = 0
  #user = new Deque<OutboundMessage>()
  #userBytes = 0
  #fragment: { msg: OutboundMessage; inner: Buffer; offset: number } | undefined
  #flushScheduled = false
  #waitingDrain = false
  #settings: AssociationSettings
  #hooks: AssociationHooks

  constructor(key: string, host: string, port: number, settings: AssociationSettings, hooks: AssociationHooks) {
    this.key = key
    this.host = host
    this.port = port
    this.#settings = settings
    this.#hooks = hooks
  }

  /** True while messages wait to be sent. */
  get hasQueued(): boolean {
    return this.#control.length > 0 || this.#user.length > 0 || this.#fragment !== undefined
  }

  /** Bytes queued on the user lane and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.#userBytes
  }

  /** True when a send right now should trigger a connection attempt. */
  get needsDial(): boolean {
    return this.state === 'idle' || (this.state === 'backoff' && this.#hooks.now() >= this.#retryAt)
  }

  /**
   * Queues a message. Throws `NodeUnreachableError` during backoff, `OverloadedError` when the lane
   * is full, `SerializationError` when the message exceeds maxFrameSize.
   */
  enqueue(lane: Lane, msg: OutboundMessage): void {
    if (this.state === 'backoff' && this.#hooks.now() < this.#retryAt) {
      throw new NodeUnreachableError(
        `Node ${this.key} is unreachable (${this.#lastError}); next connection attempt in ${Math.ceil(this.#retryAt - this.#hooks.now())} ms.`,
      )
    }
    const size = sizeOf(msg)
    if (size + 1 > this.#settings.maxFrameSize) {
      throw new SerializationError(
        `Message of ${size} bytes exceeds maxFrameSize (${this.#settings.maxFrameSize}): send less data per call, or raise maxFrameSize on every node.`,
      )
    }
    if (lane === 'control') {
      // Control traffic is small and periodic; a backlog this large means the peer is gone or stuck.
      if (this.#controlBytes + size > this.#settings.maxOutboundBytes) {
        throw new OverloadedError(`Control queue to ${this.key} is full (${this.#controlBytes} bytes): the peer is not reading.`)
      }
      this.#control.push(msg)
      this.#controlBytes += size
    } else {
      const inSocket = this.connection?.socket.writableLength ?? 0
      if (this.#userBytes + inSocket + size > this.#settings.maxOutboundBytes) {
        throw new OverloadedError(
          `Outbound queue to ${this.key} is full (${this.#userBytes + inSocket} bytes, maxOutboundBytes ${this.#settings.maxOutboundBytes}): the peer or network is slower than the sender; back off and retry.`,
        )
      }
      this.#user.push(msg)
      this.#userBytes += size
    }
    // Coalesce per job (see #scheduleFlush), but write early once a batch is big: the peer starts on the
    // first part while this side produces the rest, instead of both taking turns being idle.
    if (this.#userBytes >= this.#settings.flushThreshold && this.state === 'associated' && !this.#waitingDrain) this.#flush()
    else this.#scheduleFlush()
  }

  /** A handshake completed on `conn` with `peer`: switch to it and flush what waited. */
  established(conn: Connection, peer: ClusterNode): void {
    this.#lastError = ''
    this.connection = conn
    this.peer = peer
    this.state = 'associated'
    this.#failures = 0
    this.#waitingDrain = false
    // A large message cut short by the connection swap starts over on the new connection; the
    // receiver's partial copy lived with the old connection.
    if (this.#fragment) this.#fragment.offset = 0
    this.#dropNotFor(peer.uid)
    this.#scheduleFlush()
  }

  /** Why the last connection attempt failed, while not associated since; undefined otherwise. */
  get connectProblem(): string | undefined {
    return this.state === 'associated' || this.#lastError === '' ? undefined : this.#lastError
  }

  /** A connect attempt failed: back off, and fail everything that waited. */
  connectFailed(reason: string): void {
    this.state = 'backoff'
    this.#lastError = reason
    this.#failures++
    const exp = Math.min(this.#settings.backoffMaxMs, this.#settings.backoffBaseMs * 2 ** (this.#failures - 1))
    this.#retryAt = this.#hooks.now() + exp * (0.8 + 0.4 * this.#hooks.random())
    this.dropAll(new NodeUnreachableError(`Could not connect to ${this.key}: ${reason}.`))
  }

  /** The established connection was lost; the next send reconnects. */
  lost(): void {
    this.connection = undefined
    this.state = 'idle'
  }

  /** Ends a reconnect backoff early: the next send dials. */
  retryNow(): void {
    if (this.state === 'backoff') this.state = 'idle'
  }

  /** Fails and forgets every queued message. */
  dropAll(error: Error): void {
    const all = [...this.#control, ...(this.#fragment ? [this.#fragment.msg] : []), ...this.#user.drain()]
    this.#control = []
    this.#controlBytes = 0
    this.#userBytes = 0
    this.#fragment = undefined
    for (const msg of all) this.#hooks.dropped(msg, error)
  }

  #dropNotFor(uid: string): void {
    const keep = (m: OutboundMessage): boolean => m.uid === undefined || m.uid === uid
    const dropped: OutboundMessage[] = []
    if (this.#fragment && !keep(this.#fragment.msg)) {
      dropped.push(this.#fragment.msg)
      this.#fragment = undefined
    }
    this.#control = this.#control.filter((m) => keep(m) || (dropped.push(m), false))
    this.#controlBytes = this.#control.reduce((n, m) => n + sizeOf(m), 0)
    const user = this.#user.drain()
    this.#userBytes = 0
    for (const m of user) {
      if (keep(m)) {
        this.#user.push(m)
        this.#userBytes += sizeOf(m)
      } else dropped.push(m)
    }
    for (const m of dropped)
      this.#hooks.dropped(m, new NodeUnreachableError(`Node at ${this.key} is now incarnation ${uid}; the addressed incarnation ${m.uid} is gone.`))
  }

  /**
   * Writes what is queued once the current job and every promise job it set off have run: a
   * microtask that schedules a nextTick, which Node runs only after the microtask queue is empty.
   * So a batch gathers the replies of a mailbox draining turn after turn in one tick (a microtask
   * alone would write after the first turn), without waiting for the next event-loop iteration as
   * setImmediate does (a whole loop turn of latency on every lone call).
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.state !== 'associated' || this.#waitingDrain) return
    this.#flushScheduled = true
    queueMicrotask(this.#afterJobs)
  }

  readonly #afterJobs = (): void => process.nextTick(this.#flushNow)
  readonly #flushNow = (): void => this.#flush()

  #flush(): void {
    this.#flushScheduled = false
    const conn = this.connection
    // A flush scheduled before the socket filled up waits for its drain like the rest (writing
    // anyway would grow the socket's buffer past the budget and add a drain listener per flush).
    if (this.state !== 'associated' || !conn || conn.closed || this.#waitingDrain) return
    // Choose the batch (control first), then copy every frame into one buffer: one allocation and
    // one write per batch, and no per-frame objects except for fragments of large messages.
    const batch = BATCH
    batch.length = 0
    let size = 0
    for (const m of this.#control) {
      batch.push(m)
      size += 5 + sizeOf(m)
    }
    this.#control = []
    this.#controlBytes = 0
    while (size < BATCH_BUDGET && (this.#fragment || this.#user.length > 0)) {
      if (this.#fragment) {
        // The next piece of a large message, framed as Fragment: u8 flags (bit 0 = last) + bytes.
        const f = this.#fragment
        const end = Math.min(f.inner.length, f.offset + this.#settings.fragmentSize)
        const last = end === f.inner.length
        const piece: OutboundMessage = {
          type: FrameType.Fragment,
          head: last ? LAST : MORE,
          body: f.inner.subarray(f.offset, end),
          uid: undefined,
          callId: undefined,
        }
        f.offset = end
        if (last) this.#fragment = undefined
        batch.push(piece)
        size += 5 + sizeOf(piece)
        continue
      }
      const m = this.#user.shift()!
      const length = sizeOf(m)
      this.#userBytes -= length
      if (length + 1 > this.#settings.fragmentSize) {
        const inner = Buffer.allocUnsafe(length + 1)
        inner[0] = m.type
        if (m.head) inner.set(m.head, 1)
        inner.set(m.body, 1 + (m.head?.length ?? 0))
        this.#fragment = { msg: m, inner, offset: 0 }
      } else {
        batch.push(m)
        size += 5 + length
      }
    }
    const frameCount = batch.length
    if (frameCount === 0) return
    const out = Buffer.allocUnsafe(size)
    let pos = 0
    for (const m of batch) {
      putU32(out, pos, sizeOf(m) + 1)
      out[pos + 4] = m.type
      pos += 5
      if (m.head) {
        out.set(m.head, pos)
        pos += m.head.length
      }
      out.set(m.body, pos)
      pos += m.body.length
    }
    batch.length = 0
    this.#hooks.bytesOut(size, frameCount)
    const ok = conn.write(out)
    const more = this.#fragment !== undefined || this.#user.length > 0 || this.#control.length > 0
    if (!ok) {
      this.#waitingDrain = true
      conn.socket.once('drain', () => {
        this.#waitingDrain = false
        this.#scheduleFlush()
      })
    } else if (more) this.#scheduleFlush()
  }
}
