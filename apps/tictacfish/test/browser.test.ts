/**
 * The browser UI in Debian's Chromium through playwright-core: two players join, ready up, play a
 * game to a win and one to a draw, and see the completed games in the lobby; a third plays in the
 * browser against a client of the JSONL API (mixed transports). TTF_SCREENSHOTS=DIR saves the
 * lobby and a finished game there (docs/images holds the ones in docs/tictacfish.md).
 */

import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StreamClient } from '../src/client/StreamClient.ts'
import { moveFor } from '../src/game/GameRules.ts'
import { startTicTacFishNode, type TicTacFishNode } from '../src/node/TicTacFishNode.ts'
import { type GameState, type Player, parseServerLobbyLine } from '../src/protocol/Messages.ts'

const CHROMIUM = '/usr/bin/chromium'
const shots = process.env.TTF_SCREENSHOTS
let node: TicTacFishNode
let browser: Browser
let url: string
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ttf-browser-'))
  node = await startTicTacFishNode({
    roles: ['gateway', 'players', 'lobby'],
    system: { port: 0, insecure: true, logLevel: 'silent' },
    journal: `sqlite:${join(dir, 'journal.db')}`,
    gateway: { port: 0 },
  })
  url = `http://127.0.0.1:${node.gateway!.address.port}`
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await node?.stop()
  rmSync(dir, { recursive: true, force: true })
})

async function join_(name: string, team: 'fish' | 'rodents'): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 800, height: 600 } })).newPage()
  await page.goto(url)
  await page.getByTestId('name').fill(name)
  await page.getByTestId('team').selectOption(team)
  await page.getByTestId('play').click()
  await page.getByTestId('ready').waitFor()
  return page
}

const caption = (p: Page) => p.getByTestId('caption').textContent()

/** Plays `positions` alternately starting with whichever page has the turn; waits for each move to show on both. */
async function playGame(a: Page, b: Page, positions: number[]): Promise<[Page, Page]> {
  await expect.poll(async () => [await caption(a), await caption(b)].sort(), { timeout: 15_000 }).toEqual(["Opponent's turn", 'Your turn'])
  const x = (await caption(a)) === 'Your turn' ? a : b
  const o = x === a ? b : a
  for (const [i, pos] of positions.entries()) {
    const mover = i % 2 === 0 ? x : o
    const other = mover === x ? o : x
    await expect.poll(() => caption(mover), { timeout: 10_000 }).toBe('Your turn')
    await mover.getByTestId(`cell-${pos}`).click()
    await expect.poll(() => other.getByTestId(`cell-${pos}`).textContent(), { timeout: 10_000 }).not.toBe('')
  }
  return [x, o]
}

describe.skipIf(!existsSync(CHROMIUM))('TicTacFish in Chromium', () => {
  it('two browsers play to a win and to a draw, then a browser plays a JSONL client', async () => {
    const ann = await join_('Ann', 'fish')
    const bob = await join_('Bob', 'rodents')
    await expect.poll(() => ann.getByTestId('lobby-player').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('Bob')]))
    if (shots) await ann.screenshot({ path: join(shots, 'tictacfish-lobby.png') })

    await ann.getByTestId('ready').click()
    await bob.getByTestId('ready').click()
    await ann.getByTestId('board').waitFor({ timeout: 15_000 })
    await bob.getByTestId('board').waitFor({ timeout: 15_000 })
    const [x, o] = await playGame(ann, bob, [0, 3, 1, 4, 2])
    await expect.poll(() => caption(x)).toBe('You win!')
    await expect.poll(() => caption(o)).toBe('Opponent won!')
    if (shots) await x.screenshot({ path: join(shots, 'tictacfish-game.png') })

    for (const p of [ann, bob]) await p.getByTestId('back').click()
    await ann.getByTestId('ready').click()
    await bob.getByTestId('ready').click()
    await ann.getByTestId('board').waitFor({ timeout: 15_000 })
    const [x2, o2] = await playGame(ann, bob, [0, 1, 2, 4, 3, 5, 7, 6, 8])
    for (const p of [x2, o2]) await expect.poll(() => caption(p)).toBe('Game ended in a Draw!')
    for (const p of [ann, bob]) await p.getByTestId('back').click()
    await expect.poll(() => ann.getByTestId('completed').textContent()).toBe('2 games completed')
    await expect.poll(() => ann.getByTestId('score').textContent()).toMatch(/^(1 : 0|0 : 1)$/)

    // Mixed transports: Cy in a browser, Dee through the JSONL API; Ann and Bob stay in the lobby, not ready.
    const cy = await join_('Cy', 'fish')
    const dee: Player = { playerId: randomUUID(), name: 'Dee', team: 'rodents' }
    const lobby = StreamClient.lobby({ url, player: dee })
    lobby.status$(dee, 'connect')
    lobby.status$(dee, 'ready')
    await cy.getByTestId('ready').click()
    const started = await lobby.next((l) => {
      const p = parseServerLobbyLine(JSON.stringify(l))
      return p.kind === 'session' && p.update.type === 'started' && [p.update.game.playerOne, p.update.game.playerTwo].some((q) => q.playerId === dee.playerId)
        ? p.update.game
        : undefined
    }, 15_000)
    let game: GameState = started.value
    const stream = StreamClient.game({ url, player: dee })
    await stream.opened
    await cy.getByTestId('board').waitFor()
    // Cy plays 0, 1, 2 (a row), Dee plays 3, 4, 8 (no line) whenever it is its turn.
    const deeMoves = [3, 4, 8]
    for (let turn = 0; turn < 6; turn++) {
      if (game.currentPlayerId === dee.playerId) {
        const mv = moveFor(game, dee, deeMoves.shift()!)
        stream.move(mv)
        await expect.poll(() => cy.getByTestId(`cell-${mv.position}`).textContent()).not.toBe('')
        game = { ...game, moves: [...game.moves, mv], currentPlayerId: otherId(game, dee) }
      } else {
        const pos = [0, 1, 2].find((p) => !game.moves.some((m) => m.position === p))!
        await expect.poll(() => caption(cy)).toBe('Your turn')
        const seen = stream.lines.length
        await cy.getByTestId(`cell-${pos}`).click()
        const got = await stream.next((l) => (l as { message: { position: number } }).message, 10_000, seen)
        expect(got.value.position).toBe(pos)
        game = { ...game, moves: [...game.moves, got.value as GameState['moves'][number]], currentPlayerId: dee.playerId }
      }
      if (game.moves.filter((m) => m.playerId !== dee.playerId).length === 3) break
    }
    await expect.poll(() => caption(cy)).toBe('You win!')
    lobby.close()
    stream.close()
  }, 120_000)
})

const otherId = (g: GameState, p: Player): string => (g.playerOne.playerId === p.playerId ? g.playerTwo.playerId : g.playerOne.playerId)
