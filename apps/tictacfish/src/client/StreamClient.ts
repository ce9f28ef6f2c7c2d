/**
 * A Node client of the JSONL API: one `/matchmaking` or `/game` request with a request body that
 * stays open (lines written over time) and a response read line by line as it arrives, on one
 * HTTP/1.1 connection. Used by the bots, the load benchmark and the tests.
 */
import { request } from 'node:http'
import { LineSplitter } from '../gateway/LineSplitter.ts'
import type { GameMove, Player, PlayerStatusUpdate } from '../protocol/Messages.ts'

export interface StreamClientOptions {
  /** `http://host:port` of a gateway. */
  readonly url: string
  readonly player: Player
  /** Heartbeat period (ms); the seed's client sends one at once, then every 15 s. 0: none but the first. */
  readonly heartbeat?: number
  /**
   * Keep only lines containing this text (a load generator's thousand lobby streams need only the
   * session updates): a chunk of whole lines without it is dropped before it is split or decoded.
   */
  readonly only?: string
}

export class StreamClient {
  readonly #lines: string[] = []
  readonly #waiters = new Set<() => void>()
  #listener: (() => void) | undefined
  readonly #req: ReturnType<typeof request>
  #heartbeat: NodeJS.Timeout | undefined
  #ended = false
  #status: number | undefined
  readonly opened: Promise<number>

  private constructor(path: string, options: StreamClientOptions) {
    const url = new URL(path, options.url)
    this.#req = request(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/jsonl',
        player_id: options.player.playerId,
        player_name: Buffer.from(options.player.name, 'utf8').toString('latin1'),
        player_team: options.player.team,
      },
    })
    this.#req.setNoDelay(true)
    this.opened = new Promise((resolve, reject) => {
      this.#req.on('error', (e) => {
        this.#end()
        reject(e)
      })
      this.#req.on('response', (res) => {
        this.#status = res.statusCode
        resolve(res.statusCode ?? 0)
        const splitter = new LineSplitter(1 << 24)
        const only = options.only
        const take = (items: ReturnType<LineSplitter['push']>): void => {
          for (const item of items) if ('line' in item && (only === undefined || item.line.includes(only))) this.#lines.push(item.line)
          this.#wake()
        }
        let whole = true // the previous chunk ended with a newline
        res.on('data', (chunk: Buffer) => {
          const skip = only !== undefined && whole && chunk[chunk.length - 1] === 10 && !chunk.includes(only)
          whole = chunk[chunk.length - 1] === 10
          if (!skip) take(splitter.push(chunk))
        })
        res.on('end', () => {
          take(splitter.end())
          this.#end()
        })
        res.on('error', () => this.#end())
      })
    })
    this.opened.catch(() => undefined)
    this.heartbeat()
    if (options.heartbeat) this.#heartbeat = setInterval(() => this.heartbeat(), options.heartbeat).unref()
  }

  /** Opens `/matchmaking`. */
  static lobby(options: StreamClientOptions): StreamClient {
    return new StreamClient('/matchmaking', options)
  }

  /** Opens `/game`. */
  static game(options: StreamClientOptions): StreamClient {
    return new StreamClient('/game', options)
  }

  /** Every line received so far (raw JSON text). */
  get lines(): readonly string[] {
    return this.#lines
  }

  /** Takes the lines received since the last `drain` (they are no longer kept: for long runs). */
  drain(): string[] {
    return this.#lines.splice(0, this.#lines.length)
  }

  /** Whether the server ended the response (or the connection failed). */
  get ended(): boolean {
    return this.#ended
  }

  get status(): number | undefined {
    return this.#status
  }

  /** Writes one raw line (a newline is added). */
  send(line: string): void {
    if (!this.#req.writableEnded) this.#req.write(`${line}\n`)
  }

  heartbeat(): void {
    this.send('{"message":{}}')
  }

  status$(player: Player, status: PlayerStatusUpdate['status']): void {
    this.send(JSON.stringify({ message: { player, status } }))
  }

  move(move: GameMove): void {
    this.send(JSON.stringify({ message: move }))
  }

  /** Resolves with the first line at or after `from` that `test` accepts (parsed), or rejects after `timeout` ms. */
  async next<T>(test: (line: unknown) => T | undefined, timeout = 10_000, from = 0): Promise<{ value: T; index: number }> {
    const deadline = Date.now() + timeout
    for (let i = from; ; ) {
      for (; i < this.#lines.length; i++) {
        const value = test(JSON.parse(this.#lines[i]!))
        if (value !== undefined) return { value, index: i }
      }
      if (this.#ended) throw new Error(`stream ended before the line awaited (${this.#lines.length} lines)`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no such line within ${timeout} ms; got: ${this.#lines.slice(from).join(' | ').slice(0, 2000)}`)
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(t)
          this.#waiters.delete(wake)
          resolve()
        }
        const t = setTimeout(wake, left)
        this.#waiters.add(wake)
      })
    }
  }

  /** Ends the request body (the server then ends the response). */
  close(): void {
    clearInterval(this.#heartbeat)
    if (!this.#req.writableEnded) this.#req.end()
  }

  /** Drops the connection at once. */
  destroy(): void {
    clearInterval(this.#heartbeat)
    this.#req.destroy()
    this.#end()
  }

  /** Resolves when the response has ended. */
  async closed(timeout = 10_000): Promise<void> {
    const deadline = Date.now() + timeout
    while (!this.#ended) {
      if (Date.now() > deadline) throw new Error('stream still open')
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50)
        this.#waiters.add(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  #end(): void {
    this.#ended = true
    clearInterval(this.#heartbeat)
    this.#wake()
  }

  /** Calls `listener` whenever lines arrive or the stream ends (one listener; replaces the previous). */
  listen(listener: () => void): void {
    this.#listener = listener
  }

  #wake(): void {
    this.#listener?.()
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const w of waiters) w()
  }
}
