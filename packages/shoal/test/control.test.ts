/**
 * The control-plane toolkit (`src/control/`): the one table of control kinds, and the codec kit
 * the gossip, receptionist and watch codecs are built from.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { ControlKind } from '../src/control/ControlKind.ts'
import { ControlDecodeError, controlPackr, ControlReader } from '../src/control/ControlCodec.ts'
import { GossipDecodeError } from '../src/cluster/GossipCodec.ts'
import { ReceptionistDecodeError } from '../src/receptionist/ReceptionistCodec.ts'
import { WatchDecodeError } from '../src/watch/WatchCodec.ts'
import { SwimCodecError } from '../src/swim/Codec.ts'

describe('ControlKind', () => {
  it('gives every service its own kind, each a byte', () => {
    const kinds = Object.values(ControlKind)
    expect(new Set(kinds).size).toBe(kinds.length)
    for (const k of kinds) expect(Number.isInteger(k) && k >= 0 && k <= 255, `kind ${k}`).toBe(true)
  })

  it('keeps the kinds already on the wire', () => {
    expect(ControlKind).toEqual({ Swim: 1, Gossip: 2, Clusterd: 3, Receptionist: 4, Watch: 5 })
  })
})

describe('ControlReader', () => {
  class TestDecodeError extends ControlDecodeError {}
  const read: ControlReader = new ControlReader('test frame', 3, TestDecodeError)
  const fails = (f: () => unknown, message: string | RegExp): void => {
    expect(f).toThrow(TestDecodeError)
    expect(f).toThrow(message)
  }

  it('every codec error is a ControlDecodeError', () => {
    for (const E of [GossipDecodeError, ReceptionistDecodeError, WatchDecodeError]) expect(new E('x')).toBeInstanceOf(ControlDecodeError)
    expect(new SwimCodecError('truncated', 'x')).toBeInstanceOf(ControlDecodeError)
  })

  it('packs as the codecs always have: no records, no extension types', () => {
    const value = [1, 'a', [2, { b: 3 }], 2 ** 40, -1.5, null, true]
    expect(controlPackr.pack(value)).toEqual(new Packr({ useRecords: false, moreTypes: false }).pack(value))
  })

  it('opens a versioned array, and refuses anything else with the codec error', () => {
    expect(read.open(controlPackr.pack([3, 'x']))).toEqual([3, 'x'])
    fails(() => read.open(Buffer.from([0x92, 0x03])), /^undecodable test frame: /) // an array of 2 holding 1
    fails(() => read.open(Buffer.alloc(0)), /^undecodable test frame: /)
    fails(() => read.open(Buffer.from([0xc1])), 'test frame is not an array') // msgpackr: a C1Type object
    fails(() => read.open(controlPackr.pack({ 0: 3 })), 'test frame is not an array')
    fails(() => read.open(controlPackr.pack([4, 'x'])), 'test frame version 4, this node speaks 3')
    fails(() => read.open(controlPackr.pack(['3'])), 'test frame version string, this node speaks 3')
    // A map whose own toString is not a function: the message must not call it.
    fails(() => read.open(controlPackr.pack([{ toString: 0, valueOf: 1 }])), 'test frame version object, this node speaks 3')
  })

  it('reads uids, nodes, sequence numbers, paths and incarnations', () => {
    expect(read.readUid('0123456789abcdef')).toBe('0123456789abcdef')
    for (const bad of ['0123456789ABCDEF', '0123456789abcde', 7, null]) fails(() => read.readUid(bad), 'a uid must be 16 lower-case hex digits')
    expect(read.readNode('0123456789abcdef', 'sea', '::1', 7001)).toEqual({ endpoint: { name: 'sea', host: '::1', port: 7001 }, uid: '0123456789abcdef' })
    fails(() => read.readNode('0123456789abcdef', 'a b', '::1', 7001), 'bad system name')
    fails(() => read.readNode('0123456789abcdef', 'sea', 'a b', 7001), 'bad host')
    fails(() => read.readNode('0123456789abcdef', 'sea', '::1', 0), 'bad port')
    fails(() => read.readNode('nope', 'sea', '::1', 7001), 'a uid must')
    expect(read.readSeq(0)).toBe(0)
    expect(read.readSeq(2 ** 53 - 1, 1)).toBe(2 ** 53 - 1)
    for (const bad of [-1, 1.5, 2 ** 53, '1', Number.NaN]) fails(() => read.readSeq(bad), 'a sequence number must be a safe integer ≥ 0')
    fails(() => read.readSeq(0, 1, 'a part count'), 'a part count must be a safe integer ≥ 1')
    expect(read.readActorPath('/user/Fish-1')).toBe('/user/Fish-1')
    for (const bad of ['user', '/user/a#', '/', 1]) fails(() => read.readActorPath(bad), 'bad actor path')
    expect(read.readIncarnation(0xffffffff)).toBe(0xffffffff)
    for (const bad of [-1, 2 ** 32, 0.5, '1']) fails(() => read.readIncarnation(bad), 'bad incarnation')
    expect(read.readArray([1, 2], 2, 'items')).toEqual([1, 2])
    fails(() => read.readArray([1, 2, 3], 2, 'items'), 'items must be an array of at most 2')
    fails(() => read.readArray({ length: 1 }, 2, 'items'), 'items must be an array')
  })

  it('property: any bytes open or throw the codec error, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        try {
          read.open(Buffer.from(bytes))
        } catch (e) {
          expect(e).toBeInstanceOf(TestDecodeError)
        }
      }),
      { numRuns: 1000 },
    )
  })
})
