/**
 * The live cluster dashboard (`GET /dashboard` on the management endpoint) in Debian's Chromium
 * through playwright-core: three nodes with a singleton and virtual actors; the page lists the
 * members with the leader and the oldest, every node's traffic, actors by type and top methods
 * (each node asked over the call path), the singleton's host and the virtual-actor shards; when a
 * node leaves, the page shows it gone, and its leave and the shard move in the event log (over
 * /cluster/events).
 * `SHOAL_SCREENSHOTS=docs/images` saves a screenshot.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { ClusterSystem, DistributedActor, distributed, singletonPlugin, virtualActorsPlugin } from 'shoal'
import { eventually, virtualActorsSettled } from 'shoal/testkit'
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest'
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
  // Balancing moves shards (and their activations) in rounds: counts are exact only once it is done.
  await virtualActorsSettled(systems)
  server = await ManagementServer.start(systems[0]!, { port: 0 })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await Promise.all(systems.map((s) => s.shutdown()))
})

describe.skipIf(!existsSync(CHROMIUM))('the cluster dashboard in Chromium', () => {
  it('shows members, every node (traffic, actors by type, top methods), the singleton and the shards; a node that leaves is gone from the page, its leave and the shard move in the event log', async () => {
    const url = `http://127.0.0.1:${server.port}`
    // Some traffic: the singleton and virtual actors, from every node.
    for (const s of systems) {
      await s.singleton.proxy(Counter, 'counter').add()
      for (let i = 0; i < 10; i++) await s.virtualActors.get(Counter, `c${i}`).add()
    }
    const state = (await (await fetch(`${url}/dashboard/state`)).json()) as DashboardState
    expect(state.members).toHaveLength(3)
    // Every member's own report, asked over the call path.
    const nodes = state.nodes.map((n) => ('error' in n ? assert.fail(`${n.name}: ${n.error}`) : n))
    expect(nodes.map((n) => n.name).sort()).toEqual(['ann', 'bob', 'cy'])
    expect(nodes.flatMap((n) => n.singletons)).toContainEqual(expect.objectContaining({ name: 'counter', host: expect.any(String), here: true }))
    expect(nodes.reduce((sum, n) => sum + (n.virtual?.[0]?.owned ?? 0), 0)).toBe(1024)
    expect(nodes.reduce((sum, n) => sum + (n.virtual?.[0]?.active ?? 0), 0)).toBe(10)
    expect(nodes.reduce((sum, n) => sum + (n.actors.byType.Counter ?? 0), 0)).toBe(11) // ten virtual, one singleton

    const page = await (await browser.newContext({ viewport: { width: 1100, height: 900 } })).newPage()
    const response = await page.goto(`${url}/dashboard`)
    expect(response?.headers()['content-security-policy']).toContain("default-src 'self'")
    const rows = page.locator('#members tbody tr')
    await eventually(async () => expect(await rows.count()).toBe(3), { timeoutMs: 10_000 })
    await expect.poll(() => page.locator('#members').innerText(), { timeout: 10_000 }).toMatch(/leader/)
    expect(await page.locator('#members').innerText()).toMatch(/oldest/)
    expect(await page.locator('#singletons').innerText()).toContain('counter')
    expect(await page.locator('#virtual').innerText()).toContain('(any)') // hosted without a role
    expect(await page.locator('#nodes tbody tr').count()).toBe(3)
    expect(await page.locator('#types').innerText()).toMatch(/Counter\s+11/)
    // Traffic while the page is open: the methods every node served, with rates.
    const traffic = setInterval(() => {
      for (const s of systems)
        void s.virtualActors
          .get(Counter, `c${Math.floor(Math.random() * 10)}`)
          .add()
          .catch(() => undefined)
    }, 20)
    try {
      await expect.poll(() => page.locator('#methods').innerText(), { timeout: 10_000 }).toContain('Counter.add')
      await leaves(page)
    } finally {
      clearInterval(traffic)
    }
  }, 60_000)
})

/** cy leaves while the page is open: the page drops it and logs each step of its leave, and the shard move. */
async function leaves(page: Page): Promise<void> {
  const rows = page.locator('#members tbody tr')
  await expect.poll(() => page.locator('#log').innerText(), { timeout: 10_000 }).toContain('snapshot: 3 members')

  const cy = systems[2]!
  const cyAddress = `127.0.0.1:${cy.node.endpoint.port}`
  await cy.cluster.leave()
  await expect.poll(() => page.locator('#log').innerText(), { timeout: 15_000 }).toContain(`member ${cyAddress}: exiting → removed`)
  await expect.poll(async () => rows.count(), { timeout: 10_000 }).toBe(2)
  expect(await page.locator('#members').innerText()).not.toContain(cyAddress)
  // Its shards moved to the others: a new table, in the event log.
  await expect.poll(() => page.locator('#log').innerText(), { timeout: 10_000 }).toMatch(/shards: table v\d+, \d+ moved/)
  await expect.poll(async () => page.locator('#nodes tbody tr').count(), { timeout: 10_000 }).toBe(2)
  if (!shots) return
  await page.waitForTimeout(4500) // two refreshes after the leave: rates of the two that stay
  await page.screenshot({ path: join(shots, 'dashboard.png'), fullPage: true })
}
