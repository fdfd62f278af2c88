import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStream, getJson } from '../support/api-client.js';
import { freePort } from '../support/ports.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';
import { startSippServer } from '../support/sipp.js';

/**
 * The active out-of-service check against a real peer: SIPp as a UAS that answers OPTIONS.
 * Short timers (check every 1 s, out of service after 1 s without an answer) keep it quick.
 */
describe('OOS check against a SIPp UAS', () => {
  let server: RunningServer;
  let events: EventStream;
  let peerPort: number;

  beforeAll(async () => {
    peerPort = await freePort();
    server = await startServer({
      dns: { ms1: { type: 'voip-service', 'service-type': 'msml', contact: `sip:127.0.0.1:${peerPort}`, 'oos-check': 1, 'oos-force': 1 } },
    });
    events = await EventStream.open(server.api);
  });

  afterAll(async () => {
    events.close();
    expect(await server.stop()).toBe(0);
  });

  it('stays in service while answered, goes out within oos-check + oos-force when the peer stops, and comes back', async () => {
    const uas = await startSippServer({ scenario: 'options-uas.xml', port: peerPort, transport: 'u1' });
    try {
      // Wait for the third check: the first two were answered within oos-force, or the DN
      // would have gone out of service already.
      await expect
        .poll(async () => optionsSent(await (await fetch(`${server.api}/metrics`)).text()), { timeout: 5000, interval: 100 })
        .toBeGreaterThanOrEqual(3);
      expect((await getJson<{ state: string }>(server.api, '/dns/ms1')).body.state).toBe('in-service');
      expect(events.events.filter((e) => e.dn === 'ms1')).toEqual([]);
    } finally {
      await uas.stop();
    }
    const stoppedAt = Date.now();
    const out = await events.next((e) => e.event === 'EventDNOutOfService' && e.dn === 'ms1', 5000);
    // SPEC §4: out of service within oos-check + oos-force (1 + 1 s); 750 ms for scheduling.
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(2000 + 750);
    expect(out.reason).toMatch(/no response to OPTIONS within 1 s/);
    expect((await getJson<{ state: string }>(server.api, '/dns/ms1')).body.state).toBe('out-of-service');

    const again = await startSippServer({ scenario: 'options-uas.xml', port: peerPort, transport: 'u1' });
    try {
      const back = await events.next((e) => e.event === 'EventDNBackInService' && e.dn === 'ms1', 5000);
      expect(back.reason).toMatch(/OPTIONS answered 200/);
      expect((await getJson<{ state: string }>(server.api, '/dns/ms1')).body.state).toBe('in-service');
    } finally {
      await again.stop();
    }
  });
});

function optionsSent(metrics: string): number {
  const m = /^sip_transactions_total\{kind="non-invite-client"\} (\d+)/m.exec(metrics);
  return m ? Number(m[1]) : 0;
}

/*
 * The cascade seen under a flood: one INVITE a registered phone missed put it out of service
 * until it registered again (minutes of 480 to its callers). Now it is asked with OPTIONS
 * (sip-oos-recovery-interval, 1 s here) and is back as soon as it answers. T1 is 50 ms, so the
 * missed INVITE times out after 3.2 s.
 */
describe('a registered phone that missed one INVITE', () => {
  it('goes out of service on the timeout and is back in service once it answers an OPTIONS', async () => {
    const server = await startServer({ tserver: { 'sip-t1': 50, 'sip-oos-recovery-interval': 1 }, dns: { '5801': { type: 'extension', contact: '*' }, '5802': { type: 'extension', contact: '*' } } });
    const events = await EventStream.open(server.api);
    // The phone: answers REGISTER-less OPTIONS, ignores INVITEs (it missed them).
    const phone = createSocket('udp4');
    await new Promise<void>((r) => phone.bind(0, '127.0.0.1', () => r()));
    const port = phone.address().port;
    const seen: string[] = [];
    phone.on('message', (m, rinfo) => {
      const text = m.toString('latin1');
      const method = text.split(' ')[0] ?? '';
      seen.push(method);
      if (method !== 'OPTIONS' && method !== 'REGISTER') return;
      const head = text.split('\r\n\r\n')[0]?.split('\r\n') ?? [];
      const copy = head.filter((l) => /^(via|from|to|call-id|cseq):/i.test(l));
      phone.send(Buffer.from(['SIP/2.0 200 OK', ...copy.map((l) => (/^to:/i.test(l) && !l.includes('tag=') ? `${l};tag=ph` : l)), 'Content-Length: 0', '', ''].join('\r\n')), rinfo.port, rinfo.address);
    });
    const caller = await SipPeer.start({ transport: 'UDP', user: '5802' });
    try {
      const reg = [`REGISTER sip:127.0.0.1:${server.port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKph1;rport`, 'Max-Forwards: 70', '<sip:5801@127.0.0.1>;tag=r1'.replace(/^/, 'From: '), 'To: <sip:5801@127.0.0.1>', 'Call-ID: ph-reg', 'CSeq: 1 REGISTER', `Contact: <sip:5801@127.0.0.1:${port}>`, 'Expires: 600', 'Content-Length: 0', '', ''].join('\r\n');
      phone.send(Buffer.from(reg), server.port, '127.0.0.1');
      await events.next((e) => e.event === 'EventRegistered' && e.dn === '5801');
      await caller.register(server.port);
      const mark = events.events.length;
      const call = caller.call(server.port, '5801', { sdp: 'v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n' });
      expect((await call.final(10_000)).status).toBe(408);
      const out = await events.next((e) => e.event === 'EventDNOutOfService' && e.dn === '5801', 5000, mark);
      expect(out.reason).toMatch(/timed out/i);
      const back = await events.next((e) => e.event === 'EventDNBackInService' && e.dn === '5801', 5000, mark);
      expect(back.reason).toBe('OPTIONS answered 200');
      expect(seen).toContain('OPTIONS');
      expect((await getJson<{ state: string }>(server.api, '/dns/5801')).body.state).toBe('in-service');
      await caller.register(server.port, { expires: 0 });
    } finally {
      await caller.close();
      phone.close();
      events.close();
      expect(await server.stop()).toBe(0);
    }
  }, 30_000);
});
