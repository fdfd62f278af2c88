import { afterEach, describe, expect, it } from 'vitest';
import type { ServerTransaction } from '../../../src/transaction/types.js';
import { flushPromises } from '../../support/fake-transport.js';
import { flowNamed, request, response, source } from '../../support/sip-builders.js';
import { expectNoLeftovers, setup, type Harness } from './harness.js';

let h: Harness;

afterEach(() => {
  expectNoLeftovers(h);
});

function incoming(transport: 'UDP' | 'TCP' = 'UDP', method = 'OPTIONS'): ServerTransaction | undefined {
  const before = h.tu.requests.length;
  h.layer.receive({ message: request({ method, transport }), source: source(transport) });
  return h.tu.requests.length > before ? h.tu.requests.at(-1)?.tx : undefined;
}

describe('non-INVITE server transaction', () => {
  it('starts in Trying with no timer; retransmissions there are discarded and do not reach the TU', () => {
    h = setup();
    const tx = incoming();
    expect(tx?.state).toBe('Trying');
    expect(tx?.activeTimers).toEqual([]);
    expect(incoming()).toBeUndefined();
    expect(h.transport.responses()).toHaveLength(0);
    expect(h.layer.stats().retransmissionsAbsorbed).toBe(1);
    tx?.respond(response(tx.request, 200));
    h.clock.advance(32_000);
  });

  it('a provisional moves to Proceeding; a retransmitted request gets it again', () => {
    h = setup();
    const tx = incoming('UDP', 'REGISTER')!;
    tx.respond(response(tx.request, 100));
    expect(tx.state).toBe('Proceeding');
    incoming('UDP', 'REGISTER');
    expect(h.transport.responses().map((r) => r.status)).toEqual([100, 100]);
    tx.respond(response(tx.request, 200));
    h.clock.advance(32_000);
  });

  it('timer J keeps Completed for 64*T1 over UDP, absorbing retransmissions by resending the final', () => {
    h = setup();
    const tx = incoming()!;
    tx.respond(response(tx.request, 200));
    expect(tx.state).toBe('Completed');
    expect(tx.activeTimers).toEqual(['J']);
    h.clock.advance(10_000);
    expect(incoming()).toBeUndefined();
    expect(incoming()).toBeUndefined();
    expect(h.transport.responses(200)).toHaveLength(3);
    expect(h.tu.requests).toHaveLength(1);
    h.clock.advance(21_999);
    expect(tx.state).toBe('Completed');
    h.clock.advance(1);
    expect(tx.state).toBe('Terminated');
    // After J the same request is a new transaction.
    const again = incoming()!;
    expect(again).not.toBe(tx);
    again.respond(response(again.request, 200));
    h.clock.advance(32_000);
  });

  it('in Completed over UDP it keeps only what the final response repeats: no body, only Via/From/To/Call-ID/CSeq, same retransmission', () => {
    h = setup();
    const before = h.tu.requests.length;
    const big = request({ method: 'MESSAGE', transport: 'UDP' });
    big.headers.push({ name: 'Content-Type', value: 'text/plain' }, { name: 'Subject', value: 'x'.repeat(5000) });
    big.body = Buffer.alloc(60_000, 0x41);
    h.layer.receive({ message: big, source: source('UDP') });
    const tx = h.tu.requests.length > before ? h.tu.requests.at(-1)?.tx : undefined;
    expect(tx?.request.body.length).toBe(60_000);
    tx?.respond(response(tx.request, 200));
    expect(tx?.request.body.length).toBe(0);
    expect(tx?.request.headers.map((x) => x.name.toLowerCase()).sort()).toEqual(['call-id', 'cseq', 'from', 'to', 'via']);
    h.layer.receive({ message: big, source: source('UDP') });
    const [first, again] = h.transport.responses(200);
    expect(again).toEqual(first);
    h.clock.advance(32_000);
  });

  it('timer J is 0 over TCP: the final response ends the transaction', () => {
    h = setup();
    const tx = incoming('TCP')!;
    tx.respond(response(tx.request, 200));
    expect(tx.state).toBe('Terminated');
    expect(tx.lastResponse?.status).toBe(200);
  });

  it('refuses a second final response with TRANSACTION_STATE', () => {
    h = setup();
    const tx = incoming()!;
    tx.respond(response(tx.request, 404));
    expect(() => tx.respond(response(tx.request, 200))).toThrow(expect.objectContaining({ code: 'TRANSACTION_STATE' }));
    expect(() => tx.respond(response(tx.request, 180))).toThrow(expect.objectContaining({ code: 'TRANSACTION_STATE' }));
    h.clock.advance(32_000);
  });

  it('a retransmission on another flow moves the responses to that flow', () => {
    h = setup();
    const tx = incoming('TCP')!;
    const other = flowNamed('tcp-in-2', 'TCP', 40000);
    h.layer.receive({ message: request({ method: 'OPTIONS', transport: 'TCP' }), source: source('TCP', { flow: other, port: 40000 }) });
    expect(tx.source.flow).toBe(other);
    tx.respond(response(tx.request, 200));
    const sent = h.transport.sent.at(-1);
    expect(sent?.kind === 'response' && sent.source.flow).toBe(other);
  });

  it('a transport error on the final response is reported to the TU and ends the transaction', async () => {
    h = setup();
    const tx = incoming()!;
    h.transport.failNext({ code: 'ENETUNREACH' });
    tx.respond(response(tx.request, 200));
    await flushPromises();
    expect(tx.state).toBe('Terminated');
    expect(h.tu.failures.map((f) => [f.tx, f.failure.reason])).toEqual([[tx, 'transport-error']]);
    expect(h.layer.stats().terminated['transport-error']).toBe(1);
  });
});
