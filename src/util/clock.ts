/**
 * All time in the server comes from a Clock. Production code uses SystemClock; tests drive a
 * ManualClock (test/support/manual-clock.ts) so that timers A–M, OOS checks and keep-alive
 * logic run without real waiting.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls fn once after ms milliseconds unless cancelled. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, ms);
    // Timers must never keep the process alive on their own: shutdown is explicit.
    t.unref();
    return new SystemTimer(t);
  }
}

/** A handle with its method on the prototype: no closure per timer (transactions arm several per message). */
class SystemTimer implements TimerHandle {
  constructor(private readonly timeout: NodeJS.Timeout) {}

  cancel(): void {
    clearTimeout(this.timeout);
  }
}
