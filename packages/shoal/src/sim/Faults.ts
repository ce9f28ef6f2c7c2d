/**
 * Fault schedules for the cluster simulator, drawn from a seed: crashes with restarts on the same
 * address, pauses (a frozen event loop, SIGSTOP) shorter and longer than failure detection and than
 * a lease, partitions of any shape (two or three sides, one-way links) that heal, bursts of loss and
 * delay, and lease-store outages. Every fault ends before `quietAt`, so the run can check that the
 * cluster converges once the network heals.
 * @module
 */
import { mixSeed, seededRandom } from './Random.ts'

/** One scheduled fault; times in ms of simulated time. */
export type Fault =
  | { readonly kind: 'crash'; readonly at: number; readonly node: number; readonly restartAfter: number }
  | { readonly kind: 'pause'; readonly at: number; readonly node: number; readonly duration: number }
  | { readonly kind: 'partition'; readonly at: number; readonly sides: readonly (readonly number[])[]; readonly duration: number }
  | { readonly kind: 'one-way'; readonly at: number; readonly from: number; readonly to: number; readonly duration: number }
  | { readonly kind: 'loss'; readonly at: number; readonly loss: number; readonly duration: number }
  | { readonly kind: 'delay'; readonly at: number; readonly delay: number; readonly jitter: number; readonly duration: number }
  | { readonly kind: 'store-outage'; readonly at: number; readonly duration: number }
  | { readonly kind: 'store-slow'; readonly at: number; readonly latency: number; readonly duration: number }

export type FaultKind = Fault['kind']

/** The fault mixes `shoal sim --cluster --faults` accepts. */
export const FAULT_MIXES = ['dense', 'crash', 'pause', 'partition', 'one-way', 'network', 'store', 'none'] as const
export type FaultMix = (typeof FAULT_MIXES)[number]

const KINDS_OF: Record<FaultMix, readonly FaultKind[]> = {
  dense: ['crash', 'pause', 'partition', 'one-way', 'loss', 'delay', 'store-outage', 'store-slow'],
  crash: ['crash'],
  pause: ['pause'],
  partition: ['partition'],
  'one-way': ['one-way'],
  network: ['loss', 'delay'],
  store: ['store-outage', 'store-slow'],
  none: [],
}

/** How dense a schedule is. */
export interface ScheduleOptions {
  readonly nodes: number
  readonly seed: number
  readonly mix: FaultMix
  /** First fault no earlier than this (the cluster forms first), ms. */
  readonly start: number
  /** Every fault has ended by this time, ms. */
  readonly quietAt: number
  /** Mean gap between fault starts, ms. Default 15 s. */
  readonly meanGap?: number
}

/** Draws a fault schedule from a seed: the same options give the same schedule. */
export function faultSchedule(o: ScheduleOptions): Fault[] {
  const kinds = KINDS_OF[o.mix]
  if (kinds.length === 0) return []
  const random = seededRandom(mixSeed(o.seed, 0xfa017))
  const between = (lo: number, hi: number): number => lo + random() * (hi - lo)
  const node = (): number => Math.floor(random() * o.nodes)
  const out: Fault[] = []
  const meanGap = o.meanGap ?? 15_000
  for (let at = o.start + between(0, meanGap); at < o.quietAt; at += between(0.3, 1.7) * meanGap) {
    const kind = kinds[Math.floor(random() * kinds.length)]!
    const room = o.quietAt - at
    const len = (lo: number, hi: number): number => Math.min(between(lo, hi), room)
    const t = Math.round(at)
    switch (kind) {
      case 'crash':
        out.push({ kind, at: t, node: node(), restartAfter: Math.min(between(1000, 15_000), room) })
        break
      case 'pause':
        // From a blip to far past detection, downing and a lease's ttl.
        out.push({ kind, at: t, node: node(), duration: len(200, 30_000) })
        break
      case 'partition':
        out.push({ kind, at: t, sides: sides(o.nodes, random), duration: len(2000, 40_000) })
        break
      case 'one-way': {
        const from = node()
        out.push({ kind, at: t, from, to: (from + 1 + Math.floor(random() * (o.nodes - 1))) % o.nodes, duration: len(2000, 30_000) })
        break
      }
      case 'loss':
        out.push({ kind, at: t, loss: between(0.02, 0.3), duration: len(2000, 30_000) })
        break
      case 'delay':
        out.push({ kind, at: t, delay: between(5, 200), jitter: between(0, 100), duration: len(2000, 30_000) })
        break
      case 'store-outage':
        out.push({ kind, at: t, duration: len(1000, 20_000) })
        break
      case 'store-slow':
        out.push({ kind, at: t, latency: between(50, 3000), duration: len(2000, 30_000) })
        break
    }
  }
  return out
}

/** Two or three non-empty sides of any sizes. */
function sides(nodes: number, random: () => number): number[][] {
  const count = nodes >= 3 && random() < 0.3 ? 3 : 2
  for (;;) {
    const out: number[][] = Array.from({ length: count }, () => [])
    for (let i = 0; i < nodes; i++) out[Math.floor(random() * count)]!.push(i)
    if (out.every((s) => s.length > 0)) return out
  }
}

/** One line per fault, for traces and reports. */
export function describeFault(f: Fault): string {
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)}s`
  switch (f.kind) {
    case 'crash':
      return `crash n${f.node}, restart after ${s(f.restartAfter)}`
    case 'pause':
      return `pause n${f.node} for ${s(f.duration)}`
    case 'partition':
      return `partition ${f.sides.map((x) => x.map((i) => `n${i}`).join(',')).join(' | ')} for ${s(f.duration)}`
    case 'one-way':
      return `one-way n${f.from} -/-> n${f.to} for ${s(f.duration)}`
    case 'loss':
      return `loss ${(f.loss * 100).toFixed(0)}% for ${s(f.duration)}`
    case 'delay':
      return `delay ${f.delay.toFixed(0)}±${f.jitter.toFixed(0)} ms for ${s(f.duration)}`
    case 'store-outage':
      return `lease store unavailable for ${s(f.duration)}`
    case 'store-slow':
      return `lease store answers in ${f.latency.toFixed(0)} ms for ${s(f.duration)}`
  }
}
