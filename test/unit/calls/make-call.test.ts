import { describe, expect, it } from 'vitest';
import { getHeaderValues } from '../../../src/sip/message.js';
import { callRig, SDP_A, SDP_B, T1 } from './harness.js';

const header = (msg: { headers: { name: string; value: string }[] }, name: string): string | undefined => getHeaderValues(msg, name)[0];

function start(rig: ReturnType<typeof callRig>) {
  const [f, t] = [rig.phone('1001'), rig.phone('1002')];
  const r = rig.makeCall.start('1001', '1002');
  if (!r.ok) throw new Error(r.error);
  return { f, t, call: r.call, fInvite: f.last('INVITE') };
}

describe('MakeCall on the manual clock', () => {
  it('ringing (from) → dialing (to) → established: from\'s offer goes to to, to\'s answer to from in its ACK', () => {
    const rig = callRig();
    const { f, t, call, fInvite } = start(rig);
    expect(call.state).toBe('ringing');
    expect(fInvite.body.length).toBe(0);
    f.reply(fInvite, 180);
    f.reply(fInvite, 183);
    expect(rig.eventsNamed('EventRinging')).toMatchObject([{ dn: '1001', otherDn: '1002' }]);
    f.reply(fInvite, 200, { body: SDP_A });
    expect(call.state).toBe('dialing');
    expect(f.received('ACK')).toEqual([]);
    const tInvite = t.last('INVITE');
    expect(tInvite.body.equals(SDP_A)).toBe(true);
    t.reply(tInvite, 180);
    expect(call.state).toBe('ringing');
    t.reply(tInvite, 200, { body: SDP_B });
    expect(call.state).toBe('established');
    expect(f.last('ACK').body.equals(SDP_B)).toBe(true);
    expect(t.received('ACK')).toHaveLength(1);
    expect(rig.events.map((e) => e.name)).toEqual(['EventRinging', 'EventDialing', 'EventRinging', 'EventEstablished']);
    // Nothing left on the clock for the ACK deadline.
    rig.clock.advance(16 * T1);
    expect(f.received('ACK')).toHaveLength(1);
  });

  it('to still rings at 16·T1: from is ACKed with a held answer, then re-INVITEd with to\'s session when it answers', () => {
    const rig = callRig();
    const { f, t, call, fInvite } = start(rig);
    f.reply(fInvite, 200, { body: SDP_A });
    const tInvite = t.last('INVITE');
    t.reply(tInvite, 180);
    rig.clock.advance(16 * T1 - 1);
    expect(f.received('ACK')).toEqual([]);
    rig.clock.advance(1);
    const held = f.last('ACK').body.toString();
    expect(held).toContain('c=IN IP4 0.0.0.0');
    expect(held).toContain('a=inactive');
    expect(call.a.ackedHeld).toBe(true);
    t.reply(tInvite, 200, { body: SDP_B });
    expect(call.state).toBe('established');
    const reinvite = f.last('INVITE');
    expect(reinvite).not.toBe(fInvite);
    expect(reinvite.body.toString()).toContain('c=IN IP4 192.0.2.12');
    expect(reinvite.body.toString()).toMatch(/^o=sip-server \d+ 2 IN IP4/m);
    f.reply(reinvite, 200, { body: SDP_A });
    expect(header(f.last('ACK'), 'cseq')).toBe('2 ACK');
    expect(rig.errors).toEqual([]);
  });

  it('to refuses: from gets its ACK (no answer) and a BYE with the reason; released "busy" by the callee', () => {
    const rig = callRig();
    const { f, t, fInvite } = start(rig);
    f.reply(fInvite, 200, { body: SDP_A });
    t.reply(t.last('INVITE'), 486);
    expect(f.received().map((r) => r.method)).toEqual(['INVITE', 'ACK', 'BYE']);
    expect(f.last('ACK').body.length).toBe(0);
    expect(header(f.last('BYE'), 'reason')).toBe('SIP;cause=486;text="called party did not answer"');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'busy', releasedBy: 'callee', status: 486 }]);
  });

  it('from hangs up while to rings: 200 to its BYE, CANCEL to to; released "cancelled" by the caller', () => {
    const rig = callRig();
    const { f, t, fInvite } = start(rig);
    f.reply(fInvite, 200, { body: SDP_A });
    const tInvite = t.last('INVITE');
    t.reply(tInvite, 180);
    const bye = f.calleeDialog(fInvite).send('BYE');
    expect(f.statuses(bye)).toEqual([200]);
    expect(t.received('CANCEL')).toHaveLength(1);
    expect(header(t.last('CANCEL'), 'reason')).toBe('SIP;cause=487;text="caller hung up"');
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'cancelled', releasedBy: 'caller' }]);
  });

  it('released while from rings: CANCEL to from; a 200 it sends anyway is ACKed and BYEd', () => {
    const rig = callRig();
    const { f, call, fInvite } = start(rig);
    f.reply(fInvite, 180);
    rig.calls.releaseCall(call, 'administrative', 'SIP;cause=503;text="test"');
    expect(header(f.last('CANCEL'), 'reason')).toBe('SIP;cause=503;text="test"');
    f.reply(fInvite, 200, { body: SDP_A });
    expect(f.received().map((r) => r.method)).toEqual(['INVITE', 'CANCEL', 'ACK', 'BYE']);
    expect(rig.calls.all()).toEqual([]);
  });
});
