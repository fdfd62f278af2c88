import { describe, expect, it } from 'vitest';
import { failureText, releaseCause } from '../../../src/calls/release-cause.js';
import { REOPEN_FAILED } from '../../../src/transaction/flow-recovery.js';
import type { FinalInfo } from '../../../src/transaction/types.js';
import { TransportError } from '../../../src/util/errors.js';

const fromNetwork: FinalInfo = { local: false, source: { transport: 'UDP', address: '192.0.2.1', port: 5060, localAddress: '127.0.0.1', localPort: 5060 } };
const timedOut: FinalInfo = { local: 'timeout', timer: 'B' };
const refused: FinalInfo = { local: 'transport-error', cause: new TransportError('ECONNREFUSED', 'refused') };
const stale: FinalInfo = { local: 'transport-error', cause: new TransportError(REOPEN_FAILED, 'could not re-open') };

describe('releaseCause: one mapping from a final response to a release cause', () => {
  it('maps a party\'s final status (SPEC §6)', () => {
    const cases: [number, string][] = [
      [486, 'busy'], [600, 'busy'],
      [404, 'not-found'], [484, 'not-found'], [604, 'not-found'],
      [480, 'no-answer'], [408, 'timeout'], [487, 'cancelled'], [503, 'transport-failure'],
      [403, 'rejected'], [488, 'rejected'], [500, 'rejected'], [481, 'rejected'],
    ];
    for (const [status, cause] of cases) expect([status, releaseCause(status, fromNetwork)]).toEqual([status, cause]);
    expect(releaseCause(486)).toBe('busy');
  });

  it('a local 503 is a transport failure, or a stale connection that could not be re-opened; a local 408 a timeout', () => {
    expect(releaseCause(503, refused)).toBe('transport-failure');
    expect(releaseCause(503, stale)).toBe('stale-connection-reopen-failed');
    expect(releaseCause(503, stale, 'dialog')).toBe('stale-connection-reopen-failed');
    expect(releaseCause(408, timedOut)).toBe('timeout');
    expect(releaseCause(408, timedOut, 'dialog')).toBe('timeout');
  });

  it('481 in an established dialog means the party has left (normal); while setting up it is a refusal', () => {
    expect(releaseCause(481, fromNetwork, 'dialog')).toBe('normal');
    expect(releaseCause(481, fromNetwork, 'setup')).toBe('rejected');
  });

  it('failureText is the Reason text for each way a request the server sent failed', () => {
    expect(failureText(408, timedOut)).toBe('no response');
    expect(failureText(408, fromNetwork)).toBe('no response');
    expect(failureText(503, refused)).toBe('transport failure');
    expect(failureText(503, stale)).toBe('stale connection could not be re-opened');
    expect(failureText(481, fromNetwork)).toBe('the other party has left the call');
  });
});
