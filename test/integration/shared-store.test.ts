import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../support/api-client.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * Two instances on one PostgreSQL store (`store: postgres://…`), as real processes, with a
 * PostgreSQL server of the test's own: what one instance registers the other knows at once
 * and routes to; one killed with kill -9 loses nothing; the database restarted loses nothing
 * acknowledged, and both instances follow each other again afterwards.
 */

interface DnView {
  state: string;
  contacts: { contact: string; transport: string }[];
}

const PHONES = ['1010', '1011', '1012', '1013', '1014'];
const DNS = Object.fromEntries(['1001', '1002', ...PHONES, '1015', '1016'].map((dn) => [dn, { type: 'extension', contact: '*' }]));

let pg: TestPostgres;
let a: RunningServer;
let b: RunningServer;
const peers: SipPeer[] = [];

async function peer(user: string): Promise<SipPeer> {
  const p = await SipPeer.start({ user });
  peers.push(p);
  return p;
}

async function dnState(server: RunningServer, dn: string): Promise<DnView> {
  return (await getJson<DnView>(server.api, `/dns/${dn}`)).body;
}

/** Calls `dn` through `server` from `caller`; resolves with the status the caller got once the phone rejected it with 486. */
async function callThrough(server: RunningServer, caller: SipPeer, phone: SipPeer, dn: string): Promise<number> {
  const call = caller.call(server.port, dn);
  const incoming = await phone.nextIncomingCall();
  await incoming.reject(486);
  return (await call.final()).status;
}

beforeAll(async () => {
  pg = await startPostgres();
  const start = (name: string): Promise<RunningServer> => startServer({ dns: DNS, tserver: { store: pg.url, 'instance-name': name } });
  [a, b] = await Promise.all([start('a'), start('b')]);
}, 60_000);

afterAll(async () => {
  for (const p of peers.splice(0)) await p.close();
  await a?.stop();
  await b?.stop();
  pg?.destroy();
});

describe('several instances on one PostgreSQL store', () => {
  it('a phone registered with A is in service on B at once; a call entering B reaches it; both see the call record', async () => {
    const phone = await peer('1002');
    const caller = await peer('1001');
    await phone.register(a.port);
    await expect.poll(async () => (await dnState(b, '1002')).state, { timeout: 5000 }).toBe('in-service');
    expect((await dnState(b, '1002')).contacts).toMatchObject([{ contact: `sip:1002@127.0.0.1:${phone.port};transport=udp`, transport: 'UDP' }]);
    await caller.register(b.port);

    expect(await callThrough(b, caller, phone, '1002')).toBe(486);
    // The record B wrote, read through A.
    await expect
      .poll(async () => (await getJson<{ to: string; cause: string; status: number }[]>(a.api, '/call-records?dn=1002')).body.map((r) => [r.to, r.cause, r.status]), { timeout: 5000 })
      .toEqual([['1002', 'busy', 486]]);
  });

  it('A killed with kill -9: every phone registered through A is still reached through B, and A restarted loads them all', async () => {
    const phones = await Promise.all(PHONES.map((dn) => peer(dn)));
    for (const p of phones) await p.register(a.port);
    for (const dn of PHONES) await expect.poll(async () => (await dnState(b, dn)).state, { timeout: 5000 }).toBe('in-service');
    const caller = await peer('1001');
    await caller.register(b.port);

    await a.kill9();
    const statuses: number[] = [];
    for (const [i, p] of phones.entries()) statuses.push(await callThrough(b, caller, p, PHONES[i] ?? ''));
    const inService = (await Promise.all(PHONES.map((dn) => dnState(b, dn)))).filter((d) => d.state === 'in-service').length;
    console.log(`kill -9 of A: ${PHONES.length} registrations before, ${inService} in service on B after; calls through B: ${statuses.length} attempted, ${statuses.filter((s) => s === 486).length} reached the phone`);
    expect(statuses).toEqual(PHONES.map(() => 486));
    expect(inService).toBe(PHONES.length);

    a = await startServer({ restartOf: a, dns: DNS, tserver: { store: pg.url, 'instance-name': 'a' } });
    for (const dn of PHONES) expect((await dnState(a, dn)).state).toBe('in-service');
  }, 60_000);

  it('the database restarted: REGISTERs get 500 while it is down, nothing acknowledged is lost, and the instances follow each other again', async () => {
    const before = (await Promise.all(PHONES.map((dn) => dnState(b, dn)))).filter((d) => d.state === 'in-service').length;
    const late = await peer('1015');
    pg.stop();
    const refused = await late.tryRegister(a.port);
    expect([refused.status, refused.reason]).toEqual([500, 'Registration Not Stored']);
    pg.start();
    // The pool connects again by itself: the phone's next attempt is stored.
    await expect.poll(async () => (await late.tryRegister(a.port)).status, { timeout: 15_000, interval: 500 }).toBe(200);
    // B lost its LISTEN connection too; once back it follows A again.
    await expect.poll(async () => (await dnState(b, '1015')).state, { timeout: 15_000 }).toBe('in-service');
    const newer = await peer('1016');
    await newer.register(b.port);
    await expect.poll(async () => (await dnState(a, '1016')).state, { timeout: 5000 }).toBe('in-service');
    const after = (await Promise.all(PHONES.map((dn) => dnState(b, dn)))).filter((d) => d.state === 'in-service').length;
    console.log(`database restart: ${before} registrations in service before, ${after} after; REGISTER during the outage: ${refused.status}`);
    expect(after).toBe(before);
    for (const dn of PHONES) expect((await dnState(a, dn)).state).toBe('in-service');
  }, 60_000);
});
