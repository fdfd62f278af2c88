import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipMessage, type SipRequest } from '../../src/sip/message.js';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { clearRules, dropEndpoint, dropFlow, faultNet, serverSendQueuesEmpty, serverSockets, setServerKeepAliveSysctls } from '../support/netns.js';
import { startServer, type RunningServer, type StartOptions } from '../support/server-process.js';
import { branchOf, SipPeer, type PeerTransportName } from '../support/sip-peer.js';
import { makeCertificates, type Certificates } from '../support/certs.js';

/*
 * SPEC §5 against a silent firewall. scripts/fault-tests.mjs runs this file inside the
 * endpoints' network namespace; the server runs in its own namespace, joined by a veth pair,
 * with short keep-alive sysctls (time 2 s, intvl 1 s, probes 2: dead after ~4 s idle). The
 * firewall is iptables DROP rules in the endpoints' namespace: on one connection's ports (a
 * firewall that forgot that connection; new ones pass) or on everything (the endpoint is gone).
 */

const net = faultNet();
const SERVER = { address: net.srvAddr, port: 5060 };
const SERVER_TLS = { address: net.srvAddr, port: 5061 };
const SYSCTL = { time: 2, intvl: 1, probes: 2 };
/** The OS bound on detection, + 1 s (issue 5, S1). */
const BOUND_MS = (SYSCTL.time + SYSCTL.intvl * SYSCTL.probes + 1) * 1000;

