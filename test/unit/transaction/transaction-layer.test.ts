import { afterEach, describe, expect, it } from 'vitest';
import { getHeader, type SipRequest } from '../../../src/sip/message.js';
import { topBranch } from '../../../src/sip/via.js';
import type { TransactionLayerEvents } from '../../../src/transaction/transaction-events.js';
import type { Flow } from '../../../src/transport/flow.js';
import { destination, request, response, source } from '../../support/sip-builders.js';
import { flushPromises } from '../../support/fake-transport.js';
import { expectNoLeftovers, recordingUser, setup, type Harness } from './harness.js';

let h: Harness;

afterEach(() => {
  expectNoLeftovers(h);
});

function receive(req: SipRequest, transport: 'UDP' | 'TCP' = 'UDP'): void {
  h.layer.receive({ message: req, source: source(transport) });
}

describe('TransactionLayer: matching requests (§17.2.3)', () => {
  it('matches by branch, sent-by and method: another sent-by or method is another transaction', () => {
    h = setup();
    receive(request({ method: 'OPTIONS' }));
    receive(request({ method: 'OPTIONS' }));
    receive(request({ method: 'OPTIONS', sentBy: '192.0.2.99:5060' }));
    receive(request({ method: 'INFO', cseqMethod: 'INFO' }));
    expect(h.tu.requests).toHaveLength(3);
    expect(h.layer.stats().retransmissionsAbsorbed).toBe(1);
    for (const { tx } of h.tu.requests) tx.respond(response(tx.request, 200));
    h.clock.advance(32_000);
  });

  it('treats an absent sent-by port as the default port and the host case-insensitively', () => {
    h = setup();
    receive(request({ method: 'OPTIONS', sentBy: 'PC.example.com' }));
    receive(request({ method: 'OPTIONS', sentBy: 'pc.example.com:5060' }));
    expect(h.tu.requests).toHaveLength(1);
    h.tu.requests[0]!.tx.respond(response(h.tu.requests[0]!.req, 200));
    h.clock.advance(32_000);
  });

  it('drops and counts a request whose Via cannot be read', () => {
    h = setup();
    const events: TransactionLayerEvents['messageDropped'][] = [];
    h.layer.events.on('messageDropped', (e) => events.push(e));
    const bad = request({ method: 'OPTIONS' });
    bad.headers = bad.headers.filter((x) => x.name !== 'Via');
    receive(bad);
    expect(h.tu.requests).toHaveLength(0);
    expect(h.layer.stats().messagesDropped).toBe(1);
    expect(events[0]?.reason).toMatch(/malformed request/);
  });
});

describe('TransactionLayer: CANCEL (§9.2)', () => {
  it('gives the CANCEL its own server transaction and tells the TU which INVITE transaction it cancels', () => {
    h = setup({
      on: {
        onCancel: (cancelTx, inviteTx) => {
          cancelTx.respond(response(cancelTx.request, 200));
          inviteTx?.respond(response(inviteTx.request, 487));
        },
      },
    });
    receive(request({ method: 'INVITE' }));
    const inviteTx = h.tu.requests[0]!.tx;
    receive(request({ method: 'CANCEL' }));
    expect(h.tu.requests).toHaveLength(1);
    expect(h.tu.cancels).toHaveLength(1);
    const { cancelTx, inviteTx: matched } = h.tu.cancels[0]!;
    expect(matched).toBe(inviteTx);
    expect(cancelTx.kind).toBe('non-invite-server');
    expect(cancelTx.method).toBe('CANCEL');
    expect(inviteTx.state).toBe('Completed');
    receive(request({ method: 'CANCEL' })); // retransmitted CANCEL absorbed by its transaction
    expect(h.tu.cancels).toHaveLength(1);
    expect(h.transport.responses(200)).toHaveLength(2);
    receive(request({ method: 'ACK', toTag: 'to-1' }));
    h.clock.advance(32_000);
  });

  it('a CANCEL that matches no INVITE transaction reaches the TU with undefined', () => {
    h = setup({ on: { onCancel: (cancelTx) => cancelTx.respond(response(cancelTx.request, 481)) } });
    receive(request({ method: 'CANCEL', branch: 'z9hG4bK-nothing' }));
    expect(h.tu.cancels.map((c) => c.inviteTx)).toEqual([undefined]);
    h.clock.advance(32_000);
  });

  it('a CANCEL with another sent-by does not match the INVITE', () => {
    h = setup({ on: { onCancel: (cancelTx) => cancelTx.respond(response(cancelTx.request, 481)) } });
    receive(request({ method: 'INVITE' }));
    receive(request({ method: 'CANCEL', sentBy: '198.51.100.7:5060' }));
    expect(h.tu.cancels.map((c) => c.inviteTx)).toEqual([undefined]);
    const inv = h.tu.requests[0]!.tx;
    inv.respond(response(inv.request, 486));
    receive(request({ method: 'ACK', toTag: 'to-1' }));
    h.clock.advance(32_000);
  });

  it('without onCancel a CANCEL goes to onRequest like any request', () => {
    h = setup({ without: ['onCancel'] });
    receive(request({ method: 'CANCEL' }));
    expect(h.tu.requests.map((r) => r.req.method)).toEqual(['CANCEL']);
    const tx = h.tu.requests[0]!.tx;
    tx.respond(response(tx.request, 481));
    h.clock.advance(32_000);
  });
});

