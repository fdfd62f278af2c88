import { cseqOf } from '../sip/cseq.js';
import { cloneMessage, getHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import type { Flow } from '../transport/flow.js';
import type { Destination, ReceivedMessage, SendResult, SipTransport, Source } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { detach } from '../util/detach.js';
import { TypedEvents } from '../util/typed-events.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { FlowRecovery } from './flow-recovery.js';
import { InviteClientTransaction } from './invite-client.js';
import { InviteServerTransaction } from './invite-server.js';
import { clientKey, legacyAckKey, responseKey, serverKey, toTag } from './matching.js';
import { NonInviteClientTransaction } from './non-invite-client.js';
import { NonInviteServerTransaction } from './non-invite-server.js';
import { resolveTimerConfig, type TimerConfig } from './timers.js';
import { TransactionError } from './transaction-error.js';
import type { TransactionLayerEvents, TransactionStats } from './transaction-events.js';
import { TransactionRegistry } from './transaction-registry.js';
import { writeTopVia } from './top-via.js';
import {
  type ClientTransaction,
  type ClientTransactionUser,
  type ServerTransaction,
  type ServerTransactionFailure,
  type TransactionContext,
} from './types.js';

export interface TransactionLayerOptions {
  clock: Clock;
  transport: SipTransport;
  /** T1/T2/T4 and overrides, ms; missing values take the RFC defaults. */
  timers?: Partial<TimerConfig>;
  log?: Logger;
  /** Re-open and re-send when a flow dies (`sip-enable-tcp-keep-alive`); absent: off. */
  recovery?: FlowRecovery;
  /**
   * A new request (not an ACK, not a retransmission) with the server transaction created for
   * it. The TU answers through tx.respond(). Exceptions are logged.
   */
  onRequest(tx: ServerTransaction, req: SipRequest): void;
  /**
   * A new CANCEL, with its own non-INVITE server transaction and the INVITE server
   * transaction it cancels (§9.2: same branch and sent-by, method INVITE), or undefined when
   * none matches (the TU then answers 481). The TU answers the CANCEL and, when it matched,
   * the INVITE (487). Without this callback CANCEL goes to onRequest like any request.
   */
  onCancel?(cancelTx: ServerTransaction, inviteTx: ServerTransaction | undefined): void;
  /**
   * An ACK that is not absorbed by a transaction: the ACK for a 2xx (which matches no
   * transaction, inviteTx undefined), or an ACK that matched an INVITE server transaction in
   * Accepted (RFC 6026 §8.7). Without this callback such ACKs are logged and dropped.
   */
  onAck?(ack: SipRequest, source: Source, inviteTx: ServerTransaction | undefined): void;
  /**
   * A response that matches no client transaction (RFC 6026 §7.1), e.g. a 2xx retransmitted
   * after timer M. It is counted and otherwise dropped.
   */
  onStrayResponse?(res: SipResponse, source: Source): void;
  /** §17.2.4: a response could not be sent; or timer H fired (no ACK for a non-2xx final). */
  onServerFailure?(tx: ServerTransaction, failure: ServerTransactionFailure): void;
}

type AnyServerTransaction = InviteServerTransaction | NonInviteServerTransaction;

/**
 * The transaction layer (RFC 3261 §17): matches incoming messages to transactions, creates
 * server transactions for new requests and client transactions for requests the TU sends,
 * and owns their tables. Retransmitted requests are absorbed by their server transaction;
 * responses that match nothing are stray. Every change is a typed event on `events`.
 */
export class TransactionLayer {
  readonly events: TypedEvents<TransactionLayerEvents>;
  private readonly log: Logger;
  private readonly ctx: TransactionContext;
  private readonly registry: TransactionRegistry;
  private closed = false;

  constructor(private readonly opts: TransactionLayerOptions) {
    this.log = opts.log ?? silentLogger;
    this.events = new TypedEvents<TransactionLayerEvents>((err, name) =>
      this.log.error({ err, event: name }, 'transaction event listener threw'),
    );
    this.registry = new TransactionRegistry(opts.clock, this.events);
    this.ctx = {
      clock: opts.clock,
      transport: opts.transport,
      timers: resolveTimerConfig(opts.timers),
      log: this.log,
      onStateChange: (tx, from, to) => this.registry.stateChanged(tx, from, to),
      onTerminated: (tx, reason) => this.registry.remove(tx, reason),
      ...(opts.recovery ? { recovery: opts.recovery } : {}),
      onServerFailure: (tx, failure) => this.serverFailed(tx, failure),
    };
  }

  /** Entry point for every message the transport received. Never throws. */
  receive(received: ReceivedMessage): void {
    if (this.closed) return;
    const { message, source } = received;
    try {
      if (message.kind === 'response') this.receiveResponse(message, source);
      else this.receiveRequest(message, source);
    } catch (err) {
      this.log.error({ err }, 'transaction layer failed on an incoming message');
    }
  }

  /**
   * Creates a client transaction for `req` (INVITE or non-INVITE by method) and sends it to
   * `dest`. The transaction works on a copy whose top Via is written here (top-via.ts: this
   * server's sent-by, and a new branch unless it has an RFC 3261 one; read it from
   * tx.request). Throws TransactionError: 'TRANSACTION_BAD_REQUEST' for an ACK (not a
   * transaction: see sendAck), a malformed top Via, or a request without CSeq or whose CSeq
   * method differs; 'TRANSACTION_EXISTS' when the branch is in use.
   */
  sendRequest(req: SipRequest, dest: Destination, user: ClientTransactionUser): ClientTransaction {
    if (this.closed) throw new TransactionError('TRANSACTION_STATE', 'the transaction layer is closed');
    if (req.method === 'ACK') {
      throw new TransactionError('TRANSACTION_BAD_REQUEST', 'an ACK is not a transaction: send it through the transport');
    }
    const request = cloneMessage(req);
    let method: string;
    try {
      method = cseqOf(request).method;
    } catch (err) {
      throw new TransactionError('TRANSACTION_BAD_REQUEST', 'request without a valid CSeq', { cause: err });
    }
    if (method !== request.method) {
      throw new TransactionError('TRANSACTION_BAD_REQUEST', `CSeq method ${method} differs from request method ${request.method}`);
    }
    const key = clientKey(writeTopVia(request, dest.transport, this.opts.transport.sentBy(dest.transport)), request.method);
    if (this.registry.client(key)) throw new TransactionError('TRANSACTION_EXISTS', `a client transaction ${key} is live`);
    const tx =
      request.method === 'INVITE'
        ? new InviteClientTransaction(key, request, dest, user, this.ctx)
        : new NonInviteClientTransaction(key, request, dest, user, this.ctx);
    this.registry.addClient(tx);
    tx.start();
    return tx;
  }

  /**
   * Sends the ACK for a 2xx (RFC 3261 §13.2.2.4), which is no transaction: its top Via is
   * written as for a request that is (a new branch), and it goes out once, as it is.
   */
  sendAck(ack: SipRequest, dest: Destination): Promise<SendResult> {
    writeTopVia(ack, dest.transport, this.opts.transport.sentBy(dest.transport));
    return this.opts.transport.sendRequest(ack, dest);
  }

  /** How many client transactions wait for a final response on each flow (GET /connections). */
  activeByFlow(): Map<Flow, number> {
    const counts = new Map<Flow, number>();
    for (const tx of this.registry.clients()) {
      const flow = tx.flow?.flow;
      if (flow && tx.active) counts.set(flow, (counts.get(flow) ?? 0) + 1);
    }
    return counts;
  }

  /** A live transaction by id, for diagnostics and the control API. */
  find(id: string): ClientTransaction | ServerTransaction | undefined {
    return this.registry.client(id) ?? this.registry.server(id);
  }

  stats(): TransactionStats {
    return this.registry.stats();
  }

  /** Ends every transaction (no user is told) and cancels all their timers. */
  close(): void {
    this.closed = true;
    for (const tx of [...this.registry.clients(), ...this.registry.servers()]) tx.close();
  }

  private receiveResponse(res: SipResponse, source: Source): void {
    let key: string | undefined;
    try {
      key = responseKey(res);
    } catch (err) {
      this.registry.dropped({ reason: `malformed response: ${errorText(err)}`, source });
      return;
    }
    const tx = key === undefined ? undefined : this.registry.client(key);
    if (tx) {
      tx.receiveResponse(res, source);
      return;
    }
    this.registry.stray(res, source);
    if (this.opts.onStrayResponse) this.callTu('onStrayResponse', () => this.opts.onStrayResponse?.(res, source));
  }

  private receiveRequest(req: SipRequest, source: Source): void {
    let key: string;
    try {
      key = serverKey(req);
    } catch (err) {
      this.registry.dropped({ reason: `malformed request: ${errorText(err)}`, source });
      return;
    }
    if (req.method === 'ACK') {
      this.receiveAck(req, source, key);
      return;
    }
    const existing = this.registry.server(key);
    if (existing) {
      this.registry.absorbed(existing);
      existing.receiveRetransmission(req, source);
      return;
    }
    const tx: AnyServerTransaction =
      req.method === 'INVITE'
        ? new InviteServerTransaction(detach(key), req, source, this.ctx)
        : new NonInviteServerTransaction(detach(key), req, source, this.ctx);
    this.registry.addServer(tx, req.method === 'INVITE' ? legacyAckKey(req) : undefined);
    tx.start();
    if (req.method === 'CANCEL' && this.opts.onCancel) {
      const inviteTx = this.cancelledInvite(req);
      this.callTu('onCancel', () => this.opts.onCancel?.(tx, inviteTx));
      return;
    }
    this.callTu('onRequest', () => this.opts.onRequest(tx, req));
  }

  /** §9.2: the INVITE server transaction a CANCEL refers to. */
  private cancelledInvite(cancel: SipRequest): InviteServerTransaction | undefined {
    const tx = this.registry.server(serverKey(cancel, 'INVITE'));
    return tx instanceof InviteServerTransaction ? tx : undefined;
  }

  private receiveAck(ack: SipRequest, source: Source, key: string): void {
    const tx = this.matchAck(ack, key);
    if (tx && tx.receiveAck(ack, source) === 'absorbed') {
      this.registry.absorbed(tx);
      return;
    }
    if (this.opts.onAck) this.callTu('onAck', () => this.opts.onAck?.(ack, source, tx));
    else this.log.debug({ callId: getHeader(ack, 'call-id') }, 'ACK dropped: no onAck');
  }

  /** §17.2.3: an ACK matches the INVITE server transaction; RFC 2543 ACKs by their own rule. */
  private matchAck(ack: SipRequest, key: string): InviteServerTransaction | undefined {
    const direct = this.registry.server(key);
    if (direct instanceof InviteServerTransaction) return direct;
    const legacy = legacyAckKey(ack);
    if (legacy === undefined) return undefined;
    const tx = this.registry.legacyAckTarget(legacy);
    if (!tx) return undefined;
    const sent = tx.lastResponse;
    // The ACK's To tag must be the one of the response the transaction sent.
    return sent !== undefined && toTag(sent) === toTag(ack) ? tx : undefined;
  }

  private serverFailed(tx: ServerTransaction, failure: ServerTransactionFailure): void {
    if (this.opts.onServerFailure) this.callTu('onServerFailure', () => this.opts.onServerFailure?.(tx, failure));
    else this.log.warn({ tx: tx.id, reason: failure.reason }, 'server transaction failed and nobody listens');
  }

  private callTu(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, `transaction user threw in ${what}`);
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
