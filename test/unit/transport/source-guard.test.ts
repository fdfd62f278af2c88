import { describe, expect, it } from 'vitest';
import { SourceGuard, type SourceGuardEvents, type SourceLimits } from '../../../src/transport/source-guard.js';
import { ManualClock } from '../../support/manual-clock.js';

const LIMITS: SourceLimits = { maxMessagesPerSecond: 5, maxAuthFailures: 3, authWindowMs: 60_000, maxConnections: 2, maxPendingBytes: 1000, banMs: 10_000, dropUserAgents: ['friendly-scanner', 'sipcli'] };

function setup(limits: Partial<SourceLimits> = {}): { clock: ManualClock; guard: SourceGuard; events: { name: keyof SourceGuardEvents; e: unknown }[] } {
  const clock = new ManualClock(1_000_000);
  const guard = new SourceGuard({ ...LIMITS, ...limits }, clock, (a) => a === '10.0.0.1');
  const events: { name: keyof SourceGuardEvents; e: unknown }[] = [];
  guard.events.on('EventSourceBanned', (e) => events.push({ name: 'EventSourceBanned', e }));
  guard.events.on('EventSourceUnbanned', (e) => events.push({ name: 'EventSourceUnbanned', e }));
  return { clock, guard, events };
}

describe('SourceGuard: per-source limits and bans', () => {
  it('bans a source over its message rate for banMs, drops what it sends meanwhile, and lets it back afterwards', () => {
    const { clock, guard, events } = setup();
    const sent = Array.from({ length: 8 }, () => guard.message('192.0.2.9'));
    expect(sent).toEqual([true, true, true, true, true, false, false, false]);
    expect(events).toEqual([{ name: 'EventSourceBanned', e: { source: '192.0.2.9', reason: 'message-rate', until: 1_010_000, time: 1_000_000 } }]);
    // Another source is not affected.
    expect(guard.message('192.0.2.10')).toBe(true);
    clock.advance(5000);
    expect(guard.message('192.0.2.9')).toBe(false);
    expect(guard.bans()).toEqual([{ source: '192.0.2.9', reason: 'message-rate', since: 1_000_000, until: 1_010_000, dropped: 4 }]);
    clock.advance(5000);
    expect(guard.message('192.0.2.9')).toBe(true);
    expect(events.at(-1)).toMatchObject({ name: 'EventSourceUnbanned', e: { source: '192.0.2.9', lifted: false } });
  });

  it('counts messages per one-second window: a steady sender under the limit is never banned', () => {
    const { clock, guard } = setup();
    for (let s = 0; s < 20; s++) {
      for (let i = 0; i < 5; i++) expect(guard.message('192.0.2.9')).toBe(true);
      clock.advance(1000);
    }
    expect(guard.bans()).toEqual([]);
  });

  it('bans after maxAuthFailures failed authentications within the window, not when they are spread out', () => {
    const { clock, guard } = setup();
    guard.authFailed('192.0.2.7');
    clock.advance(61_000);
    guard.authFailed('192.0.2.7');
    guard.authFailed('192.0.2.7');
    expect(guard.isBanned('192.0.2.7')).toBe(false);
    guard.authFailed('192.0.2.7');
    expect(guard.bans()).toMatchObject([{ source: '192.0.2.7', reason: 'auth-failures' }]);
  });

  it('refuses a connection over maxConnections and bans its source; closed connections free their place', () => {
    const { guard } = setup({ banMs: 1 });
    expect(guard.connectionOpened('192.0.2.5')).toBe(true);
    expect(guard.connectionOpened('192.0.2.5')).toBe(true);
    guard.connectionClosed('192.0.2.5');
    expect(guard.connectionOpened('192.0.2.5')).toBe(true);
    expect(guard.connectionOpened('192.0.2.5')).toBe(false);
    expect(guard.bans()).toMatchObject([{ source: '192.0.2.5', reason: 'connections' }]);
  });

  it('bans a source holding more than maxPendingBytes of incomplete messages over its connections; released bytes count down', () => {
    const { guard } = setup();
    expect(guard.pending('192.0.2.4', 600)).toBe(true);
    expect(guard.pending('192.0.2.4', -600)).toBe(true);
    expect(guard.pending('192.0.2.4', 900)).toBe(true);
    expect(guard.pending('192.0.2.4', 200)).toBe(false);
    expect(guard.bans()).toMatchObject([{ source: '192.0.2.4', reason: 'pending-bytes' }]);
    expect(guard.pending('10.0.0.1', 1_000_000)).toBe(true);
  });

  it('drops a known scanner User-Agent (any case); bans its source only when the address is verified (a stream), not for a datagram that could be forged', () => {
    const { guard } = setup();
    expect(guard.userAgent('192.0.2.3', 'Linphone/5.0', true)).toBe(true);
    expect(guard.userAgent('192.0.2.3', undefined, true)).toBe(true);
    expect(guard.userAgent('192.0.2.2', 'friendly-scanner', false)).toBe(false);
    expect(guard.message('192.0.2.2')).toBe(true);
    expect(guard.userAgent('192.0.2.3', 'Friendly-Scanner', true)).toBe(false);
    expect(guard.message('192.0.2.3')).toBe(false);
    expect(guard.bans()).toMatchObject([{ source: '192.0.2.3', reason: 'scanner' }]);
  });

  it('never counts or bans an exempt (trusted) source', () => {
    const { guard } = setup();
    for (let i = 0; i < 100; i++) expect(guard.message('10.0.0.1')).toBe(true);
    for (let i = 0; i < 10; i++) guard.authFailed('10.0.0.1');
    expect(guard.userAgent('10.0.0.1', 'friendly-scanner', true)).toBe(true);
    for (let i = 0; i < 10; i++) expect(guard.connectionOpened('10.0.0.1')).toBe(true);
    expect(guard.bans()).toEqual([]);
  });

  it('lift() ends a ban at once and starts the source afresh; lifting nothing is false', () => {
    const { guard, events } = setup();
    for (let i = 0; i < 6; i++) guard.message('192.0.2.9');
    expect(guard.lift('192.0.2.9')).toBe(true);
    expect(guard.message('192.0.2.9')).toBe(true);
    expect(guard.lift('192.0.2.9')).toBe(false);
    expect(events.at(-1)).toMatchObject({ name: 'EventSourceUnbanned', e: { source: '192.0.2.9', lifted: true } });
  });

  it('forgets idle sources and expired bans on its sweep', () => {
    const { clock, guard, events } = setup();
    guard.start();
    for (let i = 0; i < 6; i++) guard.message('192.0.2.9');
    clock.advance(15_000);
    expect(guard.bans()).toEqual([]);
    expect(events.map((e) => e.name)).toEqual(['EventSourceBanned', 'EventSourceUnbanned']);
    guard.stop();
  });
});
