/**
 * One host grammar: a node refuses at start (ConfigError naming the host and the accepted forms)
 * any host its actor ids and handshakes could not carry, and an IPv6 zone, which other nodes could
 * not dial; `_` host names work end to end (named-host.test.ts).
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { ActorId, ClusterSystem, ConfigError, SwimMember } from 'shoal'
import { SHOAL_BIN } from 'shoal/testkit'
import { describe, expect, it } from 'vitest'
import { checkNodeHost, isValidHost, NODE_HOST_FORMS } from '../src/actor/ClusterNode.ts'

/** A cluster secret strong enough to start with (≥ 128 bits). */
const SECRET = randomBytes(32).toString('hex')

const INVALID = ['', 'my host', '[::1]', 'host:7337', 'a/b', 'user@host', 'héllo', 'a..b', 'x'.repeat(254), '::1::2']

describe('host checks at start', () => {
  it('checkNodeHost: every host a node can start on is one isValidHost accepts, and its actor ids parse', () => {
    for (const host of ['127.0.0.1', 'my_host', 'node-1.shoal.svc.', '::1', '2001:db8::7']) {
      expect(() => checkNodeHost(host)).not.toThrow()
      expect(isValidHost(host)).toBe(true)
      const id = new ActorId({ endpoint: { name: 'sea', host, port: 7001 }, uid: '0123456789abcdef' }, '/user/a', 1)
      expect(ActorId.parse(id.toString()).toString()).toBe(id.toString())
    }
    for (const host of INVALID) {
      expect(isValidHost(host)).toBe(false)
      expect(() => checkNodeHost(host, '--host')).toThrow(
        new ConfigError(`--host ${JSON.stringify(host)} is not a host a node can use: use ${NODE_HOST_FORMS}.`),
      )
    }
  })

  it('ClusterSystem.start refuses an IPv6 zone with a ConfigError saying why and what to use', async () => {
    const start = ClusterSystem.start({ host: 'fe80::1%eth0', port: 0, secret: SECRET, logLevel: 'silent' })
    await expect(start).rejects.toBeInstanceOf(ConfigError)
    await expect(start).rejects.toThrow(
      `Host "fe80::1%eth0" has an IPv6 zone (%eth0), which names an interface of this machine only, so other nodes could not reach it at that address: use ${NODE_HOST_FORMS}.`,
    )
  })

  it('ClusterSystem.start, startClusterDaemon and SwimMember.start refuse invalid hosts before binding anything', async () => {
    for (const host of ['my host', '[::1]', 'host:7337']) {
      await expect(ClusterSystem.start({ host, port: 0, secret: SECRET, logLevel: 'silent' })).rejects.toThrow(
        `Host ${JSON.stringify(host)} is not a host a node can use`,
      )
      await expect(ClusterSystem.startClusterDaemon({ host, port: 0, secret: SECRET, logLevel: 'silent' })).rejects.toBeInstanceOf(ConfigError)
      await expect(SwimMember.start({ host, port: 0, secret: SECRET })).rejects.toThrow(`SWIM host ${JSON.stringify(host)} is not a host a node can use`)
    }
    await expect(SwimMember.start({ host: 'fe80::1%eth0', port: 0, secret: SECRET })).rejects.toThrow('SWIM host "fe80::1%eth0" has an IPv6 zone (%eth0)')
  })

  it('shoal node and shoal clusterd refuse such a --host in one line naming the flag, exit 2', async () => {
    for (const args of [
      ['node', '--host', 'fe80::1%eth0', '--port', '0'],
      ['clusterd', '--host', 'my host', '--port', '0'],
    ]) {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [SHOAL_BIN, ...args], { env: { ...process.env, SHOAL_SECRET: SECRET }, timeout: 30_000 }, (err, _out, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
        )
      })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
      expect(r.stderr).toContain(`--host ${JSON.stringify(args[2])} `)
      expect(r.stderr).toContain(NODE_HOST_FORMS)
    }
  })
})
