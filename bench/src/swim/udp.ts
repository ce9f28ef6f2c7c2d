/**
 * The real-network check of `npm run bench:swim`: SWIM over real UDP sockets on loopback, beside
 * the simulator's figures. 50 members in this process, default settings; one is stopped without
 * a word (its socket closed, as a crash would) and the time until every other member marks it
 * dead is measured, over a few rounds.
 * @module
 */
import { randomBytes } from 'node:crypto'
import { SwimMember } from '../../../packages/shoal/src/swim/SwimMember.ts'

/** A strong cluster secret of this run's own. */
const SECRET = randomBytes(32).toString('hex')

/** What {@link realUdp} measures. Times in seconds after the member was stopped (worst round). */
export interface RealUdpResult {
  /** Members started, all in this process, each with its own UDP socket on 127.0.0.1. */
  readonly members: number
  /** Every remaining member marks the stopped one dead (the target: ≤ 8 s, as in the simulator). */
  readonly allAgreeSeconds: number
  /** The first member marks it dead. */
  readonly firstDeadSeconds?: number
  /** The first member suspects it. */
  readonly firstSuspectSeconds?: number
  readonly notes?: readonly string[]
}

const MEMBERS = 50
const ROUNDS = 3
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (check()) return true
    await sleep(10)
  }
  return check()
}

async function round(
  progress: (text: string) => void,
): Promise<{ converge: number; allAgree: number; firstDead: number; firstSuspect: number; largest: number }> {
  const all: SwimMember[] = []
  try {
    const start = performance.now()
    const seed = await SwimMember.start({ port: 0, secret: SECRET })
    all.push(seed)
    for (let i = 1; i < MEMBERS; i++) all.push(await SwimMember.start({ port: 0, secret: SECRET, seeds: [`127.0.0.1:${seed.node.port}`] }))
    if (!(await until(() => all.every((m) => m.liveMembers().length === MEMBERS - 1), 60_000))) throw new Error('members did not converge within 60 s')
    const converge = (performance.now() - start) / 1000
    progress(`real UDP: ${MEMBERS} members converged in ${converge.toFixed(2)} s`)
    await sleep(3000)
    const victim = all.splice(1 + Math.floor(Math.random() * (all.length - 1)), 1)[0]!
    let firstSuspect = NaN
    let firstDead = NaN
    for (const m of all) {
      m.subscribe(({ member }) => {
        if (member.node.uid !== victim.node.uid) return
        const t = (performance.now() - stopped) / 1000
        if (member.status === 'suspect' && Number.isNaN(firstSuspect)) firstSuspect = t
        if (member.status === 'dead' && Number.isNaN(firstDead)) firstDead = t
      })
    }
    await victim.close()
    const stopped = performance.now()
    if (!(await until(() => all.every((m) => m.instance.member(victim.node)?.status === 'dead'), 60_000)))
      throw new Error('the stopped member was not marked dead by all within 60 s')
    const allAgree = (performance.now() - stopped) / 1000
    return { converge, allAgree, firstDead, firstSuspect, largest: Math.max(...all.map((m) => m.traffic.largestOut)) }
  } finally {
    await Promise.all(all.map((m) => m.close()))
  }
}

/** Runs {@link ROUNDS} rounds and reports the worst. */
export async function realUdp(progress: (text: string) => void = () => {}): Promise<RealUdpResult> {
  progress(`real UDP: starting (${MEMBERS} members in one process, ${ROUNDS} rounds)`)
  const rounds = []
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round(progress)
    rounds.push(r)
    progress(
      `real UDP round ${i + 1}/${ROUNDS}: first suspicion ${r.firstSuspect.toFixed(2)} s, first dead ${r.firstDead.toFixed(2)} s, dead everywhere ${r.allAgree.toFixed(2)} s`,
    )
  }
  const worst = rounds.reduce((a, b) => (b.allAgree > a.allAgree ? b : a))
  return {
    members: MEMBERS,
    allAgreeSeconds: worst.allAgree,
    firstDeadSeconds: worst.firstDead,
    firstSuspectSeconds: worst.firstSuspect,
    notes: [
      `worst of ${ROUNDS} rounds; all rounds (s): ${rounds.map((r) => r.allAgree.toFixed(2)).join(', ')}`,
      `convergence after start (s): ${rounds.map((r) => r.converge.toFixed(2)).join(', ')}`,
      `largest datagram sent: ${Math.max(...rounds.map((r) => r.largest))} B`,
    ],
  }
}