describe('TransactionLayer: responses (§17.1.3) and stray responses', () => {
  it('passes a response matching no client transaction to onStrayResponse, counts it and emits an event', () => {
    h = setup();
    const events: TransactionLayerEvents['strayResponse'][] = [];
    h.layer.events.on('strayResponse', (e) => events.push(e));
    h.layer.receive({ message: response(request({ branch: 'z9hG4bK-unknown' }), 200), source: source() });
    const noBranch = response(request({ branch: null }), 180);
    h.layer.receive({ message: noBranch, source: source() });
    expect(h.tu.strays.map((r) => r.status)).toEqual([200, 180]);
    expect(h.layer.stats().strayResponses).toBe(2);
    expect(events.map((e) => [e.status, e.method])).toEqual([[200, 'INVITE'], [180, 'INVITE']]);
  });

  it('a response with the right branch but another CSeq method does not match', () => {
    h = setup();
    const user = recordingUser();
    const tx = h.layer.sendRequest(request({ method: 'OPTIONS' }), destination('TCP'), user);
    const wrong = response(tx.request, 200);
    wrong.headers = wrong.headers.map((x) => (x.name === 'CSeq' ? { name: 'CSeq', value: '1 INFO' } : x));
    h.layer.receive({ message: wrong, source: source('TCP') });
    expect(user.finals).toHaveLength(0);
    expect(h.tu.strays).toHaveLength(1);
    h.layer.receive({ message: response(tx.request, 200), source: source('TCP') });
    expect(user.finals).toHaveLength(1);
  });
});

describe('TransactionLayer: RFC 2543 requests without the magic cookie (§17.2.3)', () => {
  const old = (over: Parameters<typeof request>[0] = {}): SipRequest => request({ branch: null, ...over });

  it('matches retransmissions by Request-URI, tags, Call-ID, CSeq and top Via', () => {
    h = setup();
    receive(old({ method: 'INVITE' }));
    receive(old({ method: 'INVITE' }));
    receive(old({ method: 'INVITE', branch: '1234-not-a-cookie' })); // another top Via
    receive(old({ method: 'INVITE', cseq: 2 }));
    receive(old({ method: 'INVITE', fromTag: 'other' }));
    receive(old({ method: 'INVITE', uri: 'sip:carol@example.com' }));
    expect(h.tu.requests).toHaveLength(5);
    expect(h.layer.stats().retransmissionsAbsorbed).toBe(1);
    for (const { tx } of h.tu.requests) tx.respond(response(tx.request, 200));
    h.clock.advance(32_000);
  });

  it('an ACK for a non-2xx matches when its To tag is the one the transaction sent, and is absorbed', () => {
    h = setup();
    receive(old({ method: 'INVITE' }));
    const tx = h.tu.requests[0]!.tx;
    tx.respond(response(tx.request, 486, 'srv-tag'));
    receive(old({ method: 'ACK', toTag: 'wrong-tag' }));
    expect(h.tu.acks.map((a) => a.inviteTx)).toEqual([undefined]);
    expect(tx.state).toBe('Completed');
    receive(old({ method: 'ACK', toTag: 'srv-tag' }));
    expect(tx.state).toBe('Confirmed');
    expect(h.tu.acks).toHaveLength(1);
    h.clock.advance(5000);
  });

  it('an ACK for a 2xx matches the transaction in Accepted and is passed to the TU (RFC 6026)', () => {
    h = setup();
    receive(old({ method: 'INVITE' }));
    const tx = h.tu.requests[0]!.tx;
    tx.respond(response(tx.request, 200, 'srv-tag'));
    receive(old({ method: 'ACK', toTag: 'srv-tag' }));
    expect(h.tu.acks).toHaveLength(1);
    expect(h.tu.acks[0]?.inviteTx).toBe(tx);
    h.clock.advance(32_000);
  });

  it('a CANCEL matches the INVITE by the same fields', () => {
    h = setup({ on: { onCancel: (c) => c.respond(response(c.request, 200)) } });
    receive(old({ method: 'INVITE' }));
    const tx = h.tu.requests[0]!.tx;
    receive(old({ method: 'CANCEL' }));
    expect(h.tu.cancels[0]?.inviteTx).toBe(tx);
    tx.respond(response(tx.request, 487));
    receive(old({ method: 'ACK', toTag: 'to-1' }));
    h.clock.advance(32_000);
  });
});

