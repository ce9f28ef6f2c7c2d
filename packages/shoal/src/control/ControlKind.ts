/**
 * The control-message kinds: the first byte of every control frame (`FrameType.Control`) names
 * the service it is for, and `ControlRouter` dispatches on it. This is the one table of the
 * kinds the runtime uses, so no two services can claim the same one; a new service adds its kind
 * here (0-255; kinds not listed are free, e.g. for tests).
 * @module
 */

/** Control-message kinds of the built-in services. */
export const ControlKind = {
  /** SWIM push-pull and TCP fallback pings (`swim/ControlStreamLink.ts`). */
  Swim: 1,
  /** Membership gossip (`cluster/GossipCodec.ts`). */
  Gossip: 2,
  /** clusterd registrations (`discovery/Clusterd.ts`, over a `ControlStreamLink`). */
  Clusterd: 3,
  /** Receptionist replication (`receptionist/ReceptionistCodec.ts`). */
  Receptionist: 4,
  /** Lifecycle watch system messages (`watch/WatchCodec.ts`). */
  Watch: 5,
  /** Cluster heartbeats: stall detection and confirmations (`cluster/HeartbeatCodec.ts`). */
  Heartbeat: 6,
  /** Per-observer reachability observations (`cluster/HeartbeatCodec.ts`). */
  Reachability: 7,
  /** Virtual actors: hosted types, shard tables, releases (`virtual/VirtualCodec.ts`). */
  VirtualActors: 8,
} as const

/** One of the kinds in {@link ControlKind}. */
export type ControlKind = (typeof ControlKind)[keyof typeof ControlKind]
