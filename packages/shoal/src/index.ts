/**
 * Shoal: distributed actors for TypeScript on Node.js.
 *
 * ```ts
 * import { ClusterSystem, DistributedActor, distributed } from 'shoal'
 * ```
 * @module
 */
export { ClusterSystem } from './system/ClusterSystem.ts'
export type { ClusterSystemSettings } from './system/Settings.ts'
export { DistributedActor, distributed, type DistributedOptions, type ActorClass } from './actor/DistributedActor.ts'
export { type ActorRef, type ActorRefCommon, type MethodNames, type RefMethods, isActorRef } from './actor/ActorRef.ts'
export { ActorId } from './actor/ActorId.ts'
export { type ClusterNode, type Endpoint, formatNode, formatEndpoint } from './actor/ClusterNode.ts'
export { Serialization, type ClassRegistration, type SerializationLimits, type SerializationOptions } from './serialization/Serialization.ts'
export type { TlsSettings } from './transport/Transport.ts'
export type { Metrics } from './observability/Metrics.ts'
export {
  ErrorCode,
  ShoalError,
  TimeoutError,
  ActorNotFoundError,
  NodeUnreachableError,
  NodeDownError,
  SystemShutDownError,
  MethodNotDistributedError,
  SerializationError,
  OverloadedError,
  RemoteCallError,
  ProtocolError,
  HandshakeError,
  ConfigError,
  SingletonUnavailableError,
  JournalConflictError,
  JournalUnavailableError,
  JournalDecodeError,
  JournalLimitError,
  JournalFailedError,
  isNotDelivered,
} from './errors.ts'
export type { SystemSwimSettings } from './system/Settings.ts'
export { SwimMember, type SwimMemberOptions, type MembershipChange, parseAddress } from './swim/SwimMember.ts'
export type { SwimMemberState, SwimStatus, SwimAddress, SwimNode } from './swim/SwimNode.ts'
/** @deprecated Renamed {@link SwimStatus} (one name per concept: the cluster's is {@link MembershipStatus}). */
export type MemberStatus = import('./swim/SwimNode.ts').SwimStatus
/** @deprecated Renamed {@link SwimMemberState}. */
export type MemberState = import('./swim/SwimNode.ts').SwimMemberState
export type { SwimSettings } from './swim/SwimSettings.ts'
export { SWIM_DEFAULTS } from './swim/SwimSettings.ts'
export type { Cluster, ClusterSettings, ClusterEvent, MembershipSnapshot } from './cluster/Cluster.ts'
export type { ClusterMember, Member, MembershipStatus, Reachability } from './cluster/Member.ts'
/** @deprecated Renamed {@link MembershipStatus}. */
export type ClusterMemberStatus = import('./cluster/Member.ts').MembershipStatus
export { keepMajority, staticQuorum, keepOldest, downAll, timeoutDowning, noDowning, downingFromName, type DowningStrategy, type DowningView } from './cluster/Downing.ts'
export { StaticDiscovery, type DiscoveryProvider, type DiscoveredEndpoint } from './discovery/Discovery.ts'
export { DnsDiscovery, type DnsDiscoveryOptions, type DnsRecordType, type DnsResolver, type DnsSrvRecord } from './discovery/DnsDiscovery.ts'
export { KubernetesDiscovery, type KubernetesDiscoveryOptions, type KubernetesDiscoveryKind } from './discovery/KubernetesDiscovery.ts'
export { ManagementServer } from './management/ManagementServer.ts'
export type { Plugin, PluginContext, PluginActors, PluginCalls, PluginNodes, ControlChannel, Invocation, LocalTarget } from './system/Plugin.ts'
export type { ControlTarget, ControlHandler } from './control/ControlChannel.ts'
export type { ActorSystem } from './actor/ActorSystem.ts'
export type { Receptionist, Listing, ReceptionistSettings } from './receptionist/Receptionist.ts'
export { ReceptionKey } from './receptionist/ReceptionKey.ts'
export type { Termination, TerminationReason } from './actor/Termination.ts'
export type { WatchSettings } from './watch/LifecycleWatch.ts'
export type { WatchTarget } from './actor/DistributedActor.ts'
export { singletonPlugin, type SingletonFacade, type SingletonOptions, type SingletonSettings } from './singleton/SingletonPlugin.ts'
export type { SingletonFactory, SingletonStatus } from './singleton/SingletonManager.ts'
export { oldestMember, leaderMember, type AllocationStrategy } from './singleton/Allocation.ts'
export { journalPlugin, type JournalFacade, type JournalSettings, type JournalEvent } from './journal/JournalPlugin.ts'
export { EventSourcedActor } from './journal/EventSourcedActor.ts'
export { MemoryEventStore } from './journal/MemoryEventStore.ts'
export type { EventStore, SnapshotStore, NewEvent, StoredEvent, StoredSnapshot, ReadOptions } from './journal/EventStore.ts'
export type { EventSchema, JournalEventShape } from './journal/EventCodec.ts'
export { TagWatchers } from './journal/TagWatchers.ts'
export { LeaseTerm, MemoryLeaseStore, type LeaseStore } from './lease/Lease.ts'
export * from './observability/Channels.ts'
export { HeaderLimits, type EnvelopeHeaders } from './wire/Envelope.ts'
