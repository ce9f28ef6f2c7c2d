/**
 * Settings of a ClusterSystem, with defaults and the reasons for them.
 * @module
 */
import type { Logger } from 'pino'
import type { SerializationOptions } from './serialization/Serialization.ts'
import type { TlsSettings } from './transport/Transport.ts'
import type { SwimAddress } from './swim/Member.ts'
import type { SwimSettings } from './swim/SwimSettings.ts'
import type { ClusterSettings } from './cluster/Cluster.ts'
import type { Plugin } from './Plugin.ts'
import type { ReceptionistSettings } from './receptionist/Receptionist.ts'
import type { WatchSettings } from './watch/LifecycleWatch.ts'

/** SWIM failure detection for a cluster system: protocol settings plus where to join. */
export interface SystemSwimSettings extends SwimSettings {
  /** Addresses (`host:port` of other nodes) to join through; re-joined while not live members. */
  readonly seeds?: readonly (string | SwimAddress)[]
}

export interface ClusterSystemSettings {
  /** System name, part of every actor id. Letters, digits, `_ . -`. Default `shoal`. */
  readonly name?: string
  /**
   * Cluster name: a node refuses handshakes from, and drops SWIM datagrams of, nodes of another
   * cluster. Letters, digits, `_ . -`. Default: the `SHOAL_CLUSTER_NAME` environment variable,
   * else `shoal`.
   *
   * Gotcha: without a secret this is what keeps two clusters on one host apart, e.g. when one
   * cluster's node binds a port a dead node of the other had used, which that cluster still
   * probes. Give each cluster its own name (or its own secret).
   */
  readonly clusterName?: string
  /** Host to bind and advertise. Default `127.0.0.1`. A non-loopback host requires `secret` (or `insecure`). */
  readonly host?: string
  /** TCP port. Default 7337; 0 picks a free port (read it back from `system.node`). */
  readonly port?: number
  /**
   * Cluster secret for the HMAC handshake; every node of a cluster needs the same one. Default:
   * the `SHOAL_SECRET` environment variable. Never sent over the wire.
   */
  readonly secret?: string | Buffer
  /** Allow binding a non-loopback host without a secret. Default false: anyone could join and call. */
  readonly insecure?: boolean
  /** Enables TLS with mutual certificate authentication on every association. */
  readonly tls?: TlsSettings
  /** Default call timeout in ms (per call: `ref.withTimeout(ms)`). Default 5000, as in the reference system. */
  readonly callTimeout?: number
  /** Largest message (frame) in bytes, sent or received. Default 4 MiB; raise on every node together. */
  readonly maxFrameSize?: number
  /** Bytes queued per peer before new sends fail with OverloadedError. Default 32 MiB. */
  readonly maxOutboundBytes?: number
  /** User messages above this size are fragmented so control traffic can pass. Default 64 KiB. */
  readonly fragmentSize?: number
  /**
   * Queued outbound bytes at which a batch is written at once rather than at the end of the
   * event-loop turn. Default 4 KiB: under load the peer starts on the first replies while the rest
   * are produced (≈ +40% calls/s at 100 in flight in the benchmark); small batches still coalesce.
   */
  readonly flushThreshold?: number
  /** Calls queued per actor before new calls fail with OverloadedError. Default 100,000. */
  readonly maxMailbox?: number
  /** Handshake must finish within this many ms. Default 5000. */
  readonly handshakeTimeout?: number
  /** Reconnect backoff: first delay and cap in ms. Default 100 ms doubling to 5 s, with ±20% jitter. */
  readonly reconnectBackoff?: { readonly baseMs?: number; readonly maxMs?: number }
  /** How long shutdown waits for actors' `onStop` hooks. Default 10 s. */
  readonly shutdownTimeout?: number
  /** A pino logger to use (a child with `system` is derived). Default: pino to stdout at `logLevel`. */
  readonly logger?: Logger
  /** Level of the default logger. Default: `SHOAL_LOG_LEVEL` or `info`. */
  readonly logLevel?: string
  /** Decoding limits and remote stack traces. */
  readonly serialization?: SerializationOptions
  /**
   * Encode and decode arguments and results of local calls too, as if remote. Default false (local
   * calls pass values by reference). Turn on in tests to catch values that cannot cross the wire.
   */
  readonly serializeLocalCalls?: boolean
  /**
   * Runs SWIM failure detection on this node (UDP on the same port number as TCP; push-pull and
   * the TCP fallback ping over the node's transport), exposed as `system.swim`. Default: off
   * until cluster membership uses it.
   */
  readonly swim?: SystemSwimSettings
  /**
   * Cluster membership (needs SWIM, started with it): joining, leadership, downing, discovery.
   * Exposed as `system.cluster`. `swim` inside tunes the failure detector.
   */
  readonly cluster?: ClusterSettings & { readonly swim?: SwimSettings }
  /**
   * Plugins to start once the system (and its cluster membership) is up, in this order; they
   * stop in reverse order at shutdown. See `Plugin`.
   */
  readonly plugins?: readonly Plugin[]
  /** Receptionist replication (`system.receptionist`): sync interval and batch bounds. */
  readonly receptionist?: ReceptionistSettings
  /** Lifecycle watch: redelivery of unacknowledged system messages. */
  readonly watch?: WatchSettings
  /** Protocol major version to announce; tests only. */
  readonly protocolMajor?: number
}

export interface ResolvedSettings {
  readonly name: string
  readonly clusterName: string
  readonly host: string
  readonly port: number
  readonly secret: Buffer | undefined
  readonly tls: TlsSettings | undefined
  readonly callTimeout: number
  readonly maxFrameSize: number
  readonly maxOutboundBytes: number
  readonly fragmentSize: number
  readonly flushThreshold: number
  readonly maxMailbox: number
  readonly handshakeTimeout: number
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  readonly shutdownTimeout: number
  readonly serializeLocalCalls: boolean
  readonly protocolMajor: number | undefined
  readonly serializationOptions: SerializationOptions | undefined
}
