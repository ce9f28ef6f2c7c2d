/**
 * Peer and RemoteRoute: what remoting keeps per peer endpoint (its pending calls and the decoder
 * cache of envelopes it sends us) and per ref to a remote actor (the peer, and the encoded
 * envelope target per method).
 * @module
 */
import type { ActorId } from '../actor/ActorId.ts'
import type { PendingCall, PendingTable, TimeoutSource } from '../actor/PendingCall.ts'
import type { CallRetry, Route } from '../actor/Route.ts'
import type { CallTrace } from '../observability/CallTracing.ts'
import type { Association } from '../transport/Association.ts'
import { IdTable } from '../util/IdTable.ts'
import { encodeOneWayHeadWith, encodeTargetSegment, TargetCache } from '../wire/Envelope.ts'
import type { Remoting, Resolved } from './Remoting.ts'

/** One peer endpoint, as remoting sees it. */
export class Peer {
  /** Remote calls waiting for a reply from this peer, by call id. */
  readonly pending: PendingTable = new IdTable<PendingCall>()
  /** Decoding cache for envelopes from this peer. */
  readonly targets = new TargetCache<Resolved>()
  constructor(readonly assoc: Association) {}
}

/** The route of refs to one remote actor id. */
export class RemoteRoute implements Route {
  readonly local = false
  /** Encoded (uid, path, method) parts of envelopes to this actor, by method. */
  readonly #segments = new Map<string, Buffer>()

  constructor(
    readonly remoting: Remoting,
    readonly peer: Peer,
    readonly id: ActorId,
  ) {}

  call(
    method: string,
    args: unknown[],
    chain: string,
    timeout: number,
    timeoutFrom: TimeoutSource,
    trace: CallTrace | undefined,
    retry?: CallRetry,
  ): Promise<unknown> {
    return this.remoting.call(this, method, args, chain, timeout, timeoutFrom, trace, retry)
  }

  tell(method: string, args: unknown[], chain: string, trace: CallTrace | undefined): void {
    this.remoting.tell(this, method, args, chain, trace)
  }

  /** The encoded envelope target for `method`, cached. */
  segment(method: string): Buffer {
    let segment = this.#segments.get(method)
    if (!segment) this.#segments.set(method, (segment = encodeTargetSegment({ uid: this.id.node.uid, path: this.id.path, method })))
    return segment
  }

  /**
   * The whole OneWay header for `method` sent from outside any actor (empty chain, no headers),
   * cached: it is the same bytes for every such message. Shared, so never written to (the
   * association copies heads into its batch buffer).
   */
  oneWayHead(method: string): Buffer {
    let head = this.#oneWayHeads?.get(method)
    if (!head)
      (this.#oneWayHeads ??= new Map()).set(method, (head = encodeOneWayHeadWith(this.segment(method), { incarnation: this.id.incarnation, chain: '' })))
    return head
  }

  #oneWayHeads: Map<string, Buffer> | undefined
}
