/**
 * The shapes the transaction layer shows to its users (the TU: dialog layer, registrar, OOS
 * checks) and to its own state machines. Behaviour lives in the state machine files.
 */
import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Flow } from '../transport/flow.js';
import type { Destination, SendResult, SipTransport, Source } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { TransportError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { FlowRecovery } from './flow-recovery.js';
import type { TimerConfig, TimerName } from './timers.js';

export type TransactionKind = 'invite-client' | 'non-invite-client' | 'invite-server' | 'non-invite-server';

export const TRANSACTION_KINDS: readonly TransactionKind[] = [
  'invite-client',
  'non-invite-client',
  'invite-server',
  'non-invite-server',
];

/** Why a transaction ended. */
export type TerminationReason =
  | 'completed' // normal end: wait timer (D, I, J, K, L, M) fired or was zero
  | 'timeout' // timer B, F (no final response) or H (no ACK)
  | 'transport-error' // the transport could not send
  | 'closed'; // TransactionLayer.close()

/** What every transaction shows. */
export interface Transaction {
  /** Matching key: branch (or RFC 2543 fields), sent-by for servers, and method. */
  readonly id: string;
  readonly kind: TransactionKind;
  readonly method: string;
  readonly state: string;
  readonly terminated: boolean;
  /** Clock time at creation, ms. */
  readonly createdAt: number;
  /** Timers currently armed, by RFC name. */
  readonly activeTimers: readonly TimerName[];
}

/**
 * How a final response reached the client transaction's user: from the network, or made up
 * locally per RFC 3261 §8.1.3.1 / §17.1.4 (408 when timer B or F fired, or 64*T1 passed
 * after a CANCEL (§9.1, timer 'Cancel'); 503 when the transport failed: then `cause` is the
 * TransportError).
 */
export type FinalInfo =
  | { local: false; source: Source }
  | { local: 'timeout'; timer: 'B' | 'F' | 'Cancel' }
  | { local: 'transport-error'; cause: TransportError };

/** The TU of one client transaction. Exceptions it throws are logged, never propagated. */
export interface ClientTransactionUser {
  /** A 1xx response (100 included). */
  onProvisional?(res: SipResponse, tx: ClientTransaction): void;
  /** Exactly once per transaction: the first final response, received or local. */
  onFinal(res: SipResponse, info: FinalInfo, tx: ClientTransaction): void;
  /**
   * INVITE only (RFC 6026 §8.4): a further 2xx after the first final response — a
   * retransmission, or a 2xx from another fork. The TU must ACK it (it is not part of the
   * transaction). Without this callback such 2xx are logged and dropped.
   */
  onAdditional2xx?(res: SipResponse, source: Source, tx: ClientTransaction): void;
  /**
   * false: when the connection this request went out on dies, do not re-open it and re-send
   * (SPEC §5.4, `voip-service` DNs); the transaction fails with a transport error instead.
   */
  reopen?: boolean;
  /**
   * ★ Another live flow to the same endpoint (another registered flow of the phone's outbound
   * instance, RFC 5626) than `dead`: when the connection this request went out on dies, it is
   * re-sent there, unchanged, before any new connection is opened.
   */
  otherFlow?(dead: Flow): Destination | undefined;
}

export interface ClientTransaction extends Transaction {
  readonly kind: 'invite-client' | 'non-invite-client';
  /**
   * The request as the transaction sent it first (a copy of what the TU handed over); once
   * the final response has been handed to the user, only its Via, From, To, Call-ID, CSeq,
   * Route, Contact and Max-Forwards, without body (what a late 2xx needs to be ACKed).
   */
  readonly request: SipRequest;
  /** The last request this transaction sent: the request, or the ACK of a non-2xx final. */
  readonly lastRequest: SipRequest;
  /** Where the transaction sends; after the first send, pinned to the flow it went out on. */
  readonly destination: Destination;
  /** What the last successful send used (its flow for TCP/TLS); undefined before it resolves. */
  readonly flow: SendResult | undefined;
  /** True until a final response (received or local) has been handed to the user. */
  readonly active: boolean;
  /**
   * Re-sends `lastRequest` unchanged (same branch, same CSeq), to `dest` when given (which
   * then becomes the destination), as the keep-alive path does after its flow died.
   * Only while `active`. Resolves with the new flow; on a transport error the transaction
   * has already failed towards its user with a local 503, and the promise rejects with the
   * TransportError.
   */
  resend(dest?: Destination): Promise<SendResult>;
  /** False when the TU asked that a dead connection not be re-opened for this transaction. */
  readonly reopen: boolean;
  /**
   * The connection the request went out on died and will not be re-opened (or could not
   * be): while `active`, the transaction ends with a local 503 carrying `error`.
   */
  failFlow(error: TransportError): void;
  /**
   * §9.1, INVITE only (no-op otherwise): the TU has sent a CANCEL for this request. If no
   * final response arrives within 64*T1 the transaction ends with a local 408 (timer
   * 'Cancel'), so that an INVITE whose 487 never comes does not live for ever.
   */
  noteCancelSent(): void;
}

export interface ServerTransaction extends Transaction {
  readonly kind: 'invite-server' | 'non-invite-server';
  /** The request that created the transaction. */
  readonly request: SipRequest;
  /** Where the latest copy of the request came from; responses go back there (§18.2.2). */
  readonly source: Source;
  readonly lastResponse: SipResponse | undefined;
  /**
   * Sends a response and drives the state machine. Throws TransactionError
   * ('TRANSACTION_STATE') when the state forbids it (a second non-2xx final, a provisional
   * after the final; 'TRANSACTION_BAD_REQUEST' for a status outside 100-699). An INVITE
   * server transaction that sent a 2xx takes further 2xx, in Accepted and after it: the TU
   * retransmits its 2xx through here (RFC 6026 §8.5). Send failures arrive later via the
   * layer's onServerFailure callback.
   */
  respond(res: SipResponse): void;
}

/** RFC 3261 §17.2.4 / §17.2.1: what went wrong with a server transaction. */
export type ServerTransactionFailure =
  | { reason: 'transport-error'; error: TransportError; response: SipResponse }
  | { reason: 'ack-timeout'; timer: 'H' };

/** What the state machines need from the layer that owns them. */
export interface TransactionContext {
  clock: Clock;
  transport: SipTransport;
  timers: Required<TimerConfig>;
  log: Logger;
  onStateChange(tx: Transaction, from: string, to: string): void;
  onTerminated(tx: Transaction, reason: TerminationReason): void;
  /**
   * Re-open and re-send (`sip-enable-tcp-keep-alive`); absent when off, and then a client
   * transaction does not listen to its flow at all.
   */
  recovery?: Pick<FlowRecovery, 'acting' | 'join'>;
  onServerFailure(tx: ServerTransaction, failure: ServerTransactionFailure): void;
}
