/**
 * `npm start` prints commands to paste: the leave command must work in a shell that has no
 * SHOAL_SECRET (the launcher generated the secret; the user's shell never saw it).
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { ClusterSystem, ManagementServer } from 'shoal'
import { afterEach, describe, expect, it } from 'vitest'
import { banner, leaveCommand, shellQuote } from '../../../examples/local-cluster-banner.ts'

const run = promisify(execFile)

/** Runs `line` as if pasted into a shell without SHOAL_SECRET. */
function paste(line: string): Promise<{ stdout: string; stderr: string }> {
  const env = { ...process.env }
  delete env.SHOAL_SECRET
  return run('/bin/sh', ['-c', line], { env, timeout: 10_000 })
}

describe('npm start banner', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })

  it('prints the leave command with the actual secret, not $SHOAL_SECRET', () => {
    const text = banner({ daemon: '127.0.0.1:3137', base: 7351, httpBase: 8351, secret: '0123abcd' })
    expect(text).not.toContain('$SHOAL_SECRET')
    expect(text).toContain(`  curl -X POST -H 'Authorization: Bearer 0123abcd' http://127.0.0.1:8353/cluster/leave\n`)
  })

  it('quotes any secret as one shell word', async () => {
    for (const secret of ['plain', `it's $HOME "x" \`id\` \\ end`, 'a b\tc']) {
      const { stdout } = await paste(`printf %s ${shellQuote(secret)}`)
      expect(stdout).toBe(secret)
    }
  })

  it('the printed leave command, pasted into a shell without SHOAL_SECRET, makes the node leave', async () => {
    // A bearer token has no spaces; quotes and $ must survive the shell.
    const secret = `s3cret'quoted'$NOT_EXPANDED`
    const system = await ClusterSystem.start({ port: 0, logLevel: 'silent', secret, cluster: { selfJoinAfter: 0 } })
    cleanup.push(() => system.shutdown())
    let left = false
    const mgmt = await ManagementServer.start(system, { port: 0, secret, onLeave: async () => void (left = true) })
    cleanup.push(() => mgmt.close())
    // The banner's last command line before "Press Ctrl-C" is node 3's (httpBase + 2).
    const text = banner({ daemon: '127.0.0.1:3137', base: 7351, httpBase: mgmt.port - 2, secret })
    const line = text
      .split('\n')
      .find((l) => l.includes('/cluster/leave'))!
      .trim()
    expect(line).toBe(leaveCommand(mgmt.port, secret))
    const { stdout } = await paste(`${line} -s -o /dev/null -w '%{http_code}'`)
    expect(stdout).toBe('202')
    await expect.poll(() => left).toBe(true)
  })
})
