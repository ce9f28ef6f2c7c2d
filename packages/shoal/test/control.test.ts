/**
 * The control-plane toolkit (`src/control/`): the one table of control kinds, the codec kit the
 * gossip, receptionist and watch codecs are built from, and the one host rule (`isValidHost`) the
 * codecs and `ActorId.parse` share.
 */

import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { ActorId } from '../src/actor/ActorId.ts'
import { type ClusterNode, endpointKey, isValidHost, MAX_HOST_LENGTH } from '../src/actor/ClusterNode.ts'
import { decodeGossip, encodeGossip, GossipDecodeError } from '../src/cluster/GossipCodec.ts'
import { ControlDecodeError, ControlReader, controlPackr } from '../src/control/ControlCodec.ts'
import { ControlKind } from '../src/control/ControlKind.ts'
import { decodeReceptionist, encodeDelta, ReceptionistDecodeError } from '../src/receptionist/ReceptionistCodec.ts'
import { decodeMessage, encodeMessage, SwimCodecError } from '../src/swim/Codec.ts'
import { WatchDecodeError } from '../src/watch/WatchCodec.ts'

describe('ControlKind', () => {
  it('gives every service its own kind, each a byte', () => {
    const kinds = Object.values(ControlKind)
    expect(new Set(kinds).size).toBe(kinds.length)
    for (const k of kinds) expect(Number.isInteger(k) && k >= 0 && k <= 255, `kind ${k}`).toBe(true)
  })

  it('keeps the kinds already on the wire', () => {
    expect(ControlKind).toEqual({ Swim: 1, Gossip: 2, Clusterd: 3, Receptionist: 4, Watch: 5, Heartbeat: 6, Reachability: 7, VirtualActors: 8 })
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

describe('isValidHost', () => {
  const label63 = 'a'.repeat(63)
  const longest = [label63, label63, label63, 'b'.repeat(61)].join('.')

  it('accepts host names (with _), IPv4, and IPv6 with or without a zone', () => {
    expect(longest).toHaveLength(MAX_HOST_LENGTH)
    for (const host of [
      'localhost',
      'my_host',
      '_sip._udp.example.com',
      'node-1.shoal.svc.cluster.local',
      'example.com.',
      'UPPER.case',
      label63,
      longest,
      '10.0.0.7',
      '::1',
      '::',
      '2001:db8::1',
      '::ffff:10.0.0.7',
      'fe80::1%eth0',
      'FE80::A%en0',
      'fe80::1%2',
      'fe80::1%br_lan.10',
    ]) {
      expect(isValidHost(host), host).toBe(true)
    }
  })

  it('refuses everything else', () => {
    for (const host of [
      '',
      ' ',
      'my host',
      'a..b',
      '.a',
      '.',
      'a.b..',
      'a'.repeat(64),
      `${longest}c`,
      '[::1]',
      '::1]',
      'a:b',
      '1:2:3',
      '10.0.0.7:80',
      'fe80::1%',
      'fe80::1%eth0%x',
      'fe80::1%a:b',
      'fe80::1%a/b',
      'host/x',
      'h@x',
      'h#x',
      'héllo',
      'a\u0000',
      'tab\t',
      7,
      null,
      undefined,
    ]) {
      expect(isValidHost(host), JSON.stringify(host)).toBe(false)
    }
  })
})

describe('ActorId and hosts', () => {
  const uid = '0123456789abcdef'
  const at = (host: string): ClusterNode => ({ endpoint: { name: 'sea', host, port: 7001 }, uid })

  it('round-trips my_host, fe80::1%eth0 and other hosts through toString and parse', () => {
    const expected: Record<string, string> = {
      my_host: 'shoal://sea@my_host:7001/0123456789abcdef/user/a#9',
      'fe80::1%eth0': 'shoal://sea@[fe80::1%eth0]:7001/0123456789abcdef/user/a#9',
      '::1': 'shoal://sea@[::1]:7001/0123456789abcdef/user/a#9',
      '10.0.0.7': 'shoal://sea@10.0.0.7:7001/0123456789abcdef/user/a#9',
      'example.com.': 'shoal://sea@example.com.:7001/0123456789abcdef/user/a#9',
    }
    for (const [host, text] of Object.entries(expected)) {
      const id = new ActorId(at(host), '/user/a', 9)
      expect(id.toString()).toBe(text)
      const parsed = ActorId.parse(text)
      expect(parsed.equals(id)).toBe(true)
      expect(parsed.node.endpoint.host).toBe(host)
      expect(parsed.toString()).toBe(text)
    }
  })

  it('refuses hosts the codecs refuse, and brackets anywhere but around IPv6', () => {
    for (const host of ['my host', '[10.0.0.7]', '[my_host]', '[fe80::1%]', 'a..b', '[[::1]]', 'h@x']) {
      expect(() => ActorId.parse(`shoal://sea@${host}:7001/${uid}/user/a#9`), host).toThrow(/actor id/i)
    }
  })

  /** Whether each codec accepts a node at `host` (a gossip member, a receptionist owner, a SWIM sender). */
  function codecsAccept(host: string): Record<string, boolean> {
    const node = at(host)
    const accepts = (f: () => unknown): boolean => {
      try {
        f()
        return true
      } catch (e) {
        expect(e).toBeInstanceOf(ControlDecodeError)
        return false
      }
    }
    const member = { node, status: 'up' as const, upNumber: 1, roles: [] }
    const actor = `${ActorId.nodePrefix(node)}/user/a#1`
    return {
      gossip: accepts(() => decodeGossip(encodeGossip(uid, { members: new Map([[uid, member]]), version: new Map(), seen: new Set() }))),
      receptionist: accepts(() => decodeReceptionist(encodeDelta(node, { owner: uid, kind: 'ops', ops: [{ seq: 1, kind: 'add', key: 'k', actor }] }))),
      swim: accepts(() => decodeMessage(encodeMessage({ type: 'gossip', from: { host, port: 7001, uid }, updates: [] }))),
    }
  }

  const hostArb: fc.Arbitrary<string> = fc.oneof(
    fc.domain(),
    fc.ipV4(),
    fc.ipV6(),
    fc.tuple(fc.ipV6(), fc.stringMatching(/^[A-Za-z0-9_.-]{1,16}$/)).map(([a, z]) => `${a}%${z}`),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,12}(\.[A-Za-z0-9_-]{1,12}){0,3}\.?$/),
    fc.string({ unit: fc.constantFrom(...'aZ09_-.:%[]/@# \u00e9'), maxLength: 40 }),
    fc.integer({ min: 240, max: 255 }).map((n) => Array.from({ length: n }, (_, i) => (i % 10 === 9 ? '.' : 'x')).join('')),
  )

  it('property: every host the codecs accept, ActorId.parse accepts and round-trips (and only those)', () => {
    fc.assert(
      fc.property(hostArb, (host) => {
        const valid = isValidHost(host)
        expect(codecsAccept(host)).toEqual({ gossip: valid, receptionist: valid, swim: valid })
        const text = `shoal://sea@${endpointKey({ host, port: 7001 })}/${uid}/user/a#1`
        let parsed: ActorId | undefined
        try {
          parsed = ActorId.parse(text)
        } catch {
          parsed = undefined
        }
        expect(parsed !== undefined, text).toBe(valid)
        if (parsed) {
          expect(parsed.node.endpoint.host).toBe(host)
          expect(parsed.toString()).toBe(text)
        }
      }),
      { numRuns: 3000 },
    )
  })
})

describe('ActorId.isValidPath', () => {
  /** The grammar as written: `/segment/segment`, each 1-128 of letters, digits and _ . $ ~ -, at most 1,024 in all. */
  const reference = (p: string): boolean =>
    p.length >= 2 &&
    p.length <= 1024 &&
    p[0] === '/' &&
    p
      .slice(1)
      .split('/')
      .every((s) => /^[A-Za-z0-9_.$~-]{1,128}$/.test(s))

  it('property: the one-pass check accepts exactly the paths of the grammar', () => {
    const segment = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'aZ09_.$~-/é #%\u0000'), maxLength: 12 }),
      fc.integer({ min: 126, max: 130 }).map((n) => 'x'.repeat(n)),
    )
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 10 }), fc.boolean(), (segments, lead) => {
        const path = (lead ? '/' : '') + segments.join('/')
        expect(ActorId.isValidPath(path), JSON.stringify(path)).toBe(reference(path))
      }),
      { numRuns: 5000 },
    )
    for (const p of ['/a', '/a/b', '/~x/$y', `/${'x'.repeat(128)}`, `/${'a/'.repeat(511)}a`]) expect(ActorId.isValidPath(p), p).toBe(reference(p))
    for (const p of ['', '/', '//a', '/a/', 'a', '/a b', `/${'x'.repeat(129)}`, `/${'a/'.repeat(512)}a`]) expect(ActorId.isValidPath(p), p).toBe(false)
  })
})
