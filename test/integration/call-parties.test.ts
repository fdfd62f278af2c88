import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipMessage } from '../../src/sip/message.js';
import { parseNameAddr } from '../../src/sip/name-addr.js';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { finishPeers } from '../support/call-peers.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * Who the parties of a call are, as the server tells the phones and the control API (SPEC §6,
 * §9, §10): the request to a phone names its address of record in To (its Contact only in the
 * Request-URI), and a call's caller DN is what the server knows of the source — a registration
 * it came on or from, a fixed contact's address — never only the From header.
 */

const SDP = ['v=0', 'o=p 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 40000 RTP/AVP 0', ''].join('\r\n');
const one = (m: SipMessage, name: string): string => getHeaderValues(m, name)[0] ?? '';
const uriOf = (m: SipMessage, name: string): string => parseNameAddr(one(m, name), name).uri;

interface LegView {
  callId: string | null;
  transport: string | null;
  remote: string | null;
  dn: string | null;
}
interface CallView {
  id: string;
  from: string | null;
  caller: string;
  state: string;
  legs: { caller: LegView; callee: LegView };
}

describe('the parties of a call', () => {
  let server: RunningServer;
  let events: EventStream;
  let gateway: SipPeer;
  let peers: SipPeer[] = [];
  let mark: number;

  const event = (name: string, match: (e: ApiEvent) => boolean = () => true): Promise<ApiEvent> => events.next((e) => e.event === name && match(e), 5000, mark);
  const peer = async (user: string, transport: 'UDP' | 'TCP' = 'UDP'): Promise<SipPeer> => {
    const p = await SipPeer.start({ transport, user });
    peers.push(p);
    return p;
  };

  beforeAll(async () => {
    // The gateway listens before the server starts: its fixed contact names its port.
    gateway = await SipPeer.start({ transport: 'UDP', user: 'gw' });
    server = await startServer({
      dns: {
        '4001': { type: 'extension', contact: '*' },
        '4002': { type: 'extension', contact: '*' },
        gw1: { type: 'trunk', contact: `sip:127.0.0.1:${gateway.port}`, prefix: '9' },
      },
    });
    events = await EventStream.open(server.api);
  });

  afterAll(async () => {
    events.close();
    await gateway.close();
    expect(await server.stop()).toBe(0);
  });

  beforeEach(() => {
    mark = events.events.length;
    peers = [];
  });

  afterEach(async () => {
    const unregistered = peers.filter((p) => p.user === 'impostor');
    await finishPeers(server, peers.filter((p) => !unregistered.includes(p)));
    for (const p of unregistered) await p.close();
  });

  it.each(['UDP', 'TCP'] as const)('the INVITE to a phone registered over %s carries its AOR in To and its Contact only in the Request-URI', async (transport) => {
    const caller = await peer('4001', transport);
    const callee = await peer('4002', transport);
    await caller.register(server.port);
    await callee.register(server.port);
    const call = caller.call(server.port, '4002', { sdp: SDP });
    const incoming = await callee.nextIncomingCall();
    expect(incoming.invite.uri).toBe(parseNameAddr(callee.contact(), 'Contact').uri);
    expect(uriOf(incoming.invite, 'to')).toBe('sip:4002@127.0.0.1');
    expect(uriOf(incoming.invite, 'from')).toMatch(/^sip:4001@127\.0\.0\.1(:\d+)?$/);
    await incoming.reject(486);
    expect((await call.final()).status).toBe(486);
  });

  it('MakeCall: the INVITE to `from` carries its AOR in To', async () => {
    const alice = await peer('4001');
    await alice.register(server.port);
    await peer('4002').then((bob) => bob.register(server.port));
    const made = await fetch(`${server.api}/calls`, { method: 'POST', body: JSON.stringify({ from: '4001', to: '4002' }) });
    expect(made.status).toBe(201);
    const id = ((await made.json()) as { id: string }).id;
    const atAlice = await alice.nextIncomingCall();
    expect(uriOf(atAlice.invite, 'to')).toBe('sip:4001@127.0.0.1');
    expect(atAlice.invite.uri).toBe(parseNameAddr(alice.contact(), 'Contact').uri);
    await atAlice.reject(486);
    await event('EventReleased', (e) => e.callId === id);
  });

  it('an INVITE claiming a registered DN from another address has no caller DN, and is not presented as that DN', async () => {
    const owner = await peer('4001');
    const callee = await peer('4002');
    await owner.register(server.port);
    await callee.register(server.port);
    // Same From user as the registered 4001, sent from a port 4001 never registered from.
    const impostor = await peer('impostor');
    const spoofed = impostor.newRequest('INVITE', `sip:4002@127.0.0.1:${server.port}`, { to: '<sip:4002@127.0.0.1>', body: SDP });
    const fromHeader = spoofed.headers.find((h) => h.name === 'From');
    if (fromHeader) fromHeader.value = fromHeader.value.replace('sip:impostor@', 'sip:4001@');
    const tx = impostor.sendRequest(spoofed, { transport: 'UDP', address: '127.0.0.1', port: server.port });
    const incoming = await callee.nextIncomingCall();
    expect(uriOf(incoming.invite, 'from')).toMatch(/^sip:anonymous@/);
    const dialing = await event('EventDialing');
    expect(dialing).toMatchObject({ from: null, dn: null, caller: 'anonymous', to: '4002' });
    const view = (await getJson<CallView>(server.api, `/calls/${String(dialing.callId)}`)).body;
    expect(view).toMatchObject({ from: null, caller: 'anonymous', state: 'dialing' });
    await incoming.reject(486);
    expect((await tx.waitFinal()).status).toBe(486);
    const record = (await getJson<CallView & { cause: string }>(server.api, `/calls/${String(dialing.callId)}`)).body;
    expect(record).toMatchObject({ state: 'released', from: null, cause: 'busy' });
  });

  it('a phone on its registered TCP flow is its DN whatever its From says (a phone following a REFER reuses the To it was sent)', async () => {
    const phone = await peer('4001', 'TCP');
    const callee = await peer('4002');
    await phone.register(server.port);
    await callee.register(server.port);
    const req = phone.newRequest('INVITE', `sip:4002@127.0.0.1:${server.port};transport=tcp`, { to: '<sip:4002@127.0.0.1>', body: SDP });
    const fromHeader = req.headers.find((h) => h.name === 'From');
    if (fromHeader) fromHeader.value = fromHeader.value.replace('sip:4001@', 'sip:4001-0x5651@');
    const tx = phone.sendRequest(req, { transport: 'TCP', address: '127.0.0.1', port: server.port });
    const incoming = await callee.nextIncomingCall();
    expect(uriOf(incoming.invite, 'from')).toMatch(/^sip:4001@/);
    expect(await event('EventDialing')).toMatchObject({ from: '4001', dn: '4001', caller: '4001' });
    await incoming.reject(486);
    expect((await tx.waitFinal()).status).toBe(486);
  });

  it('a call from a trunk at its fixed contact is from the trunk DN and presents the number the gateway gave', async () => {
    const callee = await peer('4002');
    await callee.register(server.port);
    const req = gateway.newRequest('INVITE', `sip:4002@127.0.0.1:${server.port}`, { to: '<sip:4002@127.0.0.1>', body: SDP });
    const fromHeader = req.headers.find((h) => h.name === 'From');
    if (fromHeader) fromHeader.value = fromHeader.value.replace('sip:gw@', 'sip:+15551234@');
    const tx = gateway.sendRequest(req, { transport: 'UDP', address: '127.0.0.1', port: server.port });
    const incoming = await callee.nextIncomingCall();
    expect(uriOf(incoming.invite, 'from')).toMatch(/^sip:%2B15551234@|^sip:\+15551234@/);
    expect(await event('EventDialing')).toMatchObject({ from: 'gw1', caller: '+15551234' });
    await incoming.reject(486);
    expect((await tx.waitFinal()).status).toBe(486);
  });

  it('GET /calls while ringing shows both legs with their Call-IDs; MakeCall shows where `from` is', async () => {
    const caller = await peer('4001');
    const callee = await peer('4002');
    await caller.register(server.port);
    await callee.register(server.port);
    const call = caller.call(server.port, '4002', { sdp: SDP });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    const ringing = await event('EventRinging');
    const view = (await getJson<CallView>(server.api, `/calls/${String(ringing.callId)}`)).body;
    expect(view.legs.caller).toMatchObject({ callId: one(call.invite, 'call-id'), transport: 'UDP', remote: `127.0.0.1:${caller.port}`, dn: '4001' });
    expect(view.legs.callee).toMatchObject({ callId: one(incoming.invite, 'call-id'), transport: 'UDP', remote: `127.0.0.1:${callee.port}`, dn: '4002' });
    await incoming.reject(486);
    await call.final();

    mark = events.events.length;
    const made = await fetch(`${server.api}/calls`, { method: 'POST', body: JSON.stringify({ from: '4001', to: '4002' }) });
    const id = ((await made.json()) as { id: string }).id;
    const atCaller = await caller.nextIncomingCall();
    atCaller.ring();
    await event('EventRinging', (e) => e.callId === id);
    const mc = (await getJson<CallView>(server.api, `/calls/${id}`)).body;
    expect(mc.legs.caller).toMatchObject({ callId: one(atCaller.invite, 'call-id'), transport: 'UDP', remote: `127.0.0.1:${caller.port}`, dn: '4001' });
    expect(mc.legs.callee).toMatchObject({ callId: null, dn: '4002' });
    await atCaller.reject(486);
    await event('EventReleased', (e) => e.callId === id);
  });
});
