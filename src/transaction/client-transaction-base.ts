import { canonicalHeaderName, type SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { Flow, FlowListener } from '../transport/flow.js';
import { isReliable, type Destination, type SendResult, type Source } from '../transport/types.js';
import { TransportError } from '../util/errors.js';
import { hostPort } from '../util/host-port.js';
import { FLOW_DIED, REOPEN_FAILED, type FlowDeathReport } from './flow-recovery.js';
import { TransactionBase, type TransitionTable } from './transaction-base.js';
import { toTransportError, TransactionError } from './transaction-error.js';
import type { ClientTransaction, ClientTransactionUser, FinalInfo, TerminationReason, TransactionContext } from './types.js';

/** The request headers kept after the final response (releaseRequest). */
const KEPT = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'route', 'contact', 'max-forwards']);
const EMPTY = Buffer.alloc(0);

/**
 * What INVITE and non-INVITE client transactions share: the request and where it goes, the
 * flow it went out on (and what it does when that flow dies), sending with failure
 * handling, resend(), and handing the final response — received or made up locally — to
 * the user exactly once.
 */
export abstract class ClientTransactionBase<S extends string> extends TransactionBase<S> implements ClientTransaction, FlowListener {
  abstract override readonly kind: 'invite-client' | 'non-invite-client';
  private dest: Destination;
  private sentOn: SendResult | undefined;
  /** The flow this transaction listens to: the one its request last went out on. */
  private followed: Flow | undefined;
  private req: SipRequest;
  private last: SipRequest;
  private finalDelivered = false;

  protected constructor(
    id: string,
    request: SipRequest,
    destination: Destination,
    protected readonly user: ClientTransactionUser,
    ctx: TransactionContext,
    table: TransitionTable<S>,
    initial: S,
  ) {
    super(id, request.method, ctx, table, initial);
    this.req = request;
    this.dest = destination;
    this.last = request;
  }

  /** The request as first sent; once the final response is handled, only its dialog headers (see releaseRequest). */
  get request(): SipRequest {
    return this.req;
  }

  get destination(): Destination {
    return this.dest;
  }

  get flow(): SendResult | undefined {
    return this.sentOn;
  }

  get lastRequest(): SipRequest {
    return this.last;
  }

  get active(): boolean {
    return !this.finalDelivered && !this.terminated;
  }

  /** Sends the request and arms the first timers. Called once, by the layer. */
  abstract start(): void;

  /** A response matched to this transaction (RFC 3261 §17.1.3). */
  abstract receiveResponse(res: SipResponse, source: Source): void;

  /** Called when the transport could not send `msg`; `active` tells whether a final is still owed. */
  protected abstract onSendFailure(error: TransportError, msg: SipRequest): void;

  protected get reliable(): boolean {
    return isReliable(this.dest.transport);
  }

  async resend(dest?: Destination): Promise<SendResult> {
    if (!this.active) {
      throw new TransactionError('TRANSACTION_STATE', `${this.kind} ${this.id}: resend() in ${this.state}, the final response has been handled`);
    }
    if (dest) this.dest = dest;
    this.ctx.log.debug({ tx: this.id, dest: this.dest }, 'client transaction re-sends its last request');
    const result = await this.deliver(this.last);
    if (result instanceof TransportError) throw result;
    return result;
  }

  get reopen(): boolean {
    return this.user.reopen !== false;
  }

  failFlow(error: TransportError): void {
    if (!this.active) return;
    this.ctx.log.info({ tx: this.id, method: this.request.method, code: error.code }, 'client transaction fails: its connection died');
    this.onSendFailure(error, this.last);
  }

  /**
   * The keep-alive path, from here on (SPEC §5.3; flow.ts for how a flow is found dead).
   * The flow this transaction's request went out on has died. Nothing to do if keep-alive
   * recovery is off or the server is stopping, or if the final response is already in (a
   * dead flow only matters to a transaction that still waits). Else:
   *   - its TU asked for no re-open (`voip-service`, SPEC §5.4): it fails at once with a
   *     local 503 (FLOW_DIED), and the TU fails over by its own rules;
   *   - otherwise it opens a new flow to its destination — the far end's listening address
   *     (a phone's Contact, not the port it connected from), same transport, TLS as a client,
   *     bounded by sip-tcp-connect-timeout — and re-sends its last request unchanged (same
   *     branch, same CSeq: the far end sees a retransmission, never a second call); it then
   *     follows the new flow, and its timers run on as before;
   *   - when no flow can be opened it fails with a local 503 (REOPEN_FAILED), and the TU —
   *     the call manager — releases the call (CANCEL or BYE with a Reason to the other leg,
   *     EventReleased cause `stale-connection-reopen-failed`).
   * Each outcome goes to the report of the dead flow (flow-recovery.ts: log line and events).
   */
  flowClosed(flow: Flow): void {
    if (flow !== this.followed) return;
    this.followed = undefined;
    const recovery = this.ctx.recovery;
    if (!recovery?.acting || !this.active) return;
    const report = recovery.join(flow, this);
    if (!this.reopen) {
      this.failFlow(new TransportError(FLOW_DIED, 'connection died; no re-open for this destination (voip-service)'));
      report.refused(this);
      return;
    }
    const startedAt = this.ctx.clock.now();
    const other = this.user.otherFlow?.(flow);
    const otherFlow = other?.flow;
    if (other && otherFlow !== undefined && otherFlow !== flow && otherFlow.state === 'open') {
      this.switchFlow(report, { ...other, flow: otherFlow }, startedAt);
      return;
    }
    const { flow: _dead, ...dest } = this.dest;
    this.ctx.transport.openFlow(dest).then(
      async (fresh) => {
        if (!this.active) return report.skipped(this, dest, startedAt, { flow: fresh });
        try {
          await this.resend({ ...dest, flow: fresh });
          report.resent(this, dest, startedAt, fresh);
        } catch (err) {
          // resend() has failed the transaction itself (local 503).
          report.resent(this, dest, startedAt, fresh, err);
        }
      },
      (err: unknown) => {
        const reason = err instanceof Error ? err.message : String(err);
        if (!this.active) return report.skipped(this, dest, startedAt, { reason });
        this.failFlow(new TransportError(REOPEN_FAILED, `stale connection could not be re-opened to ${hostPort(dest.address, dest.port)}: ${reason}`, { cause: err }));
        report.reopenFailed(this, dest, startedAt, reason);
      },
    );
  }

