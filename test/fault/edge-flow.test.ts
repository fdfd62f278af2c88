import { afterEach, describe, expect, it } from 'vitest';
import { EventStream } from '../support/api-client.js';
import { startKamailio, type RunningKamailio } from '../support/kamailio.js';
import { clearRules, dropFlow, faultNet } from '../support/netns.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * ★ behind the edge proxy, against a silent firewall (issue 16). Kamailio
 * (deploy/kamailio/kamailio.cfg) and the server run in the server's namespace; the phone, an
 * RFC 5626 peer with two TCP flows to Kamailio, in the endpoints'. The flow the ringing
 * INVITE went on is dropped without a trace (iptables DROP both ways): Kamailio's TCP
 * keep-alive finds it dead, answers the waiting INVITE 430 Flow Failed, and the server sends
 * the call to the phone's other flow. No connection is opened towards the phone.
 */

const net = faultNet();
const EDGE = { address: net.srvAddr, port: 5070 };
const SERVER = { address: net.srvAddr, port: 5060 };
const KEEPALIVE = { idle: 2, intvl: 1, cnt: 2 };
const INSTANCE = '"<urn:uuid:5b1f8d2e-3c4a-4e6f-9a0b-1c2d3e4f5a6b>"';
const SDP = `v=0\r\no=- 1 1 IN IP4 ${net.epAddr}\r\ns=-\r\nc=IN IP4 ${net.epAddr}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n`;

let server: RunningServer | undefined;
let kamailio: RunningKamailio | undefined;
const peers: SipPeer[] = [];

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && kamailio) console.log(`kamailio, last lines:\n${kamailio.output().split('\n').slice(-30).join('\n')}`);
  clearRules();
  for (const p of peers.splice(0)) await p.close();
  await kamailio?.stop();
  await server?.stop();
  kamailio = undefined;
  server = undefined;
});

describe('★ RFC 5626 behind Kamailio against a silent firewall', () => {
  it('the flow the ringing INVITE went on is silently dropped: Kamailio answers it 430 once keep-alive finds it dead, and the call rings on the other flow, is answered and cleared', async () => {
    server = await startServer({ netns: { name: net.srv, address: net.srvAddr }, dns: { '1001': { type: 'extension', contact: '*' }, '1002': { type: 'extension', contact: '*' } } });
    kamailio = await startKamailio({ instances: [5060], netns: { name: net.srv, ...EDGE }, keepAlive: KEEPALIVE });
    const events = await EventStream.open(server.api, server.token);
    const phone = await SipPeer.start({ user: '1002', transport: 'TCP', address: net.epAddr });
    const caller = await SipPeer.start({ user: '1001', address: net.epAddr });
    peers.push(phone, caller);
    const outbound = (regId: number) => ({ contactParams: `;+sip.instance=${INSTANCE};reg-id=${regId}`, headers: [{ name: 'Supported', value: 'outbound' }], callId: `edge-ob-${regId}` });
    await phone.register(EDGE, outbound(1));
    const second = await phone.connect(EDGE);
    await phone.register(second, outbound(2));
    await caller.register(SERVER);

    const call = caller.call(SERVER, '1002', { sdp: SDP });
    const first = await phone.nextIncomingCall(8000);
    const flow2 = phone.flows().find((f) => f.id === second.flowId);
    expect(phone.messages.find((m) => m.dir === 'in' && m.message === first.invite)?.remote.flowId).toBe(flow2?.id);
    first.ring();
    await call.waitStatus(180, 8000);
    const dropped = Date.now();
    dropFlow(net, { serverPort: EDGE.port, endpointPort: flow2?.localPort ?? 0 });

    const again = await phone.nextIncomingCall(15_000);
    const movedMs = Date.now() - dropped;
    expect(phone.messages.find((m) => m.dir === 'in' && m.message === again.invite)?.remote.flowId).toBe(phone.flows()[0]?.id);
    expect(phone.flows().filter((f) => f.direction === 'accepted')).toEqual([]);
    // Within Kamailio's keep-alive bound (idle + interval × count) and a second.
    expect(movedMs).toBeLessThanOrEqual((KEEPALIVE.idle + KEEPALIVE.intvl * KEEPALIVE.cnt + 1) * 1000);
    console.log(`★ behind Kamailio: the ringing flow dropped, the INVITE on the other flow ${movedMs} ms later (keep-alive ${KEEPALIVE.idle}/${KEEPALIVE.intvl}/${KEEPALIVE.cnt})`);
    const acked = again.answer(SDP);
    expect((await call.final(8000)).status).toBe(200);
    await acked;
    expect((await call.bye()).status).toBe(200);
    expect(await events.next((e) => e.event === 'EventReleased' && e.cause === 'normal', 5000)).toBeDefined();
    events.close();
  });
});
