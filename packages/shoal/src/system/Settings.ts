/**
 * Settings of a ClusterSystem, with defaults and the reasons for them.
 * @module
 */

import type { Logger } from 'pino'
import { checkNodeHost, isValidSystemName } from '../actor/ClusterNode.ts'
import type { ClusterSettings } from '../cluster/Cluster.ts'
import { ConfigError } from '../errors.ts'
import type { TracingSetting } from '../observability/OpenTelemetry.ts'
import type { ReceptionistSettings } from '../receptionist/Receptionist.ts'
import type { SerializationOptions } from '../serialization/Serialization.ts'
import type { SwimAddress } from '../swim/SwimNode.ts'
import type { SwimSettings } from '../swim/SwimSettings.ts'
import type { TlsSettings, TransportSettings } from '../transport/Transport.ts'
import { checkSecretStrength } from '../util/secretStrength.ts'
import type { WatchSettings } from '../watch/LifecycleWatch.ts'
import type { Plugin } from './Plugin.ts'

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
  /**
   * OpenTelemetry spans for calls, one-way messages and emits, with W3C trace context across nodes
   * (see docs/operations.md). `'auto'` (default): on when an SDK registered a tracer provider
   * before this system started; `true`: on regardless; `false`: off. Off costs nothing per call.
   * When on, log lines written inside a traced call carry `trace_id` and `span_id`.
   */
  readonly tracing?: TracingSetting
  /** Largest message (frame) in bytes, sent or received. Default 4 MiB; raise on every node together. */
  readonly maxFrameSize?: number
  /** Bytes queued per peer before new sends fail with OverloadedError. Default 32 MiB. */
  readonly maxOutboundBytes?: number
  /**
   * Frame bytes of calls and one-way messages one peer may have outstanding on this node
   * (delivered to a mailbox, turn not finished) before this node stops reading that peer's
   * connection, so TCP backpressure slows the sender instead of this node queueing without bound
   * (mailbox limits count calls, not bytes). Reading resumes below half. Default 8 MiB: twice the
   * default maxFrameSize, so one message of the largest size never pauses a peer alone, while a
   * flood is held to a few times that in memory (decoded arguments, plus the frames read before the
   * pause took effect). Control traffic from a paused peer waits too; see docs/transport.md.
   */
  readonly maxInboundBytes?: number
  /** User messages above this size are fragmented so control traffic can pass. Default 64 KiB. */
  readonly fragmentSize?: number
  /**
   * Queued outbound bytes at which a batch is written at once rather than when the current job and
   * its promise jobs have run. Default 4 KiB: under load the peer starts on the first replies while
   * the rest are produced (more calls/s at 100 in flight although it costs more writes; see
   * docs/benchmarks.md); small batches still coalesce.
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
  /**
   * A pino logger to use (a child with `system` is derived). Default: pino JSON lines on stderr at
   * `logLevel`, so a node embedded in an application never writes to its stdout.
   */
  readonly logger?: Logger
  /** Level of the default logger. Default: `SHOAL_LOG_LEVEL`, else `warn` (quiet while all is well). */
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
  readonly tracing: TracingSetting
  readonly maxFrameSize: number
  readonly maxOutboundBytes: number
  readonly maxInboundBytes: number
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

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/

/** @internal True if `host` is a loopback address: a node may bind it without a secret. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host)
}

/** Validates settings and fills in defaults; throws ConfigError saying what to change. */
export function resolveSettings(s: ClusterSystemSettings): ResolvedSettings {
  const name = s.name ?? 'shoal'
  if (!isValidSystemName(name)) throw new ConfigError(`System name ${JSON.stringify(name)} is invalid: use 1-64 letters, digits, _ . or -.`)
  const clusterName = s.clusterName ?? (process.env.SHOAL_CLUSTER_NAME || 'shoal')
  if (!isValidSystemName(clusterName)) throw new ConfigError(`Cluster name ${JSON.stringify(clusterName)} is invalid: use 1-64 letters, digits, _ . or -.`)
  const host = s.host ?? '127.0.0.1'
  checkNodeHost(host)
  const port = s.port ?? 7337
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`Port ${port} is invalid: use 0..65535 (0 picks a free port).`)
  const rawSecret = s.secret ?? process.env.SHOAL_SECRET
  checkSecretStrength(rawSecret, s.secret === undefined ? 'SHOAL_SECRET' : 'the secret setting')
  const secret = rawSecret === undefined || rawSecret === '' ? undefined : Buffer.from(rawSecret)
  if (!secret && !LOOPBACK.test(host) && !s.insecure) {
    throw new ConfigError(
      `Binding ${host} without a cluster secret would let anyone on the network join and call actors: set secret (or SHOAL_SECRET), or pass insecure: true to accept that.`,
    )
  }
  const positive = (v: number | undefined, d: number, what: string): number => {
    const n = v ?? d
    if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`${what} must be a positive number (got ${v}).`)
    return n
  }
  return {
    name,
    clusterName,
    host,
    port,
    secret,
    tls: s.tls,
    callTimeout: Math.min(positive(s.callTimeout, 5000, 'callTimeout'), 2 ** 31 - 1),
    tracing: s.tracing ?? 'auto',
    maxFrameSize: positive(s.maxFrameSize, 4 * 1024 * 1024, 'maxFrameSize'),
    maxOutboundBytes: positive(s.maxOutboundBytes, 32 * 1024 * 1024, 'maxOutboundBytes'),
    maxInboundBytes: positive(s.maxInboundBytes, 8 * 1024 * 1024, 'maxInboundBytes'),
    fragmentSize: positive(s.fragmentSize, 64 * 1024, 'fragmentSize'),
    flushThreshold: positive(s.flushThreshold, 4 * 1024, 'flushThreshold'),
    maxMailbox: positive(s.maxMailbox, 100_000, 'maxMailbox'),
    handshakeTimeout: positive(s.handshakeTimeout, 5000, 'handshakeTimeout'),
    backoffBaseMs: positive(s.reconnectBackoff?.baseMs, 100, 'reconnectBackoff.baseMs'),
    backoffMaxMs: positive(s.reconnectBackoff?.maxMs, 5000, 'reconnectBackoff.maxMs'),
    shutdownTimeout: positive(s.shutdownTimeout, 10_000, 'shutdownTimeout'),
    serializeLocalCalls: s.serializeLocalCalls ?? false,
    protocolMajor: s.protocolMajor,
    serializationOptions: s.serialization,
  }
}

/** The transport's part of the settings. */
export function transportSettings(s: ResolvedSettings): TransportSettings {
  return {
    host: s.host,
    port: s.port,
    secret: s.secret,
    clusterName: s.clusterName,
    tls: s.tls,
    handshakeTimeoutMs: s.handshakeTimeout,
    maxOutboundBytes: s.maxOutboundBytes,
    maxInboundBytes: s.maxInboundBytes,
    maxFrameSize: s.maxFrameSize,
    fragmentSize: s.fragmentSize,
    flushThreshold: s.flushThreshold,
    backoffBaseMs: s.backoffBaseMs,
    backoffMaxMs: s.backoffMaxMs,
    protocolMajor: s.protocolMajor,
  }
}
