import { describe, expect, it } from 'vitest';
import { ReportQueue } from '../../../src/util/report-queue.js';
import { ManualClock } from '../../support/manual-clock.js';

/** A queue whose "next turn" runs only when the test says so. */
function rig(maxWaitMs = 20) {
  const clock = new ManualClock();
  const turns: (() => void)[] = [];
  const errors: unknown[] = [];
  const queue = new ReportQueue({ clock, maxWaitMs, onError: (err) => errors.push(err), defer: (fn) => turns.push(fn) });
  const nextTurn = (): void => {
    for (const fn of turns.splice(0)) fn();
  };
  const ran: string[] = [];
  const report = (name: string) => () => ran.push(name);
  return { clock, queue, nextTurn, ran, report, errors };
}

describe('ReportQueue', () => {
  it('runs reports in the order posted, never synchronously: on a later turn', () => {
    const r = rig();
    r.queue.post(r.report('a'));
    r.queue.post(r.report('b'));
    expect(r.ran).toEqual([]);
    r.nextTurn();
    expect(r.ran).toEqual(['a', 'b']);
    expect(r.queue.pending).toBe(0);
  });

  it('holds reports back while work is in flight and runs them on the turn after the last is done', () => {
    const r = rig();
    const first = r.queue.hold();
    const second = r.queue.hold();
    r.queue.post(r.report('a'));
    r.nextTurn();
    first();
    r.nextTurn();
    expect(r.ran).toEqual([]);
    second();
    second(); // a second call is harmless
    expect(r.ran).toEqual([]);
    r.nextTurn();
    expect(r.ran).toEqual(['a']);
  });

  it('work taken after the turn was asked for still holds the reports back', () => {
    const r = rig();
    r.queue.post(r.report('a'));
    const done = r.queue.hold();
    r.nextTurn();
    expect(r.ran).toEqual([]);
    done();
    r.nextTurn();
    expect(r.ran).toEqual(['a']);
  });

  it('work that makes no progress holds reports back for at most maxWaitMs', () => {
    const r = rig(20);
    r.queue.hold(); // never done: a connect that hangs
    r.queue.post(r.report('a'));
    r.clock.advance(19);
    expect(r.ran).toEqual([]);
    r.clock.advance(1);
    expect(r.ran).toEqual(['a']);
    r.queue.post(r.report('b'));
    r.clock.advance(20);
    expect(r.ran).toEqual(['a', 'b']);
  });

  it('work that keeps starting and finishing counts as progress: the wait runs from the last of it', () => {
    const r = rig(20);
    r.queue.hold(); // hangs
    r.queue.post(r.report('a'));
    r.clock.advance(15);
    const next = r.queue.hold();
    r.clock.advance(10); // 25 ms after the post, 10 after the last progress
    expect(r.ran).toEqual([]);
    next();
    r.clock.advance(19);
    expect(r.ran).toEqual([]);
    r.clock.advance(1);
    expect(r.ran).toEqual(['a']);
  });

  it('work that never stops coming holds reports back for at most ten times maxWaitMs after the oldest was posted', () => {
    const r = rig(20);
    r.queue.hold(); // hangs
    r.queue.post(r.report('a'));
    for (let t = 10; t < 200; t += 10) {
      r.clock.advance(10);
      r.queue.hold()(); // progress every 10 ms
    }
    expect(r.ran).toEqual([]);
    r.clock.advance(10); // 200 ms after the post
    expect(r.ran).toEqual(['a']);
  });

  it('a report that throws is passed to onError and the others still run', () => {
    const r = rig();
    r.queue.post(() => {
      throw new Error('boom');
    });
    r.queue.post(r.report('b'));
    r.nextTurn();
    expect(r.ran).toEqual(['b']);
    expect(r.errors).toHaveLength(1);
  });

  it('drain() runs everything waiting at once, held or not, reports posted by reports included', () => {
    const r = rig();
    r.queue.hold();
    r.queue.post(() => {
      r.ran.push('a');
      r.queue.post(r.report('c'));
    });
    r.queue.post(r.report('b'));
    r.queue.drain();
    expect(r.ran).toEqual(['a', 'b', 'c']);
    expect(r.clock.pendingCount).toBe(0);
  });
});
