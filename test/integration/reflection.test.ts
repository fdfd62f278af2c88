import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawPeer } from '../support/raw-peer.js';
import { startServer, type RunningServer } from '../support/server-process.js';

/*
 * Reflection (SPEC §9): a request whose Via names a third party — well formed or not — must
 * not make the server send its responses there. The "victim" is a UDP socket on
 * 127.0.0.5:5999; the sender is on 127.0.0.1, where it also listens on 5999 (the sent-by port
 * RFC 3261 §18.2.2 answers when the Via asks for no rport); everything stays on loopback.
 */

describe('responses go where the request came from, whatever its Via says', () => {
  let server: RunningServer;
  let victim: UdpSocket;
  let home: UdpSocket;
  const atVictim: string[] = [];
  const atHome: string[] = [];

  beforeAll(async () => {
    server = await startServer({ dns: { '1001': { type: 'extension', contact: '*' } } });
    victim = createSocket('udp4');
    await new Promise<void>((r) => victim.bind(5999, '127.0.0.5', () => r()));
    victim.on('message', (m) => atVictim.push(m.toString('latin1').split('\r\n')[0] ?? ''));
    home = createSocket('udp4');
    await new Promise<void>((r) => home.bind(5999, '127.0.0.1', () => r()));
    home.on('message', (m) => atHome.push(m.toString('latin1').split('\r\n')[0] ?? ''));
  });

  afterAll(async () => {
    victim.close();
    home.close();
    expect(await server.stop()).toBe(0);
  });

  const request = (method: string, via: string, n: number): string =>
    [
      `${method} sip:${method === 'OPTIONS' ? '' : '9999@'}127.0.0.1:${server.port} SIP/2.0`,
      `Via: ${via}`,
      'Max-Forwards: 70',
      `From: <sip:x@127.0.0.1>;tag=t${n}`,
      `To: <sip:${method === 'OPTIONS' ? 'x' : '9999'}@127.0.0.1>`,
      `Call-ID: reflect-${n}-${method}`,
      `CSeq: 1 ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');

  it.each([
    { what: 'a well-formed Via naming another host, no rport', via: 'SIP/2.0/UDP 127.0.0.5:5999;branch=z9hG4bKwell', where: 'sent-by port' },
    { what: 'a well-formed Via naming another host, with rport', via: 'SIP/2.0/UDP 127.0.0.5:5999;rport;branch=z9hG4bKwellr', where: 'source port' },
    { what: 'a Via with an unbalanced quote', via: 'SIP/2.0/UDP 127.0.0.5:5999;rport;branch=z9hG4bKquote;x="unbalanced', where: 'source port' },
    { what: 'a Via with a host name to look up', via: 'SIP/2.0/UDP victim.invalid:5999;rport;branch=z9hG4bKname', where: 'source port' },
    { what: 'a Via with rport and a quoted comma', via: 'SIP/2.0/UDP 127.0.0.5:5999;rport;branch=z9hG4bKcomma;x="a,b"', where: 'source port' },
  ] as const)('$what: the answer goes to the sender\'s address at its $where, none to the host the Via names', async ({ via, where }) => {
    for (const method of ['OPTIONS', 'INVITE']) {
      const peer = await RawPeer.udp(server.port);
      const before = atHome.length;
      try {
        peer.send(request(method, via, atVictim.length + atHome.length));
        if (where === 'source port') {
          expect((await peer.response(0, 3000)).status).toBeGreaterThanOrEqual(200);
        } else {
          const deadline = Date.now() + 3000;
          while (atHome.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          expect(atHome.slice(before)[0]).toMatch(/^SIP\/2\.0 [2-6]\d\d /);
        }
      } finally {
        peer.close();
      }
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(atVictim).toEqual([]);
  });
});
