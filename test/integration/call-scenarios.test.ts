import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cseqOf } from '../../src/sip/cseq.js';
import { getHeaderValues, type SipMessage, type SipRequest } from '../../src/sip/message.js';
import { tagOf } from '../../src/sip/name-addr.js';
import { parseMessage } from '../../src/sip/parser.js';
import { isSipUri, parseUri } from '../../src/sip/uri.js';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { finishPeers } from '../support/call-peers.js';
import { serverFixture } from '../support/server-fixture.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { branchOf, SipPeer, type IncomingCall, type PeerCall, type PeerTransportName } from '../support/sip-peer.js';

/*
 * Call scenarios against the running server (SPEC §4, §6), with SipPeers on both legs:
 * extensions that register (over UDP and over TCP) and trunks at fixed contacts. Each test
 * checks SIP on the wire on both legs, the events on /events and the call state on /calls.
 */

/** An SDP offer or answer; `direction` is the media attribute hold and retrieve change. */
function sdp(owner: string, port: number, direction = 'sendrecv'): string {
  return ['v=0', `o=${owner} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', `a=${direction}`, ''].join('\r\n');
}

const CALLER_SDP = sdp('caller', 40000);
const CALLEE_SDP = sdp('callee', 50000);

const one = (m: SipMessage, name: string): string => getHeaderValues(m, name)[0] ?? '';
const text = (m: SipMessage): string => m.body.toString('utf8');

interface CallView {
  id: string;
  state: string;
  held: boolean;
  from: string;
  to: string;
  calleeDn: string;
}

/** The caller's INVITE, ringing, answered, ACKed on both legs. */
async function establish(caller: SipPeer, callee: SipPeer, serverPort: number, number: string): Promise<{ call: PeerCall; incoming: IncomingCall }> {
  const call = caller.call(serverPort, number, { sdp: CALLER_SDP });
  const incoming = await callee.nextIncomingCall();
  expect(text(incoming.invite)).toBe(CALLER_SDP);
  incoming.ring();
  await call.waitStatus(180);
  const ack = incoming.answer(CALLEE_SDP);
  const ok = await call.final();
  expect(ok.status).toBe(200);
  expect(text(ok)).toBe(CALLEE_SDP);
  await ack;
  return { call, incoming };
}

describe.each(['UDP', 'TCP'] as PeerTransportName[])('calls between extensions over %s (SipPeer → server → SipPeer)', (transport) => {
  const callerDn = transport === 'UDP' ? '1001' : '2001';
  const calleeDn = transport === 'UDP' ? '1002' : '2002';
  const fx = serverFixture({
    dns: {
      [callerDn]: { type: 'extension', contact: '*' },
      [calleeDn]: { type: 'extension', contact: '*' },
      '1003': { type: 'extension', contact: '*' },
    },
  });
  let server: RunningServer;
  let events: EventStream;
  let caller: SipPeer;
  let callee: SipPeer;
  let mark: number;

  /** The first event since this test began that matches. */
  const event = (name: string, match?: (e: ApiEvent) => boolean): Promise<ApiEvent> => fx.event(name, match);
  const callState = async (id: unknown): Promise<{ status: number; body: CallView }> => getJson<CallView>(server.api, `/calls/${String(id)}`);

  beforeAll(() => {
    ({ server, events } = fx);
  });

  beforeEach(async () => {
    fx.mark();
    mark = fx.from;
    caller = await SipPeer.start({ transport, user: callerDn });
    callee = await SipPeer.start({ transport, user: calleeDn });
    await caller.register(server.port);
    await callee.register(server.port);
  });

  afterEach(async () => {
    await finishPeers(server, [caller, callee]);
  });

  it('busy: the callee answers 486, the caller gets 486, the call is released with cause "busy"', async () => {
    const call = caller.call(server.port, calleeDn, { sdp: CALLER_SDP });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const ringing = await event('EventRinging', (e) => e.dn === calleeDn);
    expect((await callState(ringing.callId)).body).toMatchObject({ state: 'ringing', from: callerDn, to: calleeDn });
    // The server's INVITE transaction ACKs the 486 (RFC 3261 §17.1.1.3): same branch as its INVITE.
    const ack = await incoming.reject(486);
    expect(branchOf(ack)).toBe(branchOf(incoming.invite));
    expect(cseqOf(ack)).toEqual({ seq: cseqOf(incoming.invite).seq, method: 'ACK' });
    const final = await call.final();
    expect(final.status).toBe(486);
    expect(tagOf(one(final, 'to'))).toBeDefined();
    expect(caller.sent('ACK')).toHaveLength(1);
    const released = await event('EventReleased', (e) => e.callId === ringing.callId);
    // The callee refused: it is the party that released the call.
    expect(released).toMatchObject({ cause: 'busy', status: 486, dn: calleeDn, otherDn: callerDn, releasedBy: 'callee' });
    // The ended call is served from its record.
    expect((await callState(ringing.callId)).body).toMatchObject({ state: 'released', cause: 'busy', status: 486, releasedBy: 'callee', from: callerDn, calleeDn });
  });

  it('CANCEL while ringing: 200 and 487 to the caller; the callee gets CANCEL with its INVITE branch and CSeq, answers 487; cause "cancelled"', async () => {
    const call = caller.call(server.port, calleeDn, { sdp: CALLER_SDP });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const ringing = await event('EventRinging', (e) => e.dn === calleeDn);

    expect((await call.cancel()).status).toBe(200);
    expect((await call.final()).status).toBe(487);
    expect(caller.sent('ACK')).toHaveLength(1);

    const cancel = await incoming.cancelled();
    const invite = incoming.invite;
    expect(branchOf(cancel)).toBe(branchOf(invite));
    expect(cseqOf(cancel)).toEqual({ seq: cseqOf(invite).seq, method: 'CANCEL' });
    expect(cancel.uri).toBe(invite.uri);
    for (const h of ['call-id', 'from', 'to']) expect(one(cancel, h)).toBe(one(invite, h));
    expect(incoming.tx.final?.status).toBe(487);
    const ack = await incoming.tx.waitAck();
    expect(branchOf(ack)).toBe(branchOf(invite));

    const released = await event('EventReleased', (e) => e.callId === ringing.callId);
    expect(released).toMatchObject({ cause: 'cancelled', dn: callerDn, otherDn: calleeDn });
    expect(events.events.slice(mark).some((e) => e.event === 'EventEstablished')).toBe(false);
  });

  it('CANCEL before the callee sent any provisional response waits for its first one (RFC 3261 §9.1)', async () => {
    callee.autoTrying = false;
    const call = caller.call(server.port, calleeDn, { sdp: CALLER_SDP });
    const incoming = await callee.nextIncomingCall();
    expect((await call.cancel()).status).toBe(200);
    expect((await call.final()).status).toBe(487);
    expect(await event('EventReleased')).toMatchObject({ cause: 'cancelled' });
    // A round trip on the callee's flow: anything the server sent it before is in by now.
    expect((await callee.options(server.port)).status).toBe(200);
    expect(incoming.cancelRequest).toBeUndefined();

    incoming.ring();
    const cancel = await incoming.cancelled();
    expect(branchOf(cancel)).toBe(branchOf(incoming.invite));
    const at = (match: (m: SipMessage) => boolean): number => callee.messages.findIndex((m) => match(m.message));
    expect(at((m) => m.kind === 'request' && m.method === 'CANCEL')).toBeGreaterThan(at((m) => m.kind === 'response' && m.status === 180));
    expect(incoming.tx.final?.status).toBe(487);
    await incoming.tx.waitAck();
  });

  it('BYE from the callee: the caller receives BYE in its own dialog, both get 200, cause "normal"', async () => {
    const { call, incoming } = await establish(caller, callee, server.port, calleeDn);
    const established = await event('EventEstablished', (e) => e.dn === calleeDn);
    expect((await callState(established.callId)).body).toMatchObject({ state: 'established', calleeDn, held: false });

    expect((await incoming.bye()).status).toBe(200);
    const bye = await call.byeReceived();
    expect(bye.response?.status).toBe(200);
    // The caller's dialog: its Call-ID, its From tag as To tag, the server's tag (from the 200) as From tag.
    expect(one(bye.request, 'call-id')).toBe(one(call.invite, 'call-id'));
    expect(tagOf(one(bye.request, 'to'))).toBe(tagOf(one(call.invite, 'from')));
    expect(tagOf(one(bye.request, 'from'))).toBe(call.dialog?.remoteTag);
    expect(call.state).toBe('terminated');

    const released = await event('EventReleased', (e) => e.callId === established.callId);
    expect(released).toMatchObject({ cause: 'normal', releasedBy: 'callee', dn: calleeDn, otherDn: callerDn });
    const record = (await callState(established.callId)).body as unknown as Record<string, unknown>;
    expect(record).toMatchObject({ state: 'released', cause: 'normal', releasedBy: 'callee', from: callerDn, to: calleeDn });
    expect(record.legs).toMatchObject({ caller: { callId: one(call.invite, 'call-id'), transport, dn: callerDn }, callee: { callId: one(incoming.invite, 'call-id'), transport, dn: calleeDn } });
  });

  it('hold and retrieve: a re-INVITE with a=sendonly crosses to the callee, its answer comes back, EventHeld then EventRetrieved', async () => {
    const { call, incoming } = await establish(caller, callee, server.port, calleeDn);
    const established = await event('EventEstablished');
    incoming.answerWith('INVITE', (req) => ({ status: 200, body: sdp('callee', 50000, text(req).includes('a=sendonly') ? 'recvonly' : 'sendrecv') }));

    const holdSdp = sdp('caller', 40000, 'sendonly');
    const held = await call.reinvite(holdSdp);
    expect(held.status).toBe(200);
    expect(text(held)).toBe(sdp('callee', 50000, 'recvonly'));
    const reinvite = await incoming.nextRequest('INVITE');
    expect(text(reinvite.request)).toBe(holdSdp);
    expect(one(reinvite.request, 'content-type')).toBe('application/sdp');
    await reinvite.waitAck();
    expect(await event('EventHeld', (e) => e.callId === established.callId)).toMatchObject({ dn: callerDn, otherDn: calleeDn });
    expect((await callState(established.callId)).body.held).toBe(true);

    const retrieved = await call.reinvite(sdp('caller', 40000, 'sendrecv'));
    expect(retrieved.status).toBe(200);
    expect(text(retrieved)).toBe(sdp('callee', 50000, 'sendrecv'));
    expect(text((await incoming.nextRequest('INVITE')).request)).toContain('a=sendrecv');
    await event('EventRetrieved', (e) => e.callId === established.callId);
    expect((await callState(established.callId)).body.held).toBe(false);
    // Each 2xx to a re-INVITE was ACKed on both legs.
    expect(caller.sent('ACK')).toHaveLength(3);
    expect(incoming.inbound.filter((r) => r.request.method === 'INVITE').every((r) => r.tx.ack !== undefined)).toBe(true);

    await call.bye();
    await incoming.byeReceived();
  });

  it('glare: a re-INVITE from the callee while the caller\'s is pending gets 491; the pending one completes', async () => {
    const { call, incoming } = await establish(caller, callee, server.port, calleeDn);
    incoming.answerWith('INVITE', 'manual');
    const holdSdp = sdp('caller', 40000, 'sendonly');
    const first = call.send('INVITE', { body: holdSdp });
    const pending = await incoming.nextRequest('INVITE');

    const crossing = incoming.send('INVITE', { body: sdp('callee', 50000, 'sendonly') });
    expect((await crossing.waitFinal()).status).toBe(491);
    // The callee's transaction ACKed the 491 (same branch); nothing reached the caller.
    expect(callee.sent('ACK').map(branchOf)).toContain(branchOf(crossing.request));
    expect(caller.received('INVITE')).toHaveLength(0);

    pending.respond(200, { body: sdp('callee', 50000, 'recvonly') });
    const answered = await first.waitFinal();
    expect(answered.status).toBe(200);
    expect(text(answered)).toBe(sdp('callee', 50000, 'recvonly'));
    await pending.waitAck();
    await event('EventHeld');

    await incoming.bye();
    await call.byeReceived();
  });

  it('INFO and UPDATE in the dialog pass to the other leg and their final responses come back', async () => {
    const { call, incoming } = await establish(caller, callee, server.port, calleeDn);
    const dtmf = 'Signal=5\r\nDuration=160\r\n';
    expect((await call.info(dtmf)).status).toBe(200);
    const info = await incoming.nextRequest('INFO');
    expect(text(info.request)).toBe(dtmf);
    expect(one(info.request, 'content-type')).toBe('application/dtmf-relay');

    incoming.answerWith('INFO', { status: 415, reason: 'Unsupported Media Type' });
    const refused = await call.info('garbage', 'application/x-unknown');
    expect([refused.status, refused.reason]).toEqual([415, 'Unsupported Media Type']);
    expect(text((await incoming.nextRequest('INFO')).request)).toBe('garbage');

    const offer = sdp('callee', 50002);
    const updated = await incoming.update(offer);
    expect(updated.status).toBe(200);
    expect(text(updated)).toBe(offer);
    const update = await call.nextRequest('UPDATE');
    expect(text(update.request)).toBe(offer);
    expect(one(update.request, 'content-type')).toBe('application/sdp');
    expect(events.events.slice(mark).filter((e) => e.event === 'EventHeld')).toEqual([]);

    await call.bye();
    await incoming.byeReceived();
  });

  it('a 2xx that arrives after CANCEL is ACKed and then BYEd by the server', async () => {
    const call = caller.call(server.port, calleeDn, { sdp: CALLER_SDP });
    const incoming = await callee.nextIncomingCall();
    incoming.cancelBehaviour = 'ok-only';
    incoming.ring();
    await call.waitStatus(180);
    expect((await call.cancel()).status).toBe(200);
    expect((await call.final()).status).toBe(487);
    await incoming.cancelled();

    const ack = await incoming.answer(CALLEE_SDP);
    expect(cseqOf(ack)).toEqual({ seq: cseqOf(incoming.invite).seq, method: 'ACK' });
    expect(tagOf(one(ack, 'to'))).toBe(incoming.localTag);
    const bye = await incoming.byeReceived();
    expect(bye.response?.status).toBe(200);
    expect(one(bye.request, 'reason')).toMatch(/^SIP;cause=487/);

    const released = await event('EventReleased');
    expect(released).toMatchObject({ cause: 'cancelled' });
    expect(events.events.slice(mark).some((e) => e.event === 'EventEstablished')).toBe(false);
    expect(caller.received('BYE')).toHaveLength(0);
  });

  it('a call to a registering extension with no registration gets 480; to an unknown number 404; each released', async () => {
    const unregistered = caller.call(server.port, '1003', { sdp: CALLER_SDP });
    expect((await unregistered.final()).status).toBe(480);
    expect(await event('EventReleased', (e) => e.to === '1003')).toMatchObject({ status: 480, cause: 'no-answer', dn: callerDn });

    const unknown = caller.call(server.port, '5555', { sdp: CALLER_SDP });
    expect((await unknown.final()).status).toBe(404);
    expect(await event('EventReleased', (e) => e.to === '5555')).toMatchObject({ status: 404, cause: 'not-found', dn: callerDn });
    // Both final responses were ACKed by the caller's transactions; nothing reached the callee.
    expect(caller.sent('ACK')).toHaveLength(2);
    expect(callee.received('INVITE')).toHaveLength(0);
  });
});

/** A UDP socket that takes requests and never answers: a trunk that has gone silent, or was never there. */
async function silentSocket(): Promise<{ sock: UdpSocket; port: number; got: SipRequest[] }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const got: SipRequest[] = [];
  sock.on('message', (buf) => {
    const msg = parseMessage(buf);
    if (msg.kind === 'request') got.push(msg);
  });
  return { sock, port: sock.address().port, got };
}

describe('trunk failover (SipPeer trunks over UDP)', () => {
  let server: RunningServer;
  let events: EventStream;
  let caller: SipPeer;
  let trunk8: SipPeer;
  let trunk7: SipPeer;
  let silent: Awaited<ReturnType<typeof silentSocket>>;
  let deaf: Awaited<ReturnType<typeof silentSocket>>;

  beforeAll(async () => {
    trunk8 = await SipPeer.start({ user: 'gw8' });
    trunk7 = await SipPeer.start({ user: 'gw7' });
    silent = await silentSocket();
    deaf = await silentSocket();
    server = await startServer({
      tserver: { 'sip-invite-timeout': 2 },
      dns: {
        '1001': { type: 'extension', contact: '*' },
        'gw-dead': { type: 'trunk', contact: `sip:127.0.0.1:${deaf.port}`, prefix: '8', priority: 1, 'oos-check': 1, 'oos-force': 1 },
        'gw-live8': { type: 'trunk', contact: `sip:127.0.0.1:${trunk8.port}`, prefix: '8', priority: 2 },
        'gw-silent': { type: 'trunk', contact: `sip:127.0.0.1:${silent.port}`, prefix: '7', priority: 1 },
        'gw-live7': { type: 'trunk', contact: `sip:127.0.0.1:${trunk7.port}`, prefix: '7', priority: 2 },
      },
    });
    events = await EventStream.open(server.api);
    caller = await SipPeer.start({ user: '1001' });
    await caller.register(server.port);
  });

  afterAll(async () => {
    events.close();
    await Promise.all([caller.close(), trunk8.close(), trunk7.close(), ...[silent, deaf].map((s) => new Promise<void>((r) => s.sock.close(() => r())))]);
    expect(await server.stop()).toBe(0);
  });

  it('skips the first trunk while it is out of service (OOS check): the call reaches the second trunk with the dialled number', async () => {
    const out = await events.next((e) => e.event === 'EventDNOutOfService' && e.dn === 'gw-dead', 6000);
    expect(out.reason).toMatch(/no response to OPTIONS/);
    expect((await getJson<{ state: string }>(server.api, '/dns/gw-dead')).body.state).toBe('out-of-service');
    const mark = events.events.length;

    const started = Date.now();
    const call = caller.call(server.port, '8123', { sdp: CALLER_SDP });
    const incoming = await trunk8.nextIncomingCall();
    // Straight there: the out-of-service trunk got its OPTIONS checks and no INVITE, and no timer B ran.
    expect(Date.now() - started).toBeLessThan(1000);
    expect(deaf.got.map((r) => r.method)).toContain('OPTIONS');
    expect(deaf.got.filter((r) => r.method === 'INVITE')).toEqual([]);
    const uri = parseUri(incoming.invite.uri);
    expect(isSipUri(uri) && [uri.user, uri.host, uri.port]).toEqual(['8123', '127.0.0.1', trunk8.port]);
    expect(text(incoming.invite)).toBe(CALLER_SDP);
    await incoming.answer(CALLEE_SDP);
    expect((await call.final()).status).toBe(200);
    const established = await events.next((e) => e.event === 'EventEstablished', 5000, mark);
    expect(established).toMatchObject({ dn: 'gw-live8', otherDn: '1001' });

    await call.bye();
    await incoming.byeReceived();
    expect(await events.next((e) => e.event === 'EventReleased', 5000, mark)).toMatchObject({ cause: 'normal' });
    expect(caller.problems.concat(trunk8.problems)).toEqual([]);
  });

  it('fails over when the first trunk never answers: after timer B (2 s) the INVITE reaches the second trunk and the first goes out of service', async () => {
    const mark = events.events.length;
    const started = Date.now();
    const call = caller.call(server.port, '7123', { sdp: CALLER_SDP });
    const incoming = await trunk7.nextIncomingCall(6000);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThan(3500);

    // The silent trunk got the INVITE and its UDP retransmissions (timer A), one transaction.
    const invites = silent.got.filter((r) => r.method === 'INVITE');
    expect(invites.length).toBeGreaterThanOrEqual(2);
    expect(new Set(invites.map(branchOf)).size).toBe(1);
    const first = parseUri(invites[0]?.uri ?? '');
    expect(isSipUri(first) && first.user).toBe('7123');
    const second = parseUri(incoming.invite.uri);
    expect(isSipUri(second) && [second.user, second.port]).toEqual(['7123', trunk7.port]);

    const out = await events.next((e) => e.event === 'EventDNOutOfService' && e.dn === 'gw-silent', 5000, mark);
    expect(out.reason).toMatch(/timed out/);
    expect((await getJson<{ state: string }>(server.api, '/dns/gw-silent')).body.state).toBe('out-of-service');

    incoming.ring();
    await call.waitStatus(180);
    await incoming.answer(CALLEE_SDP);
    expect((await call.final()).status).toBe(200);
    // The caller saw no failure from the first trunk: only 100, 180, 200.
    expect(call.responses.map((r) => r.status).filter((s, i, all) => all.indexOf(s) === i)).toEqual([100, 180, 200]);
    expect(await events.next((e) => e.event === 'EventEstablished', 5000, mark)).toMatchObject({ dn: 'gw-live7' });

    await incoming.bye();
    await call.byeReceived();
    expect(await events.next((e) => e.event === 'EventReleased', 5000, mark)).toMatchObject({ cause: 'normal' });
    expect(caller.problems.concat(trunk7.problems)).toEqual([]);
  });
});
