/**
 * Shrinking a violation: the smallest set of the seed's faults that still breaks the same
 * invariant. A violating run depends only on its seed and options, so a subset of its fault
 * schedule (`onlyFaults`) is itself a replayable run; this removes faults while the violation
 * stays (delta debugging: halves, then quarters, down to single faults, until no single fault can
 * go) and keeps what is left.
 * The result replays exactly, with a trace a reader can follow: typically two or three faults
 * instead of thirty.
 * @module
 */
import { type ClusterSimOptions, type ClusterSimReport, runClusterSim, type Violation } from './ClusterSimulator.ts'

/** A shrunk violation. */
export interface ShrinkResult {
  readonly seed: number
  readonly invariant: Violation['invariant']
  /** Indices (in the seed's schedule) of the faults that are enough. */
  readonly onlyFaults: readonly number[]
  /** How many faults the original run had before its violation. */
  readonly originalFaults: number
  /** Runs made while shrinking. */
  readonly runs: number
  /** The shrunk run, with its trace, up to the violation. */
  readonly report: ClusterSimReport
}

/**
 * Shrinks the first violation of `options`' run (of `invariant`, if given). Undefined if the run
 * violates nothing. Each try runs only to its first violation, so a shrink costs a few dozen
 * short runs. `progress` is told each try's outcome.
 */
export function shrinkViolation(
  options: ClusterSimOptions,
  invariant?: Violation['invariant'],
  progress?: (kept: number, runs: number) => void,
): ShrinkResult | undefined {
  const first = runClusterSim({ ...options, trace: false, stopOnViolation: invariant ?? true })
  const target = invariant ?? first.violations[0]?.invariant
  const violation = first.violations.find((v) => v.invariant === target)
  if (!target || !violation) return undefined
  // Each try runs until the target breaks (another invariant breaking first does not end it).
  const base = { ...options, trace: false, stopOnViolation: target }
  // Faults after the violation played no part in it.
  let kept = first.schedule.filter((f) => f.at <= violation.at).map((f) => f.index)
  const originalFaults = kept.length
  let runs = 1
  const violates = (only: readonly number[]): boolean => {
    runs++
    const r = runClusterSim({ ...base, onlyFaults: only })
    progress?.(only.length, runs)
    return r.violations.some((v) => v.invariant === target)
  }
  // Try without each chunk of faults in turn, chunks halving down to single faults; single faults
  // again until none can go (then every fault left is needed: the result is 1-minimal).
  let chunk = Math.max(1, Math.ceil(kept.length / 2))
  for (;;) {
    let removed = false
    for (let start = 0; start < kept.length; ) {
      const without = kept.filter((_, j) => j < start || j >= start + chunk)
      if (violates(without)) {
        kept = without
        removed = true
      } else start += chunk
    }
    if (chunk > 1) chunk = Math.ceil(chunk / 2)
    else if (!removed) break
  }
  const report = runClusterSim({ ...options, stopOnViolation: target, trace: true, onlyFaults: kept })
  return { seed: options.seed, invariant: target, onlyFaults: kept, originalFaults, runs, report }
}
