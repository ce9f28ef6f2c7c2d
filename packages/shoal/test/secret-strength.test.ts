/**
 * Cluster secrets are refused when weak (under 128 bits, estimated conservatively) by every entry
 * point: ClusterSystem.start, startClusterDaemon, SwimMember.start (the CLI: cli-errors.test.ts).
 */
import { randomBytes } from 'node:crypto'
import { ClusterSystem, ConfigError, ErrorCode, MIN_SECRET_BITS, SwimMember, secretBits } from 'shoal'
import { describe, expect, it } from 'vitest'

describe('secretBits', () => {
  it('passes what `shoal secret` prints (hex or base64url) and 32 random bytes; fails short, patterned or made-up secrets', () => {
    for (let i = 0; i < 50; i++) {
      expect(secretBits(randomBytes(32).toString('hex'))).toBeGreaterThanOrEqual(MIN_SECRET_BITS)
      expect(secretBits(randomBytes(32).toString('base64url'))).toBeGreaterThanOrEqual(MIN_SECRET_BITS)
      expect(secretBits(randomBytes(32))).toBeGreaterThanOrEqual(MIN_SECRET_BITS)
      expect(secretBits(randomBytes(16))).toBeLessThan(MIN_SECRET_BITS)
    }
    for (const weak of [
      '',
      's',
      's3cret',
      'test-secret',
      'change-me-to-a-long-random-string',
      'a'.repeat(200),
      'ab'.repeat(100),
      '0123456789abcdef0123456789abcdef',
    ])
      expect(secretBits(weak), weak).toBeLessThan(MIN_SECRET_BITS)
    expect(secretBits('aaaa')).toBe(0)
  })
})

describe('a weak cluster secret is refused at start', () => {
  it('by ClusterSystem.start and startClusterDaemon, with a ConfigError saying how to make one', async () => {
    for (const start of [
      () => ClusterSystem.start({ port: 0, logLevel: 'silent', secret: 'test-secret' }),
      () => ClusterSystem.startClusterDaemon({ port: 0, logLevel: 'silent', secret: 'test-secret' }),
    ]) {
      const e = await start().then(
        (s) => s.shutdown().then(() => undefined),
        (err: unknown) => err,
      )
      expect(e).toBeInstanceOf(ConfigError)
      expect(e).toMatchObject({ code: ErrorCode.Config, message: expect.stringMatching(/too weak: about \d+ bits .* `npx shoal secret`/) })
    }
  })

  it('by SwimMember.start', async () => {
    await expect(SwimMember.start({ port: 0, secret: 'change-me' })).rejects.toMatchObject({
      code: ErrorCode.Config,
      message: expect.stringContaining('`npx shoal secret`'),
    })
  })

  it('not when strong, nor without a secret on loopback', async () => {
    for (const secret of [randomBytes(32).toString('hex'), '']) {
      const s = await ClusterSystem.start({ port: 0, logLevel: 'silent', secret })
      await s.shutdown()
    }
  })
})
