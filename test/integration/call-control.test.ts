import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipMessage, type SipResponse } from '../../src/sip/message.js';
import { parseNameAddr } from '../../src/sip/name-addr.js';
import { getJson, type ApiEvent } from '../support/api-client.js';
import { finishPeers } from '../support/call-peers.js';
import { serverFixture } from '../support/server-fixture.js';
import type { RunningServer } from '../support/server-process.js';
import { SipPeer, type IncomingCall, type PeerCall, type PeerTransportName } from '../support/sip-peer.js';

/*
 * HoldCall, RetrieveCall and SingleStepTransfer on the control API (SPEC §7), against the
 * running server with SipPeers as the phones: what each phone receives on the wire, the HTTP
 * answers, the events and the calls on /calls.
 */

function sdp(owner: string, port: number, version = 1, direction = 'sendrecv'): string {
  return ['v=0', `o=${owner} 7 ${version} IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', `a=${direction}`, ''].join('\r\n');
}

const CALLER_SDP = sdp('caller', 40000);
const CALLEE_SDP = sdp('callee', 50000);
const TARGET_SDP = sdp('target', 60000);
const WITH_REFER = { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY' };
const WITHOUT_REFER = { name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS' };

const one = (m: SipMessage, name: string): string => getHeaderValues(m, name)[0] ?? '';
const text = (m: SipMessage): string => m.body.toString('utf8');

/** The transferee's final NOTIFY of a REFER (RFC 3515 §2.4.5): the new call's outcome as a sipfrag. */
function reportOutcome(call: PeerCall, statusLine: string): Promise<SipResponse> {
  return call.request('NOTIFY', {
    body: `SIP/2.0 ${statusLine}\r\n`,
    contentType: 'message/sipfrag;version=2.0',
    headers: [
      { name: 'Event', value: 'refer' },
      { name: 'Subscription-State', value: 'terminated;reason=noresource' },
    ],
  });
}

async function post(api: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${api}${path}`, {
    method: 'POST',
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe.each(['UDP', 'TCP'] as PeerTransportName[])('call control over %s: hold, retrieve, transfer', (transport) => {
  const base = transport === 'UDP' ? 1100 : 2100;
  const [callerDn, calleeDn, targetDn] = [String(base + 1), String(base + 2), String(base + 3)];
  const fx = serverFixture({ dns: Object.fromEntries([callerDn, calleeDn, targetDn].map((dn) => [dn, { type: 'extension', contact: '*' }])) });
  let server: RunningServer;
  let caller: SipPeer;
  let callee: SipPeer;
  let target: SipPeer;

  const event = (name: string, match?: (e: ApiEvent) => boolean): Promise<ApiEvent> => fx.event(name, match);

  /** caller → callee, answered; the caller's INVITE carries `allow`. */
  async function establish(allow: { name: string; value: string }): Promise<{ call: PeerCall; incoming: IncomingCall; id: string }> {
    const call = caller.call(server.port, calleeDn, { sdp: CALLER_SDP, headers: [allow] });
    const incoming = await callee.nextIncomingCall();
    const ack = incoming.answer(CALLEE_SDP, { headers: [WITHOUT_REFER] });
    expect((await call.final()).status).toBe(200);
    await ack;
    const established = await event('EventEstablished', (e) => e.from === callerDn);
    return { call, incoming, id: String(established.callId) };
  }

  beforeAll(() => {
    server = fx.server;
  });

  beforeEach(async () => {
    fx.mark();
    caller = await SipPeer.start({ transport, user: callerDn });
    callee = await SipPeer.start({ transport, user: calleeDn });
    target = await SipPeer.start({ transport, user: targetDn });
    for (const peer of [caller, callee, target]) await peer.register(server.port);
  });

  afterEach(async () => {
    await finishPeers(server, [caller, callee, target]);
  });

  it('HoldCall: the held party gets a re-INVITE with its session marked inactive (version + 1); RetrieveCall: sendrecv again', async () => {
    const { call, incoming, id } = await establish(WITHOUT_REFER);

    // Default: the callee (the party that took the call) holds the caller.
    const held = await post(server.api, `/calls/${id}/hold`);
    expect(held).toEqual({ status: 200, body: { id, held: true, dn: calleeDn } });
    const reinvite = await call.nextRequest('INVITE');
    // The callee's session as the caller last saw it: o= version 2, one session-level direction.
    expect(text(reinvite.request)).toBe(
      ['v=0', 'o=callee 7 2 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'a=inactive', 'm=audio 50000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n'),
    );
    expect(reinvite.response?.status).toBe(200);
    await reinvite.waitAck();
    expect(await event('EventHeld', (e) => e.callId === id)).toMatchObject({ dn: calleeDn, otherDn: callerDn });
    expect((await getJson<{ held: boolean }>(server.api, `/calls/${id}`)).body.held).toBe(true);
    expect(incoming.inbound.filter((r) => r.request.method === 'INVITE')).toHaveLength(0);

    expect(await post(server.api, `/calls/${id}/hold`)).toEqual({ status: 409, body: { error: 'the call is already held' } });

    const retrieved = await post(server.api, `/calls/${id}/retrieve`, {});
    expect(retrieved).toEqual({ status: 200, body: { id, held: false, dn: calleeDn } });
    const again = await call.nextRequest('INVITE');
    expect(text(again.request)).toContain('o=callee 7 3 IN IP4 127.0.0.1');
    expect(text(again.request)).toContain('a=sendrecv');
    expect(text(again.request)).not.toContain('a=inactive');
    await again.waitAck();
    expect(await event('EventRetrieved', (e) => e.callId === id)).toMatchObject({ dn: calleeDn, otherDn: callerDn });

    // Naming the caller: the callee is the one held, with the caller's session.
    expect((await post(server.api, `/calls/${id}/hold`, { dn: callerDn })).status).toBe(200);
    const toCallee = await incoming.nextRequest('INVITE');
    expect(text(toCallee.request)).toContain('o=caller 7 2 IN IP4 127.0.0.1');
    expect(text(toCallee.request)).toContain('a=inactive');
    await toCallee.waitAck();
    expect((await post(server.api, `/calls/${id}/retrieve`)).status).toBe(200);
    expect(text((await incoming.nextRequest('INVITE')).request)).toContain('a=sendrecv');

    await call.bye();
    await incoming.byeReceived();
  });

  it('HoldCall that the held party refuses: 502 with its answer, the call stays up and not held', async () => {
    const { call, incoming, id } = await establish(WITHOUT_REFER);
    call.answerWith('INVITE', { status: 488 });
    const res = await post(server.api, `/calls/${id}/hold`);
    expect(res.status).toBe(502);
    expect(res.body.error).toContain('488');
    expect((await getJson<{ held: boolean; state: string }>(server.api, `/calls/${id}`)).body).toMatchObject({ held: false, state: 'established' });
    await incoming.bye();
    await call.byeReceived();
  });

  it('SingleStepTransfer by REFER: the caller gets REFER to the target, the callee BYE; the caller\'s NOTIFY ends the old dialog', async () => {
    const { call, incoming, id } = await establish(WITH_REFER);
    call.answerWith('REFER', { status: 202 });

    const res = await post(server.api, `/calls/${id}/transfer`, { to: targetDn });
    expect(res).toEqual({ status: 202, body: { id, method: 'refer', transferee: callerDn, to: targetDn } });
    const refer = await call.nextRequest('REFER');
    const referTo = parseNameAddr(one(refer.request, 'refer-to'), 'Refer-To').uri;
    expect(referTo).toMatch(new RegExp(`^sip:${targetDn}@127\\.0\\.0\\.1:${server.port}`));
    expect(one(refer.request, 'referred-by')).toContain(`sip:${calleeDn}@`);
    const bye = await incoming.byeReceived();
    expect(one(bye.request, 'reason')).toBe('SIP;cause=200;text="call transferred"');
    // While the REFER is out and after it, the call takes no other control request.
    expect((await post(server.api, `/calls/${id}/hold`)).status).toBe(409);

    // The caller does what REFER asks: a new call to the target, then reports the outcome.
    const next = caller.call(server.port, referTo.replace(/^sip:([^@]+)@.*$/, '$1'), { sdp: CALLER_SDP, headers: [{ name: 'Referred-By', value: one(refer.request, 'referred-by') }] });
    const atTarget = await target.nextIncomingCall();
    expect(one(atTarget.invite, 'from')).toContain(`sip:${callerDn}@`);
    const ack = atTarget.answer(TARGET_SDP);
    expect((await next.final()).status).toBe(200);
    await ack;
    const notify = await reportOutcome(call, '200 OK');
    expect(notify.status).toBe(200);
    const oldBye = await call.byeReceived();
    expect(one(oldBye.request, 'reason')).toBe('SIP;cause=200;text="call transferred"');
    expect(await event('EventReleased', (e) => e.callId === id)).toMatchObject({ cause: 'normal' });
    // The transferor was sent BYE once, and nothing after it.
    expect(callee.received('BYE')).toHaveLength(1);

    await next.bye();
    await atTarget.byeReceived();
  });

  it('SingleStepTransfer by REFER that fails: the transferee reports 486 in its NOTIFY; its old dialog is ended with that reason, cause busy', async () => {
    const { call, incoming, id } = await establish(WITH_REFER);
    call.answerWith('REFER', { status: 202 });
    expect((await post(server.api, `/calls/${id}/transfer`, { to: targetDn })).status).toBe(202);
    await call.nextRequest('REFER');
    await incoming.byeReceived();
    const reinvite = await call.request('INVITE', { body: sdp('caller', 40000, 2, 'sendonly') });
    expect(reinvite.status).toBe(488);
    const notify = await reportOutcome(call, '486 Busy Here');
    expect(notify.status).toBe(200);
    expect(one((await call.byeReceived()).request, 'reason')).toBe('SIP;cause=486;text="transfer failed"');
    expect(await event('EventReleased', (e) => e.callId === id)).toMatchObject({ cause: 'busy' });
  });

  it('a party that answers a relayed re-INVITE with 481 has left: the other party gets the 481, then BYE with a Reason', async () => {
    const { call, incoming, id } = await establish(WITHOUT_REFER);
    incoming.answerWith('INVITE', { status: 481 });
    expect((await call.reinvite(sdp('caller', 40000, 2, 'sendonly'))).status).toBe(481);
    const bye = await call.byeReceived();
    expect(one(bye.request, 'reason')).toBe('SIP;cause=481;text="the other party has left the call"');
    expect(await event('EventReleased', (e) => e.callId === id)).toMatchObject({ cause: 'normal', status: 481 });
  });

  it('SingleStepTransfer by re-INVITE when the caller does not allow REFER: target gets the caller\'s session, the caller the target\'s', async () => {
    const { call, incoming, id } = await establish(WITHOUT_REFER);

    const res = await post(server.api, `/calls/${id}/transfer`, { to: targetDn });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ id, method: 'reinvite', transferee: callerDn, to: targetDn });
    const newId = String(res.body.newCallId);
    expect(one((await incoming.byeReceived()).request, 'reason')).toBe('SIP;cause=200;text="call transferred"');
    expect(await event('EventReleased', (e) => e.callId === id)).toMatchObject({ cause: 'normal' });

    // RFC 3725 flow I: the target is called without an offer; its offer goes to the caller in a
    // re-INVITE (as the next version of the session the caller had: o= of the callee, version
    // 2); the caller's answer comes back to the target in the ACK.
    const callerAnswer = sdp('caller', 40000, 2);
    call.answerWith('INVITE', { status: 200, body: callerAnswer });
    const atTarget = await target.nextIncomingCall();
    expect(atTarget.invite.body.length).toBe(0);
    expect(one(atTarget.invite, 'from')).toContain(`sip:${callerDn}@`);
    const targetAck = atTarget.answer(TARGET_SDP);
    const reinvite = await call.nextRequest('INVITE');
    expect(text(reinvite.request)).toBe(TARGET_SDP.replace('o=target 7 1', 'o=callee 7 2'));
    await reinvite.waitAck();
    expect(text(await targetAck)).toBe(callerAnswer);
    expect(await event('EventEstablished', (e) => e.callId === newId)).toMatchObject({ from: callerDn, to: targetDn });
    expect((await getJson<{ state: string; from: string; calleeDn: string }>(server.api, `/calls/${newId}`)).body).toMatchObject({
      state: 'established',
      from: callerDn,
      calleeDn: targetDn,
    });

    // The caller's old dialog now carries the new call.
    await call.bye();
    await atTarget.byeReceived();
    expect(await event('EventReleased', (e) => e.callId === newId)).toMatchObject({ cause: 'normal' });
  });

  it('SingleStepTransfer falls back to re-INVITE when the REFER gets 501', async () => {
    const { call, incoming, id } = await establish(WITH_REFER);
    call.answerWith('REFER', { status: 501 });
    const res = await post(server.api, `/calls/${id}/transfer`, { to: targetDn });
    expect(res.body).toMatchObject({ method: 'reinvite' });
    expect((await call.nextRequest('REFER')).response?.status).toBe(501);
    await incoming.byeReceived();
    const atTarget = await target.nextIncomingCall();
    await atTarget.reject(486);
    // The target is busy: the transferee's dialog is ended with the reason.
    const bye = await call.byeReceived();
    expect(one(bye.request, 'reason')).toContain('cause=486');
    expect(await event('EventReleased', (e) => e.callId === res.body.newCallId)).toMatchObject({ cause: 'busy' });
  });

  it('bad control requests: 404 unknown call, 400 without "to" or with a DN not in the call, 404 unknown target, 409 while ringing', async () => {
    expect((await post(server.api, '/calls/nope/hold')).status).toBe(404);
    const call = caller.call(server.port, calleeDn, { sdp: CALLER_SDP });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const ringing = await event('EventRinging', (e) => e.otherDn === callerDn);
    const id = String(ringing.callId);
    expect(await post(server.api, `/calls/${id}/hold`)).toEqual({ status: 409, body: { error: 'the call is ringing, not established' } });
    const ack = incoming.answer(CALLEE_SDP);
    await call.final();
    await ack;
    expect((await post(server.api, `/calls/${id}/transfer`, {})).status).toBe(400);
    expect((await post(server.api, `/calls/${id}/transfer`, { to: 'x y' })).status).toBe(400);
    expect((await post(server.api, `/calls/${id}/hold`, { dn: '9999' })).status).toBe(400);
    expect((await post(server.api, `/calls/${id}/transfer`, { to: '77777' })).status).toBe(404);
    expect((await post(server.api, `/calls/${id}/retrieve`)).status).toBe(409);
    await call.bye();
    await incoming.byeReceived();
  });
});
