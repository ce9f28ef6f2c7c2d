/**
 * SWIM settings, with defaults and the reasons for them. All durations in milliseconds.
 *
 * The defaults are chosen so that, in the simulator, every member knows of a crash within about
 * 5 s at the median and 8 s in the worst of 20 runs, at any cluster size from 10 to 1,000, while 5%
 * packet loss and 2-second event-loop stalls cause no false deaths (docs/benchmarks.md).
 * @module
 */
import { ConfigError } from '../errors.ts'

/** SWIM settings; every field is optional, the defaults are in `SWIM_DEFAULTS` with their reasons. */
export interface SwimSettings {
  /**
   * Protocol period: one probe per period, scaled by local health. Default 800: SWIM, memberlist
   * and Swift use 1000, but the first probe of a crashed member comes after ~1.6 periods on
   * average with a long tail, and 800 keeps the worst detection time under 8 s.
   */
  readonly probeInterval?: number
  /**
   * Direct ping timeout before indirect probes start, scaled by local health. Default 300 (Swift):
   * many LAN round trips, and leaves 500 ms of the period for the indirect round.
   */
  readonly pingTimeout?: number
  /** Members asked to ping a target that missed a direct ping (k). Default 3 (SWIM, memberlist, Swift). */
  readonly indirectChecks?: number
  /** A helper's ping timeout as a fraction of `pingTimeout`, before it nacks. Default 0.8 (Swift). */
  readonly indirectTimeoutFactor?: number
  /** Also ping over TCP when UDP fails, so a UDP-only fault does not kill a member. Default true (memberlist). */
  readonly tcpFallback?: boolean
  /**
   * Shortest suspicion timeout (reached with `confirmations` independent confirmations). Default 3000:
   * longer than a 2 s event-loop stall plus the time a refutation takes to spread.
   */
  readonly suspicionMin?: number
  /** Longest suspicion timeout (a lone accuser). Default 3 × `suspicionMin`. */
  readonly suspicionMax?: number
  /** Independent confirmations (K) that bring the timeout down to `suspicionMin`. Default 3. */
  readonly confirmations?: number
  /**
   * On first hearing of a suspicion, a member probes the suspect in its next period with
   * probability `confirmationProbes / (members − 2)`, so about this many members confirm or refute
   * it within a period, whatever the cluster size. Default 3 (= K). 0 disables.
   */
  readonly confirmationProbes?: number
  /**
   * Upper bound of the local health multiplier. Default 1 (Lifeguard, memberlist and Swift use 8):
   * a partition's minority reaches the cap (its helpers on the far side never nack), and the
   * scaled period decides how soon it sees the majority gone: about 20–25 s at 8, 7–10 s at 3,
   * 4–5 s at 1. In the simulator, 5% and 10% loss and 2-second stalls give no false deaths at any
   * of these caps (late probes are inconclusive, suspicions need confirmations or a self-check).
   */
  readonly maxLocalHealth?: number
  /** Event-loop delay or timer lateness (ms) that counts as a local stall. Default 250. */
  readonly stallThreshold?: number
  /** λ: each update is sent λ·ceil(log10(n + 1)) times. Default 4 (memberlist LAN): 8 at 10 members, 12 at 100. */
  readonly retransmitMult?: number
  /** Gossip tick while updates are queued. Default 200 (memberlist LAN). */
  readonly gossipInterval?: number
  /** Members gossiped to per tick. Default 3 (memberlist LAN). */
  readonly gossipFanout?: number
  /** Dead members still receive gossip this long, so a live one can learn and refute. Default 30000. */
  readonly gossipToTheDead?: number
  /** Push-pull anti-entropy period, scaled up above 32 members as in memberlist. Default 30000. */
  readonly pushPullInterval?: number
  /** Dead members are re-probed, one every this many ms, so a healed partition merges. Default 5000. */
  readonly reprobeInterval?: number
  /** Seeds that are not live members are re-joined this often. Default 30000 (2000 while alone). */
  readonly rejoinInterval?: number
  /** Dead and left members are forgotten after this long; until then their uid cannot come back. Default 24 h. */
  readonly tombstoneTtl?: number
  /** Largest datagram in bytes, tag included. Default 1400 (no IP fragmentation on Ethernet paths). */
  readonly maxDatagram?: number
  /** Byte bound of the dissemination queue. Default 256 KiB. */
  readonly maxQueueBytes?: number
  /** Most members accepted in one push-pull. Default 100,000. */
  readonly maxMembers?: number
}

/** Settings with every default filled in. */
export type ResolvedSwimSettings = { readonly [K in keyof SwimSettings]-?: NonNullable<SwimSettings[K]> }

/** The defaults (see each field of `SwimSettings` for why). */
export const SWIM_DEFAULTS: ResolvedSwimSettings = {
  probeInterval: 800,
  pingTimeout: 300,
  indirectChecks: 3,
  indirectTimeoutFactor: 0.8,
  tcpFallback: true,
  suspicionMin: 3000,
  suspicionMax: 9000,
  confirmations: 3,
  confirmationProbes: 3,
  maxLocalHealth: 1,
  stallThreshold: 250,
  retransmitMult: 4,
  gossipInterval: 200,
  gossipFanout: 3,
  gossipToTheDead: 30_000,
  pushPullInterval: 30_000,
  reprobeInterval: 5000,
  rejoinInterval: 30_000,
  tombstoneTtl: 24 * 3600_000,
  maxDatagram: 1400,
  maxQueueBytes: 256 * 1024,
  maxMembers: 100_000,
}

/** Fills in defaults and checks ranges; throws `ConfigError` naming the bad setting. */
export function resolveSwimSettings(s: SwimSettings = {}): ResolvedSwimSettings {
  const suspicionMin = s.suspicionMin ?? SWIM_DEFAULTS.suspicionMin
  const r: ResolvedSwimSettings = { ...SWIM_DEFAULTS, suspicionMax: 3 * suspicionMin, ...definedOnly(s) }
  for (const [key, value] of Object.entries(r)) {
    if (typeof value === 'number' && !(Number.isFinite(value) && value >= 0)) throw new ConfigError(`swim.${key} must be a finite number ≥ 0, got ${value}.`)
  }
  if (r.probeInterval <= 0 || r.pingTimeout <= 0) throw new ConfigError('swim.probeInterval and swim.pingTimeout must be > 0.')
  if (r.pingTimeout >= r.probeInterval)
    throw new ConfigError(
      `swim.pingTimeout (${r.pingTimeout}) must be shorter than swim.probeInterval (${r.probeInterval}), to leave time for indirect probes.`,
    )
  if (r.suspicionMax < r.suspicionMin) throw new ConfigError('swim.suspicionMax must be ≥ swim.suspicionMin.')
  if (r.maxDatagram < 512 || r.maxDatagram > 65_000) throw new ConfigError('swim.maxDatagram must be between 512 and 65000 bytes.')
  if (r.gossipInterval <= 0) throw new ConfigError('swim.gossipInterval must be > 0.')
  return r
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** Times each update is sent: λ·ceil(log10(n + 1)). */
export function retransmitLimit(mult: number, members: number): number {
  return Math.max(1, mult * Math.ceil(Math.log10(members + 1)))
}

/** memberlist's push-pull scaling: unchanged up to 32 members, then × (ceil(log2 n − log2 32) + 1). */
export function pushPullPeriod(base: number, members: number): number {
  if (members <= 32) return base
  return base * (Math.ceil(Math.log2(members) - 5) + 1)
}