describe('TransactionLayer: sending requests', () => {
  it('gives a request without an RFC 3261 branch a new one on its own copy', () => {
    h = setup();
    const req = request({ method: 'OPTIONS', branch: null });
    const tx = h.layer.sendRequest(req, destination('TCP'), recordingUser());
    expect(topBranch(tx.request)).toMatch(/^z9hG4bK./);
    expect(topBranch(req)).toBeUndefined();
    expect(tx.id).toBe(`${topBranch(tx.request)}|OPTIONS`);
    expect(h.transport.requests()[0]).toBe(tx.request);
    h.layer.receive({ message: response(tx.request, 200), source: source('TCP') });
  });

  it('refuses an ACK, a CSeq method that differs, a malformed top Via, and a branch already in use', () => {
    h = setup();
    expect(() => h.layer.sendRequest(request({ method: 'ACK' }), destination(), recordingUser())).toThrow(
      expect.objectContaining({ code: 'TRANSACTION_BAD_REQUEST' }),
    );
    expect(() => h.layer.sendRequest(request({ method: 'BYE', cseqMethod: 'INVITE' }), destination(), recordingUser())).toThrow(
      expect.objectContaining({ code: 'TRANSACTION_BAD_REQUEST' }),
    );
    const badVia = request({ method: 'BYE' });
    badVia.headers = badVia.headers.map((x) => (x.name === 'Via' ? { name: 'Via', value: 'SIP/2.0/UDP' } : x));
    expect(() => h.layer.sendRequest(badVia, destination(), recordingUser())).toThrow(expect.objectContaining({ code: 'TRANSACTION_BAD_REQUEST' }));
    const tx = h.layer.sendRequest(request({ method: 'BYE' }), destination('TCP'), recordingUser());
    expect(() => h.layer.sendRequest(request({ method: 'BYE' }), destination('TCP'), recordingUser())).toThrow(
      expect.objectContaining({ code: 'TRANSACTION_EXISTS' }),
    );
    h.layer.receive({ message: response(tx.request, 200), source: source('TCP') });
  });
});

describe('TransactionLayer: the top Via', () => {
  it('writes it once, when the transaction is made: transport, this server\'s sent-by, rport, and the branch (given, or new); a request without one gets one', async () => {
    h = setup();
    const tx = h.layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-given', transport: 'UDP' }), destination('TCP'), recordingUser());
    expect(getHeader(tx.request, 'via')).toBe('SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-given;rport');
    const bare = request({ method: 'OPTIONS' });
    bare.headers = bare.headers.filter((x) => x.name !== 'Via');
    const fresh = h.layer.sendRequest(bare, destination('TLS'), recordingUser());
    expect(getHeader(fresh.request, 'via')).toMatch(/^SIP\/2\.0\/TLS 127\.0\.0\.1:5061;branch=z9hG4bK[0-9a-f]+;rport$/);
    await flushPromises();
    await tx.resend();
    // A re-send goes out as it was: the very request, Via and all.
    expect(h.transport.requests('OPTIONS').filter((r) => r === tx.request)).toHaveLength(2);
    h.layer.close();
  });
});

