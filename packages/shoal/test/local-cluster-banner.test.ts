/**
 * `npm start` prints commands to paste: the leave command must work in a shell that has no
 * SHOAL_HTTP_TOKEN (the launcher generated the token; the user's shell never saw it), and its
 * bearer is the management token, not the cluster secret.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { ClusterSystem, ManagementServer } from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'
import { banner, leaveCommand, shellQuote } from '../../../examples/local-cluster-banner.ts'

/** A cluster secret strong enough to start with (≥ 128 bits). */
const SECRET = randomBytes(32).toString('hex')

const run = promisify(execFile)

/** Runs `line` as if pasted into a shell without SHOAL_SECRET or SHOAL_HTTP_TOKEN. */
function paste(line: string): Promise<{ stdout: string; stderr: string }> {
  const env = { ...process.env }
  delete env.SHOAL_SECRET
  delete env.SHOAL_HTTP_TOKEN
  return run('/bin/sh', ['-c', line], { env, timeout: 10_000 })
}

describe('npm start banner', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  it('prints the leave command with the actual management token, not $SHOAL_HTTP_TOKEN', () => {
    const text = banner({ daemon: '127.0.0.1:3137', base: 7351, httpBase: 8351, httpToken: '0123abcd' })
    expect(text).not.toContain('$SHOAL_')
    expect(text).toContain(`  curl -X POST -H 'Authorization: Bearer 0123abcd' http://127.0.0.1:8353/cluster/leave\n`)
    expect(text).toContain('management token, not the cluster secret')
  })

  it('quotes any secret as one shell word', async () => {
    for (const secret of ['plain', `it's $HOME "x" \`id\` \\ end`, 'a b\tc']) {
      const { stdout } = await paste(`printf %s ${shellQuote(secret)}`)
      expect(stdout).toBe(secret)
    }
  })

  it('the printed leave command, pasted into a shell without SHOAL_HTTP_TOKEN, makes the node leave', async () => {
    // A bearer token has no spaces; quotes and $ must survive the shell.
    const httpToken = `t0ken'quoted'$NOT_EXPANDED-0123456789abcdef`
    const system = await ClusterSystem.start({ port: 0, logLevel: 'silent', secret: SECRET, cluster: { selfJoinAfter: 0 } })
    cleanup.push(() => system.shutdown())
    let left = false
    const mgmt = await ManagementServer.start(system, { port: 0, token: httpToken, onLeave: async () => void (left = true) })
    cleanup.push(() => mgmt.close())
    // The banner's last command line before "Press Ctrl-C" is node 3's (httpBase + 2).
    const text = banner({ daemon: '127.0.0.1:3137', base: 7351, httpBase: mgmt.port - 2, httpToken })
    const line = text
      .split('\n')
      .find((l) => l.includes('/cluster/leave'))!
      .trim()
    expect(line).toBe(leaveCommand(mgmt.port, httpToken))
    const { stdout } = await paste(`${line} -s -o /dev/null -w '%{http_code}'`)
    expect(stdout).toBe('202')
    await expect.poll(() => left).toBe(true)
    // The cluster secret is no bearer here.
    expect((await paste(`${leaveCommand(mgmt.port, SECRET)} -s -o /dev/null -w '%{http_code}'`)).stdout).toBe('401')
  })
})
