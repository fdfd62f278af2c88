import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getJson, type ApiEvent } from '../support/api-client.js';
import type { Baresip, BaresipEvent, TracedMessage } from '../support/baresip.js';
import { callIdOf, isRequest, isResponse, PhoneRig } from '../support/baresip-rig.js';
import type { RunningServer } from '../support/server-process.js';

/*
 * Transfers and MakeCall with real softphones: four baresip 1.0 processes, 3101 (UDP), 3102
 * (TCP), 3103 (TLS) and 3104 (UDP), so every call crosses transports. Blind transfer from a
 * phone (its REFER carried out by the server: 202, sipfrag NOTIFYs, the transferee re-INVITEd
 * with the target's session), a transfer whose target rejects, MakeCall (answered quickly,
 * and answered past 16·T1: the originator ACKed with a held answer, then re-INVITEd), and a
 * transfer asked over the API (the server REFERs the transferee, which calls the target
 * itself). Each test asserts what every phone saw (its ctrl_tcp events and SIP trace) and what
 * the control API saw (/events, /calls, /calls/{id}, /call-records). The server and phones
 * start once; every test ends its calls.
 */

interface CallView {
  id: string;
  from: string;
  to: string;
  state: string;
  held: boolean;
  legs: { caller: { transport: string | null; callId: string | null }; callee: { transport: string | null; callId: string | null } };
}
interface ReleasedCallView extends CallView {
  cause: string | null;
  status: number | null;
  releasedBy: string | null;
  transferredTo: string | null;
  newCallId: string | null;
}

const header = (m: TracedMessage | undefined, name: string): string => m?.headers[name]?.[0] ?? '';
/** The SDP's audio line up to its port ("m=audio 8922"): which phone's media a body describes. */
const audioOf = (body: string | undefined): string => /^m=audio \d+/m.exec(body ?? '')?.[0] ?? 'no m=audio line';

