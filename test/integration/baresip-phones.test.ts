import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { Baresip, type BaresipEvent, type TracedMessage } from '../support/baresip.js';
import { makeCertificates } from '../support/certs.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { waitFor } from '../support/wait-for.js';

/*
 * Real softphones through the server: three baresip 1.0 processes registered over UDP (3001),
 * TCP (3002) and TLS (3003), so every call crosses transports. Each scenario asserts what the
 * phones saw (their ctrl_tcp events and their SIP trace) and what the control API says (GET
 * /calls, GET /dns/{dn}, /events). The server and phones start once; every test ends its calls.
 */

const DNS = Object.fromEntries(['3001', '3002', '3003'].map((dn) => [dn, { type: 'extension', contact: '*' }]));

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

const isRequest = (m: TracedMessage, method: string): boolean => m.startLine.startsWith(`${method} `);
const isResponse = (m: TracedMessage, status: number, method: string): boolean =>
  m.startLine.startsWith(`SIP/2.0 ${status} `) && (m.headers.cseq?.[0] ?? '').endsWith(` ${method}`);
const callIdOf = (m: TracedMessage): string => m.headers['call-id']?.[0] ?? '';

describe('baresip softphones registered over UDP, TCP and TLS', () => {
  let server: RunningServer;
  let events: EventStream;
  let udp: Baresip;
  let tcp: Baresip;
  let tls: Baresip;
  const phones: Baresip[] = [];
  /** Index into the API events where the running test began. */
  let mark = 0;

  const apiEvent = (name: string, match: (e: ApiEvent) => boolean = () => true): Promise<ApiEvent> =>
    events.next((e) => e.event === name && match(e), 5000, mark);
  const calls = async (): Promise<CallView[]> => (await getJson<CallView[]>(server.api, '/calls')).body;

  /**
   * The messages of one dialog (by Call-ID, which is baresip's call `id`) that a phone received
   * or sent, once there is at least one (the trace may lag the phone's events).
   */
  const dialogTrace = (phone: Baresip, dir: 'in' | 'out', callId: string | undefined, match: (m: TracedMessage) => boolean): Promise<TracedMessage[]> =>
    phone.waitTraced(dir, (m) => callIdOf(m) === callId && match(m));

  /** `caller` dials `callee`'s DN; resolves once the callee's phone rings, with both phones' events. */
  async function ring(caller: Baresip, callee: Baresip): Promise<{ incoming: BaresipEvent; ringing: BaresipEvent }> {
    const [callerMark, calleeMark] = [caller.mark(), callee.mark()];
    expect((await caller.dial(callee.dn)).ok).toBe(true);
    const incoming = await callee.waitEvent('CALL_INCOMING', () => true, 5000, calleeMark);
    const ringing = await caller.waitEvent('CALL_RINGING', () => true, 5000, callerMark);
    return { incoming, ringing };
  }

  /** A call from `caller` to `callee`, answered; returns the server's call id and both phones' call events. */
  async function establish(caller: Baresip, callee: Baresip): Promise<{ callId: string; outgoing: BaresipEvent; incoming: BaresipEvent }> {
    const [callerMark, calleeMark] = [caller.mark(), callee.mark()];
    const { incoming } = await ring(caller, callee);
    expect((await callee.command('accept')).ok).toBe(true);
    const outgoing = await caller.waitEvent('CALL_ESTABLISHED', () => true, 5000, callerMark);
    await callee.waitEvent('CALL_ESTABLISHED', () => true, 5000, calleeMark);
    const established = await apiEvent('EventEstablished', (e) => e.from === caller.dn && e.to === callee.dn);
    return { callId: String(established.callId), outgoing, incoming };
  }

  /** Hangs up every call a phone still has (a failed test's), then waits for the server to have none. */
  async function endAllCalls(): Promise<void> {
    for (const phone of phones) {
      for (let i = 0; i < 5 && (await phone.calls()).length > 0; i++) await phone.command('hangup');
    }
    const end = Date.now() + 5000;
    while ((await calls()).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  }

  beforeAll(async () => {
    const certs = makeCertificates({ server: ['DNS:localhost', 'IP:127.0.0.1'] });
    const cert = certs.issued.server;
    if (!cert) throw new Error('no server certificate');
    server = await startServer({ tls: true, tserver: { 'sip-tls-cert': cert.cert, 'sip-tls-key': cert.key }, dns: DNS });
    events = await EventStream.open(server.api);
    const at = (port: number): { address: string; port: number } => ({ address: '127.0.0.1', port });
    udp = await Baresip.start({ dn: '3001', transport: 'UDP', server: at(server.port) });
    phones.push(udp);
    tcp = await Baresip.start({ dn: '3002', transport: 'TCP', server: at(server.port) });
    phones.push(tcp);
    // baresip 1.0 does not check the server's certificate (see test/support/baresip.ts); the CA is given as a phone would be configured.
    tls = await Baresip.start({ dn: '3003', transport: 'TLS', server: at(server.tlsPort), caFile: certs.ca });
    phones.push(tls);
  });

  afterAll(async () => {
    // Phones first, while the server can still take their un-REGISTER.
    for (const phone of phones) await phone.stop();
    events?.close();
    await server?.stop();
  });

  const phoneMarks = new Map<Baresip, number>();
  beforeEach(() => {
    mark = events.events.length;
    for (const phone of phones) phoneMarks.set(phone, phone.mark());
  });

  afterEach(async (ctx) => {
    // BARESIP_DEBUG=1: what each phone saw in this test (its call events).
    if (process.env.BARESIP_DEBUG) {
      console.log([ctx.task.name, ...phones.map((p) => `  ${p.dn}/${p.transport}: ${p.eventSummary(phoneMarks.get(p))}`)].join('\n'));
    }
    await endAllCalls();
  });

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