describe('TransactionLayer: client transactions by connection', () => {
  it('counts those waiting on each connection: not those over UDP, nor those ended', async () => {
    h = setup();
    const flowA = h.transport.newFlow({ transport: 'TCP', address: '192.0.2.2', port: 5060 });
    const flowB = h.transport.newFlow({ transport: 'TCP', address: '192.0.2.3', port: 5060 });
    const onFlow = (flow: Flow, branch: string) => h.layer.sendRequest(request({ method: 'OPTIONS', branch, transport: 'TCP' }), destination('TCP', { flow }), recordingUser());
    const a = onFlow(flowA, 'z9hG4bK-a1');
    onFlow(flowA, 'z9hG4bK-a2');
    onFlow(flowB, 'z9hG4bK-b1');
    const udp = h.layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-u1' }), destination('UDP'), recordingUser());
    await flushPromises();
    expect(h.layer.activeByFlow()).toEqual(new Map([[flowA, 2], [flowB, 1]]));
    h.layer.receive({ message: response(a.request, 200), source: source('TCP') });
    expect(h.layer.activeByFlow()).toEqual(new Map([[flowA, 1], [flowB, 1]]));
    h.clock.advance(32_000); // the rest time out (timer F)
    expect(h.layer.activeByFlow()).toEqual(new Map());
    expect(udp.active).toBe(false);
  });
});

describe('TransactionLayer: events, stats and shutdown', () => {
  it('emits created, stateChanged and terminated with counts, and stats() counts by kind and state', () => {
    h = setup();
    const seen: string[] = [];
    h.layer.events.on('created', (e) => seen.push(`created ${e.kind} ${e.method} ${e.state} active=${e.active[e.kind]}`));
    h.layer.events.on('stateChanged', (e) => seen.push(`${e.kind} ${e.from}->${e.to}`));
    h.layer.events.on('terminated', (e) => seen.push(`terminated ${e.kind} ${e.reason} ${e.durationMs}ms active=${e.active[e.kind]}`));
    const user = recordingUser();
    const client = h.layer.sendRequest(request({ method: 'INVITE', transport: 'TCP' }), destination('TCP'), user);
    receive(request({ method: 'OPTIONS', branch: 'z9hG4bK-srv' }));
    expect(h.layer.stats()).toMatchObject({
      active: { 'invite-client': 1, 'non-invite-server': 1, 'invite-server': 0, 'non-invite-client': 0 },
      byState: { 'invite-client': { Calling: 1 }, 'non-invite-server': { Trying: 1 } },
      created: { 'invite-client': 1, 'non-invite-server': 1 },
    });
    h.clock.advance(100);
    h.layer.receive({ message: response(client.request, 486), source: source('TCP') });
    const srv = h.tu.requests[0]!.tx;
    srv.respond(response(srv.request, 200));
    h.clock.advance(32_000);
    expect(seen).toEqual([
      'created invite-client INVITE Calling active=1',
      'created non-invite-server OPTIONS Trying active=1',
      'invite-client Calling->Completed',
      'invite-client Completed->Terminated',
      'terminated invite-client completed 100ms active=0',
      'non-invite-server Trying->Completed',
      'non-invite-server Completed->Terminated',
      'terminated non-invite-server completed 32100ms active=0',
    ]);
    expect(h.layer.stats().terminated.completed).toBe(2);
  });

  it('close() ends every transaction, leaves no timer behind and ignores later input', () => {
    h = setup();
    const user = recordingUser();
    h.layer.sendRequest(request({ method: 'INVITE' }), destination(), user);
    h.layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-o' }), destination(), user);
    receive(request({ method: 'INVITE', branch: 'z9hG4bK-in' }));
    expect(h.clock.pendingCount).toBeGreaterThan(0);
    h.layer.close();
    expect(h.clock.pendingCount).toBe(0);
    expect(h.layer.stats().terminated.closed).toBe(3);
    expect(user.finals).toHaveLength(0);
    receive(request({ method: 'OPTIONS', branch: 'z9hG4bK-late' }));
    expect(h.tu.requests).toHaveLength(1);
    expect(() => h.layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-late' }), destination(), user)).toThrow(
      expect.objectContaining({ code: 'TRANSACTION_STATE' }),
    );
  });

  it('a TU that throws in onRequest does not break the layer', () => {
    h = setup({
      on: {
        onRequest: () => {
          throw new Error('TU bug');
        },
      },
    });
    receive(request({ method: 'OPTIONS' }));
    const tx = h.tu.requests[0]!.tx;
    expect(tx.state).toBe('Trying');
    tx.respond(response(tx.request, 500));
    expect(getHeader(h.transport.responses()[0]!, 'call-id')).toBe('call-1@192.0.2.1');
    h.clock.advance(32_000);
  });
});
