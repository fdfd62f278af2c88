import type { TransitionTable } from '../transaction/transaction-base.js';
import { SipServerError } from '../util/errors.js';

export type CallState = 'dialing' | 'ringing' | 'established' | 'released';

/**
 * Where a call may go from each state (SPEC §6). A call that came in (or a transfer's new call)
 * starts 'dialing': the INVITE to the callee is out; its first provisional response makes it
 * 'ringing', its 2xx 'established'. A MakeCall starts 'ringing' (`from`'s phone rings) and is
 * 'dialing' again once `from` answered and `to` is called. Any state but 'released' may be
 * released; nothing leaves 'released'.
 */
export const CALL_TRANSITIONS: TransitionTable<CallState> = {
  dialing: ['ringing', 'established', 'released'],
  ringing: ['dialing', 'established', 'released'],
  established: ['released'],
  released: [],
};

/**
 * A call's state and the single function that changes it. Illegal moves throw
 * SipServerError('CALL_ILLEGAL_TRANSITION'): the call code only moves along edges of the table
 * and tests a state before acting on network input (a provisional response after the call was
 * released is ignored, not a transition), so a throw is a bug.
 */
export class CallStateMachine {
  private current: CallState;

  constructor(
    private readonly id: string,
    initial: 'dialing' | 'ringing',
    private readonly table: TransitionTable<CallState> = CALL_TRANSITIONS,
  ) {
    this.current = initial;
  }

  get state(): CallState {
    return this.current;
  }

  /** Moves along an edge of the table or throws. */
  transition(to: CallState): void {
    const from = this.current;
    if (!this.table[from].includes(to)) {
      throw new SipServerError('CALL_ILLEGAL_TRANSITION', `call ${this.id}: ${from} -> ${to} is not in the transition table`);
    }
    this.current = to;
  }
}
