/**
 * FrameDecoder: turns an arbitrarily fragmented byte stream into a preamble and frames.
 *
 * Pure and socket-free: feed it chunks with `push`, it returns what became complete (or with
 * `decode`, which hands each item to a sink as it completes). It never
 * buffers more than one frame plus the header, and refuses a frame whose announced length exceeds
 * `maxFrameSize` before reading its body, so a hostile peer cannot make it allocate.
 * @module
 */
import { getU32 } from './Bytes.ts'
import { MAGIC, PREAMBLE_LENGTH } from './Frame.ts'

export type DecodedItem =
  | { readonly kind: 'preamble'; readonly major: number; readonly minor: number }
  | { readonly kind: 'frame'; readonly type: number; readonly body: Buffer }

export class FrameDecoderError extends Error {}

/**
 * Receives what {@link FrameDecoder.decode} completes, as it completes it. A frame's body is
 * `buf[start, end)`: no view of it is made per frame (a Buffer view costs about 45 ns, a third of
 * what the rest of the frame's way to its actor costs), and the bytes stay valid after the call,
 * as a view of them would. A sink must not throw.
 */
export interface FrameSink {
  preamble(major: number, minor: number): void
  frame(type: number, buf: Buffer, start: number, end: number): void
}

export interface FrameDecoderOptions {
  /** Largest frame (type byte + body) accepted. */
  readonly maxFrameSize: number
  /** Expect a preamble first (default true). */
  readonly preamble?: boolean
}

export class FrameDecoder {
  readonly #maxFrameSize: number
  #needPreamble: boolean
  #chunks: Buffer[] = []
  #size = 0
  /** Bytes needed before parsing can make progress (avoids re-concatenating a large frame per chunk). */
  #need = 0
  #failed = false

  constructor(options: FrameDecoderOptions) {
    this.#maxFrameSize = options.maxFrameSize
    this.#needPreamble = options.preamble ?? true
  }

  /** Bytes held while waiting for the rest of a frame. */
  get buffered(): number {
    return this.#size
  }

  /**
   * Consumes a chunk. Returns the items completed by it, in order. Throws {@link FrameDecoderError}
   * on a protocol violation; after that the decoder refuses further input.
   */
  push(chunk: Buffer): DecodedItem[] {
    const out: DecodedItem[] = []
    this.decode(chunk, {
      preamble: (major, minor) => out.push({ kind: 'preamble', major, minor }),
      frame: (type, buf, start, end) => out.push({ kind: 'frame', type, body: buf.subarray(start, end) }),
    })
    return out
  }

  /**
   * As {@link push}, handing each completed item to `sink` instead of collecting them: the call
   * path's way, with no per-frame allocation. Items before a violation in the same chunk are
   * delivered, then it throws.
   */
  decode(chunk: Buffer, sink: FrameSink): void {
    if (this.#failed) throw new FrameDecoderError('decoder already failed')
    try {
      if (this.#needPreamble) return this.#preamble(chunk, sink)
      const from = this.#size === 0 ? 0 : this.#completeHeld(chunk, sink)
      if (from >= 0) this.#frames(chunk, from, sink)
    } catch (e) {
      this.#failed = true
      throw e
    }
  }

  /** The first bytes of a connection: the preamble (joined from its chunks, a few bytes), then frames. */
  #preamble(chunk: Buffer, sink: FrameSink): void {
    this.#chunks.push(chunk)
    this.#size += chunk.length
    const buf = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#size)
    this.#chunks = []
    this.#size = 0
    const have = Math.min(buf.length, MAGIC.length)
    for (let i = 0; i < have; i++) {
      if (buf[i] !== MAGIC[i]) throw new FrameDecoderError('not a Shoal peer: bad magic bytes')
    }
    if (buf.length < PREAMBLE_LENGTH) return this.#keep(buf, PREAMBLE_LENGTH)
    this.#needPreamble = false
    sink.preamble(buf[4]!, buf[5]!)
    this.#frames(buf, PREAMBLE_LENGTH, sink)
  }

  /**
   * A frame began in earlier chunks: completes it from the head of `chunk`, copying only its own
   * bytes (not the whole socket read, as joining the chunks would), and returns where the rest of
   * `chunk` starts; -1 if the frame is still incomplete (then `chunk` is held too).
   */
  #completeHeld(chunk: Buffer, sink: FrameSink): number {
    const held = this.#size
    let need = this.#need
    if (need === 4 && held + chunk.length >= 4) need = 4 + this.#length(Buffer.concat([...this.#chunks, chunk], 4), 0)
    if (held + chunk.length < need) {
      this.#chunks.push(chunk)
      this.#size += chunk.length
      this.#need = need
      return -1
    }
    const frame = Buffer.concat([...this.#chunks, chunk], need)
    this.#chunks = []
    this.#size = 0
    this.#need = 0
    sink.frame(frame[4]!, frame, 5, need)
    return need - held
  }

  /** The length a frame header at `pos` announces, refused if empty or over the limit (before any of it is buffered). */
  #length(buf: Buffer, pos: number): number {
    const length = getU32(buf, pos)
    if (length === 0) throw new FrameDecoderError('empty frame')
    if (length > this.#maxFrameSize) throw new FrameDecoderError(`frame of ${length} bytes exceeds maxFrameSize ${this.#maxFrameSize}`)
    return length
  }

  /** The frames of `buf` from `pos` on; an incomplete last one is kept for the next chunk. */
  #frames(buf: Buffer, pos: number, sink: FrameSink): void {
    let need = 4
    while (buf.length - pos >= 4) {
      const length = this.#length(buf, pos)
      if (buf.length - pos - 4 < length) {
        need = 4 + length
        break
      }
      const at = pos
      pos += 4 + length
      sink.frame(buf[at + 4]!, buf, at + 5, pos)
    }
    if (pos < buf.length) this.#keep(buf.subarray(pos), need)
    else this.#need = 0
  }

  #keep(rest: Buffer, need: number): void {
    // Copy small leftovers so the large chunk they came from can be freed.
    const kept = rest.length < 4096 ? Buffer.from(rest) : rest
    this.#chunks.push(kept)
    this.#size = kept.length
    this.#need = need
  }
}
