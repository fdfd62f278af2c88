import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStream, getJson } from '../support/api-client.js';
import { freePort } from '../support/ports.js';
import { RawPeer } from '../support/raw-peer.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { runSipp, startSippServer } from '../support/sipp.js';

/** Registers `dn` with a Contact on `contactPort` (where a SIPp UAS listens), over UDP. */
async function registerContact(server: RunningServer, dn: string, contactPort: number, transport: 'udp' | 'tcp'): Promise<void> {
  const peer = await RawPeer.udp(server.port);
  try {
    peer.send(
      [
        `REGISTER sip:127.0.0.1:${server.port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${peer.localPort};branch=z9hG4bKreg${dn}${transport}`,
        `From: <sip:${dn}@127.0.0.1>;tag=r${dn}`,
        `To: <sip:${dn}@127.0.0.1>`,
        `Call-ID: reg-${dn}-${transport}`,
        'CSeq: 1 REGISTER',
        `Contact: <sip:${dn}@127.0.0.1:${contactPort};transport=${transport}>`,
        'Expires: 600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    expect((await peer.response()).status).toBe(200);
  } finally {
    peer.close();
  }
}

describe('basic calls through the B2BUA: SIPp UAC → server → SIPp UAS', () => {
  let server: RunningServer;
  let events: EventStream;

  beforeAll(async () => {
    server = await startServer({ dns: { '1002': { type: 'extension', contact: '*' }, '1003': { type: 'extension', contact: '*' } } });
    events = await EventStream.open(server.api);
  });

  afterAll(async () => {
    events.close();
    expect(await server.stop()).toBe(0);
  });

  it.each([
    { transport: 'udp' as const, sipp: 'u1' as const, dn: '1002' },
    { transport: 'tcp' as const, sipp: 't1' as const, dn: '1003' },
  ])('100 calls over $transport, 0 failed, with events and call records', async ({ transport, sipp, dn }) => {
    const uasPort = await freePort();
    await registerContact(server, dn, uasPort, transport);
    const uas = await startSippServer({ scenario: 'uas-basic.xml', port: uasPort, transport: sipp });
    const from = events.events.length;
    try {
      const r = await runSipp({ scenario: 'uac-basic.xml', port: server.port, transport: sipp, calls: 100, timeoutS: 60, extra: ['-s', dn, '-r', '50', '-l', '20'] });
      expect(r.code, r.output).toBe(0);
    } finally {
      await uas.stop();
    }
    const mine = events.events.slice(from);
    const released = (): number => mine.filter((e) => e.event === 'EventReleased').length;
    await expect.poll(released, { timeout: 5000 }).toBe(100);
    expect(mine.filter((e) => e.event === 'EventRinging' && e.dn === dn)).toHaveLength(100);
    expect(mine.filter((e) => e.event === 'EventEstablished' && e.dn === dn)).toHaveLength(100);
    expect(mine.filter((e) => e.event === 'EventReleased' && e.cause === 'normal')).toHaveLength(100);
    const db = new Database(join(server.dir, 'state.db'), { readonly: true });
    try {
      // Call records reach the file within 100 ms of the call's end (written in batches).
      const inFile = (): number => (db.prepare("SELECT count(*) AS n FROM call_records WHERE to_dn = ? AND cause = 'normal' AND answered_at IS NOT NULL").get(dn) as { n: number }).n;
      await expect.poll(inFile, { timeout: 2000 }).toBe(100);
    } finally {
      db.close();
    }
  });
});

describe('calls on the control API', () => {
  let server: RunningServer;
  let events: EventStream;

  beforeAll(async () => {
    server = await startServer({ dns: { '1002': { type: 'extension', contact: '*' } } });
    events = await EventStream.open(server.api);
  });

  afterAll(async () => {
    events.close();
    expect(await server.stop()).toBe(0);
  });

  it('GET /calls shows an established call; DELETE /calls/{id} releases it with BYE on both legs', async () => {
    const uasPort = await freePort();
    await registerContact(server, '1002', uasPort, 'udp');
    const uas = await startSippServer({ scenario: 'uas-basic.xml', port: uasPort, transport: 'u1' });
    try {
      const caller = runSipp({ scenario: 'uac-released.xml', port: server.port, transport: 'u1', calls: 1, timeoutS: 15, extra: ['-s', '1002'] });
      const established = await events.next((e) => e.event === 'EventEstablished');
      const list = await getJson<{ id: string; state: string; from: string; to: string; calleeDn: string }[]>(server.api, '/calls');
      expect(list.body).toEqual([expect.objectContaining({ id: established.callId, state: 'established', to: '1002', calleeDn: '1002' })]);
      const one = await getJson<{ legs: { caller: { transport: string } } }>(server.api, `/calls/${String(established.callId)}`);
      expect(one.body.legs.caller.transport).toBe('UDP');
      const del = await fetch(`${server.api}/calls/${String(established.callId)}`, { method: 'DELETE' });
      expect(del.status).toBe(200);
      expect(await del.json()).toEqual({ id: established.callId, state: 'released', cause: 'administrative' });
      const r = await caller;
      expect(r.code, r.output).toBe(0);
      const released = await events.next((e) => e.event === 'EventReleased' && e.callId === established.callId);
      expect(released.cause).toBe('administrative');
      expect((await getJson(server.api, '/calls')).body).toEqual([]);
      // Once ended, the call is served from its record, and listed among the recent ones.
      expect((await getJson(server.api, `/calls/${String(established.callId)}`)).body).toMatchObject({ state: 'released', cause: 'administrative', releasedBy: 'server' });
      const recent = await getJson<{ id: string }[]>(server.api, '/call-records?dn=1002&limit=5');
      expect(recent.body.map((r) => r.id)).toContain(established.callId);
      expect((await getJson(server.api, '/call-records?limit=0')).status).toBe(400);
      expect((await getJson(server.api, '/calls/no-such-call')).status).toBe(404);
      const metrics = await (await fetch(`${server.api}/metrics`)).text();
      expect(metrics).toMatch(/^sip_calls_released_total\{cause="administrative"\} 1$/m);
      expect(metrics).toMatch(/^sip_call_setup_seconds_count 1$/m);
      expect(metrics).toMatch(/^sip_calls\{state="established"\} 0$/m);
    } finally {
      await uas.stop();
    }
  });
});

describe('shutdown with a call in progress', () => {
  it('SIGTERM releases the established call with BYE and a Reason on both legs, then exits 0', async () => {
    const server = await startServer({ dns: { '1002': { type: 'extension', contact: '*' } } });
    const events = await EventStream.open(server.api);
    const uasPort = await freePort();
    await registerContact(server, '1002', uasPort, 'udp');
    const uas = await startSippServer({ scenario: 'uas-basic.xml', port: uasPort, transport: 'u1' });
    try {
      const caller = runSipp({ scenario: 'uac-released.xml', port: server.port, transport: 'u1', calls: 1, timeoutS: 15, extra: ['-s', '1002'] });
      await events.next((e) => e.event === 'EventEstablished');
      expect(await server.stop()).toBe(0);
      const r = await caller;
      expect(r.code, r.output).toBe(0);
    } finally {
      events.close();
      await uas.stop();
    }
  });
});
