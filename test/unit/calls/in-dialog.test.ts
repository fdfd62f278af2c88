import { describe, expect, it } from 'vitest';
import { getHeaderValues } from '../../../src/sip/message.js';
import { callRig, establish, flush, SDP_A, SDP_B, T1, T2 } from './harness.js';

const header = (msg: { headers: { name: string; value: string }[] }, name: string): string | undefined => getHeaderValues(msg, name)[0];
const hold = (sdp: Buffer): Buffer => Buffer.from(sdp.toString('latin1').replace('a=sendrecv', 'a=sendonly'), 'latin1');

describe('an established call on the manual clock: glare, release from either side, 2xx and ACK', () => {
  it('glare: a re-INVITE while one is pending gets 491 (Retry-After) and is not relayed; the pending one completes; then the next one passes', async () => {
    const rig = callRig();
    const { a, b, aDialog, bDialog, call } = establish(rig);
    const first = aDialog.send('INVITE', { body: SDP_A });
    expect(b.received('INVITE')).toHaveLength(2);
    expect(call.reinvitePending).toBe(true);

    const second = bDialog.send('INVITE', { body: SDP_B });
    expect(b.statuses(second)).toEqual([491]);
    expect(header(b.responses(second)[0]!, 'retry-after')).toBe('1');
    expect(a.received('INVITE')).toEqual([]);
    // The API refuses too while the re-INVITE is out.
    expect(await rig.control.hold(call)).toEqual({ ok: false, status: 409, error: 'a re-INVITE is in progress on the call' });

    const relayed = b.last('INVITE');
    b.reply(relayed, 200, { body: SDP_B });
    expect(call.reinvitePending).toBe(false);
    expect(header(b.last('ACK'), 'cseq')).toBe(`${header(relayed, 'cseq')?.split(' ')[0]} ACK`);
    expect(a.statuses(first)).toEqual([200]);
    expect(a.responses(first)[0]?.body.equals(SDP_B)).toBe(true);
    aDialog.send('ACK', { cseq: 2 });

    const third = bDialog.send('INVITE', { body: SDP_B });
    expect(a.received('INVITE')).toHaveLength(1);
    a.reply(a.last('INVITE'), 200, { body: SDP_A });
    expect(b.statuses(third)).toEqual([200]);
    expect(rig.errors).toEqual([]);
  });

  it('BYE from the caller: 200 to it, BYE (with its Reason) to the callee; released "normal" by the caller', () => {
    const rig = callRig();
    const { a, b, aDialog, call } = establish(rig);
    const bye = aDialog.send('BYE', { headers: [{ name: 'Reason', value: 'Q.850;cause=16' }] });
    expect(a.statuses(bye)).toEqual([200]);
    expect(header(b.last('BYE'), 'reason')).toBe('Q.850;cause=16');
    expect(call.state).toBe('released');
    expect(rig.calls.all()).toEqual([]);
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'normal', releasedBy: 'caller', dn: '1001', otherDn: '1002' }]);
    expect(rig.records.listCallRecords()).toMatchObject([{ cause: 'normal', releasedBy: 'caller', fromDn: '1001', toDn: '1002' }]);
    // The call is gone: a second BYE in the same dialog gets 481.
    expect(a.statuses(aDialog.send('BYE'))).toEqual([481]);
  });

  it('BYE from the callee: BYE to the caller in its own dialog; released "normal" by the callee, the event about the callee', () => {
    const rig = callRig();
    const { a, b, invite, bDialog } = establish(rig);
    const bye = bDialog.send('BYE');
    expect(b.statuses(bye)).toEqual([200]);
    const toCaller = a.last('BYE');
    expect(header(toCaller, 'call-id')).toBe(header(invite, 'call-id'));
    expect(header(toCaller, 'to')).toBe(header(invite, 'from'));
    expect(header(toCaller, 'reason')).toBeUndefined();
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'normal', releasedBy: 'callee', dn: '1002', otherDn: '1001' }]);
  });

  it('ReleaseCall while established: BYE with the Reason to both legs; while ringing: 487 to the caller and CANCEL to the callee', () => {
    const rig = callRig();
    const { a, b, call } = establish(rig);
    rig.calls.releaseCall(call, 'administrative', 'SIP;cause=503;text="test"');
    expect(header(a.last('BYE'), 'reason')).toBe('SIP;cause=503;text="test"');
    expect(header(b.last('BYE'), 'reason')).toBe('SIP;cause=503;text="test"');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'administrative', releasedBy: 'server' }]);

    const c = rig.phone('1003');
    const invite = a.invite('1003', { sdp: SDP_A });
    c.reply(c.last('INVITE'), 180);
    rig.calls.releaseCall(rig.calls.all()[0]!, 'administrative');
    expect(a.statuses(invite)).toEqual([180, 487]);
    expect(c.received('CANCEL')).toHaveLength(1);
  });

  it('a party\'s hold (sendonly) and retrieve re-INVITEs pass through and give EventHeld / EventRetrieved about that party', () => {
    const rig = callRig();
    const { b, aDialog, call } = establish(rig);
    aDialog.send('INVITE', { body: hold(SDP_A) });
    b.reply(b.last('INVITE'), 200, { body: SDP_B });
    expect(call.heldBy).toEqual({ leg: 'a', by: 'party' });
    aDialog.send('INVITE', { body: SDP_A });
    b.reply(b.last('INVITE'), 200, { body: SDP_B });
    expect(call.heldBy).toBeUndefined();
    expect(rig.events.filter((e) => e.name === 'EventHeld' || e.name === 'EventRetrieved').map((e) => [e.name, e.e.dn])).toEqual([
      ['EventHeld', '1001'],
      ['EventRetrieved', '1001'],
    ]);
  });

  it('the 2xx to a relayed re-INVITE is retransmitted at T1, 2·T1, 4·T1… up to T2 until the ACK; then no more', () => {
    const rig = callRig();
    const { a, b, aDialog } = establish(rig);
    const reinvite = aDialog.send('INVITE', { body: SDP_A });
    b.reply(b.last('INVITE'), 200, { body: SDP_B });
    const times: number[] = [];
    for (let t = 0; t < 7 * T1 + 10; t += 10) {
      const before = a.statuses(reinvite).length;
      rig.clock.advance(10);
      if (a.statuses(reinvite).length > before) times.push(t + 10);
    }
    expect(times).toEqual([T1, 3 * T1, 7 * T1]);
    aDialog.send('ACK', { cseq: 2 });
    const sent = a.statuses(reinvite).length;
    rig.clock.advance(10 * T2);
    expect(a.statuses(reinvite).length).toBe(sent);
  });

  it('a caller that never ACKs the 200: after 64·T1 the call is released "timeout" with BYE to both legs', () => {
    const rig = callRig();
    const [a, b] = [rig.phone('1001'), rig.phone('1002')];
    const invite = a.invite('1002', { sdp: SDP_A });
    b.reply(b.last('INVITE'), 200, { body: SDP_B });
    rig.clock.advance(64 * T1 - 1);
    expect(b.received('BYE')).toEqual([]);
    expect(a.statuses(invite).filter((s) => s === 200).length).toBeGreaterThan(5);
    rig.clock.advance(1);
    expect(header(b.last('BYE'), 'reason')).toBe('SIP;cause=408;text="no ACK"');
    expect(header(a.last('BYE'), 'reason')).toBe('SIP;cause=408;text="no ACK"');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'timeout', releasedBy: 'server' }]);
  });

  it('a party that answers a relayed request with 481 has left: the other party gets the 481, then BYE; released "normal" with status 481', () => {
    const rig = callRig();
    const { a, b, aDialog } = establish(rig);
    const info = aDialog.send('INFO', { body: Buffer.from('x') });
    b.reply(b.last('INFO'), 481);
    expect(a.statuses(info)).toEqual([481]);
    expect(header(a.last('BYE'), 'reason')).toBe('SIP;cause=481;text="the other party has left the call"');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'normal', status: 481 }]);
  });

  it('no answer to a relayed request: after 64·T1 the callee goes out of service and the call is released "timeout"', async () => {
    const rig = callRig();
    const { a, aDialog } = establish(rig);
    const info = aDialog.send('INFO');
    rig.clock.advance(64 * T1);
    await flush();
    expect(a.statuses(info)).toEqual([408]);
    expect(header(a.last('BYE'), 'reason')).toBe('SIP;cause=408;text="no response"');
    expect(rig.directory.get('1002')?.state).toBe('out-of-service');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'timeout', status: 408 }]);
  });

  it('the re-open rule is the leg\'s: never towards a voip-service DN, else yes', () => {
    const rig = callRig({
      dns: {
        '1001': { type: 'extension', contact: 'sip:1001@192.0.2.11:5060' },
        svc: { type: 'voip-service', contact: 'sip:svc@192.0.2.40:5060' },
      },
    });
    const { call } = establish(rig, { callee: 'svc' });
    expect(call.b.reopen).toBe(false);
    expect(call.a.reopen).toBe(true);
    expect(rig.calls.reopenOn(call, 'b')).toBe(false);
  });
});
