/**
 * What `npm run bench:swim` measures, and the statistics it uses. Written to bench/results/swim.json
 * (there `null` stands for "not detected within the run" or "not measured").
 * @module
 */

import type { InjectedEvent, ScenarioReport, StallSpec } from '../../../packages/shoal/src/sim/Scenario.ts'
import type { ResolvedSwimSettings } from '../../../packages/shoal/src/swim/SwimSettings.ts'
import type { Machine as BaseMachine } from '../report.ts'
import type { RealUdpResult } from './udp.ts'

/**
 * Nearest-rank percentiles (the smallest sample with at least p% of the samples at or below it):
 * with 20 samples p50 is the 10th smallest, p95 the 19th, p99 the 20th (the largest). A run in
 * which the event was not detected counts as +∞, so it can only make a percentile worse.
 */
export interface Summary {
  readonly n: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
  /** Runs where it did not happen before the end of the run. */
  readonly undetected: number
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]!
}

/** Summary of per-run values; `null`/`undefined` (not detected) count as +∞. */
export function summarize(values: readonly (number | null | undefined)[]): Summary {
  const xs = values.map((v) => (v === null || v === undefined ? Number.POSITIVE_INFINITY : v)).sort((a, b) => a - b)
  return {
    n: xs.length,
    p50: percentile(xs, 50),
    p95: percentile(xs, 95),
    p99: percentile(xs, 99),
    max: xs.length === 0 ? Number.NaN : xs[xs.length - 1]!,
    undetected: xs.filter((x) => x === Number.POSITIVE_INFINITY).length,
  }
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length
}

/** One simulated run, as kept in the JSON. */
export interface RunRecord {
  readonly seed: number
  readonly members: number
  readonly durationSeconds: number
  readonly loss: number
  readonly events: readonly InjectedEvent[]
  readonly falseSuspicions: number
  readonly falseDeaths: number
  readonly load: ScenarioReport['load']
  /** Wall-clock seconds of the whole run, building the cluster included. */
  readonly wallSeconds: number
  /** Wall-clock seconds of the event loop alone (the simulator's own figure). */
  readonly runWallSeconds: number
  readonly traceHash: string
}

/** Crash detection at one cluster size: one member crashed per run, one run per seed. */
export interface DetectionRow {
  readonly members: number
  readonly durationSeconds: number
  readonly seeds: number
  /** Seconds after the crash until every live member marks it dead. */
  readonly allAgree: Summary
  /** Seconds after the crash until the first member marks it dead. */
  readonly firstDead: Summary
  /** Seconds after the crash until the first member suspects it. */
  readonly firstSuspect: Summary
  /** This size's allAgree p50 ÷ the 100-member allAgree p50. */
  readonly ratioTo100: number
  readonly wallSeconds: number
  /** Seeds left out because the size ran over its wall-clock budget. */
  readonly skippedSeeds: number
  readonly runs: readonly RunRecord[]
}

export interface JoinResult {
  readonly members: number
  readonly durationSeconds: number
  readonly joinAtSeconds: number
  readonly seeds: number
  /** Seconds after the join until every live member knows the newcomer (alive or suspect). */
  readonly allAgree: Summary
  /** Seconds after the join until the newcomer knows every live member. */
  readonly knowsAll: Summary
  readonly runs: readonly RunRecord[]
}

/** Long runs with faults that must not kill anyone. */
export interface FaultRow {
  readonly name: string
  readonly members: number
  readonly durationSeconds: number
  readonly loss: number
  readonly stalls: StallSpec | null
  readonly seeds: number
  /** Summed over the seeds. */
  readonly falseDeaths: number
  readonly falseSuspicions: number
  readonly stallEvents: number
  /** Stalled members suspected / declared dead by anyone during the stall and its grace period. */
  readonly stalledSuspected: number
  readonly stalledDeclaredDead: number
  readonly runs: readonly RunRecord[]
}

/** Steady-state load at one size (no faults), means over the seeds; largest datagram is the max. */
export interface LoadRow {
  readonly members: number
  readonly durationSeconds: number
  readonly seeds: number
  readonly messagesPerMemberPerSecond: number
  readonly bytesPerMemberPerSecond: number
  readonly streamBytesPerMemberPerSecond: number
  readonly largestDatagram: number
  /** This size ÷ the smallest size (25 members). */
  readonly messagesRatio: number
  readonly bytesRatio: number
  readonly runs: readonly RunRecord[]
}

export interface SpeedResult {
  readonly members: number
  readonly durationSeconds: number
  /** The whole run, building the 1000-member cluster included. */
  readonly wallSeconds: number
  /** Simulated seconds per wall-clock second. */
  readonly speed: number
  readonly targetWallSeconds: number
  readonly run: RunRecord
}

/** The machine, and the commit of the checkout when the run started (`+dirty` with local changes). */
export interface Machine extends BaseMachine {
  readonly commit: string
}

export interface Plan {
  /** Seeds per size for crash detection and flatness (the runs use seeds 1..N). */
  readonly seeds: number
  readonly crashMembers: number
  readonly crashDuration: number
  readonly sizes: readonly number[]
  /** A size stops taking more seeds past this many wall-clock seconds (after `minSeeds`). */
  readonly sizeBudgetSeconds: number
  readonly minSeeds: number
  readonly join: { readonly members: number; readonly seeds: number; readonly duration: number }
  readonly faults: { readonly members: number; readonly duration: number; readonly seeds: number; readonly loss: number; readonly stalls: StallSpec }
  readonly load: { readonly sizes: readonly number[]; readonly duration: number; readonly seeds: number }
  readonly speed: { readonly members: number; readonly duration: number; readonly targetWallSeconds: number }
}

export interface Target {
  readonly id: string
  readonly goal: string
  readonly actual: string
  readonly pass: boolean
}

export interface SwimResults {
  readonly date: string
  readonly mode: 'quick' | 'full'
  readonly machine: Machine
  readonly settings: ResolvedSwimSettings
  readonly plan: Plan
  readonly crash: DetectionRow
  /** Every size, ascending, the crash-detection size included. */
  readonly flatness: readonly DetectionRow[]
  readonly join: JoinResult
  readonly faults: readonly FaultRow[]
  readonly load: readonly LoadRow[]
  readonly speed: SpeedResult
  readonly realUdp: { readonly result: RealUdpResult } | { readonly error: string }
  /** Largest datagram (tag included) of every simulated run of the benchmark. */
  readonly largestDatagramAllRuns: number
  /** The first run that sent it. */
  readonly largestDatagramRun: string
  readonly simulatedRuns: number
  readonly totalWallSeconds: number
}
