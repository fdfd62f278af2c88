import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getHeaderValues } from '../../src/sip/message.js';
import { EventStream, getJson } from '../support/api-client.js';
import { startKamailio, type RunningKamailio } from '../support/kamailio.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * The deployment of docs/deployment.md with real processes: Kamailio (deploy/kamailio/
 * kamailio.cfg) in front of two SIP Server instances on one PostgreSQL store. Phones (the
 * project's peer, over TCP) register through Kamailio, which adds its Path; any instance
 * reaches any phone through that Path, whichever instance took its REGISTER.
 */

interface ContactView {
  contact: string;
  owner: string | null;
  path: string[] | null;
  regId: number | null;
}
interface DnView {
  state: string;
  contacts: ContactView[];
}

/** Each test its own DNs: the bindings of one do not stand in the way of the next. */
const PHONES = ['1101', '1102', '1103', '1104'];
const KILL_PHONES = ['1111', '1112', '1113', '1114'];
const OUTBOUND_PHONE = '1121';
const RINGING_PHONE = '1122';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';
const DNS = Object.fromEntries(['1100', ...PHONES, '1105', ...KILL_PHONES, OUTBOUND_PHONE, RINGING_PHONE, '1131', '1132'].map((dn) => [dn, { type: 'extension', contact: '*' }]));
const INSTANCE = '"<urn:uuid:9d3c1e2a-7b4f-4c1d-8e2f-0a1b2c3d4e5f>"';

let pg: TestPostgres;
let kamailio: RunningKamailio;
const servers: Record<'a' | 'b', RunningServer> = {} as Record<'a' | 'b', RunningServer>;
const peers: SipPeer[] = [];
const edge = (): { address: string; port: number } => ({ address: '127.0.0.1', port: kamailio.port });

async function phone(user: string, transport: 'TCP' | 'UDP' = 'TCP'): Promise<SipPeer> {
  const p = await SipPeer.start({ user, transport });
  peers.push(p);
  return p;
}

async function contactsOf(dn: string, on: RunningServer = servers.b): Promise<ContactView[]> {
  return (await getJson<DnView>(on.api, `/dns/${dn}`)).body.contacts;
}

const other = (owner: string | null): RunningServer => (owner === 'a' ? servers.b : servers.a);

/** Registers `phones` through Kamailio, which picks the instance by Call-ID: new Call-IDs until both instances hold some. */
async function registerOnBoth(phones: SipPeer[], tag: string): Promise<void> {
  for (let round = 0; round < 20; round++) {
    for (const p of phones) await p.register(edge(), { callId: `${tag}-${p.user}-${round}` });
    const owners = new Set((await Promise.all(phones.map((p) => contactsOf(p.user)))).map((c) => c[0]?.owner));
    if (owners.has('a') && owners.has('b')) return;
  }
  throw new Error('Kamailio sent every REGISTER to one instance in 20 rounds');
}

/** `caller` calls `dn` through `via`; the phone rejects with 486; returns what the caller got. */
async function callReaches(via: { port: number } | { address: string; port: number }, caller: SipPeer, callee: SipPeer, dn: string): Promise<number> {
  const call = caller.call('address' in via ? via : via.port, dn);
  const incoming = await callee.nextIncomingCall(8000);
  await incoming.reject(486);
  return (await call.final(8000)).status;
}

beforeAll(async () => {
  pg = await startPostgres();
  const start = (name: string): Promise<RunningServer> => startServer({ dns: DNS, tserver: { store: pg.url, 'instance-name': name } });
  [servers.a, servers.b] = await Promise.all([start('a'), start('b')]);
  kamailio = await startKamailio({ instances: [servers.a.port, servers.b.port] });
}, 60_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail' && kamailio) console.log(`kamailio, last lines:\n${kamailio.output().split('\n').slice(-40).join('\n')}`);
});

afterAll(async () => {
  for (const p of peers.splice(0)) await p.close();
  await kamailio?.stop();
  await servers.a?.stop();
  await servers.b?.stop();
  pg?.destroy();
});

