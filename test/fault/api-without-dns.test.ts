import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../support/api-client.js';
import { faultNet } from '../support/netns.js';
import { startServer, type RunningServer } from '../support/server-process.js';

/*
 * A server whose DNS never answers (a resolver blackholed in its namespace: the nameserver of
 * /etc/resolv.conf is routed onto the veth, where nobody has it). The first GET /connections
 * loads the socket-option library, which asked Node for a diagnostic report, and a report looks
 * up the host name of every open socket synchronously: 5 s per lookup here, with the whole
 * event loop stopped (seen with 1,500 connections: minutes without SIP or API).
 */

const net = faultNet();
const nsRun = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', net.srv, ...args], { encoding: 'utf8' });

describe('the control API of a server whose DNS does not answer', () => {
  let server: RunningServer;
  let route: string | undefined;

  beforeAll(async () => {
    const nameserver = /^nameserver\s+(\S+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'))?.[1] ?? '192.0.2.53';
    const dev = nsRun('ip', '-o', 'link').split('\n').map((l) => /^\d+: ([^@:]+)/.exec(l)?.[1]).find((d) => d && d !== 'lo');
    if (!dev) throw new Error('no veth in the server namespace');
    route = `${nameserver}/32`;
    nsRun('ip', 'route', 'add', route, 'dev', dev);
    server = await startServer({ netns: { name: net.srv, address: net.srvAddr }, dns: {} });
  });

  afterAll(async () => {
    await server?.stop();
    if (route) nsRun('ip', 'route', 'del', route);
  });

  it('answers the first GET /connections at once with connections open (no host-name lookups)', async () => {
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        sockets.push(await new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: net.srvAddr, port: 5060 }, () => resolve(s));
          s.once('error', reject);
        }));
      }
      const accepted = (): number => server.output().split('"msg":"connection opened"').length - 1;
      for (let i = 0; i < 100 && accepted() < 8; i++) await new Promise((r) => setTimeout(r, 20));
      expect(accepted()).toBe(8);
      const list = await getJson<unknown[]>(server.api, '/connections', server.token);
      expect(list.body).toHaveLength(8);
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 20_000);
});
