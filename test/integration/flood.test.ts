import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../support/api-client.js';
import { freePort } from '../support/ports.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';
import { runSipp, startSippServer } from '../support/sipp.js';

/*
 * A flood from one source must affect that source only (SPEC §8, §9): SIPp at its maximum
 * rate from 127.0.0.9 (untrusted: INVITEs to an unknown number, then its retransmissions)
 * while a well-behaved caller on 127.0.0.1 places 1,000 calls at 40/s to a registered SIPp
 * UAS. The flood source is banned within its first second and dropped unread; the good
 * calls all complete (≥ 99.9 % asked; the test wants every one). Run once: it is the heavy one.
 */

describe('a SIPp flood from one address while a good caller on another places 1,000 calls', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ tserver: { 'sip-trusted-peers': ['127.0.0.1/32'] }, dns: { '1002': { type: 'extension', contact: '*' } }, logLevel: 'info' });
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('every good call completes; the flood source is banned for message-rate', async () => {
    const uasPort = await freePort();
    const registrar = await SipPeer.start({ transport: 'UDP', user: '1002' });
    try {
      // The SIPp UAS's Contact, registered for 1002 (from the trusted address).
      const req = registrar.newRequest('REGISTER', `sip:127.0.0.1:${server.port}`, { to: '<sip:1002@127.0.0.1>', headers: [{ name: 'Expires', value: '600' }] });
      const contact = req.headers.find((h) => h.name === 'Contact');
      if (contact) contact.value = `<sip:1002@127.0.0.1:${uasPort}>`;
      expect((await registrar.sendRequest(req, { transport: 'UDP', address: '127.0.0.1', port: server.port }).waitFinal()).status).toBe(200);
    } finally {
      await registrar.close();
    }
    const uas = await startSippServer({ scenario: 'uas-basic.xml', port: uasPort, transport: 'u1' });
    const flood = spawn('sipp', ['-sn', 'uac', '-i', '127.0.0.9', '-p', String(await freePort()), '-s', '99999', '-r', '20000', '-rp', '1000', '-l', '100000', '-m', '1000000', '-nostdin', `127.0.0.1:${server.port}`], { stdio: 'ignore', cwd: '/tmp' });
    try {
      const good = await runSipp({ scenario: 'uac-basic.xml', port: server.port, transport: 'u1', calls: 1000, timeoutS: 90, extra: ['-s', '1002', '-r', '40', '-l', '200'] });
      expect(good.code, good.output.slice(-2000)).toBe(0);
      expect(good.output).toMatch(/Successful call\s*\|\s*\d+\s*\|\s*1000/);
      const bans = (await getJson<{ source: string; reason: string; dropped: number }[]>(server.api, '/bans')).body;
      const banned = bans.find((b) => b.source === '127.0.0.9');
      expect(banned?.reason).toBe('message-rate');
      expect(banned?.dropped).toBeGreaterThan(1000);
      console.log(`flood: ${banned?.dropped ?? 0} messages dropped from 127.0.0.9 while 1000 good calls completed`);
    } finally {
      const gone = new Promise<void>((r) => (flood.exitCode !== null ? r() : flood.once('exit', () => r())));
      flood.kill('SIGKILL');
      await gone;
      await uas.stop();
    }
  }, 120_000);
});
