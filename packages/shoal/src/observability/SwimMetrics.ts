/**
 * Prometheus metrics of a SWIM member, collected on scrape from the instance's counters (no
 * prom-client work on the protocol path).
 * @module
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { SwimInstance, SwimStats } from '../swim/SwimInstance.ts'

/** Traffic counted by the shell. */
export interface SwimTraffic {
  messagesIn: number
  messagesOut: number
  bytesIn: number
  bytesOut: number
  /** Largest datagram sent, bytes. */
  largestOut: number
  dropped: Map<string, number>
}

/** Registers the `shoal_swim_*` metrics of one member in `registry`, read from its counters on scrape. */
export function registerSwimMetrics(registry: Registry, instance: SwimInstance, traffic: SwimTraffic, streamRefused: () => ReadonlyMap<string, number>): void {
  const registers = [registry]
  new Gauge({
    name: 'shoal_swim_members',
    help: 'Members known to this node, by status (self included)',
    labelNames: ['status'],
    registers,
    collect() {
      const counts = { alive: 0, suspect: 0, dead: 0, left: 0 }
      for (const m of instance.members()) counts[m.status]++
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
    },
  })
  new Gauge({
    name: 'shoal_swim_local_health',
    help: 'Lifeguard local health multiplier (0 = healthy; scales probe interval and timeouts by 1 + this)',
    registers,
    collect() {
      this.set(instance.health.score)
    },
  })
  new Gauge({
    name: 'shoal_swim_incarnation',
    help: 'This node’s incarnation number',
    registers,
    collect() {
      this.set(instance.incarnation)
    },
  })
  new Gauge({
    name: 'shoal_swim_queue_length',
    help: 'Updates waiting to be piggybacked',
    registers,
    collect() {
      this.set(instance.queueLength)
    },
  })
  new Gauge({
    name: 'shoal_swim_queue_bytes',
    help: 'Bytes of updates waiting to be piggybacked',
    registers,
    collect() {
      this.set(instance.queueBytes)
    },
  })

  const last = new Map<string, number>()
  const total = (name: string, help: string, stat: keyof SwimStats): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        const v = instance.stats[stat]
        this.inc(v - (last.get(stat) ?? 0))
        last.set(stat, v)
      },
    })
  }
  total('shoal_swim_probes_total', 'Probes started', 'probes')
  total('shoal_swim_acks_total', 'Probes acknowledged (directly, indirectly or over TCP)', 'acks')
  total('shoal_swim_nacks_total', 'Nacks received from helpers of indirect probes', 'nacks')
  total('shoal_swim_indirect_probes_total', 'Probes that needed indirect ping requests', 'indirectProbes')
  total('shoal_swim_failed_probes_total', 'Probes that failed every way', 'failedProbes')
  total('shoal_swim_inconclusive_probes_total', 'Failed probes not held against the target because this node stalled', 'inconclusiveProbes')
  total('shoal_swim_suspicions_raised_total', 'Members this node suspected', 'suspicionsRaised')
  total('shoal_swim_suspicions_refuted_total', 'Suspicions of this node that it refuted', 'refutations')
  total('shoal_swim_deaths_declared_total', 'Members this node declared dead', 'deathsDeclared')
  total('shoal_swim_stalls_total', 'Local stalls (event-loop delay or late timers) that raised local health', 'stalls')

  const seen = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 }
  const flow = (name: string, help: string, inKey: 'messagesIn' | 'bytesIn', outKey: 'messagesOut' | 'bytesOut'): void => {
    new Counter({
      name,
      help,
      labelNames: ['direction'],
      registers,
      collect() {
        this.inc({ direction: 'in' }, traffic[inKey] - seen[inKey])
        this.inc({ direction: 'out' }, traffic[outKey] - seen[outKey])
        seen[inKey] = traffic[inKey]
        seen[outKey] = traffic[outKey]
      },
    })
  }
  flow('shoal_swim_messages_total', 'SWIM datagrams', 'messagesIn', 'messagesOut')
  flow('shoal_swim_bytes_total', 'SWIM datagram bytes', 'bytesIn', 'bytesOut')
  const dropped = new Map<string, number>()
  new Counter({
    name: 'shoal_swim_dropped_total',
    help: 'Datagrams and stream requests dropped, by reason (auth, truncated, version, oversized, …)',
    labelNames: ['reason'],
    registers,
    collect() {
      const all = new Map(traffic.dropped)
      for (const [reason, n] of streamRefused()) all.set(`stream-${reason}`, (all.get(`stream-${reason}`) ?? 0) + n)
      for (const [reason, n] of all) {
        this.inc({ reason }, n - (dropped.get(reason) ?? 0))
        dropped.set(reason, n)
      }
    },
  })
}
