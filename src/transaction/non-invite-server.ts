import type { SipRequest, SipResponse } from '../sip/message.js';
import type { Source } from '../transport/types.js';
import type { TransportError } from '../util/errors.js';
import { ServerTransactionBase } from './server-transaction-base.js';
import type { TransitionTable } from './transaction-base.js';
import { timerJ } from './timers.js';
import type { TransactionContext } from './types.js';

export type NonInviteServerState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

/** RFC 3261 figure 8. */
export const NON_INVITE_SERVER_TRANSITIONS: TransitionTable<NonInviteServerState> = {
  Trying: ['Proceeding', 'Completed', 'Terminated'],
  Proceeding: ['Completed', 'Terminated'],
  Completed: ['Terminated'],
  Terminated: [],
};

/**
 * Non-INVITE server transaction (RFC 3261 §17.2.2), CANCEL included.
 *
 * - Trying: request retransmissions are discarded (nothing to repeat yet).
 * - 1xx from the TU → Proceeding; retransmissions get the last provisional again.
 * - 200-699 from the TU → Completed; retransmissions get the final again; timer J (64*T1 UDP,
 *   0 reliable) then Terminated. Responses from the TU in Completed throw TRANSACTION_STATE.
 * - A transport error → Terminated, and the TU is told (layer's onServerFailure).
 */
export class NonInviteServerTransaction extends ServerTransactionBase<NonInviteServerState> {
  readonly kind = 'non-invite-server' as const;

  constructor(id: string, request: SipRequest, source: Source, ctx: TransactionContext) {
    super(id, request, source, ctx, NON_INVITE_SERVER_TRANSITIONS, 'Trying');
  }

  start(): void {
    // No timer runs until the TU answers.
  }

  respond(res: SipResponse): void {
    this.checkResponse(res);
    if (this.state !== 'Trying' && this.state !== 'Proceeding') this.refuse(res);
    if (res.status < 200) {
      if (this.state === 'Trying') this.transition('Proceeding');
      this.transmit(res);
      return;
    }
    this.transition('Completed');
    this.transmit(res);
    this.release();
    this.startWaitTimer('J', timerJ(this.ctx.timers, this.reliable), () => this.terminate('completed'));
  }

  receiveRetransmission(_req: SipRequest, source: Source): void {
    this.noteSource(source);
    if (this.state === 'Proceeding' || this.state === 'Completed') this.retransmitLast();
    else this.ignore('request retransmission');
  }

  protected onSendFailure(_error: TransportError): void {
    this.terminate('transport-error');
  }
}
