import { describe, expect, it } from 'vitest';
import { getHeaderValues } from '../../../src/sip/message.js';
import { callRig, SDP_A, SDP_B, T1 } from './harness.js';

const header = (msg: { headers: { name: string; value: string }[] }, name: string): string | undefined => getHeaderValues(msg, name)[0];

describe('call setup on the manual clock: states, CANCEL races, failover', () => {
  it('dialing → ringing on the first provisional → established on the 2xx; the caller gets 180 and 200 with the callee\'s session', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    const invite = a.invite('1002', { sdp: SDP_A });
    const call = rig.calls.all()[0];
    expect(call?.state).toBe('dialing');
    const bInvite = b.last('INVITE');
    expect(bInvite.body.equals(SDP_A)).toBe(true);
    b.reply(bInvite, 100);
    expect(call?.state).toBe('dialing');
    b.reply(bInvite, 180);
    expect(call?.state).toBe('ringing');
    b.reply(bInvite, 183);
    b.reply(bInvite, 200, { body: SDP_B });
    expect(call?.state).toBe('established');
    expect(a.statuses(invite)).toEqual([180, 183, 200]);
    expect(a.responses(invite)[2]?.body.equals(SDP_B)).toBe(true);
    expect(b.received('ACK')).toHaveLength(1);
    expect(rig.events.map((e) => e.name)).toEqual(['EventDialing', 'EventRinging', 'EventEstablished']);
    expect(rig.eventsNamed('EventRinging')[0]).toMatchObject({ dn: '1002', otherDn: '1001' });
    expect(rig.errors).toEqual([]);
  });

  it('CANCEL while ringing: 200 and 487 to the caller, CANCEL to the callee on its INVITE\'s branch; released "cancelled" by the caller', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    const invite = a.invite('1002', { sdp: SDP_A });
    const bInvite = b.last('INVITE');
    b.reply(bInvite, 180);
    const cancel = a.cancel(invite);
    expect(a.statuses(cancel)).toEqual([200]);
    expect(a.statuses(invite)).toEqual([180, 487]);
    const sent = b.received('CANCEL');
    expect(sent).toHaveLength(1);
    expect(header(sent[0]!, 'via')).toBe(header(bInvite, 'via'));
    expect(header(sent[0]!, 'cseq')).toBe('1 CANCEL');
    expect(rig.calls.all()).toEqual([]);
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'cancelled', releasedBy: 'caller', dn: '1001' }]);
    b.reply(sent[0]!, 200);
    b.reply(bInvite, 487);
    // The transaction ACKs the 487 (same branch); nothing else goes to the callee.
    expect(b.received().map((r) => r.method)).toEqual(['INVITE', 'CANCEL', 'ACK']);
    expect(rig.records.listCallRecords()).toMatchObject([{ cause: 'cancelled', releasedBy: 'caller' }]);
    expect(rig.errors).toEqual([]);
  });

  it('a 200 that crosses the CANCEL is ACKed and then BYEd; the caller still gets 487 and the call is never established', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    const invite = a.invite('1002', { sdp: SDP_A });
    const bInvite = b.last('INVITE');
    b.reply(bInvite, 180);
    a.cancel(invite);
    b.reply(bInvite, 200, { body: SDP_B });
    expect(b.received().map((r) => r.method)).toEqual(['INVITE', 'CANCEL', 'ACK', 'BYE']);
    expect(header(b.last('BYE'), 'reason')).toBe('SIP;cause=487;text="call already ended"');
    expect(header(b.last('BYE'), 'call-id')).toBe(header(bInvite, 'call-id'));
    expect(a.statuses(invite)).toEqual([180, 487]);
    expect(rig.eventsNamed('EventEstablished')).toEqual([]);
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'cancelled' }]);
    expect(rig.errors).toEqual([]);
  });

  it('a CANCEL before any provisional response is held back until the first one (RFC 3261 §9.1), then sent once', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    const invite = a.invite('1002', { sdp: SDP_A });
    const bInvite = b.last('INVITE');
    a.cancel(invite);
    expect(a.statuses(invite)).toEqual([487]);
    a.ackFailure(invite, a.responses(invite)[0]!);
    expect(rig.calls.all()).toEqual([]);
    // Timer A retransmits the INVITE meanwhile; no CANCEL goes yet.
    rig.clock.advance(4 * T1);
    expect(b.received('INVITE').length).toBeGreaterThan(1);
    expect(b.received('CANCEL')).toEqual([]);
    b.reply(bInvite, 180);
    const sent = b.received('CANCEL');
    expect(sent).toHaveLength(1);
    expect(header(sent[0]!, 'via')).toBe(header(bInvite, 'via'));
    b.reply(bInvite, 183);
    expect(b.received('CANCEL')).toHaveLength(1);
    // Released calls pass no provisional response on.
    expect(a.statuses(invite)).toEqual([487]);
    expect(rig.errors).toEqual([]);
  });

  it('a held-back CANCEL whose callee never answers is never sent: timer B ends the INVITE', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    a.cancel(a.invite('1002', { sdp: SDP_A }));
    rig.clock.advance(64 * T1 + 1000);
    expect(b.received('CANCEL')).toEqual([]);
    expect(rig.eventsNamed('EventReleased')).toHaveLength(1);
    expect(rig.errors).toEqual([]);
  });

  it('busy: 486 goes back to the caller; released "busy" by the callee, the event about the callee', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    const invite = a.invite('1002', { sdp: SDP_A });
    b.reply(b.last('INVITE'), 486);
    expect(a.statuses(invite)).toEqual([486]);
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'busy', releasedBy: 'callee', dn: '1002', otherDn: '1001', status: 486 }]);
  });

  it('a trunk that never answers: after timer B the INVITE goes to the next trunk, and the first is out of service', () => {
    const rig = callRig();
    const [a, g1, g2] = [rig.phone('1001'), rig.phone('gw1'), rig.phone('gw2')];
    const invite = a.invite('9555', { sdp: SDP_A });
    expect(g1.received('INVITE')[0]?.uri).toBe('sip:9555@192.0.2.31:5060');
    rig.clock.advance(64 * T1 - 1);
    expect(g2.received('INVITE')).toEqual([]);
    rig.clock.advance(1);
    expect(g2.received('INVITE')[0]?.uri).toBe('sip:9555@192.0.2.32:5060');
    expect(rig.directory.get('gw1')?.state).toBe('out-of-service');
    g2.reply(g2.last('INVITE'), 200, { body: SDP_B });
    // 100 Trying went to the caller while the first trunk was silent.
    expect(a.statuses(invite)).toEqual([100, 200]);
    expect(rig.calls.all()[0]?.state).toBe('established');
    expect(rig.eventsNamed('EventEstablished')).toMatchObject([{ dn: 'gw2' }]);
  });

  it('503 from the last trunk: the caller gets 503 and the call is released "transport-failure" by the callee', () => {
    const rig = callRig();
    const [a, g1, g2] = [rig.phone('1001'), rig.phone('gw1'), rig.phone('gw2')];
    const invite = a.invite('9555', { sdp: SDP_A });
    g1.reply(g1.last('INVITE'), 503);
    g2.reply(g2.last('INVITE'), 503);
    expect(a.statuses(invite)).toEqual([503]);
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'transport-failure', releasedBy: 'callee', status: 503 }]);
  });

  it('a 2xx retransmitted by the callee gets the same ACK again; a 2xx from another fork is ACKed and BYEd', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    a.invite('1002', { sdp: SDP_A });
    const bInvite = b.last('INVITE');
    b.reply(bInvite, 200, { body: SDP_B });
    b.reply(bInvite, 200, { body: SDP_B });
    const acks = b.received('ACK');
    expect(acks).toHaveLength(2);
    expect(acks[1]).toBe(acks[0]);
    b.reply(bInvite, 200, { body: SDP_B, tag: 'other-fork' });
    expect(b.received().map((r) => r.method)).toEqual(['INVITE', 'ACK', 'ACK', 'ACK', 'BYE']);
    expect(header(b.last('BYE'), 'to')).toContain('tag=other-fork');
    expect(rig.calls.all()[0]?.state).toBe('established');
  });

  it('404 for a number with no route, 480 for a DN out of service: answered and released at once', () => {
    const rig = callRig();
    const a = rig.phone('1001');
    const unknown = a.invite('7777', { sdp: SDP_A });
    rig.directory.setState('1003', 'out-of-service', 'test');
    const oos = a.invite('1003', { sdp: SDP_A });
    expect(a.statuses(unknown)).toEqual([404]);
    expect(a.statuses(oos)).toEqual([480]);
    expect(rig.eventsNamed('EventReleased').map((e) => [e.cause, e.status])).toEqual([['not-found', 404], ['no-answer', 480]]);
    expect(rig.calls.all()).toEqual([]);
  });
});
