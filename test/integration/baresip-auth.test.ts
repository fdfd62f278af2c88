import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { Baresip } from '../support/baresip.js';
import { startServer, type RunningServer } from '../support/server-process.js';

/*
 * Real softphones that must authenticate: only 127.0.0.2 is a trusted peer, so two baresip
 * phones on 127.0.0.1 are "elsewhere on the network" and need their DNs' passwords, for
 * REGISTER (401) and for INVITE (407). baresip 1.0 gives up on a SHA-256 challenge, so the
 * server offers MD5 only (sip-auth-algorithms), as an operator with such phones would.
 */

const DNS = {
  '3201': { type: 'extension', contact: '*', password: 'alpha-3201' },
  '3202': { type: 'extension', contact: '*', password: 'bravo-3202' },
  '3203': { type: 'extension', contact: '*' },
};

describe('baresip phones with passwords, from an untrusted address', () => {
  let server: RunningServer;
  let events: EventStream;
  let a: Baresip;
  let b: Baresip;

  const apiEvent = (name: string, match: (e: ApiEvent) => boolean = () => true): Promise<ApiEvent> => events.next((e) => e.event === name && match(e), 5000);

  beforeAll(async () => {
    server = await startServer({ tserver: { 'sip-trusted-peers': ['127.0.0.2/32'], 'sip-auth-algorithms': ['MD5'] }, dns: DNS });
    events = await EventStream.open(server.api);
    a = await Baresip.start({ dn: '3201', password: 'alpha-3201', transport: 'UDP', server: { address: '127.0.0.1', port: server.port } });
    b = await Baresip.start({ dn: '3202', password: 'bravo-3202', transport: 'TCP', server: { address: '127.0.0.1', port: server.port } });
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    events?.close();
    await server?.stop();
  });

  it('each phone registers by answering the 401, and a call between them answers the 407: established as the authenticated DNs', async () => {
    // The phones' REGISTERs were challenged, then accepted.
    for (const phone of [a, b]) {
      expect(phone.traced('in', (m) => m.startLine.startsWith('SIP/2.0 401 ')).length).toBeGreaterThan(0);
      expect(phone.traced('out', (m) => m.startLine.startsWith('REGISTER ') && (m.headers.authorization?.[0] ?? '').includes(`username="${phone.dn}"`)).length).toBeGreaterThan(0);
    }
    expect((await getJson<{ state: string }>(server.api, '/dns/3201')).body.state).toBe('in-service');

    const [aMark, bMark] = [a.mark(), b.mark()];
    expect((await a.dial('3202')).ok).toBe(true);
    await b.waitEvent('CALL_INCOMING', () => true, 5000, bMark);
    // The phone's first INVITE got 407; its second carried Proxy-Authorization for 3201.
    await a.waitTraced('in', (m) => m.startLine.startsWith('SIP/2.0 407 '));
    const authed = await a.waitTraced('out', (m) => m.startLine.startsWith('INVITE ') && (m.headers['proxy-authorization']?.[0] ?? '').includes('username="3201"'));
    expect(authed.length).toBeGreaterThan(0);
    expect((await b.command('accept')).ok).toBe(true);
    await a.waitEvent('CALL_ESTABLISHED', () => true, 5000, aMark);
    const established = await apiEvent('EventEstablished', (e) => e.to === '3202');
    expect(established).toMatchObject({ from: '3201', caller: '3201' });
    expect((await b.command('hangup')).ok).toBe(true);
    await a.waitEvent('CALL_CLOSED', () => true, 5000, aMark);
    expect(await apiEvent('EventReleased', (e) => e.callId === established.callId)).toMatchObject({ cause: 'normal', releasedBy: 'callee', dn: '3202' });
  });

  it('a phone for a DN without a password cannot register from there: the REGISTER fails', async () => {
    await expect(Baresip.start({ dn: '3203', password: 'anything', transport: 'UDP', server: { address: '127.0.0.1', port: server.port } })).rejects.toThrow(/REGISTER_FAIL|403/);
    expect((await getJson<{ state: string; contacts: unknown[] }>(server.api, '/dns/3203')).body).toMatchObject({ state: 'out-of-service', contacts: [] });
  });
});
