/**
 * Everything, for sibling packages, benchmarks and tests. Not a stable API.
 * @module
 */

export { ActorCell } from './actor/ActorCell.ts'
export { callContext, currentCallContext } from './actor/CallContext.ts'
export { actorClassInfo } from './actor/DistributedActor.ts'
export * from './index.ts'
export * from './serialization/MsgpackScanner.ts'
export { ExtType } from './serialization/Serialization.ts'
export { runScenario, type ScenarioOptions, type ScenarioReport } from './sim/Scenario.ts'
export { Simulator } from './sim/Simulator.ts'
export * from './swim/Codec.ts'
export { Dissemination } from './swim/Dissemination.ts'
export { type StreamLink, TcpStreamLink } from './swim/StreamLink.ts'
export { suspicionTimeout } from './swim/Suspicion.ts'
export { type Directive, SwimInstance, type SwimStats } from './swim/SwimInstance.ts'
export * from './swim/SwimNode.ts'
export { resolveSwimSettings, retransmitLimit } from './swim/SwimSettings.ts'
export { type SystemServices, servicesOf } from './system/SystemServices.ts'
export { supportsHeaders } from './transport/Transport.ts'
export { DeadlineQueue } from './util/DeadlineQueue.ts'
export { Deque } from './util/Deque.ts'
export * from './wire/Bytes.ts'
export * from './wire/Envelope.ts'
export * from './wire/Frame.ts'
export * from './wire/FrameDecoder.ts'
export * from './wire/Handshake.ts'
