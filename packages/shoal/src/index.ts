/**
 * Shoal: distributed actors for TypeScript on Node.js.
 *
 * ```ts
 * import { ClusterSystem, DistributedActor, distributed } from 'shoal'
 * ```
 * @module
 */

export { ActorId } from './actor/ActorId.ts'
export { type ActorRef, type ActorRefCommon, isActorRef, type MethodNames, type RefMethods } from './actor/ActorRef.ts'
export { type ClusterNode, type Endpoint, formatEndpoint, formatNode } from './actor/ClusterNode.ts'
export { type ActorClass, DistributedActor, type DistributedOptions, distributed } from './actor/DistributedActor.ts'
export {
  AbortedError,
  ActorNotFoundError,
  ActorStartFailedError,
  ConfigError,
  ErrorCode,
  HandshakeError,
  isNotDelivered,
  JournalConflictError,
  JournalDecodeError,
  JournalFailedError,
  JournalLimitError,
  JournalUnavailableError,
  MethodNotDistributedError,
  NodeDownError,
  NodeUnreachableError,
  OverloadedError,
  ProtocolError,
  RemoteCallError,
  SerializationError,
  ShoalError,
  SingletonUnavailableError,
  SystemShutDownError,
  TimeoutError,
  VirtualActorUnavailableError,
} from './errors.ts'
export type { Metrics } from './observability/Metrics.ts'
export { type ClassRegistration, Serialization, type SerializationLimits, type SerializationOptions } from './serialization/Serialization.ts'
export { type MembershipChange, parseAddress, SwimMember, type SwimMemberOptions } from './swim/SwimMember.ts'
export type { SwimAddress, SwimMemberState, SwimNode, SwimStatus } from './swim/SwimNode.ts'
export { ClusterSystem } from './system/ClusterSystem.ts'
export type { ClusterSystemSettings, SystemSwimSettings } from './system/Settings.ts'
export type { TlsSettings } from './transport/Transport.ts'
export { MIN_SECRET_BITS, secretBits } from './util/secretStrength.ts'
/** @deprecated Renamed {@link SwimStatus} (one name per concept: the cluster's is {@link MembershipStatus}). */
export type MemberStatus = import('./swim/SwimNode.ts').SwimStatus
/** @deprecated Renamed {@link SwimMemberState}. */
export type MemberState = import('./swim/SwimNode.ts').SwimMemberState
export type { Cluster, ClusterEvent, ClusterSettings, MembershipSnapshot } from './cluster/Cluster.ts'
export type { ClusterMember, Member, MembershipStatus, Reachability } from './cluster/Member.ts'
export type { SwimSettings } from './swim/SwimSettings.ts'
export { SWIM_DEFAULTS } from './swim/SwimSettings.ts'
/** @deprecated Renamed {@link MembershipStatus}. */
export type ClusterMemberStatus = import('./cluster/Member.ts').MembershipStatus
export type { ActorSystem } from './actor/ActorSystem.ts'
export type { WatchTarget } from './actor/DistributedActor.ts'
export type { Termination, TerminationReason } from './actor/Termination.ts'
export {
  type DowningStrategy,
  type DowningView,
  downAll,
  downingFromName,
  keepMajority,
  keepOldest,
  noDowning,
  staticQuorum,
  timeoutDowning,
} from './cluster/Downing.ts'
export type { ControlHandler, ControlTarget } from './control/ControlChannel.ts'
export { type DiscoveredEndpoint, type DiscoveryProvider, StaticDiscovery } from './discovery/Discovery.ts'
export { DnsDiscovery, type DnsDiscoveryOptions, type DnsRecordType, type DnsResolver, type DnsSrvRecord } from './discovery/DnsDiscovery.ts'
export { KubernetesDiscovery, type KubernetesDiscoveryKind, type KubernetesDiscoveryOptions } from './discovery/KubernetesDiscovery.ts'
export type { EventSchema, JournalEventShape } from './journal/EventCodec.ts'
export { EventSourcedActor } from './journal/EventSourcedActor.ts'
export type { EventStore, NewEvent, ReadOptions, SnapshotStore, StoredEvent, StoredSnapshot, WriteBatch } from './journal/EventStore.ts'
export { type JournalEvent, type JournalFacade, type JournalSettings, journalPlugin } from './journal/JournalPlugin.ts'
export { MemoryEventStore } from './journal/MemoryEventStore.ts'
export { TagWatchers } from './journal/TagWatchers.ts'
export { WriteObservers } from './journal/WriteObservers.ts'
export { type LeaseStore, LeaseTerm, MemoryLeaseStore } from './lease/Lease.ts'
export { ManagementServer } from './management/ManagementServer.ts'
export {
  type ActorSpawnMessage,
  type ActorStopMessage,
  actorSpawnChannel,
  actorStopChannel,
  type CallRefusedMessage,
  type CallTraceContext,
  ChannelNames,
  type ConnectionDirection,
  callRefusedChannel,
  callTracing,
  type EmitTraceContext,
  emitTracing,
  type HandshakeFailedMessage,
  handshakeFailedChannel,
  type MemberChangeMessage,
  type MemberReachabilityMessage,
  memberChangeChannel,
  memberReachabilityChannel,
  type ShardTableMessage,
  type SingletonChangeMessage,
  type SwimChangeMessage,
  shardTableChannel,
  singletonChangeChannel,
  swimChangeChannel,
  type TransportCloseMessage,
  type TransportConnectMessage,
  type TypedChannel,
  tracingActive,
  transportCloseChannel,
  transportConnectChannel,
} from './observability/Channels.ts'
export { METHOD_BUCKETS, type MethodStat, type MethodStatsSnapshot } from './observability/MethodStats.ts'
export { NODE_STATUS_PATH, type NodeStatus, NodeStatusReader } from './observability/NodeStatus.ts'
export { otelSdkRegistered, spanName, TRACER_NAME, type TracingSetting } from './observability/OpenTelemetry.ts'
export type { Listing, Receptionist, ReceptionistSettings } from './receptionist/Receptionist.ts'
export { ReceptionKey } from './receptionist/ReceptionKey.ts'
export { type AllocationStrategy, leaderMember, oldestMember } from './singleton/Allocation.ts'
export type { SingletonFactory, SingletonStatus } from './singleton/SingletonManager.ts'
export { type SingletonFacade, type SingletonOptions, type SingletonSettings, singletonPlugin } from './singleton/SingletonPlugin.ts'
export type {
  ControlChannel,
  Invocation,
  LocalTarget,
  Plugin,
  PluginActors,
  PluginCalls,
  PluginContext,
  PluginFacades,
  PluginNodes,
  Route,
} from './system/Plugin.ts'
export {
  type VirtualActorsFacade,
  type VirtualActorsSettings,
  type VirtualActorsStatus,
  type VirtualHostOptions,
  virtualActorsPlugin,
} from './virtual/VirtualActorsPlugin.ts'
export type { WatchSettings } from './watch/LifecycleWatch.ts'
export { type EnvelopeHeaders, HeaderLimits } from './wire/Envelope.ts'
