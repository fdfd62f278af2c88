import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Destination, Source } from '../transport/types.js';
import type { TransportError } from '../util/errors.js';
import { ClientTransactionBase } from './client-transaction-base.js';
import type { TransitionTable } from './transaction-base.js';
import { nextTimerE, timerE, timerF, timerK } from './timers.js';
import type { ClientTransactionUser, TransactionContext } from './types.js';

export type NonInviteClientState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

/** RFC 3261 figure 6. */
export const NON_INVITE_CLIENT_TRANSITIONS: TransitionTable<NonInviteClientState> = {
  Trying: ['Proceeding', 'Completed', 'Terminated'],
  Proceeding: ['Completed', 'Terminated'],
  Completed: ['Terminated'],
  Terminated: [],
};

/**
 * Non-INVITE client transaction (RFC 3261 §17.1.2), CANCEL included.
 *
 * - Trying: sends the request; timer E retransmits it over UDP at T1, then doubling up to
 *   T2; timer F (64*T1) ends it with a local 408.
 * - 1xx → Proceeding: E goes on, every T2 from its next firing.
 * - 200-699 → Completed: the final goes to onFinal; timer K (T4 UDP, 0 reliable) absorbs
 *   retransmitted finals, which are not passed up again.
 * - A transport error before the final: local 503 to the user, Terminated.
 */
export class NonInviteClientTransaction extends ClientTransactionBase<NonInviteClientState> {
  readonly kind = 'non-invite-client' as const;

  constructor(id: string, request: SipRequest, destination: Destination, user: ClientTransactionUser, ctx: TransactionContext) {
    super(id, request, destination, user, ctx, NON_INVITE_CLIENT_TRANSITIONS, 'Trying');
  }

  start(): void {
    this.transmit(this.request);
    const e = timerE(this.ctx.timers, this.reliable);
    if (e !== null) this.armTimerE(e);
    this.startTimer('F', timerF(this.ctx.timers), () => {
      if (this.state === 'Trying' || this.state === 'Proceeding') this.failLocally({ local: 'timeout', timer: 'F' });
    });
  }

  private armTimerE(interval: number): void {
    this.startTimer('E', interval, () => {
      if (this.state !== 'Trying' && this.state !== 'Proceeding') return;
      this.transmit(this.request);
      this.armTimerE(nextTimerE(this.ctx.timers, interval, this.state === 'Proceeding'));
    });
  }

  receiveResponse(res: SipResponse, source: Source): void {
    const state = this.state;
    if (state === 'Completed' || state === 'Terminated') {
      this.ignore(`${res.status} response`);
      return;
    }
    if (res.status < 200) {
      if (state === 'Trying') this.transition('Proceeding');
      this.deliverProvisional(res);
      return;
    }
    this.stopTimer('E');
    this.stopTimer('F');
    this.transition('Completed');
    this.deliverFinal(res, { local: false, source });
    if (this.inState('Completed')) {
      this.startWaitTimer('K', timerK(this.ctx.timers, this.reliable), () => this.terminate('completed'));
    }
  }

  protected onSendFailure(error: TransportError, _msg: SipRequest): void {
    if (this.active) this.failLocally({ local: 'transport-error', cause: error });
    else this.ctx.log.warn({ tx: this.id, state: this.state, code: error.code }, 'send failed after the final response');
  }
}
