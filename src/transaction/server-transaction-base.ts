import type { SipRequest, SipResponse } from '../sip/message.js';
import { detach } from '../util/detach.js';
import { isReliable, type Source } from '../transport/types.js';
import type { TransportError } from '../util/errors.js';
import { TransactionBase, type TransitionTable } from './transaction-base.js';
import { toTransportError, TransactionError } from './transaction-error.js';
import type { ServerTransaction, TransactionContext } from './types.js';

const EMPTY = Buffer.alloc(0);
/** The request headers a response copies (RFC 3261 §8.2.6.2), long and compact: all release() keeps. */
const KEPT = new Set(['via', 'v', 'from', 'f', 'to', 't', 'call-id', 'i', 'cseq']);

/**
 * What INVITE and non-INVITE server transactions share: the request, where its latest copy
 * came from, the last response sent, and sending with §17.2.4 failure reporting.
 */
export abstract class ServerTransactionBase<S extends string> extends TransactionBase<S> implements ServerTransaction {
  abstract override readonly kind: 'invite-server' | 'non-invite-server';
  private src: Source;
  private last: SipResponse | undefined;
  private req: SipRequest;

  protected constructor(
    id: string,
    request: SipRequest,
    source: Source,
    ctx: TransactionContext,
    table: TransitionTable<S>,
    initial: S,
  ) {
    super(id, request.method, ctx, table, initial);
    this.req = request;
    this.src = source;
  }

  /** The request (after a final response over UDP, only the headers a response copies: see release()). */
  get request(): SipRequest {
    return this.req;
  }

  get source(): Source {
    return this.src;
  }

  get lastResponse(): SipResponse | undefined {
    return this.last;
  }

  /** Arms the first timers. Called once, by the layer, before the TU sees the request. */
  abstract start(): void;

  abstract respond(res: SipResponse): void;

  /**
   * A copy of the request that matched this transaction (§17.2.3): absorbed, never passed to
   * the TU; depending on the state the last response is sent again.
   */
  abstract receiveRetransmission(req: SipRequest, source: Source): void;

  /** The RFC's "Transport Err." edge for the current state; the TU is told afterwards. */
  protected abstract onSendFailure(error: TransportError): void;

  protected get reliable(): boolean {
    return isReliable(this.src.transport);
  }

  /**
   * A retransmission may arrive on another flow (the client re-opened its connection):
   * responses from now on go where the latest copy came from.
   */
  protected noteSource(source: Source): void {
    this.src = source;
  }

  protected checkResponse(res: SipResponse): void {
    if (!Number.isInteger(res.status) || res.status < 100 || res.status > 699) {
      throw new TransactionError('TRANSACTION_BAD_REQUEST', `${this.kind} ${this.id}: status ${res.status} is not 100-699`);
    }
  }

  protected refuse(res: SipResponse): never {
    throw new TransactionError('TRANSACTION_STATE', `${this.kind} ${this.id}: cannot send ${res.status} in state ${this.state}`);
  }

  /**
   * After the final response the transaction only waits — over UDP to repeat a non-2xx
   * final (timers J / H, 32 s), on any transport after a 2xx (timer L, 32 s, RFC 6026) — so it
   * keeps no more of the request than a response copies, and no string cut from a received
   * text, so that the datagram, its text and the call can go at once. A flood of 60 KB
   * datagrams otherwise held every one of them for those 32 s (3.5 GB at 2,000/s).
   * `accepted`: after a 2xx, which the transaction never repeats itself (the TU does), its
   * body is not kept either.
   */
  protected release(accepted = false): void {
    if (this.reliable && !accepted) return;
    const r = this.req;
    this.req = { ...r, uri: detach(r.uri), headers: r.headers.filter((h) => KEPT.has(h.name.toLowerCase())).map((h) => ({ name: detach(h.name), value: detach(h.value) })), body: EMPTY };
    const last = this.last;
    if (last) {
      const body = accepted || last.body.length === 0 ? EMPTY : Buffer.from(last.body);
      this.last = { ...last, reason: detach(last.reason), headers: last.headers.map((h) => ({ name: detach(h.name), value: detach(h.value) })), body };
    }
  }

  /** Sends a response and remembers it as the one to repeat. */
  protected transmit(res: SipResponse): void {
    this.last = res;
    void this.deliver(res);
  }

  /** The TU's retransmission of its 2xx (RFC 6026 §8.5): sent, not remembered (the first one is, released). */
  protected transmitAgain(res: SipResponse): void {
    void this.deliver(res);
  }

  /** Sends the last response again (request retransmission, timer G). */
  protected retransmitLast(): void {
    if (this.last) void this.deliver(this.last);
  }

  /** Never rejects: failures are handled here. */
  private async deliver(res: SipResponse): Promise<void> {
    try {
      await this.ctx.transport.sendResponse(res, this.src);
    } catch (err) {
      const error = toTransportError(err);
      this.ctx.log.warn({ tx: this.id, status: res.status, code: error.code, err: error }, 'server transaction send failed');
      try {
        this.onSendFailure(error);
        this.ctx.onServerFailure(this, { reason: 'transport-error', error, response: res });
      } catch (handlerErr) {
        this.ctx.log.error({ tx: this.id, err: handlerErr }, 'server transaction failed to handle a send failure');
      }
    }
  }
}
