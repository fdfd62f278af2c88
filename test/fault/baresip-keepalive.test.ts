import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { Baresip } from '../support/baresip.js';
import { clearRules, dropFlow, faultNet, setServerKeepAliveSysctls } from '../support/netns.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * SPEC §5 with a real phone: a baresip 1.0 registered over TCP whose connection a firewall
 * silently forgets (iptables DROP on its ports, in the endpoints' namespace where this test
 * runs; the server is in its own). A call to it is made while the flow is dead: the INVITE
 * goes into the dead connection, the server finds it dead, opens a new connection to the
 * phone's Contact and re-sends the INVITE there — and the phone rings and answers as if
 * nothing had happened.
 *
 * A request written into a dead connection stays unacknowledged, and Linux stops keep-alive
 * probes while it is (NOTES): TCP_USER_TIMEOUT is what finds the connection dead then, so the
 * server has `sip-tcp-user-timeout` besides keep-alive and the short keep-alive sysctls.
 */

const net = faultNet();
const SERVER = { address: net.srvAddr, port: 5060 };
const USER_TIMEOUT_MS = 3000;

const sdp = (port: number): string =>
  ['v=0', `o=caller 1 1 IN IP4 ${net.epAddr}`, 's=-', `c=IN IP4 ${net.epAddr}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');

describe('a baresip phone over TCP whose connection a firewall silently dropped', () => {
  let server: RunningServer;
  let events: EventStream;
  let phone: Baresip | undefined;
  let caller: SipPeer | undefined;

  const apiEvent = (name: string, match: (e: ApiEvent) => boolean = () => true, ms = 15_000): Promise<ApiEvent> =>
    events.next((e) => e.event === name && match(e), ms);

  beforeAll(async () => {
    setServerKeepAliveSysctls(net, 2, 1, 2);
    server = await startServer({
      netns: { name: net.srv, address: net.srvAddr },
      tserver: { 'sip-enable-tcp-keep-alive': true, 'sip-tcp-user-timeout': USER_TIMEOUT_MS, 'sip-tcp-connect-timeout': 2000 },
      dns: { '3001': { type: 'extension', contact: '*' }, '3002': { type: 'extension', contact: '*' } },
    });
    events = await EventStream.open(server.api, server.token);
    phone = await Baresip.start({ dn: '3002', transport: 'TCP', address: net.epAddr, server: SERVER });
    caller = await SipPeer.start({ transport: 'UDP', user: '3001', address: net.epAddr });
    expect((await caller.register(SERVER)).status).toBe(200);
  });

  afterAll(async () => {
    clearRules();
    await phone?.stop(1000);
    await caller?.close();
    events?.close();
    await server?.stop();
  });

  it('a call made while the flow is dead: the server finds it dead, re-opens to the phone\'s Contact and re-sends the INVITE; the phone rings, answers, the call is established and cleared normally', async () => {
    if (!phone || !caller) throw new Error('not set up');
    const registered = await getJson<{ contacts: { contact: string; transport: string; source: string }[] }>(server.api, '/dns/3002', server.token);
    const [binding] = registered.body.contacts;
    expect(binding?.transport).toBe('TCP');
    expect(binding?.contact).toContain(`@${net.epAddr}:${phone.sipPort};transport=tcp`);
    // The phone's end of its registered connection: the port it connected from.
    const phoneConnPort = Number(binding?.source.split(':')[1]);
    expect(phoneConnPort).not.toBe(phone.sipPort);

    dropFlow(net, { serverPort: SERVER.port, endpointPort: phoneConnPort });
    const dropped = Date.now();
    const phoneMark = phone.mark();
    const call = caller.call(SERVER, '3002', { sdp: sdp(40000) });

    // Found dead with the INVITE waiting on it; re-opened to the Contact, the INVITE re-sent.
    const stale = await apiEvent('ConnectionStale');
    expect(stale).toMatchObject({ transport: 'TCP', detectedBy: 'keepalive-timeout', remote: `${net.epAddr}:${phoneConnPort}`, active: [{ method: 'INVITE' }] });
    const [waiting] = stale.active as { branch: string }[];
    const reopened = await apiEvent('ConnectionReopened');
    expect(reopened).toMatchObject({ transport: 'TCP', destination: `${net.epAddr}:${phone.sipPort}`, resent: [{ method: 'INVITE', branch: waiting?.branch }] });
    console.log(`baresip: dead flow found ${Date.parse(String(stale.time)) - dropped} ms after the drop (user timeout ${USER_TIMEOUT_MS} ms), re-open + re-send ${String(reopened.reopenMs)} ms`);

    // The phone rings: it saw that INVITE once, on a connection the server opened to its listening port.
    const incoming = await phone.waitEvent('CALL_INCOMING', () => true, 10_000, phoneMark);
    expect(incoming.peeruri).toMatch(/^sip:3001@/);
    const invites = await phone.waitTraced('in', (m) => m.startLine.startsWith('INVITE ') && m.headers['call-id']?.[0] === incoming.id);
    expect(invites).toHaveLength(1);
    expect(invites[0]).toMatchObject({ transport: 'TCP', dst: `${net.epAddr}:${phone.sipPort}` });
    expect(invites[0]?.src).not.toBe(`${net.srvAddr}:${SERVER.port}`);
    expect(invites[0]?.headers.via?.[0]).toContain(`branch=${waiting?.branch ?? 'none'}`);
    expect(await apiEvent('EventRinging', (e) => e.dn === '3002')).toMatchObject({ from: '3001' });

    // Answered on the new connection: established at both ends.
    expect((await phone.command('accept')).ok).toBe(true);
    await phone.waitEvent('CALL_ESTABLISHED', () => true, 5000, phoneMark);
    const ok = await call.final();
    expect(ok.status).toBe(200);
    const established = await apiEvent('EventEstablished', (e) => e.dn === '3002');
    const calls = await getJson<{ id: string; state: string; legs: { callee: { transport: string } } }[]>(server.api, '/calls', server.token);
    expect(calls.body).toMatchObject([{ id: established.callId, state: 'established', legs: { callee: { transport: 'TCP' } } }]);

    // The caller hangs up: the BYE reaches the phone on the new connection too.
    await call.bye();
    expect((await phone.waitEvent('CALL_CLOSED', () => true, 5000, phoneMark)).param).toBe('Connection reset by peer');
    expect(await apiEvent('EventReleased', (e) => e.callId === established.callId)).toMatchObject({ cause: 'normal' });
  });
});
