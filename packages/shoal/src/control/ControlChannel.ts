/**
 * The ports of the control plane: what the cluster services (SWIM's stream link, membership,
 * clusterd, the receptionist, lifecycle watch) need from the system they run in. The system's
 * `ControlRouter` implements {@link ControlChannel}, handed to services in `SystemServices`; tests
 * hand the services fakes.
 * @module
 */
import type { ClusterNode } from '../actor/ClusterNode.ts'
import type { ClusterEvent } from '../cluster/Cluster.ts'
import type { ClusterMember } from '../cluster/Member.ts'

/** Where a control message goes; with `uid`, a different incarnation at that endpoint drops it. */
export interface ControlTarget {
  readonly host: string
  readonly port: number
  readonly uid?: string
}

/** Handles the control messages of one kind; `body` is the frame after the kind byte. */
export type ControlHandler = (from: ClusterNode, body: Buffer) => void

/** The control lane of a cluster system: one handler per kind (see `ControlKind.ts`), and sends. */
export interface ControlChannel {
  /** Registers the handler of `kind` (0-255); throws if the kind already has one. */
  onControl(kind: number, handler: ControlHandler): void
  /** Sends a control message (dialing if needed); throws like a call would (backoff, frame too large). */
  sendControl(to: ControlTarget, kind: number, body: Uint8Array): void
  /**
   * Why the last connection attempt to `to` failed (connection refused, handshake refused: e.g. a
   * cluster secret mismatch), if none succeeded since; undefined otherwise. Optional: for messages
   * that say why a peer does not answer.
   */
  connectProblem?(to: ControlTarget): string | undefined
}

/** The cluster view the built-in services need (absent on a system without membership). */
export interface MembershipView {
  readonly membership: { readonly members: readonly ClusterMember[] }
  subscribe(listener: (e: ClusterEvent) => void): () => void
}

/** The control target of one node incarnation. */
export function controlTarget(node: ClusterNode): ControlTarget {
  return { host: node.endpoint.host, port: node.endpoint.port, uid: node.uid }
}
