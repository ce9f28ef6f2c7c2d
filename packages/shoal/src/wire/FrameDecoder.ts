/**
 * FrameDecoder: turns an arbitrarily fragmented byte stream into a preamble and frames.
 *
 * Pure and socket-free: feed it chunks with `push`, it returns what became complete. It never
 * buffers more than one frame plus the header, and refuses a frame whose announced length exceeds
 * `maxFrameSize` before reading its body, so a hostile peer cannot make it allocate.
 * @module
 */
import { MAGIC, PREAMBLE_LENGTH } from './Frame.ts'

export type DecodedItem =
  | { readonly kind: 'preamble'; readonly major: number; readonly minor: number }
  | { readonly kind: 'frame'; readonly type: number; readonly body: Buffer }

export class FrameDecoderError extends Error {}

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
    if (this.#failed) throw new FrameDecoderError('decoder already failed')
    this.#chunks.push(chunk)
    this.#size += chunk.length
    if (this.#size < this.#need) return []
    const buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size)
    this.#chunks = []
    this.#size = 0
    const out: DecodedItem[] = []
    let pos = 0
    try {
      if (this.#needPreamble) {
        const have = Math.min(buf.length, MAGIC.length)
        for (let i = 0; i < have; i++) {
          if (buf[i] !== MAGIC[i]) throw new FrameDecoderError('not a Shoal peer: bad magic bytes')
        }
        if (buf.length < PREAMBLE_LENGTH) {
          this.#keep(buf, PREAMBLE_LENGTH)
          return out
        }
        out.push({ kind: 'preamble', major: buf[4]!, minor: buf[5]! })
        this.#needPreamble = false
        pos = PREAMBLE_LENGTH
      }
      let need = 4
      while (buf.length - pos >= 4) {
        const length = buf.readUInt32BE(pos)
        if (length === 0) throw new FrameDecoderError('empty frame')
        if (length > this.#maxFrameSize) throw new FrameDecoderError(`frame of ${length} bytes exceeds maxFrameSize ${this.#maxFrameSize}`)
        if (buf.length - pos - 4 < length) {
          need = 4 + length
          break
        }
        out.push({ kind: 'frame', type: buf[pos + 4]!, body: buf.subarray(pos + 5, pos + 4 + length) })
        pos += 4 + length
      }
      if (pos < buf.length) this.#keep(buf.subarray(pos), need)
      else this.#need = 0
    } catch (e) {
      this.#failed = true
      throw e
    }
    return out
  }

  #keep(rest: Buffer, need: number): void {
    // Copy small leftovers so the large chunk they came from can be freed.
    const kept = rest.length < 4096 ? Buffer.from(rest) : rest
    this.#chunks.push(kept)
    this.#size = kept.length
    this.#need = need
  }
}
