import { afterEach, describe, expect, it } from 'vitest';
import { getHeader, type SipRequest } from '../../../src/sip/message.js';
import type { ServerTransaction } from '../../../src/transaction/types.js';
import { flushPromises } from '../../support/fake-transport.js';
import { request, response, source } from '../../support/sip-builders.js';
import { expectNoLeftovers, sendTimes, setup, type Harness } from './harness.js';

let h: Harness;

afterEach(() => {
  expectNoLeftovers(h);
});

function incoming(transport: 'UDP' | 'TCP' = 'UDP', req: SipRequest = request({ method: 'INVITE', transport })): ServerTransaction {
  h.layer.receive({ message: req, source: source(transport) });
  const last = h.tu.requests.at(-1);
  if (!last) throw new Error('no request reached the TU');
  return last.tx;
}

function ack(transport: 'UDP' | 'TCP' = 'UDP', branch = 'z9hG4bK-test-1'): void {
  h.layer.receive({ message: request({ method: 'ACK', transport, branch, toTag: 'to-1' }), source: source(transport) });
}

describe('INVITE server transaction', () => {
  it('sends 100 Trying itself when the TU has not answered within 200 ms (§17.2.1)', () => {
    h = setup();
    const tx = incoming();
    expect(tx.state).toBe('Proceeding');
    h.clock.advance(199);
    expect(h.transport.responses()).toHaveLength(0);
    h.clock.advance(1);
    expect(h.transport.responses().map((r) => r.status)).toEqual([100]);
    expect(getHeader(h.transport.responses()[0]!, 'to')).toBe('<sip:bob@example.com>');
    tx.respond(response(tx.request, 603));
    ack();
    h.clock.advance(5000);
  });

  it('sends no 100 Trying when the TU answers within 200 ms', () => {
    h = setup({ on: { onRequest: (tx, req) => tx.respond(response(req, 180)) } });
    const tx = incoming();
    h.clock.advance(1000);
    expect(h.transport.responses().map((r) => r.status)).toEqual([180]);
    tx.respond(response(tx.request, 486));
    ack();
    h.clock.advance(5000);
  });

  it('a retransmitted INVITE in Proceeding gets the last provisional again and does not reach the TU', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 180));
    incoming();
    h.layer.receive({ message: request({ method: 'INVITE' }), source: source('UDP') });
    expect(h.tu.requests).toHaveLength(1);
    expect(h.transport.responses().map((r) => r.status)).toEqual([180, 180, 180]);
    expect(h.layer.stats().retransmissionsAbsorbed).toBe(2);
    tx.respond(response(tx.request, 486));
    ack();
    h.clock.advance(5000);
  });

  it('a retransmitted INVITE before any response gets 100 Trying at once', () => {
    h = setup();
    const tx = incoming();
    h.layer.receive({ message: request({ method: 'INVITE' }), source: source('UDP') });
    expect(h.transport.responses().map((r) => r.status)).toEqual([100]);
    h.clock.advance(1000);
    expect(h.transport.responses()).toHaveLength(1);
    tx.respond(response(tx.request, 486));
    ack();
    h.clock.advance(5000);
  });

  it('timer G retransmits a 300-699 final over UDP at T1, 2T1 … capped at T2, until timer H', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 486));
    expect(tx.state).toBe('Completed');
    const times = sendTimes(h, 32_000, () => h.transport.responses(486).length);
    expect(times).toEqual([500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]);
  });

  it('timer G does not run over TCP; timer H still waits 64*T1 for the ACK', () => {
    h = setup();
    const tx = incoming('TCP');
    tx.respond(response(tx.request, 486));
    expect(tx.activeTimers).toEqual(['H']);
    h.clock.advance(32_000);
    expect(h.transport.responses(486)).toHaveLength(1);
    expect(tx.state).toBe('Terminated');
  });

  it('timer H ends Completed without an ACK and tells the TU (ack-timeout)', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 404));
    h.clock.advance(31_999);
    expect(h.tu.failures).toHaveLength(0);
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
    expect(h.tu.failures).toEqual([{ tx, failure: { reason: 'ack-timeout', timer: 'H' } }]);
    expect(h.layer.stats().terminated.timeout).toBe(1);
  });

  it('a retransmitted INVITE in Completed gets the final response again', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 486));
    incoming();
    expect(h.transport.responses(486)).toHaveLength(2);
    expect(h.tu.requests).toHaveLength(1);
    ack();
    h.clock.advance(5000);
  });

  it('the ACK for a non-2xx is absorbed: Confirmed, timers G and H stop, timer I waits T4 over UDP', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 486));
    h.clock.advance(500);
    ack();
    expect(tx.state).toBe('Confirmed');
    expect(tx.activeTimers).toEqual(['I']);
    ack(); // ACK retransmission absorbed in Confirmed
    expect(h.tu.acks).toHaveLength(0);
    h.clock.advance(4999);
    expect(tx.state).toBe('Confirmed');
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
    expect(h.transport.responses(486)).toHaveLength(2);
  });

  it('timer I is 0 over TCP: the ACK ends the transaction', () => {
    h = setup();
    const tx = incoming('TCP');
    tx.respond(response(tx.request, 486));
    ack('TCP');
    expect(tx.state).toBe('Terminated');
  });

  it('a 2xx moves to Accepted (RFC 6026); timer L absorbs INVITE retransmissions, the TU retransmits the 2xx itself', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 200));
    expect(tx.state).toBe('Accepted');
    expect(tx.activeTimers).toEqual(['L']);
    h.clock.advance(500);
    expect(h.transport.responses(200)).toHaveLength(1); // no retransmission by the transaction
    incoming();
    expect(h.transport.responses(200)).toHaveLength(1); // INVITE retransmission absorbed silently
    expect(h.tu.requests).toHaveLength(1);
    tx.respond(response(tx.request, 200)); // the TU's retransmission
    expect(h.transport.responses(200)).toHaveLength(2);
    h.clock.advance(31_499);
    expect(tx.state).toBe('Accepted');
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
    tx.respond(response(tx.request, 200)); // a late TU retransmission is still sent
    expect(h.transport.responses(200)).toHaveLength(3);
  });

  it('timer L runs over TCP too (64*T1 on every transport)', () => {
    h = setup();
    const tx = incoming('TCP');
    tx.respond(response(tx.request, 200));
    h.clock.advance(31_999);
    expect(tx.state).toBe('Accepted');
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
  });

  it('an ACK matching an INVITE server transaction in Accepted is passed to the TU with it', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 200));
    ack(); // same branch as the INVITE: matches the transaction
    expect(h.tu.acks).toHaveLength(1);
    expect(h.tu.acks[0]?.inviteTx).toBe(tx);
    expect(tx.state).toBe('Accepted');
    h.clock.advance(32_000);
  });

  it('the ACK for a 2xx with its own branch matches no transaction and goes to the TU', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 200));
    ack('UDP', 'z9hG4bK-ack-for-2xx');
    expect(h.tu.acks.map((a) => a.inviteTx)).toEqual([undefined]);
    h.clock.advance(32_000);
  });

  it('refuses responses the state forbids with TRANSACTION_STATE', () => {
    h = setup();
    const tx = incoming();
    tx.respond(response(tx.request, 486));
    expect(() => tx.respond(response(tx.request, 180))).toThrow(expect.objectContaining({ code: 'TRANSACTION_STATE' }));
    expect(() => tx.respond(response(tx.request, 200))).toThrow(expect.objectContaining({ code: 'TRANSACTION_STATE' }));
    ack();
    h.clock.advance(5000);
    const tx2 = incoming('UDP', request({ method: 'INVITE', branch: 'z9hG4bK-two' }));
    tx2.respond(response(tx2.request, 200));
    expect(() => tx2.respond(response(tx2.request, 486))).toThrow(expect.objectContaining({ code: 'TRANSACTION_STATE' }));
    expect(() => tx2.respond(response(tx2.request, 99))).toThrow(expect.objectContaining({ code: 'TRANSACTION_BAD_REQUEST' }));
    h.clock.advance(32_000);
  });

  it('a transport error on a response in Proceeding ends the transaction and tells the TU (§17.2.4)', async () => {
    h = setup();
    const tx = incoming('TCP');
    h.transport.failNext({ code: 'EPIPE' });
    tx.respond(response(tx.request, 180));
    await flushPromises();
    expect(tx.state).toBe('Terminated');
    expect(h.tu.failures).toHaveLength(1);
    expect(h.tu.failures[0]?.failure).toMatchObject({ reason: 'transport-error', error: { code: 'EPIPE' }, response: { status: 180 } });
  });

  it('a transport error on the 2xx in Accepted is reported but the transaction stays to absorb retransmissions', async () => {
    h = setup();
    const tx = incoming();
    h.transport.failNext();
    tx.respond(response(tx.request, 200));
    await flushPromises();
    expect(h.tu.failures.map((f) => f.failure.reason)).toEqual(['transport-error']);
    expect(tx.state).toBe('Accepted');
    incoming();
    expect(h.tu.requests).toHaveLength(1);
    h.clock.advance(32_000);
  });
});
