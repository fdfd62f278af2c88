import { describe, expect, it } from 'vitest';
import { INVITE_CLIENT_TRANSITIONS } from '../../../src/transaction/invite-client.js';
import { INVITE_SERVER_TRANSITIONS } from '../../../src/transaction/invite-server.js';
import { NON_INVITE_CLIENT_TRANSITIONS } from '../../../src/transaction/non-invite-client.js';
import { NON_INVITE_SERVER_TRANSITIONS } from '../../../src/transaction/non-invite-server.js';
import { resolveTimerConfig } from '../../../src/transaction/timers.js';
import { TransactionBase } from '../../../src/transaction/transaction-base.js';
import type { TransactionContext } from '../../../src/transaction/types.js';
import { silentLogger } from '../../../src/util/logger.js';
import { FakeTransport } from '../../support/fake-transport.js';
import { ManualClock } from '../../support/manual-clock.js';

type ToyState = 'Start' | 'Middle' | 'Terminated';

class Toy extends TransactionBase<ToyState> {
  readonly kind = 'non-invite-server' as const;
  constructor(ctx: TransactionContext) {
    super('toy', 'OPTIONS', ctx, { Start: ['Middle'], Middle: ['Terminated'], Terminated: [] }, 'Start');
  }
  go(to: ToyState): void {
    this.transition(to);
  }
  arm(): void {
    this.startTimer('J', 1000, () => this.terminate('completed'));
  }
}

function ctx(clock: ManualClock): TransactionContext {
  return {
    clock,
    transport: new FakeTransport(),
    timers: resolveTimerConfig(),
    log: silentLogger,
    onStateChange: () => {},
    onTerminated: () => {},
    onServerFailure: () => {},
  };
}

describe('transaction state machines', () => {
  it('the transition function refuses a move that is not in the table with TRANSACTION_ILLEGAL_TRANSITION', () => {
    const toy = new Toy(ctx(new ManualClock()));
    expect(() => toy.go('Terminated')).toThrow(expect.objectContaining({ code: 'TRANSACTION_ILLEGAL_TRANSITION' }));
    expect(toy.state).toBe('Start');
    toy.go('Middle');
    expect(toy.state).toBe('Middle');
  });

  it('termination cancels every named timer', () => {
    const clock = new ManualClock();
    const toy = new Toy(ctx(clock));
    toy.go('Middle');
    toy.arm();
    expect(toy.activeTimers).toEqual(['J']);
    toy.close();
    expect(toy.state).toBe('Terminated');
    expect(toy.activeTimers).toEqual([]);
    expect(clock.pendingCount).toBe(0);
  });

  it('every state can reach Terminated and Terminated is final, in all four tables', () => {
    for (const table of [INVITE_CLIENT_TRANSITIONS, INVITE_SERVER_TRANSITIONS, NON_INVITE_CLIENT_TRANSITIONS, NON_INVITE_SERVER_TRANSITIONS]) {
      const t = table as Record<string, readonly string[]>;
      expect(t.Terminated).toEqual([]);
      for (const [state, next] of Object.entries(t)) {
        if (state !== 'Terminated') expect(next).toContain('Terminated');
      }
    }
  });

  it('RFC 6026: Accepted leads only to Terminated on both INVITE sides', () => {
    expect(INVITE_CLIENT_TRANSITIONS.Accepted).toEqual(['Terminated']);
    expect(INVITE_SERVER_TRANSITIONS.Accepted).toEqual(['Terminated']);
    expect(INVITE_SERVER_TRANSITIONS.Completed).toEqual(['Confirmed', 'Terminated']);
  });
});
