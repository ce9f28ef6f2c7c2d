/**
 * One event-loop delay monitor per process (perf_hooks.monitorEventLoopDelay), shared by every
 * SWIM member in it: subscribers hear the worst delay of each 200 ms window. A blocked loop makes
 * every peer look silent; Lifeguard's answer is to distrust one's own judgement meanwhile.
 * @module
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks'

const WINDOW_MS = 200
const listeners = new Set<(delayMs: number) => void>()
let histogram: IntervalHistogram | undefined
let ticker: NodeJS.Timeout | undefined
let lastTick = 0

function tick(): void {
  const now = performance.now()
  // The ticker itself being late is the most direct measure of a stall.
  const late = Math.max(0, now - lastTick - WINDOW_MS)
  lastTick = now
  const worst = Math.max(late, histogram ? histogram.max / 1e6 : 0)
  histogram?.reset()
  for (const l of listeners) l(worst)
}

/** Calls `listener` with the worst event-loop delay (ms) of every window; returns the unsubscribe. */
export function onLoopDelay(listener: (delayMs: number) => void): () => void {
  if (listeners.size === 0) {
    histogram = monitorEventLoopDelay({ resolution: 20 })
    histogram.enable()
    lastTick = performance.now()
    ticker = setInterval(tick, WINDOW_MS)
    ticker.unref()
  }
  listeners.add(listener)
  return () => {
    if (!listeners.delete(listener) || listeners.size > 0) return
    clearInterval(ticker)
    histogram?.disable()
    histogram = undefined
  }
}
