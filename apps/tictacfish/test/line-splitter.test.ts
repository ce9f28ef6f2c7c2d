/**
 * LineSplitter: bytes in, lines out, with a cap on a line's length. Fed however the network
 * splits the bytes (down to one at a time), it gives the same lines.
 */

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LineSplitter, type SplitItem } from '../src/gateway/LineSplitter.ts'

/** Feeds `input` in chunks of the given sizes (the last chunk takes the rest), then ends the stream. */
function split(input: string | Buffer, max: number, sizes: number[] = [], end = true): SplitItem[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input
  const s = new LineSplitter(max)
  const out: SplitItem[] = []
  let at = 0
  for (const n of sizes) {
    if (at >= bytes.length) break
    out.push(...s.push(bytes.subarray(at, at + n)))
    at += n
  }
  if (at < bytes.length) out.push(...s.push(bytes.subarray(at)))
  if (end) out.push(...s.end())
  return out
}
const oneByOne = (input: string | Buffer, max: number, end = true) => split(input, max, Array(Buffer.byteLength(input)).fill(1), end)
const lines = (items: SplitItem[]) => items.map((i) => ('line' in i ? i.line : `<tooLong>`))

describe('LineSplitter', () => {
  const text = '{"message":{}}\n{"message":{"position":4}}\n\nlast'

  it('splits on newlines; a last line without a newline comes with end()', () => {
    const s = new LineSplitter(1024)
    expect(s.push(Buffer.from(text))).toEqual([{ line: '{"message":{}}' }, { line: '{"message":{"position":4}}' }])
    expect(s.end()).toEqual([{ line: 'last' }])
    expect(s.end()).toEqual([])
  })

  it('one byte at a time gives the same lines as the whole', () => {
    const whole = split(text, 1024)
    expect(lines(whole)).toEqual(['{"message":{}}', '{"message":{"position":4}}', 'last'])
    expect(oneByOne(text, 1024)).toEqual(whole)
    for (const size of [2, 3, 7, 15, 16]) expect(split(text, 1024, Array(20).fill(size))).toEqual(whole)
  })

  it('drops the \\r of CRLF (also when the \\r and \\n arrive apart)', () => {
    const crlf = 'a\r\nbb\r\n\r\nccc\r\n'
    expect(lines(split(crlf, 64))).toEqual(['a', 'bb', 'ccc'])
    expect(lines(oneByOne(crlf, 64))).toEqual(['a', 'bb', 'ccc'])
    // Only one trailing \r goes; a \r inside a line stays.
    expect(lines(split('x\ry\r\r\n', 64))).toEqual(['x\ry\r'])
    expect(lines(split('last\r', 64))).toEqual(['last'])
  })

  it('drops empty and blank lines', () => {
    expect(split('\n\n\r\n  \n\t\r\n', 64)).toEqual([])
    expect(lines(split('\n\na\n\n\nb\n\n', 64))).toEqual(['a', 'b'])
    expect(split('', 64)).toEqual([])
    expect(new LineSplitter(64).push(Buffer.alloc(0))).toEqual([])
  })

  it('keeps spaces inside and around a line', () => {
    expect(lines(split('  {"message": {}}  \n', 64))).toEqual(['  {"message": {}}  '])
  })

  describe('a line over the cap', () => {
    const max = 16
    const long = 'x'.repeat(40)
    const input = `ok1\n${long}\nok2\n`

    it('is reported once as tooLong and skipped up to its newline; the next line still comes through', () => {
      const whole = split(input, max)
      expect(whole).toEqual([{ line: 'ok1' }, { tooLong: 40 }, { line: 'ok2' }])
      const byByte = oneByOne(input, max)
      expect(byByte).toHaveLength(3)
      expect(byByte[0]).toEqual({ line: 'ok1' })
      expect(byByte[2]).toEqual({ line: 'ok2' })
      // Fed byte by byte it is found out as soon as it passes the cap.
      expect(byByte[1]).toEqual({ tooLong: max + 1 })
      for (const size of [3, 5, 17]) {
        const items = split(input, max, Array(30).fill(size))
        expect(lines(items)).toEqual(['ok1', '<tooLong>', 'ok2'])
        const report = items[1] as { tooLong: number }
        expect(report.tooLong).toBeGreaterThan(max)
      }
    })

    it('a line of exactly the cap is fine; one byte more is too long', () => {
      expect(split(`${'y'.repeat(max)}\n`, max)).toEqual([{ line: 'y'.repeat(max) }])
      expect(oneByOne(`${'y'.repeat(max)}\n`, max)).toEqual([{ line: 'y'.repeat(max) }])
      expect(split(`${'y'.repeat(max + 1)}\n`, max)).toEqual([{ tooLong: max + 1 }])
      expect(oneByOne(`${'y'.repeat(max + 1)}\n`, max)).toEqual([{ tooLong: max + 1 }])
    })

    it('two long lines in a row are each reported', () => {
      expect(lines(split(`${long}\n${long}\nz\n`, max))).toEqual(['<tooLong>', '<tooLong>', 'z'])
      expect(lines(oneByOne(`${long}\n${long}\nz\n`, max))).toEqual(['<tooLong>', '<tooLong>', 'z'])
    })

    it('a long last line without a newline is reported and end() adds nothing', () => {
      const s = new LineSplitter(max)
      expect(s.push(Buffer.from(`a\n${long}`))).toEqual([{ line: 'a' }, { tooLong: 40 }])
      expect(s.push(Buffer.from(long))).toEqual([])
      expect(s.end()).toEqual([])
    })

    it('memory stays bounded: megabytes without a newline are one report', () => {
      const s = new LineSplitter(max)
      const chunk = Buffer.alloc(64 * 1024, 0x61)
      const out: SplitItem[] = []
      for (let i = 0; i < 32; i++) out.push(...s.push(chunk))
      out.push(...s.push(Buffer.from('\nafter\n')))
      expect(out).toEqual([{ tooLong: chunk.length }, { line: 'after' }])
    })
  })

  it('multi-byte UTF-8 split across chunks', () => {
    const text = 'Zoë 🐟🐠🐡 — 中文 🐹🐭🐰\nnext ✓\n'
    const expected = ['Zoë 🐟🐠🐡 — 中文 🐹🐭🐰', 'next ✓']
    expect(lines(split(text, 1024))).toEqual(expected)
    expect(lines(oneByOne(text, 1024))).toEqual(expected)
    // Every cut point of the first line.
    const bytes = Buffer.from(text)
    for (let cut = 1; cut < bytes.length; cut++) expect(lines(split(bytes, 1024, [cut]))).toEqual(expected)
  })

  it('the cap counts bytes, not characters', () => {
    const fish = '🐟'.repeat(4) // 16 bytes, 8 UTF-16 units, 4 characters
    expect(split(`${fish}\n`, 16)).toEqual([{ line: fish }])
    expect(split(`${fish}\n`, 15)).toEqual([{ tooLong: 16 }])
  })

  it('end() without a trailing newline flushes the last line (also after byte-by-byte feeding)', () => {
    expect(lines(oneByOne('{"message":{}}', 64))).toEqual(['{"message":{}}'])
    expect(oneByOne('{"message":{}}', 64, false)).toEqual([])
    expect(lines(split('a\nb', 64, [3]))).toEqual(['a', 'b'])
  })

  it('any chunking gives the same items as feeding it whole (property)', () => {
    const piece = fc.constantFrom('a', 'é', '🐟', '\n', '\r\n', ' ', '{"message":{}}', 'x'.repeat(20))
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 60 }), (parts, sizes) => {
        const input = parts.join('')
        const max = 24
        const whole = split(input, max)
        const chunked = split(input, max, sizes)
        // Lines match exactly; a too-long line is reported at the same place (its size depends on the chunking).
        expect(lines(chunked)).toEqual(lines(whole))
        for (const item of chunked) if ('tooLong' in item) expect(item.tooLong).toBeGreaterThan(max)
        for (const item of whole) if ('line' in item) expect(Buffer.byteLength(item.line)).toBeLessThanOrEqual(max)
      }),
      { numRuns: 300, seed: 7 },
    )
  })
})
