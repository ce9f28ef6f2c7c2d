/**
 * ControlChannel: the port through which cluster services use the control lane (see
 * ControlRouter). One declaration for every service.
 * @module
 */
import type { ClusterNode } from '../ClusterNode.ts'

/** Where a control message goes: an endpoint, and the incarnation it is meant for if known. */
export interface ControlDestination {
  readonly host: string
  readonly port: number
  readonly uid?: string
}

/** Handles one control message from `from` (the body without its kind byte). */
export type ControlHandler = (from: ClusterNode, body: Buffer) => void

export interface ControlChannel {
  onControl(kind: number, handler: ControlHandler): void
  sendControl(to: ControlDestination, kind: number, body: Uint8Array): void
}
