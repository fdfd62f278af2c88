import { describe, expect, it } from 'vitest';
import { CLOSE_TOO_SLOW, EventHub, type EventClient } from '../../../src/api/event-hub.js';
import { silentLogger } from '../../../src/util/logger.js';
import { TypedEvents } from '../../../src/util/typed-events.js';
import { ManualClock } from '../../support/manual-clock.js';

class FakeClient implements EventClient {
  readyState = 1;
  bufferedAmount = 0;
  frames: string[] = [];
  closedWith: [number | undefined, string | undefined] | undefined;
  send(data: string): void {
    this.frames.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
    this.readyState = 2;
  }
}

function hub(limit = 1000): { hub: EventHub<FakeClient>; clock: ManualClock } {
  const clock = new ManualClock(Date.UTC(2024, 0, 2, 3, 4, 5));
  return { hub: new EventHub<FakeClient>(clock, silentLogger, limit), clock };
}

describe('EventHub', () => {
  it('sends one JSON frame per event with the name first and the event time as ISO', () => {
    const { hub: h } = hub();
    const c = new FakeClient();
    h.add(c);
    h.publish('EventDNOutOfService', { dn: '1001', reason: 'OPTIONS timeout', time: Date.UTC(2024, 0, 1) });
    expect(c.frames).toHaveLength(1);
    expect(c.frames[0]).toBe('{"event":"EventDNOutOfService","time":"2024-01-01T00:00:00.000Z","dn":"1001","reason":"OPTIONS timeout"}');
  });

  it('stamps the current clock time when the payload has none, and keeps the event name authoritative', () => {
    const { hub: h } = hub();
    const c = new FakeClient();
    h.add(c);
    h.publish('EventX', { event: 'spoofed', n: 1 });
    expect(JSON.parse(c.frames[0] ?? '')).toEqual({ event: 'EventX', time: '2024-01-02T03:04:05.000Z', n: 1 });
  });

  it('forwards the named events of a typed source until unsubscribed', () => {
    const { hub: h } = hub();
    const c = new FakeClient();
    h.add(c);
    const source = new TypedEvents<{ A: { x: number }; B: { y: number } }>();
    const off = h.forward(source, ['A']);
    source.emit('A', { x: 1 });
    source.emit('B', { y: 2 });
    off();
    source.emit('A', { x: 3 });
    expect(c.frames.map((f) => JSON.parse(f) as { event: string })).toEqual([expect.objectContaining({ event: 'A', x: 1 })]);
  });

  it('closes a client whose unsent backlog exceeds the limit and stops sending to it', () => {
    const { hub: h } = hub(1000);
    const slow = new FakeClient();
    const fast = new FakeClient();
    h.add(slow);
    h.add(fast);
    slow.bufferedAmount = 1001;
    h.publish('E', {});
    h.publish('E', {});
    expect(slow.closedWith?.[0]).toBe(CLOSE_TOO_SLOW);
    expect(slow.frames).toHaveLength(0);
    expect(fast.frames).toHaveLength(2);
    expect(h.size).toBe(1);
  });

  it('skips clients that are not open yet or any more', () => {
    const { hub: h } = hub();
    const closing = new FakeClient();
    closing.readyState = 2;
    h.add(closing);
    h.publish('E', {});
    expect(closing.frames).toHaveLength(0);
  });
});
