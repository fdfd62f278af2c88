import type { Clock, TimerHandle } from './clock.js';

/**
 * Runs `fn` once, soon, after the I/O already waiting: the composition root passes
 * setImmediate, tests their own turns (core code schedules nothing by itself).
 */
export type Defer = (fn: () => void) => void;

export interface ReportQueueOptions {
  clock: Clock;
  /**
   * Reports never wait longer than this after the last sign of progress (work started or
   * finished) while work is in flight: a connect that hangs does not hold them up for long.
   * Nor, whatever the progress, longer than ten times this after the oldest was posted:
   * work that keeps starting (peers flapping) cannot hold them back for ever.
   */
  maxWaitMs: number;
  /** Called with whatever a report throws; the other reports still run. */
  onError: (err: unknown) => void;
  defer: Defer;
}

/**
 * Reporting (log lines, events for metrics and the control API) that gives way to urgent
 * work. Reports run in the order posted, never synchronously: on a later turn of the event
 * loop, once no work taken with `hold()` is in flight, or when that work has made no
 * progress for `maxWaitMs`.
 *
 * Made for many connections dying at once: each re-open is held while it connects and
 * re-sends, so all of them are under way before any one of them is reported.
 */
export class ReportQueue {
  private readonly queue: (() => void)[] = [];
  private readonly defer: Defer;
  private inFlight = 0;
  private lastProgress = 0;
  /** When the oldest report waiting was posted. */
  private oldestPostedAt = 0;
  private deferred = false;
  private timer: TimerHandle | undefined;

  constructor(private readonly opts: ReportQueueOptions) {
    this.defer = opts.defer;
  }

  /** Work whose reports wait has started; call the returned function (once is enough) when it is done. */
  hold(): () => void {
    this.inFlight++;
    this.lastProgress = this.opts.clock.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
      this.lastProgress = this.opts.clock.now();
      this.schedule();
    };
  }

  post(report: () => void): void {
    if (this.queue.length === 0) this.oldestPostedAt = this.opts.clock.now();
    this.queue.push(report);
    this.schedule();
  }

  /** Reports waiting to run. */
  get pending(): number {
    return this.queue.length;
  }

  /** Runs every waiting report now (e.g. at shutdown). */
  drain(): void {
    // Reports posted by a report run in this same drain, after the ones already waiting.
    while (this.queue.length > 0) {
      const report = this.queue.shift() as () => void;
      try {
        report();
      } catch (err) {
        this.opts.onError(err);
      }
    }
    this.timer?.cancel();
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.queue.length === 0) return;
    if (this.inFlight === 0) {
      if (this.deferred) return;
      this.deferred = true;
      this.defer(() => {
        this.deferred = false;
        // Work taken since the turn was asked for: wait for it (or for the bound) instead.
        if (this.inFlight === 0) this.drain();
        else this.schedule();
      });
      return;
    }
    this.timer ??= this.opts.clock.setTimer(this.opts.maxWaitMs, () => this.onTimer());
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const now = this.opts.clock.now();
    const quietMs = now - this.lastProgress;
    const leftMs = this.opts.maxWaitMs * 10 - (now - this.oldestPostedAt);
    if (this.inFlight > 0 && quietMs < this.opts.maxWaitMs && leftMs > 0) {
      this.timer = this.opts.clock.setTimer(Math.min(this.opts.maxWaitMs - quietMs, leftMs), () => this.onTimer());
      return;
    }
    this.drain();
  }
}
