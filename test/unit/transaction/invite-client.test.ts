import { afterEach, describe, expect, it } from 'vitest';
import { getHeader, getHeaderValues, type SipResponse } from '../../../src/sip/message.js';
import { TransportError } from '../../../src/util/errors.js';
import { flushPromises } from '../../support/fake-transport.js';
import { destination, request, response, source } from '../../support/sip-builders.js';
import { expectNoLeftovers, recordingUser, sendTimes, setup, type Harness } from './harness.js';

let h: Harness;

afterEach(() => {
  if (h) expectNoLeftovers(h);
});

function invite(transport: 'UDP' | 'TCP' = 'UDP', routes?: string[]) {
  const user = recordingUser();
  const tx = h.layer.sendRequest(request({ method: 'INVITE', transport, ...(routes ? { routes } : {}) }), destination(transport), user);
  return { tx, user };
}

function deliver(res: SipResponse, transport: 'UDP' | 'TCP' = 'UDP'): void {
  h.layer.receive({ message: res, source: source(transport) });
}

describe('INVITE client transaction', () => {
  it('timer A retransmits INVITE over UDP at T1, 2T1, 4T1 … doubling without a cap until timer B', () => {
    h = setup();
    const { tx } = invite();
    expect(tx.state).toBe('Calling');
    const times = sendTimes(h, 32_000, () => h.transport.requests('INVITE').length);
    // First send at 0, then after 500, 1000, 2000, 4000, 8000, 16000 ms (past T2: no cap).
    expect(times).toEqual([500, 1500, 3500, 7500, 15_500, 31_500]);
    expect(tx.state).toBe('Terminated');
  });

  it('timer A does not run over TCP: the INVITE is sent once', () => {
    h = setup();
    const { tx } = invite('TCP');
    expect(tx.activeTimers).toEqual(['B']);
    h.clock.advance(31_000);
    expect(h.transport.requests('INVITE')).toHaveLength(1);
    h.clock.advance(1000);
  });

  it('timer B fires after 64*T1 in Calling and the user gets a local 408 flagged as a timeout', () => {
    h = setup();
    const { tx, user } = invite();
    h.clock.advance(31_999);
    expect(user.finals).toHaveLength(0);
    h.clock.advance(1);
    expect(user.finals).toHaveLength(1);
    const final = user.finals[0]!;
    expect(final.res.status).toBe(408);
    expect(final.info).toEqual({ local: 'timeout', timer: 'B' });
    expect(getHeader(final.res, 'call-id')).toBe('call-1@192.0.2.1');
    expect(tx.state).toBe('Terminated');
    expect(h.layer.stats().terminated.timeout).toBe(1);
  });

  it('timer B takes the sip-invite-timeout override', () => {
    h = setup({ timers: { inviteTimeout: 5000 } });
    const { user } = invite('TCP');
    h.clock.advance(5000);
    expect(user.finals[0]?.res.status).toBe(408);
  });

  it('a provisional response moves to Proceeding, stops timers A and B, and is passed to the user', () => {
    h = setup();
    const { tx, user } = invite();
    h.clock.advance(500);
    deliver(response(tx.request, 100));
    deliver(response(tx.request, 180));
    expect(tx.state).toBe('Proceeding');
    expect(user.provisionals.map((r) => r.status)).toEqual([100, 180]);
    expect(tx.activeTimers).toEqual([]);
    h.clock.advance(120_000);
    expect(h.transport.requests('INVITE')).toHaveLength(2);
    expect(user.finals).toHaveLength(0);
    deliver(response(tx.request, 486));
    h.clock.advance(32_000);
  });

  it('a 2xx moves to Accepted (RFC 6026) and timer M keeps it for 64*T1, passing retransmitted 2xx to the user', () => {
    h = setup();
    const { tx, user } = invite();
    deliver(response(tx.request, 180));
    deliver(response(tx.request, 200));
    expect(tx.state).toBe('Accepted');
    expect(user.finals.map((f) => f.res.status)).toEqual([200]);
    expect(user.finals[0]?.info.local).toBe(false);
    expect(tx.activeTimers).toEqual(['M']);
    expect(h.transport.requests('ACK')).toHaveLength(0); // the ACK for a 2xx is the TU's
    deliver(response(tx.request, 200));
    deliver(response(tx.request, 200, 'other-fork'));
    expect(user.additional.map((r) => getHeader(r, 'to'))).toEqual([
      '<sip:bob@example.com>;tag=to-1',
      '<sip:bob@example.com>;tag=other-fork',
    ]);
    expect(user.finals).toHaveLength(1);
    h.clock.advance(31_999);
    expect(tx.state).toBe('Accepted');
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
    // After timer M a 2xx retransmission is stray.
    deliver(response(tx.request, 200));
    expect(h.tu.strays).toHaveLength(1);
  });

  it('timer M runs over TCP too (RFC 6026: 64*T1 on every transport)', () => {
    h = setup();
    const { tx } = invite('TCP');
    deliver(response(tx.request, 200), 'TCP');
    expect(tx.activeTimers).toEqual(['M']);
    h.clock.advance(32_000);
    expect(tx.state).toBe('Terminated');
  });

  it('a non-2xx final generates the ACK of §17.1.1.3 and sends it to the same destination', () => {
    h = setup();
    const { tx, user } = invite('UDP', ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    const res = response(tx.request, 486, 'busy-tag');
    deliver(res);
    expect(tx.state).toBe('Completed');
    expect(user.finals.map((f) => f.res.status)).toEqual([486]);
    const acks = h.transport.sent.filter((s) => s.kind === 'request' && s.message.method === 'ACK');
    expect(acks).toHaveLength(1);
    const ack = acks[0]!;
    if (ack.kind !== 'request') throw new Error('not a request');
    expect(ack.dest).toEqual(destination('UDP'));
    const m = ack.message;
    expect(m.uri).toBe(tx.request.uri);
    expect(getHeaderValues(m, 'via')).toEqual([getHeaderValues(tx.request, 'via')[0]]);
    expect(getHeader(m, 'call-id')).toBe(getHeader(tx.request, 'call-id'));
    expect(getHeader(m, 'from')).toBe(getHeader(tx.request, 'from'));
    expect(getHeader(m, 'to')).toBe('<sip:bob@example.com>;tag=busy-tag');
    expect(getHeader(m, 'cseq')).toBe('1 ACK');
    expect(getHeaderValues(m, 'route')).toEqual(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    expect(tx.lastRequest).toBe(m);
    h.clock.advance(32_000);
  });

  it('a retransmitted final response in Completed re-sends the ACK and is not passed up again', () => {
    h = setup();
    const { tx, user } = invite();
    deliver(response(tx.request, 503));
    deliver(response(tx.request, 503));
    deliver(response(tx.request, 503));
    expect(h.transport.requests('ACK')).toHaveLength(3);
    expect(user.finals).toHaveLength(1);
    h.clock.advance(32_000);
  });

  it('timer D keeps Completed for 32 s over UDP', () => {
    h = setup();
    const { tx } = invite();
    deliver(response(tx.request, 404));
    expect(tx.activeTimers).toEqual(['D']);
    h.clock.advance(31_999);
    expect(tx.state).toBe('Completed');
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
  });

  it('timer D is 0 over TCP: Completed ends at once after the ACK', () => {
    h = setup();
    const { tx } = invite('TCP');
    deliver(response(tx.request, 404), 'TCP');
    expect(h.transport.requests('ACK')).toHaveLength(1);
    expect(tx.state).toBe('Terminated');
  });

  it('a transport error on the INVITE gives the user a local 503 with the TransportError as cause', async () => {
    h = setup();
    h.transport.failNext({ code: 'ECONNREFUSED' });
    const { tx, user } = invite('TCP');
    await flushPromises();
    expect(tx.state).toBe('Terminated');
    expect(user.finals).toHaveLength(1);
    const f = user.finals[0]!;
    expect(f.res.status).toBe(503);
    expect(f.res.reason).toBe('Service Unavailable');
    expect(f.info.local).toBe('transport-error');
    if (f.info.local !== 'transport-error') throw new Error('unreachable');
    expect(f.info.cause).toBeInstanceOf(TransportError);
    expect(f.info.cause.code).toBe('ECONNREFUSED');
    expect(h.layer.stats().terminated['transport-error']).toBe(1);
  });

  it('a transport error on a UDP retransmission (timer A) also ends the transaction with a 503', async () => {
    h = setup();
    const { tx, user } = invite();
    await flushPromises();
    h.transport.failNext();
    h.clock.advance(500);
    await flushPromises();
    expect(user.finals.map((f) => f.res.status)).toEqual([503]);
    expect(tx.state).toBe('Terminated');
  });

  it('a transport error on the ACK is only logged: the user already has the final response', async () => {
    h = setup();
    const { tx, user } = invite();
    h.transport.failNext({ match: (s) => s.kind === 'request' && s.message.method === 'ACK' });
    deliver(response(tx.request, 486));
    await flushPromises();
    expect(user.finals.map((f) => f.res.status)).toEqual([486]);
    expect(tx.state).toBe('Completed');
    h.clock.advance(32_000);
  });

  it('records the flow the INVITE went out on and re-sends the same request on a new flow with resend()', async () => {
    h = setup();
    const { tx, user } = invite('TCP');
    await flushPromises();
    const first = h.transport.flows.get('flow-1');
    expect(tx.flow?.flow).toBe(first);
    expect(h.layer.activeByFlow()).toEqual(new Map([[first, 1]]));
    const result = await tx.resend(destination('TCP', { port: 5070 }));
    const second = h.transport.flows.get('flow-2');
    expect(result.flow).toBe(second);
    const invites = h.transport.requests('INVITE');
    expect(invites).toHaveLength(2);
    expect(invites[1]).toBe(invites[0]); // unchanged: same branch, same CSeq
    expect(tx.flow?.flow).toBe(second);
    expect(h.layer.activeByFlow()).toEqual(new Map([[second, 1]]));
    deliver(response(tx.request, 180), 'TCP');
    expect(h.layer.activeByFlow()).toEqual(new Map([[second, 1]]));
    deliver(response(tx.request, 200), 'TCP');
    expect(h.layer.activeByFlow()).toEqual(new Map());
    await expect(tx.resend()).rejects.toMatchObject({ code: 'TRANSACTION_STATE' });
    expect(user.finals).toHaveLength(1);
    h.clock.advance(32_000);
  });

  it('resend() that fails rejects with the TransportError after the user got a local 503', async () => {
    h = setup();
    const { tx, user } = invite('TCP');
    await flushPromises();
    h.transport.failNext({ code: 'ETIMEDOUT' });
    await expect(tx.resend()).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(user.finals.map((f) => [f.res.status, f.info.local])).toEqual([[503, 'transport-error']]);
    expect(tx.state).toBe('Terminated');
  });

  it('the ACK for a non-2xx goes out on the flow the INVITE used', async () => {
    h = setup();
    const { tx } = invite('TCP');
    await flushPromises();
    deliver(response(tx.request, 480), 'TCP');
    const ack = h.transport.sent.at(-1);
    expect(ack?.kind === 'request' && ack.dest.flow?.id).toBe('flow-1');
  });

  it('after noteCancelSent() a final response must come within 64*T1, else a local 408 (§9.1)', () => {
    h = setup();
    const { tx, user } = invite('TCP');
    deliver(response(tx.request, 180), 'TCP');
    h.clock.advance(60_000); // ringing: no transaction timeout in Proceeding
    tx.noteCancelSent();
    expect(tx.activeTimers).toEqual(['Cancel']);
    h.clock.advance(32_000);
    expect(user.finals.map((f) => [f.res.status, f.info])).toEqual([[408, { local: 'timeout', timer: 'Cancel' }]]);
    expect(tx.state).toBe('Terminated');
  });

  it('noteCancelSent() is harmless when the 487 arrives in time', () => {
    h = setup();
    const { tx, user } = invite('TCP');
    deliver(response(tx.request, 180), 'TCP');
    tx.noteCancelSent();
    deliver(response(tx.request, 487), 'TCP');
    expect(user.finals.map((f) => f.res.status)).toEqual([487]);
    expect(tx.state).toBe('Terminated');
  });

  it('a user callback that throws does not break the state machine', () => {
    h = setup();
    const tx = h.layer.sendRequest(request(), destination('TCP'), {
      onFinal: () => {
        throw new Error('user bug');
      },
    });
    deliver(response(tx.request, 486), 'TCP');
    expect(tx.state).toBe('Terminated');
  });
});
