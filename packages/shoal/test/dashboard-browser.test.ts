/**
 * The live cluster dashboard (`GET /dashboard` on the management endpoint) in Debian's Chromium
 * through playwright-core: three nodes with a singleton and virtual actors; the page lists the
 * members with the leader and the oldest, the singleton's host and the virtual-actor shards; when a
 * node leaves, the page shows it gone and its leave in the event log (over /cluster/events).
 * `SHOAL_SCREENSHOTS=docs/images` saves a screenshot.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { ClusterSystem, DistributedActor, distributed, singletonPlugin, virtualActorsPlugin } from 'shoal'
import { eventually } from 'shoal/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DashboardState } from '../src/management/DashboardState.ts'
import { ManagementServer } from '../src/management/ManagementServer.ts'

const CHROMIUM = '/usr/bin/chromium'
const shots = process.env.SHOAL_SCREENSHOTS

class Counter extends DistributedActor {
  #n = 0
  @distributed async add(): Promise<number> {
    return ++this.#n
  }
}

const systems: ClusterSystem[] = []
let server: ManagementServer
let browser: Browser

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    const s = await ClusterSystem.start({
      name: ['ann', 'bob', 'cy'][i],
      port: 0,
      logLevel: 'silent',
      plugins: [singletonPlugin(), virtualActorsPlugin()],
      cluster: { selfJoinAfter: 200, roles: ['app'], seeds: i === 0 ? [] : [`127.0.0.1:${systems[0]!.node.endpoint.port}`] },
    })
    systems.push(s)
    s.singleton.host('counter', (sys) => sys.spawn(Counter))
    s.virtualActors.host(Counter, () => new Counter())
  }
  await eventually(() => expect(systems[0]!.cluster.membership.members.filter((m) => m.status === 'up')).toHaveLength(3), { timeoutMs: 15_000 })
  server = await ManagementServer.start(systems[0]!, { port: 0 })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await Promise.all(systems.map((s) => s.shutdown()))
})

describe.skipIf(!existsSync(CHROMIUM))('the cluster dashboard in Chromium', () => {
  it('shows members, leader and oldest, the singleton and the shards; a node that leaves is gone from the page and in its event log', async () => {
    const url = `http://127.0.0.1:${server.port}`
    // Some traffic: the singleton and virtual actors, from every node.
    for (const s of systems) {
      await s.singleton.proxy(Counter, 'counter').add()
      for (let i = 0; i < 10; i++) await s.virtualActors.get(Counter, `c${i}`).add()
    }
    const state = (await (await fetch(`${url}/dashboard/state`)).json()) as DashboardState
    expect(state.members).toHaveLength(3)
    expect(state.singletons).toEqual([expect.objectContaining({ name: 'counter', host: expect.any(String) })])
    expect(state.virtual?.[0]?.owned).toBeGreaterThan(0)

    const page = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage()
    const response = await page.goto(`${url}/dashboard`)
    expect(response?.headers()['content-security-policy']).toContain("default-src 'self'")
    const rows = page.locator('#members tbody tr')
    await eventually(async () => expect(await rows.count()).toBe(3), { timeoutMs: 10_000 })
    await expect.poll(() => page.locator('#members').innerText(), { timeout: 10_000 }).toMatch(/leader/)
    expect(await page.locator('#members').innerText()).toMatch(/oldest/)
    expect(await page.locator('#singletons').innerText()).toContain('counter')
    expect(await page.locator('#virtual').innerText()).toContain('(any)') // hosted without a role
    await expect.poll(() => page.locator('#log').innerText(), { timeout: 10_000 }).toContain('snapshot: 3 members')

    // cy leaves: the page drops it and logs each step of its leave.
    const cy = systems[2]!
    const cyAddress = `127.0.0.1:${cy.node.endpoint.port}`
    await cy.cluster.leave()
    await expect.poll(() => page.locator('#log').innerText(), { timeout: 15_000 }).toContain(`member ${cyAddress}: exiting → removed`)
    await expect.poll(async () => rows.count(), { timeout: 10_000 }).toBe(2)
    expect(await page.locator('#members').innerText()).not.toContain(cyAddress)
    if (shots) await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true })
  }, 60_000)
})
