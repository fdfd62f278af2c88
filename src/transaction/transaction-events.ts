import type { Source } from '../transport/types.js';
import type { TerminationReason, TransactionKind } from './types.js';

/** Live transactions per kind. */
export type TransactionCounts = Record<TransactionKind, number>;

/**
 * Events of the transaction layer, for logging, metrics and the control API to subscribe to
 * (TransactionLayer.events). Core code never imports a metrics library.
 */
export type TransactionLayerEvents = {
  created: { id: string; kind: TransactionKind; method: string; state: string; active: TransactionCounts };
  stateChanged: { id: string; kind: TransactionKind; method: string; from: string; to: string };
  terminated: {
    id: string;
    kind: TransactionKind;
    method: string;
    reason: TerminationReason;
    /** How long the transaction lived, ms on the layer's clock. */
    durationMs: number;
    active: TransactionCounts;
  };
  /** A retransmitted request (or an ACK) absorbed by its server transaction. */
  retransmissionAbsorbed: { id: string; kind: TransactionKind; method: string };
  /** A response that matched no client transaction. */
  strayResponse: { status: number; method: string | undefined; source: Source };
  /** A message the layer could not match at all (e.g. no usable Via or CSeq). */
  messageDropped: { reason: string; source: Source };
};

export interface TransactionStats {
  /** Live transactions per kind. */
  active: TransactionCounts;
  /** Live transactions per kind and state. */
  byState: Record<TransactionKind, Record<string, number>>;
  /** Transactions created since start, per kind. */
  created: TransactionCounts;
  /** Transactions ended since start, per reason. */
  terminated: Record<TerminationReason, number>;
  retransmissionsAbsorbed: number;
  strayResponses: number;
  messagesDropped: number;
}
