import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipMessage, type SipRequest } from '../../src/sip/message.js';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { clearRules, dropAll, dropFlow, faultNet, serverSockets, setServerKeepAliveSysctls } from '../support/netns.js';
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

async function setUp(opts: { transport?: PeerTransportName; tserver?: Record<string, unknown>; dns?: Record<string, unknown>; certs?: Certificates } = {}): Promise<Rig> {
  const transport = opts.transport ?? 'TCP';
  const start: StartOptions = {
    netns: { name: net.srv, address: net.srvAddr },
    tserver: { 'sip-enable-tcp-keep-alive': true, 'sip-tcp-connect-timeout': 2000, ...opts.tserver },
    dns: opts.dns ?? DNS,
  };
  const certs = opts.certs;
  const serverCert = certs?.issued.server;
  const peerCert = certs?.issued.endpoint;
  if (certs && serverCert) {
    // The server checks the endpoint's certificate when it opens a TLS connection to it.
    start.tls = true;
    start.tserver = { ...start.tserver, 'sip-tls-cert': serverCert.cert, 'sip-tls-key': serverCert.key, 'sip-tls-ca': certs.ca, 'sip-tls-verify-peer': true };
  }
  const server = await startServer(start);
  const events = await EventStream.open(server.api, server.token);
  const caller = await SipPeer.start({ transport: 'UDP', user: '1001', address: net.epAddr });
  const tls = certs && peerCert ? { cert: certs.read(peerCert.cert), key: certs.read(peerCert.key), ca: certs.read(certs.ca), servername: 'localhost' } : undefined;
  const callee = await SipPeer.start({ transport, user: '1002', address: net.epAddr, ...(tls ? { tls } : {}) });
  peers.push(caller, callee);
  const to = transport === 'TLS' ? SERVER_TLS : SERVER;
  expect((await caller.register(SERVER)).status).toBe(200);
  expect((await callee.register(to)).status).toBe(200);
  rig = { server, events, caller, callee };
  return rig;
}

/** The callee's connection to the server (the one it registered over). */
function registeredFlow(peer: SipPeer): { id: string; localPort: number; remotePort: number } {
  const flow = peer.flows().find((f) => f.direction === 'opened' && f.open);
  if (!flow) throw new Error('the peer has no open connection to the server');
  return flow;
}

/** Every copy of `req` (by branch) the peer received, with the flow each came on. */
function copiesOf(peer: SipPeer, req: SipRequest): { flowId: string | undefined; at: number }[] {
  return peer.messages
    .filter((m) => m.dir === 'in' && m.message.kind === 'request' && m.message.method === req.method && branchOf(m.message) === branchOf(req))
    .map((m) => ({ flowId: m.remote.flowId, at: m.at }));
}

const event = (name: string, match: (e: ApiEvent) => boolean = () => true, ms = 15_000): Promise<ApiEvent> => {
  if (!rig) throw new Error('no rig');
  return rig.events.next((e) => e.event === name && match(e), ms);
};

beforeEach(() => {
  setServerKeepAliveSysctls(net, SYSCTL.time, SYSCTL.intvl, SYSCTL.probes);
});

afterEach(async () => {
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
    const flow = registeredFlow(callee);
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

  it('S2 ringing, flow dropped: the server re-opens, re-sends the INVITE with the same branch, the call is answered on the new connection and cleared normally', async () => {
    const { server, caller, callee } = await setUp();
    const flow = registeredFlow(callee);
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
    const copies = await callee.waiter.until('the re-sent INVITE', 5000, () => {
      const c = copiesOf(callee, incoming.invite);
      return c.length >= 2 ? c : undefined;
    });
    expect(copies[1]?.flowId).not.toBe(copies[0]?.flowId);
    expect(callee.flows().find((f) => f.id === copies[1]?.flowId)).toMatchObject({ direction: 'accepted', localPort: callee.port });
    const detectionMs = Date.parse(String(stale.time)) - dropped;
    expect(detectionMs).toBeLessThanOrEqual(BOUND_MS);
    console.log(`S2 detection ${detectionMs} ms, re-open + re-send ${String(reopened.reopenMs)} ms, INVITE again at the callee ${copies[1] ? copies[1].at - Date.parse(String(stale.time)) : NaN} ms after detection`);

    // Answered on the new connection; the call goes on and ends normally.
    const ack = incoming.answer(sdp('callee', 50000));
    expect((await call.final()).status).toBe(200);
    await ack;
    expect(await event('EventEstablished')).toMatchObject({ dn: '1002' });
    await call.bye();
    await incoming.byeReceived();
    expect(await event('EventReleased')).toMatchObject({ cause: 'normal' });
    expect(one(incoming.invite, 'cseq')).toBe('1 INVITE');
    const metrics = await (await fetch(`${server.api}/metrics`, { headers: { authorization: `Bearer ${server.token ?? ''}` } })).text();
    expect(metrics).toMatch(/sip_connection_reopen_total\{transport="TCP",result="ok"\} 1/);
    expect(metrics).toMatch(/sip_keepalive_failures_total\{transport="TCP",detected_by="keepalive-timeout"\} 1/);
  });
});

export { dropAll, serverSockets };
