import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Destination, Source } from '../transport/types.js';
import type { TransportError } from '../util/errors.js';
import { buildAckForNon2xx } from './build-ack.js';
import { ClientTransactionBase } from './client-transaction-base.js';
import type { TransitionTable } from './transaction-base.js';
import { cancelWait, nextTimerA, timerA, timerB, timerD, timerM } from './timers.js';
import type { ClientTransactionUser, TransactionContext } from './types.js';

export type InviteClientState = 'Calling' | 'Proceeding' | 'Accepted' | 'Completed' | 'Terminated';

/** RFC 3261 figure 5 as updated by RFC 6026 figure 5. */
export const INVITE_CLIENT_TRANSITIONS: TransitionTable<InviteClientState> = {
  Calling: ['Proceeding', 'Accepted', 'Completed', 'Terminated'],
  Proceeding: ['Accepted', 'Completed', 'Terminated'],
  Accepted: ['Terminated'],
  Completed: ['Terminated'],
  Terminated: [],
};

/**
 * INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §8.4).
 *
 * - Calling: sends the INVITE; timer A retransmits it over UDP at T1, 2T1, 4T1, ... (no cap);
 *   timer B (64*T1 or `inviteTimeout`) ends it with a local 408.
 * - 1xx → Proceeding (A and B stop: from here the TU decides with CANCEL when to give up;
 *   noteCancelSent() then bounds the wait for the final response to 64*T1, §9.1).
 * - 2xx → Accepted: the 2xx goes to onFinal; timer M (64*T1) keeps the transaction so that
 *   2xx retransmissions and 2xx from other forks reach the TU (onAdditional2xx) instead of
 *   being stray. The TU sends the ACK for a 2xx.
 * - 300-699 → Completed: the transaction sends the ACK itself (§17.1.1.3) and re-sends it for
 *   every retransmission of the final response, which is not passed up again; timer D
 *   (32 s UDP, 0 reliable). A 2xx arriving in Completed (another fork) goes to onAdditional2xx.
 * - A transport error before the final: local 503 to the user, Terminated. A failed ACK is
 *   only logged: the user already has the final response.
 */
export class InviteClientTransaction extends ClientTransactionBase<InviteClientState> {
  readonly kind = 'invite-client' as const;
  private ack: SipRequest | undefined;

  constructor(id: string, request: SipRequest, destination: Destination, user: ClientTransactionUser, ctx: TransactionContext) {
    super(id, request, destination, user, ctx, INVITE_CLIENT_TRANSITIONS, 'Calling');
  }

  start(): void {
    this.transmit(this.request);
    const a = timerA(this.ctx.timers, this.reliable);
    if (a !== null) this.armTimerA(a);
    this.startTimer('B', timerB(this.ctx.timers), () => {
      if (this.state === 'Calling') this.failLocally({ local: 'timeout', timer: 'B' });
    });
  }

  private armTimerA(interval: number): void {
    this.startTimer('A', interval, () => {
      if (this.state !== 'Calling') return;
      this.transmit(this.request);
      this.armTimerA(nextTimerA(interval));
    });
  }

  /** §9.1: once a CANCEL went out, a final response must arrive within 64*T1. */
  override noteCancelSent(): void {
    if (this.state !== 'Calling' && this.state !== 'Proceeding') return;
    this.startTimer('Cancel', cancelWait(this.ctx.timers), () => {
      if (this.active) this.failLocally({ local: 'timeout', timer: 'Cancel' });
    });
  }

  receiveResponse(res: SipResponse, source: Source): void {
    const status = res.status;
    if (status < 200) this.onProvisional(res);
    else if (status < 300) this.on2xx(res, source);
    else this.onFailure(res, source);
  }

  private onProvisional(res: SipResponse): void {
    if (this.state === 'Calling') {
      this.stopTimer('A');
      this.stopTimer('B');
      this.transition('Proceeding');
    }
    if (this.inState('Proceeding')) this.deliverProvisional(res);
    else this.ignore(`${res.status} response`);
  }

  private on2xx(res: SipResponse, source: Source): void {
    switch (this.state) {
      case 'Calling':
      case 'Proceeding':
        this.stopSetupTimers();
        this.transition('Accepted');
        this.deliverFinal(res, { local: false, source });
        if (this.inState('Accepted')) {
          this.startTimer('M', timerM(this.ctx.timers), () => this.terminate('completed'));
        }
        return;
      case 'Accepted':
      case 'Completed':
        this.passAdditional2xx(res, source);
        return;
      case 'Terminated':
        this.ignore(`${res.status} response`);
    }
  }

  /** A final response ends the INVITE's retransmissions (A), timer B and the CANCEL bound. */
  private stopSetupTimers(): void {
    this.stopTimer('A');
    this.stopTimer('B');
    this.stopTimer('Cancel');
  }

  private passAdditional2xx(res: SipResponse, source: Source): void {
    if (this.user.onAdditional2xx) this.callUser('onAdditional2xx', () => this.user.onAdditional2xx?.(res, source, this));
    else this.ctx.log.warn({ tx: this.id, status: res.status }, 'further 2xx dropped: the user has no onAdditional2xx');
  }

  private onFailure(res: SipResponse, source: Source): void {
    switch (this.state) {
      case 'Calling':
      case 'Proceeding':
        this.stopSetupTimers();
        this.transition('Completed');
        this.sendAck(res);
        this.deliverFinal(res, { local: false, source });
        if (this.inState('Completed')) {
          this.startWaitTimer('D', timerD(this.ctx.timers, this.reliable), () => this.terminate('completed'));
        }
        return;
      case 'Completed':
        // A retransmission of the final response: the ACK got lost (§17.1.1.2).
        if (this.ack) this.transmit(this.ack);
        return;
      default:
        this.ignore(`${res.status} response`);
    }
  }

  private sendAck(res: SipResponse): void {
    try {
      this.ack = buildAckForNon2xx(this.request, res);
    } catch (err) {
      this.ctx.log.error({ tx: this.id, err }, 'cannot build the ACK for a non-2xx final response');
      return;
    }
    this.transmit(this.ack);
  }

  protected onSendFailure(error: TransportError, msg: SipRequest): void {
    if (this.active && msg.method === 'INVITE') this.failLocally({ local: 'transport-error', cause: error });
    else this.ctx.log.warn({ tx: this.id, state: this.state, method: msg.method, code: error.code }, 'send failed after the final response');
  }
}
