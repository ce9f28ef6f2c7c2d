/**
 * FrameDecoder (wire/FrameDecoder.ts): a streaming decoder. Documented: `push` throws
 * FrameDecoderError on a protocol violation, then refuses further input. Fed the same bytes in
 * random chunks (often one byte at a time); checks that the frames it returns re-encode to exactly
 * the bytes it consumed, that it holds at most one frame plus a header, and that after a throw it
 * keeps throwing FrameDecoderError.
 */
import fc from 'fast-check'
import { encodeFrame, FrameType, preamble } from '../../src/wire/Frame.ts'
import { type DecodedItem, FrameDecoder, FrameDecoderError } from '../../src/wire/FrameDecoder.ts'
import { expectOnly, type FuzzTarget, inputs } from './harness.ts'

const MAX_FRAME = 1024

const seeds = [
  Buffer.concat([preamble(), encodeFrame(FrameType.Hello, Buffer.from('{"a":1}')), encodeFrame(FrameType.Call, Buffer.alloc(40, 7))]),
  Buffer.concat([preamble(), encodeFrame(FrameType.Reply, Buffer.alloc(MAX_FRAME - 1, 1))]),
  Buffer.concat([encodeFrame(FrameType.Control, Buffer.of(1, 2, 3)), encodeFrame(FrameType.Goodbye, Buffer.alloc(0))]),
]

function reencode(items: DecodedItem[]): Buffer {
  return Buffer.concat(items.map((i) => (i.kind === 'preamble' ? preamble(i.major, i.minor) : encodeFrame(i.type, i.body))))
}

const input = fc.record({
  bytes: inputs(seeds, 2048),
  withPreamble: fc.boolean(),
  // 0: one byte at a time; otherwise chunk sizes cycled through.
  chunks: fc.oneof(fc.constant([1]), fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 })),
})

export const frameDecoder: FuzzTarget = {
  name: 'FrameDecoder',
  property: fc.property(input, ({ bytes, withPreamble, chunks }) => {
    const d = new FrameDecoder({ maxFrameSize: MAX_FRAME, preamble: withPreamble })
    const items: DecodedItem[] = []
    let pos = 0
    let k = 0
    let failed = false
    while (pos < bytes.length && !failed) {
      const n = chunks[k++ % chunks.length]!
      const chunk = bytes.subarray(pos, pos + n)
      pos += chunk.length
      expectOnly([FrameDecoderError], () => {
        try {
          items.push(...d.push(chunk))
        } catch (e) {
          failed = true
          throw e
        }
      })
      if (d.buffered > MAX_FRAME + 4 + 700) throw new Error(`decoder holds ${d.buffered} bytes`)
    }
    if (failed) {
      let threw: unknown
      try {
        d.push(Buffer.of(0))
      } catch (e) {
        threw = e
      }
      if (!(threw instanceof FrameDecoderError)) throw new Error('a failed decoder accepted more input')
      return
    }
    for (const i of items) if (i.kind === 'frame' && i.body.length + 1 > MAX_FRAME) throw new Error('frame above maxFrameSize returned')
    const consumed = bytes.length - d.buffered
    if (!reencode(items).equals(bytes.subarray(0, consumed))) throw new Error('frames do not re-encode to the bytes consumed')
  }),
}
