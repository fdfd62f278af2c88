import { SipServerError } from '../util/errors.js';

/**
 * Transaction timer values (RFC 3261 §17 and table 4, RFC 6026 §8). Every value is in
 * milliseconds. Timers that do not apply to a transport come back as `null` (A, E, G are
 * retransmission timers and run only over unreliable transports); wait timers that are zero
 * on reliable transports come back as 0, and the state machines then move on at once
 * instead of arming a timer.
 */
export interface TimerConfig {
  /** RTT estimate, ms (RFC 3261 default 500). */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, ms (default 4000). */
  T2: number;
  /** Maximum time a message stays in the network, ms (default 5000). */
  T4: number;
  /**
   * Timer B override, ms: how long an INVITE waits for any response (SPEC option
   * `sip-invite-timeout`, which is in seconds). 0 or absent means 64*T1 (32 s by default).
   */
  inviteTimeout?: number;
  /**
   * RFC 3261 §17.2.1: an INVITE server transaction sends 100 Trying itself when the TU has
   * not sent a provisional response within this many ms (default 200; 0 = at once).
   */
  tryingDelay?: number;
}

export const DEFAULT_TIMER_CONFIG: Readonly<Required<TimerConfig>> = Object.freeze({
  T1: 500,
  T2: 4000,
  T4: 5000,
  inviteTimeout: 0,
  tryingDelay: 200,
});

/**
 * Names of the RFC 3261/6026 timers, plus two unnamed by the RFCs: 'Trying' (§17.2.1, send
 * 100 Trying after 200 ms) and 'Cancel' (§9.1, give up 64*T1 after a CANCEL was sent).
 */
export type TimerName = 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H' | 'I' | 'J' | 'K' | 'L' | 'M' | 'Trying' | 'Cancel';

/** Fills defaults and checks the values; throws SipServerError('TIMER_CONFIG') when invalid. */
export function resolveTimerConfig(config: Partial<TimerConfig> = {}): Required<TimerConfig> {
  const c: Required<TimerConfig> = { ...DEFAULT_TIMER_CONFIG };
  for (const [k, v] of Object.entries(config)) {
    if (v !== undefined) (c as Record<string, number>)[k] = v;
  }
  const problems: string[] = [];
  for (const k of ['T1', 'T2', 'T4'] as const) {
    if (!Number.isFinite(c[k]) || c[k] <= 0) problems.push(`${k} must be a positive number of ms, got ${c[k]}`);
  }
  for (const k of ['inviteTimeout', 'tryingDelay'] as const) {
    if (!Number.isFinite(c[k]) || c[k] < 0) problems.push(`${k} must be 0 or a positive number of ms, got ${c[k]}`);
  }
  if (problems.length === 0 && c.T2 < c.T1) problems.push(`T2 (${c.T2} ms) must not be smaller than T1 (${c.T1} ms)`);
  if (problems.length > 0) throw new SipServerError('TIMER_CONFIG', problems.join('; '));
  return c;
}

const sixtyFourT1 = (c: TimerConfig): number => 64 * c.T1;

/** Timer A: initial INVITE retransmit interval, T1; doubles without a cap. UDP only. */
export function timerA(c: TimerConfig, reliable: boolean): number | null {
  return reliable ? null : c.T1;
}

/** Next timer A interval after `previous` (RFC 3261 §17.1.1.2: doubled, no cap). */
export function nextTimerA(previous: number): number {
  return previous * 2;
}

/** Timer B: INVITE transaction timeout (in Calling), 64*T1 unless overridden. */
export function timerB(c: TimerConfig): number {
  return c.inviteTimeout !== undefined && c.inviteTimeout > 0 ? c.inviteTimeout : sixtyFourT1(c);
}

/**
 * Timer C: proxy INVITE transaction timeout, > 3 min (RFC 3261 §16.6 step 11). Only proxies
 * use it; this server is a UA on every leg, so no transaction here arms it. Listed so that
 * the table is complete.
 */
export function timerC(_c: TimerConfig): number {
  return 3 * 60_000 + 1_000;
}

/** Timer D: wait time for response retransmissions in INVITE client Completed: >= 32 s UDP, 0 reliable. */
export function timerD(c: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : Math.max(32_000, sixtyFourT1(c));
}

/** Timer E: initial non-INVITE retransmit interval, T1. UDP only. */
export function timerE(c: TimerConfig, reliable: boolean): number | null {
  return reliable ? null : c.T1;
}

/**
 * Next timer E interval: doubled and capped at T2 in Trying; always T2 once a provisional
 * response has been received (Proceeding), RFC 3261 §17.1.2.2.
 */
export function nextTimerE(c: TimerConfig, previous: number, proceeding: boolean): number {
  return proceeding ? c.T2 : Math.min(previous * 2, c.T2);
}

/** Timer F: non-INVITE transaction timeout, 64*T1. */
export function timerF(c: TimerConfig): number {
  return sixtyFourT1(c);
}

/** Timer G: initial INVITE final-response retransmit interval, T1. UDP only. */
export function timerG(c: TimerConfig, reliable: boolean): number | null {
  return reliable ? null : c.T1;
}

/** Next timer G interval: doubled, capped at T2 (RFC 3261 §17.2.1). */
export function nextTimerG(c: TimerConfig, previous: number): number {
  return Math.min(previous * 2, c.T2);
}

/** Timer H: wait time for the ACK to a non-2xx final response, 64*T1. */
export function timerH(c: TimerConfig): number {
  return sixtyFourT1(c);
}

/** Timer I: wait time for ACK retransmissions in Confirmed: T4 UDP, 0 reliable. */
export function timerI(c: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : c.T4;
}

/** Timer J: wait time for non-INVITE request retransmissions: 64*T1 UDP, 0 reliable. */
export function timerJ(c: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : sixtyFourT1(c);
}

/** Timer K: wait time for non-INVITE response retransmissions: T4 UDP, 0 reliable. */
export function timerK(c: TimerConfig, reliable: boolean): number {
  return reliable ? 0 : c.T4;
}

/** Timer L (RFC 6026): INVITE server Accepted, wait for INVITE retransmissions, 64*T1. */
export function timerL(c: TimerConfig): number {
  return sixtyFourT1(c);
}

/** Timer M (RFC 6026): INVITE client Accepted, wait for 2xx retransmissions, 64*T1. */
export function timerM(c: TimerConfig): number {
  return sixtyFourT1(c);
}

/** §9.1: how long an INVITE client transaction waits for its final response once the TU sent a CANCEL: 64*T1. */
export function cancelWait(c: TimerConfig): number {
  return sixtyFourT1(c);
}

/** §17.2.1: delay before an INVITE server transaction sends 100 Trying on its own. */
export function tryingDelay(c: TimerConfig): number {
  return c.tryingDelay ?? DEFAULT_TIMER_CONFIG.tryingDelay;
}
