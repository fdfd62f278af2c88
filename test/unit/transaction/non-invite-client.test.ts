import { afterEach, describe, expect, it } from 'vitest';
import type { SipResponse } from '../../../src/sip/message.js';
import { flushPromises } from '../../support/fake-transport.js';
import { destination, request, response, source } from '../../support/sip-builders.js';
import { expectNoLeftovers, recordingUser, sendTimes, setup, type Harness } from './harness.js';

let h: Harness;

afterEach(() => {
  expectNoLeftovers(h);
});

function options(transport: 'UDP' | 'TCP' = 'UDP', method = 'OPTIONS') {
  const user = recordingUser();
  const tx = h.layer.sendRequest(request({ method, transport }), destination(transport), user);
  return { tx, user };
}

function deliver(res: SipResponse, transport: 'UDP' | 'TCP' = 'UDP'): void {
  h.layer.receive({ message: res, source: source(transport) });
}

describe('non-INVITE client transaction', () => {
  it('timer E retransmits over UDP at T1, doubling, capped at T2', () => {
    h = setup();
    const { tx } = options();
    expect(tx.state).toBe('Trying');
    const times = sendTimes(h, 20_000, () => h.transport.requests('OPTIONS').length);
    // Intervals 500, 1000, 2000, 4000, 4000, 4000 …
    expect(times).toEqual([500, 1500, 3500, 7500, 11_500, 15_500, 19_500]);
    h.clock.advance(12_000);
  });

  it('timer E runs at T2 once a provisional response has been received (Proceeding)', () => {
    h = setup();
    const { tx, user } = options();
    h.clock.advance(500); // retransmission 1; E now 1000
    deliver(response(tx.request, 100));
    expect(tx.state).toBe('Proceeding');
    expect(user.provisionals).toHaveLength(1);
    const times = sendTimes(h, 14_000, () => h.transport.requests('OPTIONS').length);
    // E fires at its scheduled 1500 (1000 after now), then every T2.
    expect(times).toEqual([1000, 5000, 9000, 13_000]);
    deliver(response(tx.request, 200));
    h.clock.advance(5000);
  });

  it('timer E does not run over TCP', () => {
    h = setup();
    const { tx } = options('TCP');
    expect(tx.activeTimers).toEqual(['F']);
    h.clock.advance(31_000);
    expect(h.transport.requests('OPTIONS')).toHaveLength(1);
    h.clock.advance(1000);
  });

  it('timer F fires after 64*T1 and the user gets a local 408 flagged as a timeout, in Trying and in Proceeding', () => {
    h = setup();
    const a = options();
    h.clock.advance(32_000);
    expect(a.user.finals.map((f) => [f.res.status, f.info])).toEqual([[408, { local: 'timeout', timer: 'F' }]]);
    expect(a.tx.state).toBe('Terminated');

    const b = options('TCP', 'REGISTER');
    deliver(response(b.tx.request, 100), 'TCP');
    h.clock.advance(32_000);
    expect(b.user.finals.map((f) => f.res.status)).toEqual([408]);
  });

  it('a final response moves to Completed and timer K absorbs retransmitted finals for T4 over UDP', () => {
    h = setup();
    const { tx, user } = options();
    deliver(response(tx.request, 200));
    expect(tx.state).toBe('Completed');
    expect(tx.activeTimers).toEqual(['K']);
    deliver(response(tx.request, 200));
    expect(user.finals).toHaveLength(1);
    expect(h.tu.strays).toHaveLength(0);
    h.clock.advance(4999);
    expect(tx.state).toBe('Completed');
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
    expect(h.transport.requests('OPTIONS')).toHaveLength(1); // E stopped with the final
  });

  it('timer K is 0 over TCP: the transaction ends with the final response', () => {
    h = setup();
    const { tx, user } = options('TCP');
    deliver(response(tx.request, 404), 'TCP');
    expect(user.finals.map((f) => f.res.status)).toEqual([404]);
    expect(tx.state).toBe('Terminated');
  });

  it('a transport error gives the user a local 503 with the TransportError as cause', async () => {
    h = setup();
    h.transport.failNext({ code: 'EHOSTUNREACH' });
    const { tx, user } = options('UDP');
    await flushPromises();
    expect(tx.state).toBe('Terminated');
    const f = user.finals[0];
    expect(f?.res.status).toBe(503);
    expect(f?.info).toMatchObject({ local: 'transport-error', cause: { code: 'EHOSTUNREACH' } });
    h.clock.advance(1000);
    expect(h.transport.requests('OPTIONS')).toHaveLength(1); // no retransmission after termination
  });

  it('a transport error on a retransmission that loses the race with the final is only logged', async () => {
    h = setup();
    const { tx, user } = options();
    h.transport.failNext();
    h.clock.advance(500); // timer E retransmission, whose send will fail
    deliver(response(tx.request, 200));
    await flushPromises();
    expect(user.finals.map((f) => [f.res.status, f.info.local])).toEqual([[200, false]]);
    expect(tx.state).toBe('Completed');
    h.clock.advance(5000);
  });

  it('a CANCEL is its own transaction: its 200 does not match the INVITE (CSeq method)', () => {
    h = setup();
    const user = recordingUser();
    const inv = h.layer.sendRequest(request({ method: 'INVITE', transport: 'TCP' }), destination('TCP'), user);
    const cancelUser = recordingUser();
    const cancel = h.layer.sendRequest(
      { ...inv.request, method: 'CANCEL', headers: inv.request.headers.map((x) => (x.name === 'CSeq' ? { name: 'CSeq', value: '1 CANCEL' } : x)) },
      destination('TCP'),
      cancelUser,
    );
    expect(cancel.kind).toBe('non-invite-client');
    deliver(response(cancel.request, 200), 'TCP');
    expect(cancelUser.finals.map((f) => f.res.status)).toEqual([200]);
    expect(user.finals).toHaveLength(0);
    deliver(response(inv.request, 487), 'TCP');
    expect(user.finals.map((f) => f.res.status)).toEqual([487]);
  });
});