const sdp = (owner: string, port: number): string =>
  ['v=0', `o=${owner} 1 1 IN IP4 ${net.epAddr}`, 's=-', `c=IN IP4 ${net.epAddr}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');
const one = (m: SipMessage, name: string): string => getHeaderValues(m, name)[0] ?? '';

const DNS = {
  '1001': { type: 'extension', contact: '*' },
  '1002': { type: 'extension', contact: '*' },
};

interface Rig {
  server: RunningServer;
  events: EventStream;
  caller: SipPeer;
  callee: SipPeer;
}

let rig: Rig | undefined;
const peers: SipPeer[] = [];

interface SetUpOptions {
  transport?: PeerTransportName;
  tserver?: Record<string, unknown>;
  /** The DNs; default 1001 and 1002 as registering extensions. Gets the callee (to name its port). */
  dns?: (callee: SipPeer) => Record<string, unknown>;
  /** The callee registers (default true). */
  register?: boolean;
  certs?: Certificates;
}

/** Caller (UDP) and callee peers in the endpoints' namespace, the server in its own. */
async function setUp(opts: SetUpOptions = {}): Promise<Rig> {
  const transport = opts.transport ?? 'TCP';
  const certs = opts.certs;
  const serverCert = certs?.issued.server;
  const peerCert = certs?.issued.endpoint;
  const tls = certs && peerCert ? { cert: certs.read(peerCert.cert), key: certs.read(peerCert.key), ca: certs.read(certs.ca), servername: 'localhost' } : undefined;
  const caller = await SipPeer.start({ transport: 'UDP', user: '1001', address: net.epAddr });
  const callee = await SipPeer.start({ transport, user: '1002', address: net.epAddr, ...(tls ? { tls } : {}) });
  peers.push(caller, callee);
  const start: StartOptions = {
    netns: { name: net.srv, address: net.srvAddr },
    tserver: { 'sip-enable-tcp-keep-alive': true, 'sip-tcp-connect-timeout': 2000, ...opts.tserver },
    dns: opts.dns?.(callee) ?? DNS,
  };
  if (certs && serverCert) {
    // The server checks the endpoint's certificate when it opens a TLS connection to it.
    start.tls = true;
    start.tserver = { ...start.tserver, 'sip-tls-cert': serverCert.cert, 'sip-tls-key': serverCert.key, 'sip-tls-ca': certs.ca, 'sip-tls-verify-peer': true };
  }
  const server = await startServer(start);
  const events = await EventStream.open(server.api, server.token);
  rig = { server, events, caller, callee };
  expect((await caller.register(SERVER)).status).toBe(200);
  if (opts.register !== false) expect((await callee.register(transport === 'TLS' ? SERVER_TLS : SERVER)).status).toBe(200);
  return rig;
}

/** A connection of the callee's to the server (the one it registered over, or the one the server opened). */
function liveFlow(peer: SipPeer): { id: string; localPort: number; remotePort: number } {
  const flow = peer.flows().find((f) => f.open);
  if (!flow) throw new Error('the peer has no open connection to the server');
  return flow;
}

/** Drops that connection at the firewall; returns when. */
function dropLive(peer: SipPeer): number {
  const flow = liveFlow(peer);
  dropFlow(net, { serverPort: flow.remotePort, endpointPort: flow.localPort });
  return Date.now();
}

/** Every copy of `req` (by branch) the peer received, with the flow each came on. */
function copiesOf(peer: SipPeer, req: SipRequest): { flowId: string | undefined; at: number; cseq: string; callId: string }[] {
  return peer.messages
    .filter((m) => m.dir === 'in' && m.message.kind === 'request' && m.message.method === req.method && branchOf(m.message) === branchOf(req))
    .map((m) => ({ flowId: m.remote.flowId, at: m.at, cseq: one(m.message, 'cseq'), callId: one(m.message, 'call-id') }));
}

/** Once `req` has reached the peer a second time (re-sent): every copy, as copiesOf gives them. */
function secondCopy(peer: SipPeer, req: SipRequest, what: string): Promise<ReturnType<typeof copiesOf>> {
  return peer.waiter.until(what, 5000, () => {
    const c = copiesOf(peer, req);
    return c.length >= 2 ? c : undefined;
  });
}

const event = (name: string, match: (e: ApiEvent) => boolean = () => true, ms = 15_000): Promise<ApiEvent> => {
  if (!rig) throw new Error('no rig');
  return rig.events.next((e) => e.event === name && match(e), ms);
};

beforeEach(() => {
  setServerKeepAliveSysctls(net, SYSCTL.time, SYSCTL.intvl, SYSCTL.probes);
});

afterEach(async (ctx) => {
  // A failure here is often a matter of timing across processes: show what the server logged
  // (info and up; the last 150 lines) so that a flake can be understood from the CI log alone.
  if (ctx.task.result?.state === 'fail' && rig) {
    const lines = rig.server.output().split('\n').filter((l) => /"level":(3|4|5|6)0/.test(l));
    console.log(`server log, last ${Math.min(150, lines.length)} of ${lines.length} lines at info and up:\n${lines.slice(-150).join('\n')}`);
  }
  clearRules();
  for (const p of peers.splice(0)) await p.close();
  if (rig) {
    rig.events.close();
    await rig.server.stop();
    rig = undefined;
  }
});

describe('TCP keep-alive against a silent firewall (SPEC §5)', () => {
  it('S1 idle stale flow: detected within the OS bound; the next call opens a new connection to the Contact and completes', async () => {
    const { server, caller, callee } = await setUp();
    const flow = liveFlow(callee);
    const dropped = Date.now();
    dropFlow(net, { serverPort: 5060, endpointPort: flow.localPort });

    const stale = await event('ConnectionStale');
    const detectionMs = Date.parse(String(stale.time)) - dropped;
    expect(stale).toMatchObject({ transport: 'TCP', detectedBy: 'keepalive-timeout', remote: `${net.epAddr}:${flow.localPort}`, active: [] });
    expect(detectionMs).toBeLessThanOrEqual(BOUND_MS);
    console.log(`S1 detection ${detectionMs} ms (bound ${BOUND_MS} ms)`);
    const dn = await getJson<{ contacts: { flowState?: string }[] }>(server.api, '/dns/1002', server.token);
    expect(JSON.stringify(dn.body)).toContain('dead');

    const opened = Date.now();
    const call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const incoming = await callee.nextIncomingCall();
    const arrival = copiesOf(callee, incoming.invite);
    const newFlow = callee.flows().find((f) => f.id === arrival[0]?.flowId);
    expect(newFlow).toMatchObject({ direction: 'accepted', localPort: callee.port, open: true });
    console.log(`S1 call reached the callee on a new connection after ${Date.now() - opened} ms`);
    await incoming.answer(sdp('callee', 50000));
    expect((await call.final()).status).toBe(200);
    await call.bye();
    await incoming.byeReceived();
    expect(await event('EventReleased')).toMatchObject({ cause: 'normal' });
  });

  it.each([0, 2])('S2 ringing, flow dropped: the server re-opens, re-sends the INVITE with the same branch, the call is answered on the new connection and cleared normally (sip-tcp-workers: %i)', async (workers) => {
    // With workers the registered connection is held by a worker process: the keep-alive
    // failure is found there and reported up; the re-open is the server's own connection.
    const { server, caller, callee } = await setUp({ tserver: { 'sip-tcp-workers': workers } });
    const flow = liveFlow(callee);
    const call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const dropped = Date.now();
    dropFlow(net, { serverPort: 5060, endpointPort: flow.localPort });

    const stale = await event('ConnectionStale');
    expect(stale).toMatchObject({ detectedBy: 'keepalive-timeout', active: [{ method: 'INVITE', branch: branchOf(incoming.invite) }] });
    const reopened = await event('ConnectionReopened');
    expect(reopened).toMatchObject({ destination: `${net.epAddr}:${callee.port}`, resent: [{ method: 'INVITE', branch: branchOf(incoming.invite) }] });
    const copies = await secondCopy(callee, incoming.invite, 'the re-sent INVITE');
    expect(copies[1]?.flowId).not.toBe(copies[0]?.flowId);
    // Unchanged: same branch (how they were found), same CSeq and Call-ID.
    expect(copies[1]).toMatchObject({ cseq: '1 INVITE', callId: one(incoming.invite, 'call-id') });
    expect(callee.flows().find((f) => f.id === copies[1]?.flowId)).toMatchObject({ direction: 'accepted', localPort: callee.port });
    const detectionMs = Date.parse(String(stale.time)) - dropped;
    expect(detectionMs).toBeLessThanOrEqual(BOUND_MS);
    console.log(`S2 (workers ${workers}) detection ${detectionMs} ms, re-open + re-send ${String(reopened.reopenMs)} ms, INVITE again at the callee ${copies[1] ? copies[1].at - Date.parse(String(stale.time)) : NaN} ms after detection`);

    // Answered on the new connection; the call goes on and ends normally.
    const ack = incoming.answer(sdp('callee', 50000));
    expect((await call.final()).status).toBe(200);
    await ack;
    expect(await event('EventEstablished')).toMatchObject({ dn: '1002' });
    await call.bye();
    await incoming.byeReceived();
    expect(await event('EventReleased')).toMatchObject({ cause: 'normal' });
    const metrics = await (await fetch(`${server.api}/metrics`, { headers: { authorization: `Bearer ${server.token ?? ''}` } })).text();
    expect(metrics).toMatch(/sip_connection_reopen_total\{transport="TCP",result="ok"\} 1/);
    expect(metrics).toMatch(/sip_keepalive_failures_total\{transport="TCP",detected_by="keepalive-timeout"\} 1/);
  });

  it('★ S2 with an RFC 5626 phone holding two flows: the one the ringing INVITE went on is dropped; the INVITE goes again on its other flow, no connection is opened to the phone, and the call is answered and cleared', async () => {
    const { caller, callee } = await setUp({ register: false });
    const instance = '"<urn:uuid:2f1d6f3e-5b6a-4f0e-8d2c-7a9b1c3d4e5f>"';
    const outbound = (regId: number) => ({ contactParams: `;+sip.instance=${instance};reg-id=${regId}`, headers: [{ name: 'Supported', value: 'outbound' }], callId: `ob-${regId}` });
    expect(getHeaderValues(await callee.register(SERVER, outbound(1)), 'require')).toEqual(['outbound']);
    const second = await callee.connect(SERVER);
    await callee.register(second, outbound(2));
    const [flow1, flow2] = callee.flows();

    const call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const incoming = await callee.nextIncomingCall();
    // The freshest flow first (RFC 5626 §7).
    expect(copiesOf(callee, incoming.invite)[0]?.flowId).toBe(flow2?.id);
    incoming.ring();
    await call.waitStatus(180);
    const dropped = Date.now();
    dropFlow(net, { serverPort: 5060, endpointPort: flow2?.localPort ?? 0 });

    const stale = await event('ConnectionStale');
    expect(stale).toMatchObject({ remote: `${net.epAddr}:${flow2?.localPort}`, active: [{ method: 'INVITE', branch: branchOf(incoming.invite) }] });
    const moved = await event('ConnectionReopened');
    expect(moved).toMatchObject({ otherFlow: true, resent: [{ method: 'INVITE', branch: branchOf(incoming.invite) }] });
    const copies = await secondCopy(callee, incoming.invite, 'the INVITE on the other flow');
    expect(copies[1]).toMatchObject({ flowId: flow1?.id, cseq: '1 INVITE', callId: one(incoming.invite, 'call-id') });
    // Nothing was opened to the phone: behind a NAT it could not have been reached.
    expect(callee.flows().filter((f) => f.direction === 'accepted')).toEqual([]);
    console.log(`★ detection ${Date.parse(String(stale.time)) - dropped} ms, INVITE on the other flow ${copies[1] ? copies[1].at - Date.parse(String(stale.time)) : NaN} ms after detection`);

    const ack = incoming.answer(sdp('callee', 50000));
    expect((await call.final()).status).toBe(200);
    await ack;
    await call.bye();
    await incoming.byeReceived();
    expect(await event('EventReleased')).toMatchObject({ cause: 'normal' });
    expect(callee.flows().filter((f) => f.direction === 'accepted')).toEqual([]);
  });

  it('responses owed on a dead connection go out on a new one to the Via sent-by (RFC 3261 §18.2.2): the caller\'s flow dies while it waits, the 200 still reaches it', async () => {
    const { callee } = await setUp();
    // A second caller, over TCP this time, registered on its own connection.
    const tcpCaller = await SipPeer.start({ transport: 'TCP', user: '1001', address: net.epAddr });
    peers.push(tcpCaller);
    expect((await tcpCaller.register(SERVER)).status).toBe(200);
    const call = tcpCaller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    // The caller's TCP must have acknowledged the 180 first: keep-alive probes wait while sent
    // data is unacknowledged (then only TCP_USER_TIMEOUT or retransmission finds the connection dead).
    const callerFlow = liveFlow(tcpCaller);
    await serverSendQueuesEmpty(net, [`${net.epAddr}:${callerFlow.localPort}`]);
    dropFlow(net, { serverPort: callerFlow.remotePort, endpointPort: callerFlow.localPort });
    const stale = await event('ConnectionStale', (e) => e.remote === `${net.epAddr}:${callerFlow.localPort}`);
    // The server had no client transaction on the caller's flow, only a response to give.
    expect(stale).toMatchObject({ active: [] });
    // The phone gives its dead connection up too (as its own keep-alive would); its ACK and BYE
    // then go on a connection of its own.
    tcpCaller.dropFlow(callerFlow.id);

    const ack = incoming.answer(sdp('callee', 50000));
    const ok = await call.final();
    expect(ok.status).toBe(200);
    const arrived = tcpCaller.messages.find((m) => m.dir === 'in' && m.message.kind === 'response' && m.message.status === 200 && one(m.message, 'cseq') === '1 INVITE');
    const via = tcpCaller.flows().find((f) => f.id === arrived?.remote.flowId);
    expect(via).toMatchObject({ direction: 'accepted', localPort: tcpCaller.port });
    await ack;
    await call.bye();
    await incoming.byeReceived();
  });

  it('S3 endpoint gone: the re-open fails within sip-tcp-connect-timeout; the caller gets 503 with a Reason, cause stale-connection-reopen-failed, the DN out of service, nothing left behind', async () => {
    const { server, caller, callee } = await setUp();
    const call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const dropped = Date.now();
    dropEndpoint(net, [callee.port, liveFlow(callee).localPort]);

    const stale = await event('ConnectionStale');
    const failed = await event('ConnectionReopenFailed');
    expect(failed).toMatchObject({ destination: `${net.epAddr}:${callee.port}`, failed: [{ method: 'INVITE', branch: branchOf(incoming.invite) }] });
    expect(Number(failed.reopenMs)).toBeGreaterThanOrEqual(1900);
    expect(Number(failed.reopenMs)).toBeLessThan(2000 + 1000);
    const final = await call.final();
    expect(final.status).toBe(503);
    expect(one(final, 'reason')).toBe('SIP;cause=503;text="stale connection could not be re-opened"');
    expect(await event('EventReleased')).toMatchObject({ cause: 'stale-connection-reopen-failed', status: 503 });
    expect(await event('EventDNOutOfService', (e) => e.dn === '1002')).toBeTruthy();
    console.log(`S3 detection ${Date.parse(String(stale.time)) - dropped} ms, re-open failed after ${String(failed.reopenMs)} ms (connect timeout 2000 ms)`);

    // Nothing left: no call, and every transaction of the call ends (the caller's INVITE
    // server transaction after its timer I). The REGISTER transactions of the set-up over UDP
    // wait out their timer J (32 s) as RFC 3261 wants: not counted.
    expect((await getJson(server.api, '/calls', server.token)).body).toEqual([]);
    const live = async (): Promise<string[]> => {
      const text = await (await fetch(`${server.api}/metrics`, { headers: { authorization: `Bearer ${server.token ?? ''}` } })).text();
      return text.split('\n').filter((l) => /^sip_transactions\{kind="(invite-client|invite-server|non-invite-client)"\}/.test(l) && !/ 0$/.test(l));
    };
    const end = Date.now() + 10_000;
    while ((await live()).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(await live()).toEqual([]);
  });

  it('S4 voip-service DN: no re-open; the INVITE fails at once as a transport error, the call is released and the DN goes out of service', async () => {
    const { caller, callee } = await setUp({
      register: false,
      dns: (peer) => ({
        '1001': { type: 'extension', contact: '*' },
        '1002': { type: 'voip-service', 'service-type': 'msml', contact: `sip:${net.epAddr}:${peer.port};transport=tcp` },
      }),
    });
    const call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const flow = liveFlow(callee);
    expect(flow).toMatchObject({ localPort: callee.port });
    const dropped = dropLive(callee);

    const stale = await event('ConnectionStale');
    expect(stale).toMatchObject({ active: [{ method: 'INVITE' }] });
    const failed = await event('ConnectionReopenFailed');
    expect(failed).toMatchObject({ reopenMs: 0, failed: [{ method: 'INVITE', branch: branchOf(incoming.invite) }] });
    expect(String(failed.reason)).toContain('voip-service');
    const final = await call.final();
    expect(final.status).toBe(503);
    expect(await event('EventReleased')).toMatchObject({ cause: 'transport-failure' });
    await event('EventDNOutOfService', (e) => e.dn === '1002');
    // Never re-sent: the callee saw the INVITE once.
    expect(copiesOf(callee, incoming.invite)).toHaveLength(1);
    console.log(`S4 detection ${Date.parse(String(stale.time)) - dropped} ms, failed without re-open`);
  });

  it('S5 TLS: ringing over TLS, flow dropped; the server opens a TLS connection to the endpoint (its certificate verified), re-sends the INVITE, the call completes', async () => {
    const certs = makeCertificates({ server: ['DNS:localhost', `IP:${net.srvAddr}`], endpoint: [`IP:${net.epAddr}`] });
    const { caller, callee } = await setUp({ transport: 'TLS', certs });
    const flow = liveFlow(callee);
    expect(flow.remotePort).toBe(5061);
    const call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const dropped = dropLive(callee);

    const stale = await event('ConnectionStale');
    const reopened = await event('ConnectionReopened');
    expect(reopened).toMatchObject({ transport: 'TLS', destination: `${net.epAddr}:${callee.port}`, resent: [{ method: 'INVITE', branch: branchOf(incoming.invite) }] });
    const copies = await secondCopy(callee, incoming.invite, 'the re-sent INVITE');
    expect(callee.flows().find((f) => f.id === copies[1]?.flowId)).toMatchObject({ transport: 'TLS', direction: 'accepted' });
    console.log(`S5 detection ${Date.parse(String(stale.time)) - dropped} ms, TLS re-open + re-send ${String(reopened.reopenMs)} ms`);
    const ack = incoming.answer(sdp('callee', 50000));
    expect((await call.final()).status).toBe(200);
    await ack;
    await call.bye();
    await incoming.byeReceived();
    expect(await event('EventReleased')).toMatchObject({ cause: 'normal' });
  });

  it('S6 keep-alive off (default): no keep-alive timer on the server sockets, the stale flow goes unnoticed, the call fails after timer B and the DN goes out of service', async () => {
    const { caller, callee } = await setUp({ tserver: { 'sip-enable-tcp-keep-alive': false, 'sip-invite-timeout': 4 } });
    const flow = liveFlow(callee);
    const sockets = serverSockets(net);
    expect(sockets).toContain(`${net.epAddr}:${flow.localPort}`);
    expect(sockets).not.toContain('keepalive');
    dropLive(callee);
    // Longer than the keep-alive bound: nothing is detected.
    await new Promise((r) => setTimeout(r, BOUND_MS + 500));

    const started = Date.now();
    const call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    const final = await call.final(15_000);
    const failedAfterMs = Date.now() - started;
    expect(final.status).toBe(408);
    expect(failedAfterMs).toBeGreaterThanOrEqual(3900);
    expect(await event('EventReleased')).toMatchObject({ cause: 'timeout' });
    await event('EventDNOutOfService', (e) => e.dn === '1002');
    expect(rig?.events.events.some((e) => e.event === 'ConnectionStale')).toBe(false);
    console.log(`S6 call failed with 408 after ${failedAfterMs} ms (timer B 4000 ms); the flow was never found dead`);
  });

  it('S7 OS timers honoured: detection follows the namespace sysctls when only the option is on; ss shows the keep-alive timer', async () => {
    const measured: string[] = [];
    for (const [time, intvl, probes] of [
      [1, 1, 1],
      [3, 1, 2],
    ] as const) {
      setServerKeepAliveSysctls(net, time, intvl, probes);
      const { server, callee } = await setUp();
      const flow = liveFlow(callee);
      const conns = await getJson<{ remote: string; keepAlive: Record<string, unknown> }[]>(server.api, '/connections', server.token);
      expect(conns.body.find((c) => c.remote === `${net.epAddr}:${flow.localPort}`)?.keepAlive).toEqual({ enabled: true, idleS: time, intervalS: intvl, count: probes, userTimeoutMs: 0 });
      expect(serverSockets(net)).toMatch(new RegExp(`${net.epAddr.replace(/\./g, '\\.')}:${flow.localPort}\\s+timer:\\(keepalive,`));
      const dropped = dropLive(callee);
      const stale = await event('ConnectionStale');
      const detectionMs = Date.parse(String(stale.time)) - dropped;
      const boundMs = (time + intvl * probes) * 1000;
      expect(detectionMs).toBeGreaterThan(boundMs - 1000);
      expect(detectionMs).toBeLessThanOrEqual(boundMs + 1000);
      measured.push(`sysctls ${time}/${intvl}/${probes}: ${detectionMs} ms (bound ${boundMs} ms)`);
      clearRules();
      for (const p of peers.splice(0)) await p.close();
      rig?.events.close();
      await rig?.server.stop();
      rig = undefined;
    }
    console.log(`S7 ${measured.join('; ')}`);
  });

  it('S7 extension options override the sysctls: idle 1 s, interval 1 s, count 1, user timeout 3 s → dead after ~3 s although the namespace says 5/5/5 (15 s)', async () => {
    setServerKeepAliveSysctls(net, 5, 5, 5);
    const { server, callee } = await setUp({ tserver: { 'sip-tcp-keep-alive-idle': 1, 'sip-tcp-keep-alive-interval': 1, 'sip-tcp-keep-alive-count': 1, 'sip-tcp-user-timeout': 3000 } });
    const flow = liveFlow(callee);
    const conns = await getJson<{ remote: string; keepAlive: Record<string, unknown> }[]>(server.api, '/connections', server.token);
    expect(conns.body.find((c) => c.remote === `${net.epAddr}:${flow.localPort}`)?.keepAlive).toEqual({ enabled: true, idleS: 1, intervalS: 1, count: 1, userTimeoutMs: 3000 });
    expect(serverSockets(net)).toMatch(/timer:\(keepalive,/);
    const dropped = dropLive(callee);
    const stale = await event('ConnectionStale');
    const detectionMs = Date.parse(String(stale.time)) - dropped;
    // Linux: with TCP_USER_TIMEOUT set, unanswered keep-alive probes kill the connection once
    // that long has passed without an answer (not after `count` probes): max(1 + 1×1, 3) s.
    expect(detectionMs).toBeGreaterThan(2000);
    expect(detectionMs).toBeLessThanOrEqual(3000 + 1000);
    console.log(`S7 extension options 1/1/1 + user timeout 3000: detection ${detectionMs} ms (the sysctls 5/5/5 would give 15000 ms)`);
  });

  it('the OOS check keeps working with keep-alive on: unanswered OPTIONS put the DN out of service, answered ones bring it back, over the kept-alive flow', async () => {
    const { callee } = await setUp({
      dns: () => ({ '1001': { type: 'extension', contact: '*' }, '1002': { type: 'extension', contact: '*', 'oos-check': 1, 'oos-force': 1 } }),
    });
    await callee.waiter.until('an OOS OPTIONS', 5000, () => (callee.received('OPTIONS').length > 0 ? true : undefined));
    callee.optionsAnswer = 'ignore';
    await event('EventDNOutOfService', (e) => e.dn === '1002');
    callee.optionsAnswer = 200;
    await event('EventDNBackInService', (e) => e.dn === '1002');
    // Both ran on the same registered connection, which keep-alive never found dead.
    expect(rig?.events.events.some((e) => e.event === 'ConnectionStale')).toBe(false);
  });
});

