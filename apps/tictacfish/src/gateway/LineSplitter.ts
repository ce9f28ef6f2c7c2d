/**
 * Splits a byte stream into lines (`\n`, an optional `\r` before it is dropped) with a cap on a
 * line's length, without ever touching a socket: the gateway feeds it chunks as they arrive, and
 * the tests feed it one byte at a time. A line longer than the cap is reported (once) and skipped
 * up to its newline, so one bad line never costs the lines after it, and memory stays bounded.
 */
export type SplitItem = { readonly line: string } | { readonly tooLong: number }

export class LineSplitter {
  readonly #max: number
  #parts: Buffer[] = []
  #size = 0
  /** Skipping the rest of a line that was too long. */
  #skipping = false

  constructor(maxLineBytes: number) {
    this.#max = maxLineBytes
  }

  /** The complete lines (and too-long reports) in `chunk`, in order; empty lines are dropped. */
  push(chunk: Buffer): SplitItem[] {
    const out: SplitItem[] = []
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(10, start)
      const end = nl < 0 ? chunk.length : nl
      this.#take(chunk.subarray(start, end), out)
      if (nl < 0) return out
      this.#endLine(out)
      start = nl + 1
    }
  }

  /** The end of the stream: a last line without a newline counts too. */
  end(): SplitItem[] {
    const out: SplitItem[] = []
    this.#endLine(out)
    return out
  }

  #take(bytes: Buffer, out: SplitItem[]): void {
    if (this.#skipping || bytes.length === 0) return
    if (this.#size + bytes.length > this.#max) {
      out.push({ tooLong: this.#size + bytes.length })
      this.#parts = []
      this.#size = 0
      this.#skipping = true
      return
    }
    this.#parts.push(bytes)
    this.#size += bytes.length
  }

  #endLine(out: SplitItem[]): void {
    if (this.#skipping) {
      this.#skipping = false
      return
    }
    if (this.#size === 0) return
    let text = (this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size)).toString('utf8')
    this.#parts = []
    this.#size = 0
    if (text.endsWith('\r')) text = text.slice(0, -1)
    if (text.trim() !== '') out.push({ line: text })
  }
}
