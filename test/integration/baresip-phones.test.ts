import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getJson, type ApiEvent, type EventStream } from '../support/api-client.js';
import type { Baresip, TracedMessage } from '../support/baresip.js';
import { callIdOf, isRequest, isResponse, PhoneRig } from '../support/baresip-rig.js';
import type { RunningServer } from '../support/server-process.js';
import { waitFor } from '../support/wait-for.js';

/*
 * Real softphones through the server: three baresip 1.0 processes registered over UDP (3001),
 * TCP (3002) and TLS (3003), so every call crosses transports. Each scenario asserts what the
 * phones saw (their ctrl_tcp events and their SIP trace) and what the control API says (GET
 * /calls, GET /dns/{dn}, /events). The server and phones start once; every test ends its calls.
 */

interface CallView {
  id: string;
  from: string;
  to: string;
  state: string;
  held: boolean;
  legs: { caller: { transport: string }; callee: { transport: string | null } };
}
interface ContactView {
  contact: string;
  transport: string;
  flowState: string;
}

describe('baresip softphones registered over UDP, TCP and TLS', () => {
  let rig: PhoneRig;
  let server: RunningServer;
  let events: EventStream;
  let udp: Baresip;
  let tcp: Baresip;
  let tls: Baresip;

  const apiEvent = (name: string, match?: (e: ApiEvent) => boolean): Promise<ApiEvent> => rig.apiEvent(name, match);
  const calls = (): Promise<CallView[]> => rig.calls<CallView>();
  const ring = (caller: Baresip, callee: Baresip): ReturnType<PhoneRig['ring']> => rig.ring(caller, callee);
  const establish = (caller: Baresip, callee: Baresip): ReturnType<PhoneRig['establish']> => rig.establish(caller, callee);

  /**
   * The messages of one dialog (by Call-ID, which is baresip's call `id`) that a phone received
   * or sent, once there is at least one (the trace may lag the phone's events).
   */
  const dialogTrace = (phone: Baresip, dir: 'in' | 'out', callId: string | undefined, match: (m: TracedMessage) => boolean): Promise<TracedMessage[]> =>
    phone.waitTraced(dir, (m) => callIdOf(m) === callId && match(m));

  beforeAll(async () => {
    rig = await PhoneRig.start([
      { dn: '3001', transport: 'UDP' },
      { dn: '3002', transport: 'TCP' },
      { dn: '3003', transport: 'TLS' },
    ]);
    ({ server, events } = rig);
    [udp, tcp, tls] = rig.phones as [Baresip, Baresip, Baresip];
  });

  afterAll(async () => {
    await rig?.stop();
  });

  beforeEach(() => rig.beginTest());
  afterEach(async (ctx) => rig.endTest(ctx.task.name));

  it('each phone registers over its own transport: GET /dns/{dn} shows its Contact with that transport, EventRegistered says so, the phone saw 200 OK', async () => {
    for (const phone of [udp, tcp, tls]) {
      const dn = await getJson<{ state: string; contacts: ContactView[] }>(server.api, `/dns/${phone.dn}`);
      expect(dn.body.state).toBe('in-service');
      expect(dn.body.contacts).toHaveLength(1);
      const [contact] = dn.body.contacts;
      expect(contact).toMatchObject({ transport: phone.transport, flowState: 'live' });
      // baresip's Contact: user "DN-0x…", its own address and listening port (TLS: port + 1).
      const port = phone.transport === 'TLS' ? phone.sipPort + 1 : phone.sipPort;
      expect(contact?.contact).toMatch(new RegExp(`^sip:${phone.dn}-0x[0-9a-f]+@127\\.0\\.0\\.1:${port}${phone.transport === 'UDP' ? '$' : `;transport=${phone.transport.toLowerCase()}$`}`));
      expect(events.events.find((e) => e.event === 'EventRegistered' && e.dn === phone.dn)).toMatchObject({ transport: phone.transport, refresh: false });

      const register = await phone.waitTraced('out', (m) => isRequest(m, 'REGISTER'));
      expect(register[0]?.transport).toBe(phone.transport);
      expect(await phone.waitTraced('in', (m) => isResponse(m, 200, 'REGISTER'))).toHaveLength(1);
      expect((await phone.waitEvent('REGISTER_OK')).param).toBe('200 OK');
    }
  });

  it('UDP calls TLS, the callee answers, the caller hangs up: both phones see the call established then closed, the callee gets the BYE, cause normal', async () => {
    const { callId, outgoing, incoming } = await establish(udp, tls);
    expect(incoming.peeruri).toMatch(/^sip:3001@/);
    // The INVITE reached the TLS phone on its registered connection, addressed to its Contact, To the DN at the server.
    const [invite] = await dialogTrace(tls, 'in', incoming.id, (m) => isRequest(m, 'INVITE'));
    expect(invite?.transport).toBe('TLS');
    expect(invite?.startLine).toMatch(/^INVITE sip:3003-0x[0-9a-f]+@127\.0\.0\.1:\d+;transport=tls SIP\/2\.0$/);
    expect(invite?.headers.to?.[0]).toMatch(/^<sip:3003@127\.0\.0\.1(:\d+)?>$/);
    expect(await dialogTrace(udp, 'in', outgoing.id, (m) => isResponse(m, 180, 'INVITE'))).toHaveLength(1);
    expect(await dialogTrace(udp, 'in', outgoing.id, (m) => isResponse(m, 200, 'INVITE'))).toHaveLength(1);

    const listed = await calls();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: callId, from: '3001', to: '3003', state: 'established', held: false, legs: { caller: { transport: 'UDP' }, callee: { transport: 'TLS' } } });
    expect(await apiEvent('EventRinging', (e) => e.callId === callId)).toMatchObject({ dn: '3003' });
    expect((await udp.calls())[0]).toContain('ESTABLISHED');
    expect((await tls.calls())[0]).toContain('ESTABLISHED');

    const [udpMark, tlsMark] = [udp.mark(), tls.mark()];
    await udp.command('hangup');
    // "Connection reset by peer" is baresip's word for a BYE received; the one that hung up says "by user".
    expect((await tls.waitEvent('CALL_CLOSED', () => true, 5000, tlsMark)).param).toBe('Connection reset by peer');
    expect((await udp.waitEvent('CALL_CLOSED', () => true, 5000, udpMark)).param).toBe('Connection reset by user');
    expect(await dialogTrace(tls, 'in', incoming.id, (m) => isRequest(m, 'BYE'))).toHaveLength(1);
    expect(await apiEvent('EventReleased', (e) => e.callId === callId)).toMatchObject({ cause: 'normal', from: '3001', to: '3003' });
    expect(await calls()).toEqual([]);
    expect(await tls.calls()).toEqual([]);
  });

  it('TCP calls UDP, the callee hangs up: the caller gets the BYE over TCP and sees the call closed, cause normal', async () => {
    const { callId, outgoing } = await establish(tcp, udp);
    expect((await calls())[0]).toMatchObject({ id: callId, from: '3002', to: '3001', legs: { caller: { transport: 'TCP' }, callee: { transport: 'UDP' } } });

    const tcpMark = tcp.mark();
    await udp.command('hangup');
    expect((await tcp.waitEvent('CALL_CLOSED', () => true, 5000, tcpMark)).param).toBe('Connection reset by peer');
    const [bye] = await dialogTrace(tcp, 'in', outgoing.id, (m) => isRequest(m, 'BYE'));
    expect(bye?.transport).toBe('TCP');
    expect(await dialogTrace(tcp, 'out', outgoing.id, (m) => isResponse(m, 200, 'BYE'))).toHaveLength(1);
    expect(await apiEvent('EventReleased', (e) => e.callId === callId)).toMatchObject({ cause: 'normal' });
    expect(await calls()).toEqual([]);
  });

  it('TLS calls TCP and hangs up while it rings: CANCEL, the callee sees the call closed, the caller 487, cause cancelled', async () => {
    const [tlsMark, tcpMark] = [tls.mark(), tcp.mark()];
    const { incoming, ringing } = await ring(tls, tcp);
    const [listed] = await calls();
    expect(listed).toMatchObject({ from: '3003', to: '3002' });
    expect(listed?.state).not.toBe('established');
    await tls.command('hangup');

    const closed = await tcp.waitEvent('CALL_CLOSED', () => true, 5000, tcpMark);
    expect(closed.id).toBe(incoming.id);
    expect(await dialogTrace(tls, 'out', ringing.id, (m) => isRequest(m, 'CANCEL'))).toHaveLength(1);
    expect(await dialogTrace(tcp, 'in', incoming.id, (m) => isRequest(m, 'CANCEL'))).toHaveLength(1);
    // The callee's phone answered its INVITE 487 (RFC 3261 §9.2), and the caller got a 487 too.
    expect(await dialogTrace(tcp, 'out', incoming.id, (m) => isResponse(m, 487, 'INVITE'))).toHaveLength(1);
    expect(await dialogTrace(tls, 'in', ringing.id, (m) => isResponse(m, 487, 'INVITE'))).toHaveLength(1);
    expect(tls.events.slice(tlsMark).some((e) => e.type === 'CALL_ESTABLISHED')).toBe(false);
    expect(await apiEvent('EventReleased', (e) => e.from === '3003')).toMatchObject({ cause: 'cancelled', to: '3002' });
    expect(await calls()).toEqual([]);
  });

  it('busy: the callee rejects the ringing call (baresip hangup answers 486), the caller sees 486 and the call closed, cause busy', async () => {
    const udpMark = udp.mark();
    const { incoming } = await ring(udp, tcp);
    await tcp.command('hangup');

    expect(await dialogTrace(tcp, 'out', incoming.id, (m) => isResponse(m, 486, 'INVITE'))).toHaveLength(1);
    const closed = await udp.waitEvent('CALL_CLOSED', () => true, 5000, udpMark);
    expect(closed.param).toMatch(/^486 /);
    expect(await apiEvent('EventReleased', (e) => e.from === '3001' && e.to === '3002')).toMatchObject({ cause: 'busy', status: 486 });
    expect(await calls()).toEqual([]);
  });

  it('hold and resume from the phone: the other phone gets the re-INVITEs (sendonly, then sendrecv), EventHeld and EventRetrieved name the holder, GET /calls shows held', async () => {
    const { callId, incoming } = await establish(tls, udp);
    const udpMark = udp.mark();
    const reinvites = (): TracedMessage[] => udp.traced('in', (m) => callIdOf(m) === incoming.id && isRequest(m, 'INVITE')).slice(1);

    expect((await tls.command('hold')).ok).toBe(true);
    expect(await apiEvent('EventHeld', (e) => e.callId === callId)).toMatchObject({ dn: '3003', otherDn: '3001' });
    await waitFor(() => reinvites().length === 1, 'the hold re-INVITE at the held phone');
    expect(reinvites()[0]?.body).toMatch(/^a=sendonly\r?$/m);
    expect((await calls())[0]?.held).toBe(true);

    expect((await tls.command('resume')).ok).toBe(true);
    expect(await apiEvent('EventRetrieved', (e) => e.callId === callId)).toMatchObject({ dn: '3003', otherDn: '3001' });
    await waitFor(() => reinvites().length === 2, 'the resume re-INVITE at the held phone');
    expect(reinvites()[1]?.body).toMatch(/^a=sendrecv\r?$/m);
    expect((await calls())[0]?.held).toBe(false);

    await tls.command('hangup');
    expect((await udp.waitEvent('CALL_CLOSED', () => true, 5000, udpMark)).param).toBe('Connection reset by peer');
    expect(await apiEvent('EventReleased', (e) => e.callId === callId)).toMatchObject({ cause: 'normal' });
  });

  it('hold and retrieve from the API: the caller\'s phone gets re-INVITEs (inactive, then sendrecv) and answers them, EventHeld and EventRetrieved name the callee', async () => {
    const { callId, outgoing } = await establish(udp, tcp);
    const udpMark = udp.mark();
    // The server's own re-INVITEs in the caller's dialog (the caller's first INVITE was sent, not received).
    const reinvites = (): TracedMessage[] => udp.traced('in', (m) => callIdOf(m) === outgoing.id && isRequest(m, 'INVITE'));
    const post = async (path: string): Promise<{ status: number; body: unknown }> => {
      const res = await fetch(`${server.api}${path}`, { method: 'POST' });
      return { status: res.status, body: await res.json() };
    };

    // By default the callee of a call that came in holds; the other party (the caller) is re-INVITEd.
    expect(await post(`/calls/${callId}/hold`)).toEqual({ status: 200, body: { id: callId, held: true, dn: '3002' } });
    expect(await apiEvent('EventHeld', (e) => e.callId === callId)).toMatchObject({ dn: '3002', otherDn: '3001' });
    // The phone's trace comes through a pipe: it may lag the API by a moment.
    await waitFor(() => reinvites().length === 1, 'the hold re-INVITE at the caller');
    expect(reinvites()[0]?.body).toMatch(/^a=inactive\r?$/m);
    expect(await dialogTrace(udp, 'out', outgoing.id, (m) => isResponse(m, 200, 'INVITE') && m.headers.cseq?.[0] === reinvites()[0]?.headers.cseq?.[0])).toHaveLength(1);
    expect((await calls())[0]?.held).toBe(true);

    expect(await post(`/calls/${callId}/retrieve`)).toEqual({ status: 200, body: { id: callId, held: false, dn: '3002' } });
    expect(await apiEvent('EventRetrieved', (e) => e.callId === callId)).toMatchObject({ dn: '3002', otherDn: '3001' });
    await waitFor(() => reinvites().length === 2, 'the retrieve re-INVITE at the caller');
    expect(reinvites()[1]?.body).toMatch(/^a=sendrecv\r?$/m);
    expect((await calls())[0]?.held).toBe(false);
    // The phones still have the call: it was never torn down.
    expect((await udp.calls())[0]).toContain('ESTABLISHED');

    await tcp.command('hangup');
    expect((await udp.waitEvent('CALL_CLOSED', () => true, 5000, udpMark)).param).toBe('Connection reset by peer');
    expect(await apiEvent('EventReleased', (e) => e.callId === callId)).toMatchObject({ cause: 'normal' });
  });
});
