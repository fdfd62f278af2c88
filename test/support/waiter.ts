/**
 * Waiting for something to happen without sleeping: whoever changes state calls `notify()`,
 * and every pending `until()` re-checks its condition then. Each wait has a timeout whose
 * error names what was awaited (and, through `context`, what happened instead).
 */
export class Waiter {
  private readonly wakers = new Set<() => void>();
  private closedBecause: string | undefined;

  constructor(private readonly context: () => string = () => '') {}

  notify(): void {
    for (const wake of [...this.wakers]) wake();
  }

  /** Every pending and later wait fails with `reason` unless its condition already holds. */
  close(reason: string): void {
    this.closedBecause = reason;
    this.notify();
  }

  /** Resolves with the first non-undefined value of `check`, or rejects after `ms`. */
  until<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (why: string): void => {
        done();
        const context = this.context();
        reject(new Error(`${why} waiting for ${what}${context ? `; ${context}` : ''}`));
      };
      const wake = (): void => {
        let value: T | undefined;
        try {
          value = check();
        } catch (err) {
          done();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (value !== undefined) {
          done();
          resolve(value);
        } else if (this.closedBecause !== undefined) {
          fail(this.closedBecause);
        }
      };
      const timer = setTimeout(() => fail(`timed out after ${ms} ms`), ms);
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
      };
      this.wakers.add(wake);
      wake();
    });
  }
}
