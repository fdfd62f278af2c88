import type { SipResponse } from '../sip/message.js';
import type { ServerTransaction } from '../transaction/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';

/**
 * RFC 3261 §13.3.1.4 (with RFC 6026): the UAS core, not the transaction, retransmits its 2xx
 * to an INVITE over unreliable transports, at T1 doubling up to T2, until the ACK arrives;
 * after 64·T1 without one it gives up and the dialog must be ended (BYE).
 */
export class OkRetransmitter {
  private timer: TimerHandle | undefined;
  private giveUp: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly t1: number,
    private readonly t2: number,
  ) {}

  start(tx: ServerTransaction, ok: SipResponse, reliable: boolean, onNoAck: () => void): void {
    tx.respond(ok);
    if (!reliable) this.schedule(tx, ok, this.t1);
    this.giveUp = this.clock.setTimer(64 * this.t1, () => {
      this.stop();
      onNoAck();
    });
  }

  /** The ACK arrived (or the dialog ended): stop retransmitting. */
  stop(): void {
    this.timer?.cancel();
    this.giveUp?.cancel();
    this.timer = undefined;
    this.giveUp = undefined;
  }

  private schedule(tx: ServerTransaction, ok: SipResponse, interval: number): void {
    this.timer = this.clock.setTimer(interval, () => {
      tx.respond(ok);
      this.schedule(tx, ok, Math.min(interval * 2, this.t2));
    });
  }
}
