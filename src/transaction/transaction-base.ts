import type { TimerHandle } from '../util/clock.js';
import type { TimerName } from './timers.js';
import { TransactionError } from './transaction-error.js';
import type { TerminationReason, Transaction, TransactionContext, TransactionKind } from './types.js';

/** For each state, the states it may move to. 'Terminated' maps to nothing. */
export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

/**
 * What the four state machines share: the current state, a single transition function that
 * checks the transition table, named timers on the injected clock, and termination.
 *
 * Illegal moves: `transition()` throws TransactionError('TRANSACTION_ILLEGAL_TRANSITION').
 * The state machines only call it along edges of their table, so a throw is a bug. Network
 * input that makes no sense in the current state (a 1xx after the final, an ACK in
 * Proceeding) is not a transition: the event handlers ignore it with a debug log.
 */
export abstract class TransactionBase<S extends string> implements Transaction {
  abstract readonly kind: TransactionKind;
  readonly createdAt: number;
  private current: S;
  private readonly running = new Map<TimerName, TimerHandle>();

  protected constructor(
    readonly id: string,
    readonly method: string,
    protected readonly ctx: TransactionContext,
    private readonly table: TransitionTable<S>,
    initial: S,
  ) {
    this.current = initial;
    this.createdAt = ctx.clock.now();
  }

  get state(): S {
    return this.current;
  }

  /**
   * State test that TypeScript does not narrow: after a user callback the state may have
   * changed (e.g. the user closed the layer), so code that follows one checks with this.
   */
  protected inState(...states: S[]): boolean {
    return states.includes(this.current);
  }

  get terminated(): boolean {
    return this.current === 'Terminated';
  }

  get activeTimers(): TimerName[] {
    return [...this.running.keys()];
  }

  /** The single transition function: moves along an edge of the table or throws. */
  protected transition(to: S): void {
    const from = this.current;
    if (!this.table[from].includes(to)) {
      throw new TransactionError('TRANSACTION_ILLEGAL_TRANSITION', `${this.kind} ${this.id}: ${from} -> ${to} is not in the transition table`);
    }
    this.current = to;
    this.ctx.log.debug({ tx: this.id, kind: this.kind, from, to }, 'transaction state');
    this.ctx.onStateChange(this, from, to);
  }

  /** Stops every timer and moves to Terminated; a second call does nothing. */
  protected terminate(reason: TerminationReason): void {
    if (this.terminated) return;
    this.stopAllTimers();
    this.transition('Terminated' as S);
    this.ctx.onTerminated(this, reason);
  }

  /** Used by TransactionLayer.close(): ends the transaction without telling its user. */
  close(): void {
    this.terminate('closed');
  }

  /** Arms (or re-arms) a named timer. */
  protected startTimer(name: TimerName, ms: number, fire: () => void): void {
    this.stopTimer(name);
    const handle = this.ctx.clock.setTimer(ms, () => {
      if (this.running.get(name) !== handle) return;
      this.running.delete(name);
      this.ctx.log.debug({ tx: this.id, timer: name, state: this.current }, 'transaction timer fired');
      fire();
    });
    this.running.set(name, handle);
  }

  protected stopTimer(name: TimerName): void {
    const handle = this.running.get(name);
    if (!handle) return;
    handle.cancel();
    this.running.delete(name);
  }

  private stopAllTimers(): void {
    for (const handle of this.running.values()) handle.cancel();
    this.running.clear();
  }

  /**
   * Arms a wait timer whose value may be 0 (D, I, J, K on reliable transports): 0 means the
   * timer "fires" at once, so `fire` runs now and no timer is left on the clock.
   */
  protected startWaitTimer(name: TimerName, ms: number, fire: () => void): void {
    if (ms <= 0) fire();
    else this.startTimer(name, ms, fire);
  }

  /** Calls into the TU; its exceptions are logged so that they never break the state machine. */
  protected callUser(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.log.error({ tx: this.id, kind: this.kind, err }, `transaction user threw in ${what}`);
    }
  }

  /** Debug-logs an event the current state ignores. */
  protected ignore(event: string): void {
    this.ctx.log.debug({ tx: this.id, kind: this.kind, state: this.current, event }, 'ignored in this state');
  }
}