describe('Kamailio in front of two instances on one store', () => {
  it('phones register through Kamailio (its Path with ;ob stored); a call entering the other instance reaches each phone through Kamailio', async () => {
    const phones = await Promise.all(PHONES.map((dn) => phone(dn)));
    await registerOnBoth(phones, 'reg');
    const views = await Promise.all(PHONES.map((dn) => contactsOf(dn)));
    expect(new Set(views.map((c) => c[0]?.owner))).toEqual(new Set(['a', 'b']));
    // Kamailio's Path: itself, the phone's connection (received=), and ;ob.
    for (const c of views) expect(c[0]?.path?.[0]).toMatch(new RegExp(`^<sip:edge@127\\.0\\.0\\.1:${kamailio.port};lr;received=sip:127\\.0\\.0\\.1:\\d+%3Btransport%3Dtcp;ob>$`));

    const caller = await phone('1100', 'UDP');
    for (const [i, p] of phones.entries()) {
      const owner = views[i]?.[0]?.owner ?? null;
      // Straight into the instance that did not take the phone's REGISTER (a trunk's call, say).
      expect(await callReaches(other(owner), caller, p, PHONES[i] ?? '')).toBe(486);
      // No connection was opened to the phone: the INVITE came on the one it registered over.
      expect(p.flows().filter((f) => f.direction === 'accepted')).toEqual([]);
    }
  });

  it('a call between two phones through Kamailio: the 200 carries its Record-Route, the ACK and BYE go through it, and the call is cleared normally', async () => {
    const [a, b] = await Promise.all([phone('1131'), phone('1132')]);
    await a.register(edge(), { callId: 'rr-a' });
    await b.register(edge(), { callId: 'rr-b' });
    const call = a.call(edge(), '1132', { sdp: SDP });
    const incoming = await b.nextIncomingCall(8000);
    // Kamailio record-routed the INVITE it sent the phone too (twice: it changes transport, UDP to TCP).
    const named = (rr: string[]): boolean => rr.length > 0 && rr.every((r) => r.startsWith(`<sip:127.0.0.1:${kamailio.port};`));
    expect(named(getHeaderValues(incoming.invite, 'record-route'))).toBe(true);
    const acked = incoming.answer(SDP);
    const ok = await call.final(8000);
    expect(ok.status).toBe(200);
    const recordRoute = getHeaderValues(ok, 'record-route');
    expect(named(recordRoute)).toBe(true);
    await acked;
    expect((await call.bye()).status).toBe(200);
    await incoming.byeReceived();
    const bye = a.sent('BYE').at(-1);
    // The route set is the 200's Record-Route, reversed (§12.1.2).
    expect(bye && getHeaderValues(bye, 'route')).toEqual([...recordRoute].reverse());
  });

  it('instance A killed with kill -9: calls from phones through Kamailio still reach every phone, and a call established on B goes on', async () => {
    const phones = await Promise.all(KILL_PHONES.map((dn) => phone(dn)));
    await registerOnBoth(phones, 'kill');
    const viaA = (await Promise.all(KILL_PHONES.map((dn) => contactsOf(dn)))).filter((c) => c[0]?.owner === 'a').length;
    const caller = await phone('1105');
    await caller.register(edge(), { callId: 'kill-caller' });
    const registeredBefore = (await Promise.all(KILL_PHONES.map((dn) => contactsOf(dn)))).filter((c) => c.length > 0).length;

    // A call established through B (entering B directly), before the kill.
    const events = await EventStream.open(servers.b.api);
    const established = caller.call(servers.b.port, KILL_PHONES[0] ?? '');
    const incoming = await phones[0]?.nextIncomingCall(8000);
    const ack = incoming?.answer(SDP);
    expect((await established.final(8000)).status).toBe(200);
    await ack;

    await servers.a.kill9();
    const statuses: number[] = [];
    // Every phone, the one in the call above too (it takes a second call).
    for (const [i, p] of phones.entries()) statuses.push(await callReaches(edge(), caller, p, KILL_PHONES[i] ?? ''));
    const registeredAfter = (await Promise.all(KILL_PHONES.map((dn) => contactsOf(dn)))).filter((c) => c.length > 0).length;
    console.log(`kill -9 of A behind Kamailio: registrations ${registeredBefore} before (${viaA} through A), ${registeredAfter} after; calls from phones through Kamailio: ${statuses.length} attempted, ${statuses.filter((s) => s === 486).length} reached the phone`);
    expect(statuses).toEqual(phones.map(() => 486));
    expect(registeredAfter).toBe(registeredBefore);

    // The call on B was not touched: it ends normally.
    expect((await established.bye()).status).toBe(200);
    await incoming?.byeReceived();
    expect(await events.next((e) => e.event === 'EventReleased' && e.cause === 'normal', 5000)).toBeDefined();
    events.close();

    servers.a = await startServer({ restartOf: servers.a, dns: DNS, tserver: { store: pg.url, 'instance-name': 'a' } });
  }, 90_000);

  it('RFC 5626 through Kamailio: the phone holds two flows; one is gone, Kamailio answers 430, and the call arrives on the other flow, no connection opened', async () => {
    const p = await phone(OUTBOUND_PHONE);
    const outbound = (regId: number) => ({ contactParams: `;+sip.instance=${INSTANCE};reg-id=${regId}`, headers: [{ name: 'Supported', value: 'outbound, path' }], callId: `ob-${regId}` });
    const first = await p.register(edge(), outbound(1));
    expect(getHeaderValues(first, 'require')).toEqual(['outbound']);
    const second = await p.connect(edge());
    await p.register(second, outbound(2));
    expect((await contactsOf(p.user)).map((c) => c.regId).sort()).toEqual([1, 2]);

    // The newer flow goes (the phone's side of it closed): Kamailio has no connection for it.
    p.dropFlow(second.flowId ?? '');
    const caller = await phone('1100', 'UDP');
    const call = caller.call(servers.b.port, p.user);
    const incoming = await p.nextIncomingCall(8000);
    const arrivedOn = p.messages.find((m) => m.dir === 'in' && m.message === incoming.invite)?.remote.flowId;
    expect(arrivedOn).toBe(p.flows()[0]?.id);
    expect(p.flows().filter((f) => f.direction === 'accepted')).toEqual([]);
    await incoming.reject(486);
    expect((await call.final(8000)).status).toBe(486);
    // The failed flow's binding is gone; the other stays.
    expect((await contactsOf(p.user)).map((c) => c.regId)).toEqual([1]);
  }, 30_000);

  it('★ RFC 5626 through Kamailio, ringing: the connection the INVITE waits on dies, Kamailio answers it 430 at once, and the call rings on the phone\'s other flow and is answered', async () => {
    const p = await phone(RINGING_PHONE);
    const outbound = (regId: number) => ({ contactParams: `;+sip.instance=${INSTANCE};reg-id=${regId}`, headers: [{ name: 'Supported', value: 'outbound' }], callId: `ring-${regId}` });
    await p.register(edge(), outbound(1));
    const second = await p.connect(edge());
    await p.register(second, outbound(2));
    const caller = await phone('1100', 'UDP');
    const call = caller.call(servers.b.port, p.user, { sdp: SDP });
    const first = await p.nextIncomingCall(8000);
    expect(p.messages.find((m) => m.dir === 'in' && m.message === first.invite)?.remote.flowId).toBe(second.flowId);
    first.ring();
    await call.waitStatus(180, 8000);
    const lost = Date.now();
    p.dropFlow(second.flowId ?? '');
    const again = await p.nextIncomingCall(8000);
    console.log(`★ through Kamailio: INVITE on the other flow ${Date.now() - lost} ms after the ringing flow went`);
    expect(p.messages.find((m) => m.dir === 'in' && m.message === again.invite)?.remote.flowId).toBe(p.flows()[0]?.id);
    expect(p.flows().filter((f) => f.direction === 'accepted')).toEqual([]);
    const acked = again.answer(SDP);
    expect((await call.final(8000)).status).toBe(200);
    await acked;
    expect((await call.bye()).status).toBe(200);
  }, 30_000);
});
