import type { SipRequest, SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { Source } from '../transport/types.js';
import type { TransportError } from '../util/errors.js';
import { ServerTransactionBase } from './server-transaction-base.js';
import type { TransitionTable } from './transaction-base.js';
import { nextTimerG, timerG, timerH, timerI, timerL, tryingDelay } from './timers.js';
import type { TransactionContext } from './types.js';

export type InviteServerState = 'Proceeding' | 'Accepted' | 'Completed' | 'Confirmed' | 'Terminated';

/** RFC 3261 figure 7 as updated by RFC 6026 figure 7. */
export const INVITE_SERVER_TRANSITIONS: TransitionTable<InviteServerState> = {
  Proceeding: ['Accepted', 'Completed', 'Terminated'],
  Accepted: ['Terminated'],
  Completed: ['Confirmed', 'Terminated'],
  Confirmed: ['Terminated'],
  Terminated: [],
};

/** What the layer does with an ACK that matched this transaction. */
export type AckDisposition = 'absorbed' | 'to-tu';

/**
 * INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §8.5-8.7).
 *
 * - Proceeding: if the TU has sent no response within `tryingDelay` (200 ms by default) the
 *   transaction sends 100 Trying itself. A retransmitted INVITE gets the last provisional
 *   again (or 100 Trying at once when nothing was sent yet). 1xx from the TU are sent.
 * - 2xx from the TU → Accepted (RFC 6026): timer L (64*T1). The transaction never
 *   retransmits the 2xx itself; further 2xx from the TU (its retransmissions) are sent, also
 *   after Terminated. Retransmitted INVITEs are absorbed; ACKs are passed to the TU.
 * - 300-699 from the TU → Completed: timer G re-sends the final over UDP at T1, 2T1, ...
 *   capped at T2; timer H (64*T1) gives up waiting for the ACK (Terminated, TU told);
 *   retransmitted INVITEs get the final again. ACK → Confirmed, timer I (T4 UDP, 0
 *   reliable), ACKs absorbed.
 * - Transport error: Proceeding and Completed → Terminated (§17.2.4); in Accepted the
 *   transaction stays, so that INVITE retransmissions are still absorbed until timer L.
 *   The TU is told in every case.
 */
export class InviteServerTransaction extends ServerTransactionBase<InviteServerState> {
  readonly kind = 'invite-server' as const;
  private accepted = false;

  constructor(id: string, request: SipRequest, source: Source, ctx: TransactionContext) {
    super(id, request, source, ctx, INVITE_SERVER_TRANSITIONS, 'Proceeding');
  }

  start(): void {
    const delay = tryingDelay(this.ctx.timers);
    if (delay <= 0) this.sendTrying();
    else this.startTimer('Trying', delay, () => this.sendTrying());
  }

  private sendTrying(): void {
    if (this.state !== 'Proceeding' || this.lastResponse) return;
    this.stopTimer('Trying');
    this.transmit(createResponse(this.request, 100));
  }

  respond(res: SipResponse): void {
    this.checkResponse(res);
    const status = res.status;
    if (this.state === 'Proceeding') {
      this.stopTimer('Trying');
      if (status < 200) this.transmit(res);
      else if (status < 300) this.accept(res);
      else this.complete(res);
      return;
    }
    if (status >= 200 && status < 300 && this.accepted && (this.state === 'Accepted' || this.state === 'Terminated')) {
      // RFC 6026 §8.5: the TU retransmits its 2xx through the transaction.
      this.transmitAgain(res);
      return;
    }
    this.refuse(res);
  }

  private accept(res: SipResponse): void {
    this.accepted = true;
    this.transition('Accepted');
    this.transmit(res);
    this.release(true);
    this.startTimer('L', timerL(this.ctx.timers), () => this.terminate('completed'));
  }

  private complete(res: SipResponse): void {
    this.transition('Completed');
    this.transmit(res);
    this.release();
    const g = timerG(this.ctx.timers, this.reliable);
    if (g !== null) this.armTimerG(g);
    this.startTimer('H', timerH(this.ctx.timers), () => {
      if (this.state !== 'Completed') return;
      this.terminate('timeout');
      this.ctx.onServerFailure(this, { reason: 'ack-timeout', timer: 'H' });
    });
  }

  private armTimerG(interval: number): void {
    this.startTimer('G', interval, () => {
      if (this.state !== 'Completed') return;
      this.retransmitLast();
      this.armTimerG(nextTimerG(this.ctx.timers, interval));
    });
  }

  receiveRetransmission(_req: SipRequest, source: Source): void {
    this.noteSource(source);
    switch (this.state) {
      case 'Proceeding':
        if (this.lastResponse) this.retransmitLast();
        else this.sendTrying();
        return;
      case 'Completed':
        this.retransmitLast();
        return;
      default:
        this.ignore('INVITE retransmission');
    }
  }

  /** An ACK that matched this transaction (§17.2.3). */
  receiveAck(_ack: SipRequest, _source: Source): AckDisposition {
    switch (this.state) {
      case 'Completed':
        this.stopTimer('G');
        this.stopTimer('H');
        this.transition('Confirmed');
        this.startWaitTimer('I', timerI(this.ctx.timers, this.reliable), () => this.terminate('completed'));
        return 'absorbed';
      case 'Accepted':
        return 'to-tu';
      default:
        this.ignore('ACK');
        return 'absorbed';
    }
  }

  protected onSendFailure(_error: TransportError): void {
    if (this.state === 'Proceeding' || this.state === 'Completed') this.terminate('transport-error');
  }
}
