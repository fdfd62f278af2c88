import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipResponse } from '../../src/sip/message.js';
import { EventStream, getJson } from '../support/api-client.js';
import { digestAnswer } from '../support/digest-answer.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * Real attack tools against the running server (SPEC §9): sipvicious svwar (enumeration) and
 * svcrack (password guessing), a guesser of our own (svcrack's User-Agent is dropped on
 * sight, so the failed-authentication limit needs one that looks like a phone) and a UDP
 * flood. Only 127.0.0.2 is trusted; every attacker has its own 127.0.0.x address, so a ban hits
 * it alone — except sipvicious 0.3.3, whose svwar and svcrack ignore -b and send from
 * 127.0.0.1: their tests lift that ban when done. All on loopback.
 */

const DNS = {
  '5501': { type: 'extension', contact: '*' },
  '5502': { type: 'extension', contact: '*', password: 'letmein' },
};

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`));
  });
}

/** A REGISTER for 5502 from `peer`, answering `challenge` with `password` when given. */
function register(peer: SipPeer, server: RunningServer, cseq: number, challenge?: SipResponse, password?: string): Promise<SipResponse> {
  const uri = `sip:127.0.0.1:${server.port}`;
  const headers = [{ name: 'Expires', value: '60' }];
  if (challenge && password !== undefined) {
    const md5 = getHeaderValues(challenge, 'www-authenticate').find((v) => v.includes('MD5')) ?? '';
    headers.push({ name: 'Authorization', value: digestAnswer(md5, { algorithm: 'MD5', user: '5502', password, uri, nc: '00000001' }) });
  }
  const req = peer.newRequest('REGISTER', uri, { to: '<sip:5502@127.0.0.1>', callId: `guess-${peer.address}-${peer.port}`, cseq, headers });
  return peer.sendRequest(req, { transport: 'UDP', address: '127.0.0.1', port: server.port }).waitFinal(1500);
}

interface BanView {
  source: string;
  reason: string;
}

describe('scanners, guessers and floods, with the default limits', () => {
  let server: RunningServer;
  let events: EventStream;
  const bans = async (): Promise<BanView[]> => (await getJson<BanView[]>(server.api, '/bans')).body;
  const scannerDrops = async (): Promise<number> => Number(/^sip_scanner_requests_dropped_total (\d+)/m.exec(await (await fetch(`${server.api}/metrics`)).text())?.[1] ?? 0);

  beforeAll(async () => {
    server = await startServer({ tserver: { 'sip-trusted-peers': ['127.0.0.2/32'] }, dns: DNS, logLevel: 'info' });
    events = await EventStream.open(server.api);
  });

  afterAll(async () => {
    events.close();
    expect(await server.stop()).toBe(0);
  });

  it('svwar (REGISTER and INVITE) finds no DN: its User-Agent is dropped unanswered', async () => {
    for (const method of ['REGISTER', 'INVITE']) {
      const out = await run('svwar', ['-m', method, '-e5495-5510', '--maximumtime=3', '-p', String(server.port), '127.0.0.1']);
      expect(out).not.toMatch(/\|\s*550[12]\s*\|/);
      expect(out).toMatch(/found nothing|no (sip )?server|not respond/i);
    }
    // Dropped unanswered; over UDP the source is not banned for it (its address could be forged).
    expect(await scannerDrops()).toBeGreaterThan(0);
    expect(await bans()).not.toContainEqual(expect.objectContaining({ source: '127.0.0.1' }));
  });

  it('svcrack does not find the password: its requests are dropped unanswered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svcrack-'));
    const words = join(dir, 'words.txt');
    writeFileSync(words, ['123456', 'password', 'qwerty', 'letmein', 'admin'].join('\n'));
    const before = await scannerDrops();
    const out = await run('svcrack', ['-u', '5502', '-d', words, '--maximumtime=3', '-p', String(server.port), '127.0.0.1'], 30_000);
    expect(out).not.toContain('letmein');
    expect(await scannerDrops()).toBeGreaterThan(before);
    expect(out).not.toMatch(/\|\s*5502\s*\|/);
  });

  it('a guesser that looks like a phone is banned after 10 wrong passwords: the right one then gets no answer, other sources are unaffected; DELETE /bans lifts it', async () => {
    const guesser = await SipPeer.start({ transport: 'UDP', user: '5502', address: '127.0.0.8' });
    const phone = await SipPeer.start({ transport: 'UDP', user: '5502', address: '127.0.0.9' });
    try {
      let cseq = 1;
      let tries = 0;
      for (; tries < 30; tries++) {
        let challenge: SipResponse;
        try {
          challenge = await register(guesser, server, cseq++);
        } catch {
          break; // no answer: banned
        }
        expect(challenge.status).toBe(401);
        const verdict = await register(guesser, server, cseq++, challenge, `guess-${tries}`).catch(() => undefined);
        if (!verdict) break;
        expect(verdict.status).toBe(403);
      }
      expect(tries).toBe(10);
      expect(await bans()).toContainEqual(expect.objectContaining({ source: '127.0.0.8', reason: 'auth-failures' }));
      await expect(register(guesser, server, cseq++)).rejects.toThrow();
      // The real phone, elsewhere, registers with the password.
      const first = await register(phone, server, 1);
      expect((await register(phone, server, 2, first, 'letmein')).status).toBe(200);
      // Lifted, the guesser's source is answered again.
      const lifted = await fetch(`${server.api}/bans/127.0.0.8`, { method: 'DELETE' });
      expect(lifted.status).toBe(200);
      expect((await register(guesser, server, cseq++)).status).toBe(401);
      expect((await fetch(`${server.api}/bans/127.0.0.8`, { method: 'DELETE' })).status).toBe(404);
      const again = await register(phone, server, 3);
      expect((await register(phone, server, 4, again, 'letmein')).status).toBe(200);
    } finally {
      await guesser.close();
      await phone.close();
    }
  });

  it('a UDP flood from one source is banned after its first second; a peer at another address is answered throughout', async () => {
    const flood = createSocket('udp4');
    await new Promise<void>((r) => flood.bind(0, '127.0.0.10', () => r()));
    const good = await SipPeer.start({ transport: 'UDP', user: 'probe', address: '127.0.0.11' });
    try {
      const options = (n: number): Buffer =>
        Buffer.from(
          [`OPTIONS sip:127.0.0.1:${server.port} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.10:${flood.address().port};branch=z9hG4bKflood${n};rport`, 'Max-Forwards: 70', `From: <sip:f@127.0.0.10>;tag=f${n}`, '<sip:x@127.0.0.1>'.replace(/^/, 'To: '), `Call-ID: flood-${n}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n'),
        );
      let answered = 0;
      const sending = (async () => {
        for (let n = 0; n < 5000; n++) {
          flood.send(options(n), server.port, '127.0.0.1');
          if (n % 100 === 99) await new Promise((r) => setImmediate(r));
        }
      })();
      for (let i = 0; i < 20; i++) {
        const res = await good.options({ address: '127.0.0.1', port: server.port });
        if (res.status === 200) answered++;
        await new Promise((r) => setTimeout(r, 25));
      }
      await sending;
      expect(answered).toBe(20);
      expect(await bans()).toContainEqual(expect.objectContaining({ source: '127.0.0.10', reason: 'message-rate' }));
      const metrics = await (await fetch(`${server.api}/metrics`)).text();
      expect(metrics).toMatch(/^sip_source_bans_total\{reason="message-rate"\} [1-9]/m);
      expect(metrics).toMatch(/^sip_banned_dropped [1-9]\d*/m);
    } finally {
      flood.close();
      await good.close();
    }
  });
});

describe('enumeration without any limit: the answers themselves tell no DN from a made-up one', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ tserver: { 'sip-trusted-peers': ['127.0.0.2/32'], 'sip-drop-user-agents': [], 'sip-source-max-rate': 0, 'sip-source-max-auth-failures': 0 }, dns: DNS });
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('svwar --force over REGISTER and INVITE finds nothing', async () => {
    for (const method of ['REGISTER', 'INVITE']) {
      const out = await run('svwar', ['--force', '-m', method, '-e5495-5510', '-p', String(server.port), '127.0.0.1']);
      expect(out).toContain('found nothing');
      expect(out).not.toMatch(/\|\s*550[12]\s*\|/);
    }
  });
});
