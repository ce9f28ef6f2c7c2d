/**
 * The virtual actors' control messages: round trips, and hostile bytes refused with
 * VirtualDecodeError (never another exception), shard numbers included.
 */
import { describe, expect, it } from 'vitest'
import { controlPackr } from '../src/control/ControlCodec.ts'
import { decodeVirtual, encodeHosts, encodeReleased, encodeTable, VirtualDecodeError } from '../src/virtual/VirtualCodec.ts'

const UID = '00000000000000ab'

describe('virtual-actor codec', () => {
  it('round-trips hosts, tables and releases (with and without shards still draining)', () => {
    expect(decodeVirtual(encodeHosts([{ type: 'Player', role: 'players' }]))).toEqual({
      kind: 'hosts',
      types: [{ type: 'Player', role: 'players' }],
      ready: true,
    })
    expect(decodeVirtual(encodeHosts([], false))).toEqual({ kind: 'hosts', types: [], ready: false })
    const table = { version: 3, by: UID, owners: [UID, undefined, UID] }
    expect(decodeVirtual(encodeTable(undefined, table))).toEqual({ kind: 'table', role: undefined, table })
    expect(decodeVirtual(encodeReleased('players', { version: 3, by: UID }, []))).toEqual({
      kind: 'released',
      role: 'players',
      table: { version: 3, by: UID },
      draining: [],
    })
    expect(decodeVirtual(encodeReleased('players', { version: 3, by: UID }, new Set([7, 1023])))).toMatchObject({ draining: [7, 1023] })
  })

  it('a release with nothing draining is the 5-element form that nodes without per-shard releases read', () => {
    expect(controlPackr.unpack(encodeReleased(undefined, { version: 1, by: '' }, []))).toHaveLength(5)
  })

  it('a ready hosts message is the 3-element form that nodes without link readiness read', () => {
    expect(controlPackr.unpack(encodeHosts([{ type: 'Player', role: undefined }]))).toHaveLength(3)
    expect(controlPackr.unpack(encodeHosts([], false))).toHaveLength(4)
  })

  it.each([
    ['a readiness that is not a boolean', [1, 0, [], 1]],
    ['a 5-element hosts message', [1, 0, [], true, 0]],
    ['a negative shard', [1, 2, null, 1, '', [-1]]],
    ['a fractional shard', [1, 2, null, 1, '', [1.5]]],
    ['a shard past the limit', [1, 2, null, 1, '', [65_536]]],
    ['draining that is not an array', [1, 2, null, 1, '', { 0: 1 }]],
    ['a 7-element release', [1, 2, null, 1, '', [], 0]],
    ['too many draining shards', [1, 2, null, 1, '', Array.from({ length: 65_537 }, () => 0)]],
  ])('refuses %s', (_what, raw) => {
    expect(() => decodeVirtual(controlPackr.pack(raw))).toThrow(VirtualDecodeError)
  })
})
