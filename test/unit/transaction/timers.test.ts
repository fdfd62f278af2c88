import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TIMER_CONFIG,
  nextTimerA,
  nextTimerE,
  nextTimerG,
  resolveTimerConfig,
  timerA,
  timerB,
  timerC,
  timerD,
  timerE,
  timerF,
  timerG,
  timerH,
  timerI,
  timerJ,
  timerK,
  timerL,
  timerM,
  tryingDelay,
} from '../../../src/transaction/timers.js';

const c = resolveTimerConfig();
const UDP = false;
const TCP = true;

describe('timer values (RFC 3261 table 4, RFC 6026)', () => {
  it('defaults are T1 500 ms, T2 4 s, T4 5 s, 100 Trying after 200 ms', () => {
    expect(DEFAULT_TIMER_CONFIG).toMatchObject({ T1: 500, T2: 4000, T4: 5000 });
    expect(tryingDelay(c)).toBe(200);
  });

  it('timer A starts at T1 and doubles without a cap, on UDP only', () => {
    expect(timerA(c, UDP)).toBe(500);
    expect(nextTimerA(4000)).toBe(8000);
    expect(nextTimerA(16_000)).toBe(32_000);
    expect(timerA(c, TCP)).toBeNull();
  });

  it('timer B is 64*T1 = 32 s, or the sip-invite-timeout override; 0 means 64*T1', () => {
    expect(timerB(c)).toBe(32_000);
    expect(timerB(resolveTimerConfig({ inviteTimeout: 10_000 }))).toBe(10_000);
    expect(timerB(resolveTimerConfig({ inviteTimeout: 0 }))).toBe(32_000);
    expect(timerB(resolveTimerConfig({ T1: 250 }))).toBe(16_000);
  });

  it('timer C (proxy only) is longer than 3 minutes', () => {
    expect(timerC(c)).toBeGreaterThan(180_000);
  });

  it('timer D is 32 s on UDP and 0 on reliable transports', () => {
    expect(timerD(c, UDP)).toBe(32_000);
    expect(timerD(c, TCP)).toBe(0);
    expect(timerD(resolveTimerConfig({ T1: 1000 }), UDP)).toBe(64_000);
  });

  it('timer E starts at T1, doubles up to T2, and is T2 once proceeding; UDP only', () => {
    expect(timerE(c, UDP)).toBe(500);
    expect(timerE(c, TCP)).toBeNull();
    expect(nextTimerE(c, 500, false)).toBe(1000);
    expect(nextTimerE(c, 2000, false)).toBe(4000);
    expect(nextTimerE(c, 4000, false)).toBe(4000);
    expect(nextTimerE(c, 500, true)).toBe(4000);
  });

  it('timer F is 64*T1 on every transport', () => {
    expect(timerF(c)).toBe(32_000);
  });

  it('timer G starts at T1 and doubles up to T2, UDP only', () => {
    expect(timerG(c, UDP)).toBe(500);
    expect(timerG(c, TCP)).toBeNull();
    expect(nextTimerG(c, 2000)).toBe(4000);
    expect(nextTimerG(c, 4000)).toBe(4000);
  });

  it('timer H is 64*T1 on every transport', () => {
    expect(timerH(c)).toBe(32_000);
  });

  it('timer I is T4 on UDP and 0 on reliable transports', () => {
    expect(timerI(c, UDP)).toBe(5000);
    expect(timerI(c, TCP)).toBe(0);
  });

  it('timer J is 64*T1 on UDP and 0 on reliable transports', () => {
    expect(timerJ(c, UDP)).toBe(32_000);
    expect(timerJ(c, TCP)).toBe(0);
  });

  it('timer K is T4 on UDP and 0 on reliable transports', () => {
    expect(timerK(c, UDP)).toBe(5000);
    expect(timerK(c, TCP)).toBe(0);
  });

  it('timer L and timer M (RFC 6026) are 64*T1 on every transport', () => {
    expect(timerL(c)).toBe(32_000);
    expect(timerM(c)).toBe(32_000);
  });

  it('resolveTimerConfig refuses non-positive T1/T2/T4 and T2 < T1 with code TIMER_CONFIG', () => {
    expect(() => resolveTimerConfig({ T1: 0 })).toThrow(expect.objectContaining({ code: 'TIMER_CONFIG' }));
    expect(() => resolveTimerConfig({ T2: 100 })).toThrow(/T2/);
    expect(() => resolveTimerConfig({ inviteTimeout: -1 })).toThrow(/inviteTimeout/);
  });
});
