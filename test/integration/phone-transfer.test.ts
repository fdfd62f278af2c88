import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipMessage } from '../../src/sip/message.js';
import { getJson, type ApiEvent } from '../support/api-client.js';
import { finishPeers } from '../support/call-peers.js';
import { serverFixture } from '../support/server-fixture.js';
import type { RunningServer } from '../support/server-process.js';
import { SipPeer, type IncomingCall, type PeerCall } from '../support/sip-peer.js';

/*
 * Blind transfer started by a phone (SPEC §10; RFC 3515, RFC 5589 §6): the transferor sends
 * REFER in its dialog with the server, which carries the transfer out itself — 202, NOTIFYs
 * with the new call's progress as message/sipfrag, the transferee connected to the target by
 * re-INVITE — whatever the transferee supports. SipPeers play the phones: A calls B, B
 * transfers A to C (C over TCP: another transport than A and B).
 */

function sdp(owner: string, port: number): string {
  return ['v=0', `o=${owner} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
}
const A_SDP = sdp('a', 40000);
const B_SDP = sdp('b', 42000);
const C_SDP = sdp('c', 44000);

const one = (m: SipMessage, name: string): string => getHeaderValues(m, name)[0] ?? '';
const text = (m: SipMessage): string => m.body.toString('utf8');

describe('blind transfer from a phone (REFER carried out by the server)', () => {
  const fx = serverFixture({
    dns: {
      '5001': { type: 'extension', contact: '*' },
      '5002': { type: 'extension', contact: '*' },
      '5003': { type: 'extension', contact: '*' },
    },
  });
  let server: RunningServer;
  let a: SipPeer;
  let b: SipPeer;
  let c: SipPeer;

  const event = (name: string, match?: (e: ApiEvent) => boolean): Promise<ApiEvent> => fx.event(name, match);

  /** A calls B, B answers: the established call as each side sees it. */
  async function establish(): Promise<{ atA: PeerCall; atB: IncomingCall; callId: string }> {
    const atA = a.call(server.port, '5002', { sdp: A_SDP });
    const atB = await b.nextIncomingCall();
    await atB.answer(B_SDP);
    expect((await atA.final()).status).toBe(200);
    const established = await event('EventEstablished', (e) => e.to === '5002');
    return { atA, atB, callId: String(established.callId) };
  }

  const refer = (atB: IncomingCall, target: string): Promise<{ status: number }> =>
    atB.request('REFER', { headers: [{ name: 'Refer-To', value: target }, { name: 'Referred-By', value: '<sip:5002@127.0.0.1>' }] });

  beforeAll(() => {
    server = fx.server;
  });

  beforeEach(async () => {
    fx.mark();
    a = await SipPeer.start({ transport: 'UDP', user: '5001' });
    b = await SipPeer.start({ transport: 'UDP', user: '5002' });
    c = await SipPeer.start({ transport: 'TCP', user: '5003' });
    for (const p of [a, b, c]) await p.register(server.port);
  });

  afterEach(async () => {
    await finishPeers(server, [a, b, c]);
  });

  it('REFER → 202, NOTIFY 100 then 200 (sipfrag); the transferee is connected to the target by re-INVITE; the old call ends as transferred', async () => {
    const { atA, atB, callId } = await establish();
    atA.answerWith('INVITE', { status: 200, body: A_SDP });
    expect((await refer(atB, '<sip:5003@127.0.0.1>')).status).toBe(202);

    const trying = await atB.nextRequest('NOTIFY');
    expect(one(trying.request, 'event')).toBe('refer');
    expect(one(trying.request, 'content-type')).toBe('message/sipfrag;version=2.0');
    expect(text(trying.request)).toBe('SIP/2.0 100 Trying\r\n');
    expect(one(trying.request, 'subscription-state')).toMatch(/^active/);

    // The target gets an offerless INVITE from the transferee's DN, with its own AOR in To.
    const atC = await c.nextIncomingCall();
    expect(atC.invite.body.length).toBe(0);
    expect(one(atC.invite, 'from')).toMatch(/<sip:5001@/);
    expect(one(atC.invite, 'to')).toBe('<sip:5003@127.0.0.1>');
    const ackAtC = atC.answer(C_SDP);
    // The transferee is re-INVITEd in its own dialog with the target's session; its answer reaches C in the ACK.
    const reinvite = await atA.nextRequest('INVITE');
    expect(text(reinvite.request)).toContain('m=audio 44000');
    expect(one(reinvite.request, 'call-id')).toBe(one(atA.invite, 'call-id'));
    expect(text(await ackAtC)).toContain('m=audio 40000');

    const done = await atB.nextRequest('NOTIFY');
    expect(text(done.request)).toBe('SIP/2.0 200 OK\r\n');
    expect(one(done.request, 'subscription-state')).toMatch(/^terminated/);
    // The transferor hangs up once told (RFC 5589); the old call ends, released by it, as transferred.
    expect((await atB.bye()).status).toBe(200);
    const released = await event('EventReleased', (e) => e.callId === callId);
    const established = await event('EventEstablished', (e) => e.to === '5003');
    expect(released).toMatchObject({ cause: 'normal', releasedBy: 'callee', dn: '5002', transferredTo: '5003', newCallId: established.callId });
    expect(established).toMatchObject({ from: '5001', dn: '5003' });
    expect((await getJson(server.api, `/calls/${callId}`)).body).toMatchObject({ state: 'released', transferredTo: '5003', newCallId: established.callId });
    expect((await getJson(server.api, `/calls/${String(established.callId)}`)).body).toMatchObject({ state: 'established', from: '5001', to: '5003' });

    // A and C talk; A hangs up and C gets the BYE.
    expect((await atA.bye()).status).toBe(200);
    expect((await atC.byeReceived()).response?.status).toBe(200);
    expect(await event('EventReleased', (e) => e.callId === established.callId)).toMatchObject({ cause: 'normal', releasedBy: 'caller' });
  });

  it('the target is busy: the transferor is told 486, the transferee stays in the call untouched', async () => {
    const { atA, atB, callId } = await establish();
    expect((await refer(atB, '<sip:5003@127.0.0.1;user=phone>')).status).toBe(202);
    await atB.nextRequest('NOTIFY');
    const atC = await c.nextIncomingCall();
    await atC.reject(486);
    const failed = await atB.nextRequest('NOTIFY');
    expect(text(failed.request)).toBe('SIP/2.0 486 Busy Here\r\n');
    expect(one(failed.request, 'subscription-state')).toMatch(/^terminated/);
    // Nothing reached the transferee; the old call goes on and ends as usual.
    expect(a.received('INVITE').filter((r) => one(r, 'call-id') === one(atA.invite, 'call-id') && one(r, 'to').includes('tag='))).toHaveLength(0);
    expect((await getJson(server.api, `/calls/${callId}`)).body).toMatchObject({ state: 'established' });
    expect((await atB.bye()).status).toBe(200);
    expect((await atA.byeReceived()).response?.status).toBe(200);
    expect(await event('EventReleased', (e) => e.callId === callId)).toMatchObject({ cause: 'normal', releasedBy: 'callee' });
  });

  it('a transferor that hangs up right after 202: the transfer goes on without it', async () => {
    const { atA, atB, callId } = await establish();
    expect((await refer(atB, '<sip:5003@127.0.0.1>')).status).toBe(202);
    expect((await atB.bye()).status).toBe(200);
    expect(await event('EventReleased', (e) => e.callId === callId)).toMatchObject({ cause: 'normal', transferredTo: '5003' });
    const atC = await c.nextIncomingCall();
    const ack = atC.answer(C_SDP);
    await atA.nextRequest('INVITE');
    await ack;
    const established = await event('EventEstablished', (e) => e.to === '5003');
    expect((await atC.bye()).status).toBe(200);
    expect((await atA.byeReceived()).response?.status).toBe(200);
    expect(await event('EventReleased', (e) => e.callId === established.callId)).toMatchObject({ cause: 'normal', releasedBy: 'callee', dn: '5003' });
  });

  it('while a transfer runs a second REFER gets 491; released from the API meanwhile, the transferor hears nothing more of it', async () => {
    const { atA, atB, callId } = await establish();
    expect((await refer(atB, '<sip:5003@127.0.0.1>')).status).toBe(202);
    await atB.nextRequest('NOTIFY');
    const atC = await c.nextIncomingCall();
    atC.ring();
    expect((await refer(atB, '<sip:5003@127.0.0.1>')).status).toBe(491);
    // ReleaseCall on the old call: the transferor gets BYE; the transfer goes on for A.
    expect((await fetch(`${server.api}/calls/${callId}`, { method: 'DELETE' })).status).toBe(200);
    await atB.byeReceived();
    const notifies = b.received('NOTIFY').length;
    const ack = atC.answer(C_SDP);
    await atA.nextRequest('INVITE');
    await ack;
    const established = await event('EventEstablished', (e) => e.to === '5003');
    await new Promise((r) => setTimeout(r, 2500));
    // No NOTIFY and no second BYE for the transferor after it was released.
    expect(b.received('NOTIFY')).toHaveLength(notifies);
    expect(b.received('BYE')).toHaveLength(1);
    expect((await atA.bye()).status).toBe(200);
    await atC.byeReceived();
    await event('EventReleased', (e) => e.callId === established.callId);
  });

  it('a REFER the server cannot carry out gets a final error, and the call goes on', async () => {
    const { atA, atB, callId } = await establish();
    expect(await atB.request('REFER')).toMatchObject({ status: 400, reason: 'Missing Refer-To' });
    expect((await refer(atB, '<sip:7777@127.0.0.1>'))).toMatchObject({ status: 404 });
    expect((await refer(atB, '<sip:5003@127.0.0.1?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>'))).toMatchObject({ status: 501 });
    expect((await getJson(server.api, `/calls/${callId}`)).body).toMatchObject({ state: 'established' });
    expect(b.received('NOTIFY')).toHaveLength(0);
    expect((await atA.bye()).status).toBe(200);
    await atB.byeReceived();
  });
});
