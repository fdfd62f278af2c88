import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../support/api-client.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * Resource bounds on streams (SPEC §9): slowloris connections — ones that never send a
 * message, or trickle one without end — are closed; a registered flow idle between messages
 * stays (the keep-alive feature needs it); one source cannot hold more connections than its
 * limit. Timeouts are 2 s here (30 s and 20 s by default); the phone (127.0.0.1) is trusted,
 * the slow and greedy sources (127.0.0.30–33) are not.
 */

interface ConnectionView {
  remote: string;
}

function open(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

const closedSoon = (s: Socket): Promise<boolean> => new Promise((r) => (s.destroyed ? r(true) : s.once('close', () => r(true))));

describe('slowloris and connection limits on TCP', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({
      tserver: { 'sip-trusted-peers': ['127.0.0.1/32'], 'sip-tcp-first-message-timeout': 2, 'sip-tcp-stalled-message-timeout': 2, 'sip-source-max-connections': 20, 'sip-source-max-pending-bytes': 200_000 },
      dns: { '5701': { type: 'extension', contact: '*' } },
    });
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('closes a connection that sends nothing and one that trickles a message; keeps a registered flow that is idle', async () => {
    const phone = await SipPeer.start({ transport: 'TCP', user: '5701' });
    try {
      await phone.register(server.port);
      const silent = await open(server.port, '127.0.0.30');
      const trickle = await open(server.port, '127.0.0.31');
      // One whole message first (so it is not just a silent connection), then one that never ends.
      trickle.write(`OPTIONS sip:127.0.0.1:${server.port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.31:5060;branch=z9hG4bKfirst\r\nFrom: <sip:a@127.0.0.31>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: slow-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`);
      trickle.write(`OPTIONS sip:127.0.0.1:${server.port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.31:5060;branch=z9hG4bKslow\r\n`);
      const drip = setInterval(() => trickle.writable && trickle.write('X'), 300);
      try {
        const remotes = async (): Promise<string[]> => (await getJson<ConnectionView[]>(server.api, '/connections')).body.map((c) => c.remote.split(':')[0] ?? '');
        expect(await remotes()).toEqual(expect.arrayContaining(['127.0.0.1', '127.0.0.30', '127.0.0.31']));
        await Promise.all([closedSoon(silent), closedSoon(trickle)]);
        for (let i = 0; i < 50 && (await remotes()).includes('127.0.0.31'); i++) await new Promise((r) => setTimeout(r, 100));
        expect(await remotes()).not.toContain('127.0.0.31');
        // The phone's flow, idle for as long, is still there and still carries requests.
        expect(await remotes()).toContain('127.0.0.1');
        expect((await phone.options(server.port)).status).toBe(200);
        expect(phone.flows()).toHaveLength(1);
      } finally {
        clearInterval(drip);
        silent.destroy();
        trickle.destroy();
      }
      expect(server.output()).toMatch(/no SIP message since it opened/);
      expect(server.output()).toMatch(/message stalled/);
    } finally {
      await phone.register(server.port, { expires: 0 });
      await phone.close();
    }
  });

  it('one untrusted source holds at most sip-source-max-pending-bytes in incomplete messages: over it, its connection closes and the source is banned', async () => {
    const sockets: Socket[] = [];
    try {
      const head = `OPTIONS sip:127.0.0.1:${server.port} SIP/2.0\r\nX-Pad: ${'a'.repeat(60_000)}`;
      for (let i = 0; i < 6; i++) {
        const s = await open(server.port, '127.0.0.34');
        s.on('error', () => undefined);
        s.write(head);
        sockets.push(s);
        await new Promise((r) => setTimeout(r, 100));
      }
      await Promise.race([Promise.any(sockets.map(closedSoon)), new Promise((r) => setTimeout(r, 3000))]);
      expect(sockets.some((s) => s.destroyed)).toBe(true);
      const bans = (await getJson<{ source: string; reason: string }[]>(server.api, '/bans')).body;
      expect(bans).toContainEqual(expect.objectContaining({ source: '127.0.0.34', reason: 'pending-bytes' }));
    } finally {
      for (const s of sockets) s.destroy();
      await fetch(`${server.api}/bans/127.0.0.34`, { method: 'DELETE' });
    }
  });

  it('one untrusted source holds at most sip-source-max-connections: the next is refused and the source banned', async () => {
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) sockets.push(await open(server.port, '127.0.0.32'));
      const extra = await open(server.port, '127.0.0.32');
      sockets.push(extra);
      await closedSoon(extra);
      const bans = (await getJson<{ source: string; reason: string }[]>(server.api, '/bans')).body;
      expect(bans).toContainEqual(expect.objectContaining({ source: '127.0.0.32', reason: 'connections' }));
      // Another source is not affected.
      const other = await open(server.port, '127.0.0.33');
      sockets.push(other);
      other.write(`OPTIONS sip:127.0.0.1:${server.port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.33:5060;branch=z9hG4bKok\r\nFrom: <sip:a@127.0.0.33>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: ok-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`);
      const answer = await new Promise<string>((r) => other.once('data', (d: Buffer) => r(d.toString('latin1'))));
      expect(answer).toMatch(/^SIP\/2\.0 200 /);
    } finally {
      for (const s of sockets) s.destroy();
      await fetch(`${server.api}/bans/127.0.0.32`, { method: 'DELETE' });
    }
  });
});

describe('a process with few open files', () => {
  it('accepts no more connections than it can hold, and keeps answering SIP over UDP and the control API', async () => {
    // 400 open files: room for 200 accepted connections (200 are kept for everything else).
    const server = await startServer({ wrap: ['prlimit', '--nofile=400:400', '--'], dns: {} });
    const sockets: Socket[] = [];
    try {
      expect(server.output()).toMatch(/"using":200,"msg":"sip-max-connections is more than the open-file limit lets the server hold/);
      for (let i = 0; i < 260; i++) sockets.push(await open(server.port, '127.0.0.1'));
      await new Promise((r) => setTimeout(r, 300));
      const alive = sockets.filter((s) => !s.destroyed && s.readyState === 'open');
      expect(alive.length).toBeLessThanOrEqual(200);
      expect((await getJson<unknown[]>(server.api, '/connections')).body.length).toBe(200);
      expect((await fetch(`${server.api}/health`)).status).toBe(200);
      const probe = await SipPeer.start({ transport: 'UDP', user: 'probe' });
      try {
        expect((await probe.options(server.port)).status).toBe(200);
      } finally {
        await probe.close();
      }
    } finally {
      for (const s of sockets) s.destroy();
      expect(await server.stop()).toBe(0);
    }
  });
});
