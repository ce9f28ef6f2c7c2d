/**
 * `npm run demo:rolling [-- --players 40]`: a rolling restart of a TicTacFish cluster of real
 * processes while bots play, as a Kubernetes Deployment rolls (start the new node, wait until it is
 * ready, SIGTERM the old one). Prints each step and a verdict: every old node exits 0, no move is
 * lost or relayed twice, the lobby singleton never runs twice, the gateway sees no failed call.
 */
import { parseArgs } from 'node:util'
import { rollingRestart } from '../node/RollingRestart.ts'

const { values } = parseArgs({ options: { players: { type: 'string', default: '40' } } })
const t0 = performance.now()
const log = (s: string): void => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${s}`)
log('starting a gateway, lobby-a, lobby-b, players-a, players-b and players-c, each its own process…')
const r = await rollingRestart({ players: Number(values.players), log })
const b = r.bots
log(`games ${b.games / 2}, moves ${b.moves}, lost ${b.lost}, duplicated ${b.duplicated}, inconsistent ${b.inconsistent}`)
log(`lobby singleton: ${r.singletonActivations} activations, ${r.singletonOverlaps} overlaps; game sessions moved mid-game: ${r.sessionsMoved}`)
log(`calls the gateway made that failed: ${JSON.stringify(r.gatewayFailures)}`)
for (const s of r.steps)
  log(`  ${s.node} → ${s.replacement}: ready in ${(s.readyMs / 1000).toFixed(1)} s, left in ${(s.leaveMs / 1000).toFixed(1)} s, exit ${s.exitCode}`)
console.log(r.ok ? 'PASS: five nodes replaced one by one; nothing lost, nothing doubled' : 'FAIL: see above')
process.exit(r.ok ? 0 : 1)
