/**
 * Everything, for sibling packages, benchmarks and tests. Not a stable API.
 * @module
 */
export * from './index.ts'
export * from './wire/Frame.ts'
export * from './wire/FrameDecoder.ts'
export * from './wire/Handshake.ts'
export * from './wire/Envelope.ts'
export * from './serialization/MsgpackScanner.ts'
export { ExtType } from './serialization/Serialization.ts'
export { ActorCell } from './ActorCell.ts'
export { DeadlineQueue } from './DeadlineQueue.ts'
export { Deque } from './Deque.ts'
export { actorClassInfo } from './DistributedActor.ts'
export { callContext, currentCallContext } from './CallContext.ts'
export * from './swim/Codec.ts'
export * from './swim/Member.ts'
export { SwimInstance, type Directive, type SwimStats } from './swim/SwimInstance.ts'
export { Dissemination } from './swim/Dissemination.ts'
export { suspicionTimeout } from './swim/Suspicion.ts'
export { resolveSwimSettings, retransmitLimit } from './swim/SwimSettings.ts'
export { Simulator } from './sim/Simulator.ts'
export { runScenario, type ScenarioOptions, type ScenarioReport } from './sim/Scenario.ts'