describe('baresip softphones: transfer and MakeCall', () => {
  let rig: PhoneRig;
  let server: RunningServer;
  let udp: Baresip;
  let tcp: Baresip;
  let tls: Baresip;
  let udp2: Baresip;

  const apiEvent = (name: string, match?: (e: ApiEvent) => boolean, ms?: number): Promise<ApiEvent> => rig.apiEvent(name, match, ms);
  const calls = (): Promise<CallView[]> => rig.calls<CallView>();
  const callById = async (id: string): Promise<ReleasedCallView> => (await getJson<ReleasedCallView>(server.api, `/calls/${id}`)).body;
  const establish = (caller: Baresip, callee: Baresip): ReturnType<PhoneRig['establish']> => rig.establish(caller, callee);
  const post = async (path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${server.api}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  /** The messages of one dialog (by Call-ID, baresip's call `id`) one way, once there is at least one (the trace may lag the events). */
  const dialogTrace = (phone: Baresip, dir: 'in' | 'out', callId: string | undefined, match: (m: TracedMessage) => boolean, ms?: number): Promise<TracedMessage[]> =>
    phone.waitTraced(dir, (m) => callIdOf(m) === callId && match(m), ms);
  /** The NOTIFYs a phone received in a dialog, once there are `count`. */
  const notifies = (phone: Baresip, callId: string | undefined, count: number): Promise<TracedMessage[]> =>
    phone.waitTracedCount('in', (m) => callIdOf(m) === callId && isRequest(m, 'NOTIFY'), count);
  /** The phone's events of `type` since `since`. */
  const eventsOf = (phone: Baresip, type: string, since: number): BaresipEvent[] => phone.events.slice(since).filter((e) => e.type === type);

  beforeAll(async () => {
    rig = await PhoneRig.start([
      { dn: '3101', transport: 'UDP' },
      { dn: '3102', transport: 'TCP' },
      { dn: '3103', transport: 'TLS' },
      { dn: '3104', transport: 'UDP' },
    ]);
    server = rig.server;
    [udp, tcp, tls, udp2] = rig.phones as [Baresip, Baresip, Baresip, Baresip];
  });

  afterAll(async () => {
    await rig?.stop();
  });

  beforeEach(() => rig.beginTest());
  afterEach(async (ctx) => rig.endTest(ctx.task.name));

  it('blind transfer from the phone: UDP calls TCP, TCP transfers it to TLS; REFER → 202, NOTIFY 100 then 200; the UDP phone is re-INVITEd with the TLS phone\'s session; the old call ends as transferred', async () => {
    const [a, b, c] = [udp, tcp, tls];
    const { callId, outgoing, incoming } = await establish(a, b);
    const [aMark, bMark, cMark] = [a.mark(), b.mark(), c.mark()];

    expect((await b.transfer(c.dn)).ok).toBe(true);
    // B's REFER in its dialog with the server, accepted; the implicit subscription's first NOTIFY says 100 Trying.
    const [refer] = await dialogTrace(b, 'out', incoming.id, (m) => isRequest(m, 'REFER'));
    expect(header(refer, 'refer-to')).toMatch(/^<?sip:3103@127\.0\.0\.1/);
    expect(await dialogTrace(b, 'in', incoming.id, (m) => isResponse(m, 202, 'REFER'))).toHaveLength(1);
    const [trying] = await notifies(b, incoming.id, 1);
    expect(trying?.body).toBe('SIP/2.0 100 Trying\r\n');
    expect(header(trying, 'event')).toBe('refer');
    expect(header(trying, 'content-type')).toBe('message/sipfrag;version=2.0');
    expect(header(trying, 'subscription-state')).toMatch(/^active/);
    const dialing = await apiEvent('EventDialing', (e) => e.from === '3101' && e.to === '3103');
    const newCallId = String(dialing.callId);
    expect(newCallId).not.toBe(callId);

    // C rings with an offerless INVITE from the transferee's DN, and answers with its offer.
    const ringing = await c.waitEvent('CALL_INCOMING', () => true, 5000, cMark);
    expect(ringing.peeruri).toMatch(/^sip:3101@/);
    const [invite] = await dialogTrace(c, 'in', ringing.id, (m) => isRequest(m, 'INVITE'));
    expect(invite?.transport).toBe('TLS');
    expect(invite?.body).toBe('');
    expect((await c.command('accept')).ok).toBe(true);
    await c.waitEvent('CALL_ESTABLISHED', () => true, 5000, cMark);
    const [cOffer] = await dialogTrace(c, 'out', ringing.id, (m) => isResponse(m, 200, 'INVITE'));

    // A is re-INVITEd in its own dialog (the call it made to B) with C's session, answers, and its answer reaches C in the ACK.
    const [reinvite] = await dialogTrace(a, 'in', outgoing.id, (m) => isRequest(m, 'INVITE'));
    expect(audioOf(reinvite?.body)).toBe(audioOf(cOffer?.body));
    const [aAnswer] = await dialogTrace(a, 'out', outgoing.id, (m) => isResponse(m, 200, 'INVITE'));
    expect(await dialogTrace(a, 'in', outgoing.id, (m) => isRequest(m, 'ACK'))).toHaveLength(1);
    const [cAck] = await dialogTrace(c, 'in', ringing.id, (m) => isRequest(m, 'ACK'));
    expect(audioOf(cAck?.body)).toBe(audioOf(aAnswer?.body));

    // B is told 200 and hangs up by itself: baresip closes the call as "Call transfered" and sends BYE.
    const done = (await notifies(b, incoming.id, 2))[1];
    expect(done?.body).toBe('SIP/2.0 200 OK\r\n');
    expect(header(done, 'subscription-state')).toMatch(/^terminated/);
    expect((await b.waitEvent('CALL_CLOSED', () => true, 5000, bMark)).param).toBe('Call transfered');
    expect(await dialogTrace(b, 'out', incoming.id, (m) => isRequest(m, 'BYE'))).toHaveLength(1);
    expect(await dialogTrace(b, 'in', incoming.id, (m) => isResponse(m, 200, 'BYE'))).toHaveLength(1);
    expect(await b.calls()).toEqual([]);

    const established = await apiEvent('EventEstablished', (e) => e.callId === newCallId);
    expect(established).toMatchObject({ from: '3101', to: '3103', dn: '3103' });
    expect(await apiEvent('EventReleased', (e) => e.callId === callId)).toMatchObject({
      cause: 'normal',
      releasedBy: 'callee',
      dn: '3102',
      transferredTo: '3103',
      newCallId,
    });
    expect(await callById(callId)).toMatchObject({ state: 'released', cause: 'normal', from: '3101', to: '3102', transferredTo: '3103', newCallId });
    const records = (await getJson<ReleasedCallView[]>(server.api, '/call-records?dn=3102&limit=5')).body;
    expect(records.find((r) => r.id === callId)).toMatchObject({ transferredTo: '3103', newCallId });
    // The new call from A to C, on A's old dialog with the server.
    const listed = await calls();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: newCallId, from: '3101', to: '3103', state: 'established', legs: { caller: { transport: 'UDP', callId: outgoing.id }, callee: { transport: 'TLS' } } });
    // A never left its call: no new call, no close; both A and C talk.
    expect(eventsOf(a, 'CALL_CLOSED', aMark)).toEqual([]);
    expect(eventsOf(a, 'CALL_INCOMING', aMark)).toEqual([]);
    expect((await a.calls())[0]).toContain('ESTABLISHED');
    expect((await c.calls())[0]).toContain('ESTABLISHED');

    // C hangs up: A gets the BYE in its original dialog.
    await c.command('hangup');
    expect((await a.waitEvent('CALL_CLOSED', () => true, 5000, aMark)).param).toBe('Connection reset by peer');
    expect(await dialogTrace(a, 'in', outgoing.id, (m) => isRequest(m, 'BYE'))).toHaveLength(1);
    expect(await apiEvent('EventReleased', (e) => e.callId === newCallId)).toMatchObject({ cause: 'normal', releasedBy: 'callee', dn: '3103' });
    expect(await calls()).toEqual([]);
  });

  /*
   * baresip 1.0 drops a call whose transfer failed: its menu module answers the failure NOTIFY
   * 200, logs "menu: transfer failure: 486 …" and frees the call, which sends BYE (later
   * baresips take the call off hold instead). So the transferor ends the call itself right
   * after it is told; what the server owes is that the transferee saw nothing of the failed
   * transfer (no re-INVITE, no BYE of its own) and that the call ends as a plain hang-up.
   */
  it('blind transfer to a target that rejects: UDP calls TLS, TLS transfers it to TCP, which answers 486; the transferor is told 486 (TRANSFER_FAILED), the transferee is left untouched; baresip 1.0 then hangs up, cause normal, not transferred', async () => {
    const [a, b, c] = [udp2, tls, tcp];
    const { callId, outgoing, incoming } = await establish(a, b);
    const [aMark, bMark, cMark] = [a.mark(), b.mark(), c.mark()];

    expect((await b.transfer(c.dn)).ok).toBe(true);
    expect(await dialogTrace(b, 'in', incoming.id, (m) => isResponse(m, 202, 'REFER'))).toHaveLength(1);
    const ringing = await c.waitEvent('CALL_INCOMING', () => true, 5000, cMark);
    expect(ringing.peeruri).toMatch(/^sip:3104@/);
    // baresip's hangup on a ringing call rejects it.
    await c.command('hangup');
    expect(await dialogTrace(c, 'out', ringing.id, (m) => isResponse(m, 486, 'INVITE'))).toHaveLength(1);
    const failedCall = await apiEvent('EventReleased', (e) => e.from === '3104' && e.to === '3102');
    expect(failedCall).toMatchObject({ cause: 'busy', status: 486, releasedBy: 'callee' });

    // The transferor is told: 100 Trying, then the failure with the subscription over.
    const [trying, failed] = await notifies(b, incoming.id, 2);
    expect(trying?.body).toBe('SIP/2.0 100 Trying\r\n');
    expect(failed?.body).toMatch(/^SIP\/2\.0 486 /);
    expect(header(failed, 'subscription-state')).toMatch(/^terminated/);
    expect(await dialogTrace(b, 'out', incoming.id, (m) => isResponse(m, 200, 'NOTIFY') && header(m, 'cseq') === header(failed, 'cseq'))).toHaveLength(1);
    expect((await b.waitEvent('TRANSFER_FAILED', () => true, 5000, bMark)).param).toMatch(/^486 /);

    // baresip 1.0 hangs up its call on that (see above): its BYE, after the NOTIFY, ends the call.
    await dialogTrace(b, 'out', incoming.id, (m) => isRequest(m, 'BYE'));
    const bSent = b.traced('out', (m) => callIdOf(m) === incoming.id);
    const notifyOk = bSent.findIndex((m) => isResponse(m, 200, 'NOTIFY') && header(m, 'cseq') === header(failed, 'cseq'));
    expect(bSent.findIndex((m) => isRequest(m, 'BYE'))).toBeGreaterThan(notifyOk);
    expect(await dialogTrace(b, 'in', incoming.id, (m) => isResponse(m, 200, 'BYE'))).toHaveLength(1);
    expect(await b.calls()).toEqual([]);

    // The transferee was never touched by the transfer: the first thing it got in its dialog is the BYE B sent.
    expect((await a.waitEvent('CALL_CLOSED', () => true, 5000, aMark)).param).toBe('Connection reset by peer');
    await dialogTrace(a, 'in', outgoing.id, (m) => isRequest(m, 'BYE'));
    const aGot = a.traced('in', (m) => callIdOf(m) === outgoing.id && m.startLine.startsWith('SIP/') === false);
    expect(aGot.map((m) => m.startLine.split(' ')[0])).toEqual(['BYE']);
    expect(eventsOf(a, 'CALL_INCOMING', aMark)).toEqual([]);

    // Released by the transferor (the callee), a normal end, not a transfer; no new call is left.
    const released = await apiEvent('EventReleased', (e) => e.callId === callId);
    expect(released).toMatchObject({ cause: 'normal', releasedBy: 'callee', dn: '3103' });
    expect(released.transferredTo).toBeUndefined();
    expect(await callById(callId)).toMatchObject({ state: 'released', cause: 'normal', from: '3104', to: '3103', transferredTo: null, newCallId: null });
    expect(await callById(String(failedCall.callId))).toMatchObject({ state: 'released', cause: 'busy', from: '3104', to: '3102' });
    expect(await calls()).toEqual([]);
  });

  it('MakeCall from TLS to UDP: from rings with an offerless INVITE and accepts, to rings and accepts; from gets to\'s answer in the ACK; to hangs up, released by the callee', async () => {
    const [a, b] = [tls, udp];
    const [aMark, bMark] = [a.mark(), b.mark()];
    const made = await post('/calls', { from: a.dn, to: b.dn });
    expect(made.status).toBe(201);
    expect(made.json).toMatchObject({ from: '3103', to: '3101', state: 'ringing' });
    const id = String(made.json.id);

    // from's phone rings: the call presents itself as coming from to.
    const atA = await a.waitEvent('CALL_INCOMING', () => true, 5000, aMark);
    expect(atA.peeruri).toMatch(/^sip:3101@/);
    const [invite] = await dialogTrace(a, 'in', atA.id, (m) => isRequest(m, 'INVITE'));
    expect(invite?.transport).toBe('TLS');
    expect(invite?.body).toBe('');
    expect(header(invite, 'to')).toMatch(/^<sip:3103@127\.0\.0\.1(:\d+)?>$/);
    expect(await apiEvent('EventRinging', (e) => e.callId === id && e.dn === '3103')).toBeTruthy();
    expect(eventsOf(b, 'CALL_INCOMING', bMark)).toEqual([]);
    expect((await a.command('accept')).ok).toBe(true);
    const [aOffer] = await dialogTrace(a, 'out', atA.id, (m) => isResponse(m, 200, 'INVITE'));

    // Then to's phone rings with from's offer, from from's DN.
    const atB = await b.waitEvent('CALL_INCOMING', () => true, 5000, bMark);
    expect(atB.peeruri).toMatch(/^sip:3103@/);
    const [bInvite] = await dialogTrace(b, 'in', atB.id, (m) => isRequest(m, 'INVITE'));
    expect(audioOf(bInvite?.body)).toBe(audioOf(aOffer?.body));
    expect(await apiEvent('EventDialing', (e) => e.callId === id && e.dn === '3103' && e.otherDn === '3101')).toBeTruthy();
    expect((await b.command('accept')).ok).toBe(true);
    await b.waitEvent('CALL_ESTABLISHED', () => true, 5000, bMark);
    await a.waitEvent('CALL_ESTABLISHED', () => true, 5000, aMark);
    const [bAnswer] = await dialogTrace(b, 'out', atB.id, (m) => isResponse(m, 200, 'INVITE'));
    const [ack] = await dialogTrace(a, 'in', atA.id, (m) => isRequest(m, 'ACK'));
    expect(audioOf(ack?.body)).toBe(audioOf(bAnswer?.body));
    expect(ack?.body).toMatch(/^a=sendrecv\r?$/m);
    // Quick: no held answer, no re-INVITE.
    expect(a.traced('in', (m) => callIdOf(m) === atA.id && isRequest(m, 'INVITE'))).toHaveLength(1);

    expect(await apiEvent('EventEstablished', (e) => e.callId === id)).toMatchObject({ from: '3103', to: '3101' });
    const listed = await calls();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id, from: '3103', to: '3101', state: 'established', legs: { caller: { transport: 'TLS', callId: atA.id }, callee: { transport: 'UDP' } } });
    expect((await a.calls())[0]).toContain('ESTABLISHED');
    expect((await b.calls())[0]).toContain('ESTABLISHED');

    await b.command('hangup');
    expect((await a.waitEvent('CALL_CLOSED', () => true, 5000, aMark)).param).toBe('Connection reset by peer');
    expect(await dialogTrace(a, 'in', atA.id, (m) => isRequest(m, 'BYE'))).toHaveLength(1);
    expect(await apiEvent('EventReleased', (e) => e.callId === id)).toMatchObject({ cause: 'normal', releasedBy: 'callee', dn: '3101' });
    expect(await callById(id)).toMatchObject({ state: 'released', cause: 'normal', releasedBy: 'callee' });
    expect(await calls()).toEqual([]);
  });

  it('API transfer: UDP calls TCP; POST /calls/{id}/transfer {to: TLS, dn: TCP} REFERs the UDP phone, which calls TLS itself and reports 200; TCP gets BYE at once, the old dialog ends', async () => {
    const [a, b, c] = [udp2, tcp, tls];
    const { callId, outgoing, incoming } = await establish(a, b);
    const [aMark, bMark, cMark] = [a.mark(), b.mark(), c.mark()];

    // baresip lists REFER in Allow, so the server REFERs the transferee (A) rather than re-INVITing it.
    const transfer = await post(`/calls/${callId}/transfer`, { to: '3103', dn: '3102' });
    expect(transfer).toEqual({ status: 202, json: { id: callId, method: 'refer', transferee: '3104', to: '3103' } });
    const [refer] = await dialogTrace(a, 'in', outgoing.id, (m) => isRequest(m, 'REFER'));
    expect(header(refer, 'refer-to')).toMatch(/^<sip:3103@127\.0\.0\.1:\d+;transport=udp>$/);
    expect(header(refer, 'referred-by')).toMatch(/^<sip:3102@/);
    expect(await dialogTrace(a, 'out', outgoing.id, (m) => isResponse(m, 202, 'REFER'))).toHaveLength(1);
    expect((await a.waitEvent('TRANSFER', () => true, 5000, aMark)).param).toMatch(/sip:3103@/);

    // The transferor is done with once the REFER is accepted.
    expect((await b.waitEvent('CALL_CLOSED', () => true, 5000, bMark)).param).toBe('Connection reset by peer');
    const [bye] = await dialogTrace(b, 'in', incoming.id, (m) => isRequest(m, 'BYE'));
    expect(header(bye, 'reason')).toBe('SIP;cause=200;text="call transferred"');

    // A calls C itself: a new dialog of its own.
    const ringing = await c.waitEvent('CALL_INCOMING', () => true, 5000, cMark);
    expect(ringing.peeruri).toMatch(/^sip:3104@/);
    const newDialog = (await a.waitEvent('CALL_RINGING', () => true, 5000, aMark)).id;
    expect(newDialog).not.toBe(outgoing.id);
    const [aInvite] = await dialogTrace(a, 'out', newDialog, (m) => isRequest(m, 'INVITE'));
    expect(aInvite?.startLine).toMatch(/^INVITE sip:3103@127\.0\.0\.1:\d+;transport=udp SIP\/2\.0$/);
    expect((await c.command('accept')).ok).toBe(true);
    await c.waitEvent('CALL_ESTABLISHED', () => true, 5000, cMark);
    const aEstablished = await a.waitEvent('CALL_ESTABLISHED', () => true, 5000, aMark);
    expect(aEstablished.id).toBe(newDialog);
    const newCall = await apiEvent('EventEstablished', (e) => e.from === '3104' && e.to === '3103');

    // A reports the outcome in the old dialog (100, then 200 with the subscription over); the server then ends that dialog.
    const reports = await a.waitTraced('out', (m) => callIdOf(m) === outgoing.id && isRequest(m, 'NOTIFY') && m.body.startsWith('SIP/2.0 200'));
    expect(header(reports[0], 'subscription-state')).toMatch(/^terminated/);
    const progress = a.traced('out', (m) => callIdOf(m) === outgoing.id && isRequest(m, 'NOTIFY')).map((m) => m.body.trim());
    expect([progress[0], progress.at(-1)]).toEqual(['SIP/2.0 100 Trying', 'SIP/2.0 200 OK']);
    const oldClosed = await a.waitEvent('CALL_CLOSED', (e) => e.id === outgoing.id, 5000, aMark);
    expect(oldClosed.param).toBe('Connection reset by peer');
    expect(await dialogTrace(a, 'in', outgoing.id, (m) => isRequest(m, 'BYE'))).toHaveLength(1);
    expect(await apiEvent('EventReleased', (e) => e.callId === callId)).toMatchObject({ cause: 'normal', transferredTo: '3103' });
    expect(await callById(callId)).toMatchObject({ state: 'released', cause: 'normal', from: '3104', to: '3102', transferredTo: '3103' });

    // A and C talk in the new call.
    const listed = await calls();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: newCall.callId, from: '3104', to: '3103', state: 'established', legs: { caller: { transport: 'UDP', callId: newDialog }, callee: { transport: 'TLS' } } });
    expect(await a.calls()).toHaveLength(1);
    expect((await a.calls())[0]).toContain('ESTABLISHED');
    expect((await c.calls())[0]).toContain('ESTABLISHED');

    await a.command('hangup');
    expect((await c.waitEvent('CALL_CLOSED', () => true, 5000, cMark)).param).toBe('Connection reset by peer');
    expect(await apiEvent('EventReleased', (e) => e.callId === newCall.callId)).toMatchObject({ cause: 'normal', releasedBy: 'caller', dn: '3104' });
    expect(await calls()).toEqual([]);
  });

  it('MakeCall whose to rings 10 s (past 16·T1 = 8 s): from is ACKed with a held answer (a=inactive) and stays in the call, then is re-INVITEd with to\'s session; both talk', async () => {
    const [a, b] = [udp, tcp];
    const [aMark, bMark] = [a.mark(), b.mark()];
    const made = await post('/calls', { from: a.dn, to: b.dn });
    expect(made.status).toBe(201);
    const id = String(made.json.id);
    const atA = await a.waitEvent('CALL_INCOMING', () => true, 5000, aMark);
    expect((await a.command('accept')).ok).toBe(true);
    const answeredAt = Date.now();
    const atB = await b.waitEvent('CALL_INCOMING', () => true, 5000, bMark);

    // A's 2xx is ACKed before A gives up on it (64·T1 = 32 s), about 16·T1 after it was sent, with a held answer.
    const [ack] = await dialogTrace(a, 'in', atA.id, (m) => isRequest(m, 'ACK'), 12_000);
    const waited = Date.now() - answeredAt;
    expect(waited).toBeGreaterThan(7000);
    expect(waited).toBeLessThan(10_000);
    expect(ack?.body).toMatch(/^a=inactive\r?$/m);
    expect(audioOf(ack?.body)).toBe('m=audio 9');
    expect((await callById(id)).state).not.toBe('established');
    expect(eventsOf(a, 'CALL_CLOSED', aMark)).toEqual([]);
    expect((await a.calls())[0]).toContain('ESTABLISHED');

    // B answers about 10 s after it began to ring.
    await new Promise((r) => setTimeout(r, Math.max(0, atB.at + 10_000 - Date.now())));
    expect((await b.command('accept')).ok).toBe(true);
    await b.waitEvent('CALL_ESTABLISHED', () => true, 5000, bMark);
    const [bAnswer] = await dialogTrace(b, 'out', atB.id, (m) => isResponse(m, 200, 'INVITE'));
    // A gets B's session in a re-INVITE in the same dialog and takes it.
    const reinvite = (await a.waitTracedCount('in', (m) => callIdOf(m) === atA.id && isRequest(m, 'INVITE'), 2))[1];
    expect(audioOf(reinvite?.body)).toBe(audioOf(bAnswer?.body));
    expect(reinvite?.body).toMatch(/^a=sendrecv\r?$/m);
    expect(await dialogTrace(a, 'out', atA.id, (m) => isResponse(m, 200, 'INVITE') && header(m, 'cseq') === header(reinvite, 'cseq'))).toHaveLength(1);
    expect(await apiEvent('EventEstablished', (e) => e.callId === id)).toMatchObject({ from: '3101', to: '3102' });

    const listed = await calls();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id, from: '3101', to: '3102', state: 'established', held: false, legs: { caller: { transport: 'UDP', callId: atA.id }, callee: { transport: 'TCP' } } });
    expect(eventsOf(a, 'CALL_CLOSED', aMark)).toEqual([]);
    expect(eventsOf(b, 'CALL_CLOSED', bMark)).toEqual([]);
    expect((await a.calls())[0]).toContain('ESTABLISHED');
    expect((await b.calls())[0]).toContain('ESTABLISHED');

    await a.command('hangup');
    expect((await b.waitEvent('CALL_CLOSED', () => true, 5000, bMark)).param).toBe('Connection reset by peer');
    expect(await apiEvent('EventReleased', (e) => e.callId === id)).toMatchObject({ cause: 'normal', releasedBy: 'caller', dn: '3101' });
    expect(await calls()).toEqual([]);
  }, 30_000);
});