  /**
   * ★ RFC 5626: the phone has another live flow of its instance; the request goes there,
   * unchanged (same branch and CSeq), without opening any connection.
   */
  private switchFlow(report: FlowDeathReport, other: Destination & { flow: Flow }, startedAt: number): void {
    report.switching(this);
    this.resend(other).then(
      () => report.switched(this, other, startedAt),
      (err: unknown) => report.switched(this, other, startedAt, err),
    );
  }

  /** Listens to the flow the request went out on (and no longer to the one before). */
  private follow(flow: Flow | undefined): void {
    if (flow === this.followed) return;
    this.followed?.offClose(this);
    this.followed = undefined;
    if (!flow || !this.ctx.recovery || this.terminated) return;
    this.followed = flow;
    flow.onClose(this);
  }

  protected override terminate(reason: TerminationReason): void {
    super.terminate(reason);
    this.follow(undefined);
  }

  /** §9.1 hook; only the INVITE client transaction acts on it. */
  noteCancelSent(): void {
    this.ignore('noteCancelSent');
  }

  /** Sends without waiting; a failure goes to onSendFailure. */
  protected transmit(msg: SipRequest): void {
    this.last = msg;
    void this.deliver(msg);
  }

  /** Never rejects: a transport failure is handled here and returned. */
  private async deliver(msg: SipRequest): Promise<SendResult | TransportError> {
    try {
      const result = await this.ctx.transport.sendRequest(msg, this.dest);
      this.sentOn = result;
      this.follow(result.flow);
      // Later sends of this transaction (the ACK, retransmissions) stay on this flow (§17.1.1.3).
      if (result.flow !== undefined) this.dest = { ...this.dest, flow: result.flow };
      return result;
    } catch (err) {
      const error = toTransportError(err);
      this.ctx.log.warn({ tx: this.id, method: msg.method, code: error.code, err: error }, 'client transaction send failed');
      try {
        this.onSendFailure(error, msg);
      } catch (handlerErr) {
        this.ctx.log.error({ tx: this.id, err: handlerErr }, 'client transaction failed to handle a send failure');
      }
      return error;
    }
  }

  /** Hands the final response to the user; only the first call does anything. */
  protected deliverFinal(res: SipResponse, info: FinalInfo): void {
    if (this.finalDelivered) return;
    this.finalDelivered = true;
    this.callUser('onFinal', () => this.user.onFinal(res, info, this));
    this.releaseRequest();
  }

  /**
   * After the final response the transaction only absorbs retransmissions (timers D, K, M:
   * up to 32 s), and a late 2xx needs only the dialog's headers of the request (to ACK and BYE
   * it): the body and the other headers go, so that a finished call does not stay in memory
   * with them. A new object: a send still in flight writes the request as it was.
   */
  private releaseRequest(): void {
    const r = this.req;
    this.req = { ...r, headers: r.headers.filter((h) => KEPT.has(canonicalHeaderName(h.name))), body: EMPTY };
    if (this.last === r) this.last = this.req;
  }

  protected deliverProvisional(res: SipResponse): void {
    if (this.user.onProvisional) this.callUser('onProvisional', () => this.user.onProvisional?.(res, this));
  }

  /**
   * RFC 3261 §8.1.3.1 / §17.1.4: the transaction ends without a final response; the user
   * gets a locally made 408 (timer B/F) or 503 (transport error). Terminates first, so the
   * user sees a finished transaction.
   */
  protected failLocally(info: Exclude<FinalInfo, { local: false }>): void {
    const status = info.local === 'timeout' ? 408 : 503;
    const res = createResponse(this.request, status);
    this.terminate(info.local === 'timeout' ? 'timeout' : 'transport-error');
    this.deliverFinal(res, info);
  }
}
