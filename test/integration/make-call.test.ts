import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, type EventStream } from '../support/api-client.js';
import { SipPeer } from '../support/sip-peer.js';
import { serverFixture, type ServerFixture } from '../support/server-fixture.js';
import type { RunningServer } from '../support/server-process.js';

const OFFER = 'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n';

async function post(base: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/calls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const DNS = { '1001': { type: 'extension', contact: '*' }, '1002': { type: 'extension', contact: '*' } };

/**
 * For one describe block: the server and its events (serverFixture), with alice (1001, UDP)
 * and bob (1002) registered before its tests and closed after them.
 */
function makeCallRig(opts: { tserver?: Record<string, unknown>; aliceT1?: number; bobTransport: 'UDP' | 'TCP' }): {
  fx: ServerFixture;
  readonly alice: SipPeer;
  readonly bob: SipPeer;
} {
  const fx = serverFixture({ ...(opts.tserver ? { tserver: opts.tserver } : {}), dns: DNS });
  const peers: SipPeer[] = [];
  beforeAll(async () => {
    peers.push(await SipPeer.start({ transport: 'UDP', user: '1001', ...(opts.aliceT1 ? { t1: opts.aliceT1 } : {}) }));
    peers.push(await SipPeer.start({ transport: opts.bobTransport, user: '1002' }));
    for (const p of peers) await p.register(fx.server.port);
  });
  afterAll(async () => {
    for (const p of peers.splice(0)) await p.close();
  });
  const peer = (i: number): SipPeer => {
    const p = peers[i];
    if (!p) throw new Error('the phones are not up');
    return p;
  };
  return {
    fx,
    get alice() {
      return peer(0);
    },
    get bob() {
      return peer(1);
    },
  };
}

/** Third-party call control over HTTP with the scripted peer as both phones (RFC 3725 flow I). */
describe('MakeCall and ReleaseCall over HTTP', () => {
  const rig = makeCallRig({ bobTransport: 'TCP' });
  let server: RunningServer;
  let events: EventStream;
  let alice: SipPeer;
  let bob: SipPeer;

  beforeAll(() => {
    ({ server, events } = rig.fx);
    ({ alice, bob } = rig);
  });

  it('rings from, then connects it to to: from gets the ACK with to\'s answer; DELETE sends BYE to both', async () => {
    const made = await post(server.api, { from: '1001', to: '1002' });
    expect(made.status).toBe(201);
    const id = String(made.json.id);
    expect(made.json).toMatchObject({ from: '1001', to: '1002', state: 'ringing' });

    const atAlice = await alice.nextIncomingCall();
    expect(atAlice.invite.body.length).toBe(0); // offerless INVITE: the phone makes the offer
    atAlice.ring();
    await events.next((e) => e.event === 'EventRinging' && e.callId === id && e.dn === '1001');
    const aliceAck = atAlice.answer(OFFER);

    const atBob = await bob.nextIncomingCall();
    expect(atBob.invite.body.toString()).toBe(OFFER);
    await events.next((e) => e.event === 'EventDialing' && e.callId === id && e.dn === '1001' && e.otherDn === '1002');
    atBob.ring();
    await events.next((e) => e.event === 'EventRinging' && e.callId === id && e.dn === '1002');
    await atBob.answer(ANSWER);
    expect((await aliceAck).body.toString()).toBe(ANSWER);
    await events.next((e) => e.event === 'EventEstablished' && e.callId === id);
    expect((await getJson<{ state: string }>(server.api, `/calls/${id}`)).body.state).toBe('established');

    const released = await fetch(`${server.api}/calls/${id}`, { method: 'DELETE' });
    expect(released.status).toBe(200);
    await Promise.all([atAlice.byeReceived(), atBob.byeReceived()]);
    const ev = await events.next((e) => e.event === 'EventReleased' && e.callId === id);
    expect(ev.cause).toBe('administrative');
  });

  it('when to rejects, from gets its ACK and a BYE with a Reason; the call is released with the cause', async () => {
    const made = await post(server.api, { from: '1001', to: '1002' });
    const id = String(made.json.id);
    const atAlice = await alice.nextIncomingCall();
    const aliceAck = atAlice.answer(OFFER);
    const atBob = await bob.nextIncomingCall();
    await atBob.reject(486);
    await aliceAck;
    const bye = await atAlice.byeReceived();
    expect(bye.request.headers.find((h) => h.name === 'Reason')?.value).toMatch(/cause=486/);
    expect((await events.next((e) => e.event === 'EventReleased' && e.callId === id)).cause).toBe('busy');
  });

  it('from hangs up while to still rings: its BYE gets 200, to gets CANCEL, cause "cancelled"', async () => {
    const made = await post(server.api, { from: '1001', to: '1002' });
    const id = String(made.json.id);
    const atAlice = await alice.nextIncomingCall();
    const aliceAck = atAlice.answer(OFFER);
    const atBob = await bob.nextIncomingCall();
    atBob.ring();
    await events.next((e) => e.event === 'EventRinging' && e.callId === id && e.dn === '1002');
    expect((await atAlice.bye()).status).toBe(200);
    // Her 2xx is ACKed (without an answer: there is none) so she stops retransmitting it.
    expect((await aliceAck).body.length).toBe(0);
    const cancel = await atBob.cancelled();
    expect(cancel.headers.find((h) => h.name.toLowerCase() === 'reason')?.value).toBe('SIP;cause=487;text="caller hung up"');
    expect(await events.next((e) => e.event === 'EventReleased' && e.callId === id)).toMatchObject({ cause: 'cancelled', releasedBy: 'caller', dn: '1001' });
    expect((await getJson(server.api, `/calls/${id}`)).body).toMatchObject({ state: 'released', cause: 'cancelled', from: '1001', to: '1002' });
  });

  it('HoldCall on a MakeCall acts for from by default: to is held', async () => {
    const made = await post(server.api, { from: '1001', to: '1002' });
    const id = String(made.json.id);
    const atAlice = await alice.nextIncomingCall();
    const aliceAck = atAlice.answer(OFFER);
    const atBob = await bob.nextIncomingCall();
    await atBob.answer(ANSWER);
    await aliceAck;
    await events.next((e) => e.event === 'EventEstablished' && e.callId === id);
    const held = await fetch(`${server.api}/calls/${id}/hold`, { method: 'POST' });
    expect(held.status).toBe(200);
    const reinvite = await atBob.nextRequest('INVITE');
    expect(reinvite.request.body.toString()).toContain('o=alice 1 2 IN IP4');
    expect(reinvite.request.body.toString()).toContain('a=inactive');
    expect(await events.next((e) => e.event === 'EventHeld' && e.callId === id)).toMatchObject({ dn: '1001', otherDn: '1002' });
    await atAlice.bye();
    await atBob.byeReceived();
  });

  it('refuses bad requests: 400 for a malformed body, 404 for an unknown DN, 409 for an unregistered one', async () => {
    expect((await post(server.api, { from: '1001' })).status).toBe(400);
    expect((await fetch(`${server.api}/calls`, { method: 'POST', body: 'not json' })).status).toBe(400);
    expect(await post(server.api, { from: '7777', to: '1002' })).toMatchObject({ status: 404 });
    await bob.register(server.port, { expires: 0 });
    try {
      expect(await post(server.api, { from: '1001', to: '1002' })).toMatchObject({ status: 409, json: { error: expect.stringMatching(/^to: DN 1002/) as unknown } });
    } finally {
      await bob.register(server.port);
    }
  });
});

/*
 * A `to` that rings longer than `from` waits for the ACK of its 2xx (64·T1): `from` is ACKed
 * within 16·T1 with a held answer and gets `to`'s session in a re-INVITE once `to` answers.
 * T1 is 200 ms here, so the deadline is 3.2 s and `to` rings 5 s.
 */
describe('MakeCall whose to rings past the ACK deadline of from', () => {
  const rig = makeCallRig({ tserver: { 'sip-t1': 200 }, aliceT1: 200, bobTransport: 'UDP' });
  let server: RunningServer;
  let events: EventStream;
  let alice: SipPeer;
  let bob: SipPeer;

  beforeAll(() => {
    ({ server, events } = rig.fx);
    ({ alice, bob } = rig);
  });

  it('from is ACKed with a held answer before to answers, then re-INVITEd with to\'s session; the call is established', async () => {
    const made = await post(server.api, { from: '1001', to: '1002' });
    const id = String(made.json.id);
    const atAlice = await alice.nextIncomingCall();
    const answeredAt = Date.now();
    const aliceAck = atAlice.answer(OFFER, {}, 10_000);
    const atBob = await bob.nextIncomingCall();
    atBob.ring();
    const ack = await aliceAck;
    const waited = Date.now() - answeredAt;
    // Not at once (flow I is kept for a quick answer: 16·T1 = 3.2 s), and before from would give up (64·T1 = 12.8 s).
    expect(waited).toBeGreaterThan(2500);
    expect(waited).toBeLessThan(12_000);
    const held = ack.body.toString();
    expect(held).toMatch(/^m=audio 9 RTP\/AVP 0$/m);
    expect(held).toMatch(/^a=inactive$/m);
    expect((await getJson<{ state: string }>(server.api, `/calls/${id}`)).body.state).toBe('ringing');

    await new Promise((r) => setTimeout(r, 1500));
    atAlice.answerWith('INVITE', { status: 200, body: OFFER });
    await atBob.answer(ANSWER);
    const reinvite = await atAlice.nextRequest('INVITE');
    // to's answer, as the next version of the session from was given (o= of the held answer, version 2).
    expect(reinvite.request.body.toString()).toMatch(/^o=sip-server \d+ 2 IN IP4 127\.0\.0\.1$/m);
    expect(reinvite.request.body.toString()).toContain('m=audio 40002 RTP/AVP 0');
    await reinvite.waitAck();
    await events.next((e) => e.event === 'EventEstablished' && e.callId === id);
    expect(alice.problems).toEqual([]);

    expect((await atBob.bye()).status).toBe(200);
    expect((await atAlice.byeReceived()).response?.status).toBe(200);
    expect(await events.next((e) => e.event === 'EventReleased' && e.callId === id)).toMatchObject({ cause: 'normal', releasedBy: 'callee' });
  }, 30_000);
});
