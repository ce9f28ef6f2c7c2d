/**
 * What peers implement, and the messages benchmark child processes send to the runner.
 * @module
 */
import type { LoadResult, OneWayResult, OneWayTarget, Payload, Timing } from './harness.ts'

/** A running server; `info` (JSON) tells a client in another process how to reach it. */
export interface Server {
  readonly info: unknown
  close(): Promise<void>
}

/** A client connected to a server in another process. */
export interface RemoteClient {
  call(arg: Payload): Promise<unknown>
  /** Present when the peer has one-way messages (Shoal and raw). */
  readonly oneWay?: OneWayTarget
  /** Anything the report should show about this client's run (e.g. tracing events seen). */
  notes?(): string[]
  close(): Promise<void>
}

/** A peer measured across two processes. */
export interface RemotePeer {
  serve(): Promise<Server>
  connect(info: unknown): Promise<RemoteClient>
}

/** A callable target in the same process. */
export interface LocalTarget {
  call(arg: Payload): Promise<unknown>
  /** Anything odd seen during the run that the report should show (e.g. lost calls). */
  notes?(): string[]
  close(): Promise<void>
}

/** A local run: throughput plus the target's notes. */
export interface LocalResult extends LoadResult {
  readonly notes: readonly string[]
}

/** A peer measured inside one process. */
export interface LocalPeer {
  open(): Promise<LocalTarget>
}

/**
 * Remote peers in the order each round runs them (run.ts reverses it every other round). The two
 * raw flush modes are separate peers; shoal-traced runs right after shoal so their ratio compares
 * neighbours in time.
 */
export const REMOTE_PEERS = ['raw-immediate', 'shoal', 'shoal-traced', 'shoal-otel', 'shoal-dashboard', 'raw-microtask', 'moleculer', 'grpc'] as const
export type RemotePeerName = (typeof REMOTE_PEERS)[number]
/** The raw baseline's flush modes, each measured as its own peer. */
export const RAW_PEERS = { immediate: 'raw-immediate', microtask: 'raw-microtask' } as const satisfies Record<string, RemotePeerName>
export type RawFlushMode = keyof typeof RAW_PEERS
/** Peers that take part in the one-way scenario. */
export const ONE_WAY_PEERS: readonly RemotePeerName[] = ['raw-immediate', 'shoal', 'raw-microtask']
export const LOCAL_PEERS = ['shoal', 'direct', 'nact'] as const
export type LocalPeerName = (typeof LOCAL_PEERS)[number]

/** Configuration handed to a child process (as JSON in argv). */
export type ChildConfig =
  | { readonly role: 'server'; readonly peer: RemotePeerName }
  | {
      readonly role: 'client'
      readonly peer: RemotePeerName
      readonly info: unknown
      readonly timing: Timing
      readonly inFlight: readonly number[]
      readonly oneWay: { readonly total: number; readonly window: number } | undefined
    }
  | { readonly role: 'local'; readonly peer: LocalPeerName; readonly timing: Timing; readonly batch: number }
  | { readonly role: 'memory'; readonly actors: number }

export interface RemoteResult {
  readonly calls: readonly LoadResult[]
  readonly oneWay: OneWayResult | undefined
  readonly notes?: readonly string[]
}

export interface MemoryResult {
  /** RSS of a bare child (Node plus the TypeScript loader) before Shoal is imported. */
  readonly baselineRssBytes: number
  /** RSS with a started, idle ClusterSystem and no actors. */
  readonly idleRssBytes: number
  readonly actors: number
  readonly heapPerActorBytes: number
}

/** Messages from a child to the runner. */
export type ChildMessage =
  | { readonly kind: 'ready'; readonly info: unknown }
  | { readonly kind: 'progress'; readonly text: string }
  | { readonly kind: 'result'; readonly result: unknown }
  | { readonly kind: 'error'; readonly message: string }

export function isChildMessage(value: unknown): value is ChildMessage {
  if (typeof value !== 'object' || value === null) return false
  const kind = (value as { kind?: unknown }).kind
  return kind === 'ready' || kind === 'progress' || kind === 'result' || kind === 'error'
}
