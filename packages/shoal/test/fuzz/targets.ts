/** Every fuzz target, one or more per decoder (see docs/fuzzing.md). */
import { controlReader, gossip, receptionist, swim, watch } from './ControlCodecs.fuzz.ts'
import { envelope } from './Envelope.fuzz.ts'
import { frameDecoder } from './FrameDecoder.fuzz.ts'
import { clientHandshake, serverHandshake } from './Handshake.fuzz.ts'
import type { FuzzTarget } from './harness.ts'
import { msgpackScanner, serializationDecode } from './Serialization.fuzz.ts'

export const targets: readonly FuzzTarget[] = [
  frameDecoder,
  serverHandshake,
  clientHandshake,
  envelope,
  swim,
  gossip,
  receptionist,
  watch,
  controlReader,
  serializationDecode,
  msgpackScanner,
]
