/**
 * Node's own process metrics (event-loop lag, heap, GC, CPU, handles, memory), prom-client's
 * defaults, in one registry per process: served by every system's management endpoint next to its
 * own metrics.
 *
 * Why per process and not per system: the collectors hold a GC observer and an event-loop delay
 * monitor that are never released, so one per system would leak in a process that starts many
 * (tests), and they measure the process anyway.
 * @module
 */
import { collectDefaultMetrics, Registry } from 'prom-client'

let registry: Registry | undefined

/** The process registry, made (and its collectors started) on first use. */
export function processRegistry(): Registry {
  if (!registry) {
    registry = new Registry()
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 })
  }
  return registry
}

/** A system's metrics and the process's, in the Prometheus text format. */
export async function metricsText(system: Registry): Promise<string> {
  return (await Registry.merge([system, processRegistry()]).metrics()) as string
}
