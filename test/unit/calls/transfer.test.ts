import { describe, expect, it } from 'vitest';
import { getHeaderValues } from '../../../src/sip/message.js';
import { callRig, establish, flush, SDP_A, SDP_C } from './harness.js';

const header = (msg: { headers: { name: string; value: string }[] }, name: string): string | undefined => getHeaderValues(msg, name)[0];
const TRANSFERRED = 'SIP;cause=200;text="call transferred"';
const sipfrag = (line: string): Buffer => Buffer.from(`${line}\r\n`);

describe('transfers on the manual clock', () => {
  it('SingleStepTransfer by REFER: REFER to the transferee, BYE to the transferor once accepted; the final NOTIFY ends the old dialog', async () => {
    const rig = callRig();
    const { a, b, aDialog, call } = establish(rig, { allow: 'INVITE, ACK, BYE, REFER, NOTIFY' });
    const pending = rig.control.transfer(call, '1003');
    const refer = a.last('REFER');
    expect(header(refer, 'refer-to')).toBe('<sip:1003@127.0.0.1:5060;transport=udp>');
    expect(header(refer, 'referred-by')).toBe('<sip:1002@127.0.0.1:5060;transport=udp>');
    expect(b.received('BYE')).toEqual([]);
    a.reply(refer, 202);
    await flush();
    expect(await pending).toEqual({ ok: true, status: 202, json: { id: call.id, method: 'refer', transferee: '1001', to: '1003' } });
    expect(header(b.last('BYE'), 'reason')).toBe(TRANSFERRED);
    expect(call.state).toBe('established');

    const progress = aDialog.send('NOTIFY', { body: sipfrag('SIP/2.0 100 Trying'), headers: [{ name: 'Subscription-State', value: 'active' }] });
    expect(a.statuses(progress)).toEqual([200]);
    expect(call.state).toBe('established');
    aDialog.send('NOTIFY', { body: sipfrag('SIP/2.0 200 OK'), headers: [{ name: 'Subscription-State', value: 'terminated' }] });
    expect(header(a.last('BYE'), 'reason')).toBe(TRANSFERRED);
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'normal', transferredTo: '1003' }]);
    expect(rig.errors).toEqual([]);
  });

  it('a REFER transfer that fails (NOTIFY 486): the transferee\'s old dialog ends with that reason, cause "busy"', async () => {
    const rig = callRig();
    const { a, aDialog, call } = establish(rig, { allow: 'REFER' });
    const pending = rig.control.transfer(call, '1003');
    a.reply(a.last('REFER'), 202);
    await flush();
    await pending;
    aDialog.send('NOTIFY', { body: sipfrag('SIP/2.0 486 Busy Here'), headers: [{ name: 'Subscription-State', value: 'terminated' }] });
    expect(header(a.last('BYE'), 'reason')).toBe('SIP;cause=486;text="transfer failed"');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'busy', status: 486 }]);
  });

  it('a REFERred transferee that never reports the outcome: the old dialog is ended when transferOutcomeMs runs out', async () => {
    const rig = callRig({ transferOutcomeMs: 5000 });
    const { a, call } = establish(rig, { allow: 'REFER' });
    const pending = rig.control.transfer(call, '1003');
    a.reply(a.last('REFER'), 202);
    await flush();
    await pending;
    rig.clock.advance(4999);
    expect(a.received('BYE')).toEqual([]);
    rig.clock.advance(1);
    expect(header(a.last('BYE'), 'reason')).toBe(TRANSFERRED);
    expect(call.state).toBe('released');
  });

  it('SingleStepTransfer by re-INVITE: BYE to the transferor, an offerless INVITE to the target, its offer to the transferee, the answer in the ACK', async () => {
    const rig = callRig();
    const { a, b, call } = establish(rig);
    const c = rig.phone('1003');
    const res = await rig.control.transfer(call, '1003');
    expect(res).toMatchObject({ ok: true, status: 202, json: { method: 'reinvite', transferee: '1001', to: '1003' } });
    const newCallId = res.ok ? String(res.json.newCallId) : '';
    expect(header(b.last('BYE'), 'reason')).toBe(TRANSFERRED);
    expect(call.state).toBe('released');
    expect(rig.eventsNamed('EventReleased')[0]).toMatchObject({ callId: call.id, cause: 'normal', transferredTo: '1003', newCallId });

    const moved = rig.calls.get(newCallId);
    expect(moved).toMatchObject({ origin: 'transfer', from: '1001', to: '1003', state: 'dialing' });
    const cInvite = c.last('INVITE');
    expect(cInvite.body.length).toBe(0);
    c.reply(cInvite, 180);
    expect(moved?.state).toBe('ringing');
    c.reply(cInvite, 200, { body: SDP_C });
    // The transferee's re-INVITE carries the target's session as the next version of its own.
    const reinvite = a.last('INVITE');
    expect(reinvite.body.toString()).toContain('c=IN IP4 192.0.2.13');
    expect(reinvite.body.toString()).toContain('o=b 1 2 IN IP4');
    expect(c.received('ACK')).toEqual([]);
    a.reply(reinvite, 200, { body: SDP_A });
    await flush();
    expect(c.last('ACK').body.equals(SDP_A)).toBe(true);
    expect(moved?.state).toBe('established');
    expect(rig.eventsNamed('EventEstablished').at(-1)).toMatchObject({ callId: newCallId, dn: '1003', otherDn: '1001' });
    expect(rig.errors).toEqual([]);
  });

  it('a phone\'s blind transfer (REFER): 202, NOTIFY 100 then 200 to the transferor, which is sent BYE if it does not hang up', async () => {
    const rig = callRig({ transferorByeMs: 2000 });
    const { a, b, bDialog, call } = establish(rig);
    const c = rig.phone('1003');
    const refer = bDialog.send('REFER', { headers: [{ name: 'Refer-To', value: '<sip:1003@127.0.0.1>' }] });
    expect(b.statuses(refer)).toEqual([202]);
    expect(b.last('NOTIFY').body.toString()).toBe('SIP/2.0 100 Trying\r\n');
    b.reply(b.last('NOTIFY'), 200);
    const cInvite = c.last('INVITE');
    c.reply(cInvite, 200, { body: SDP_C });
    a.reply(a.last('INVITE'), 200, { body: SDP_A });
    await flush();
    expect(b.last('NOTIFY').body.toString()).toBe('SIP/2.0 200 OK\r\n');
    expect(header(b.last('NOTIFY'), 'subscription-state')).toBe('terminated;reason=noresource');
    expect(call.state).toBe('established');
    rig.clock.advance(1999);
    expect(b.received('BYE')).toEqual([]);
    rig.clock.advance(1);
    expect(header(b.last('BYE'), 'reason')).toBe(TRANSFERRED);
    expect(call.state).toBe('released');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ callId: call.id, cause: 'normal', releasedBy: 'server', transferredTo: '1003' }]);
  });

  it('a phone\'s transfer to a busy target: the transferor is told 486 and the transferee\'s dialog is back in the old call', async () => {
    const rig = callRig();
    const { a, b, aDialog, bDialog, call } = establish(rig);
    const c = rig.phone('1003');
    bDialog.send('REFER', { headers: [{ name: 'Refer-To', value: '<sip:1003@127.0.0.1>' }] });
    expect(call.a.dialog).toBeUndefined();
    c.reply(c.last('INVITE'), 486);
    await flush();
    expect(b.last('NOTIFY').body.toString()).toBe('SIP/2.0 486 Busy Here\r\n');
    expect(a.received('BYE')).toEqual([]);
    expect(call.a.dialog).toBeDefined();
    // The transferee's requests reach the old call again: its BYE ends it.
    const bye = aDialog.send('BYE');
    expect(a.statuses(bye)).toEqual([200]);
    expect(b.received('BYE')).toHaveLength(1);
    expect(rig.eventsNamed('EventReleased').map((e) => [e.callId === call.id ? 'old' : 'new', e.cause])).toEqual([
      ['new', 'busy'],
      ['old', 'normal'],
    ]);
  });
});
