import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../support/api-client.js';
import { faultNet } from '../support/netns.js';
import { startServer, type RunningServer } from '../support/server-process.js';

/*
 * A server whose DNS never answers: `ip netns exec` puts /etc/netns/<ns>/resolv.conf over
 * /etc/resolv.conf, and the one written here names a nameserver on the veth's subnet that does
 * not exist (its queries go unanswered, 5 s each). The first GET /connections loads the
 * socket-option library, which asked Node for a diagnostic report, and a report looks up the
 * host name of every open socket synchronously, with the whole event loop stopped (seen with
 * 1,500 connections: minutes without SIP or API).
 */

const net = faultNet();
const etc = `/etc/netns/${net.srv}`;

describe('the control API of a server whose DNS does not answer', () => {
  let server: RunningServer;

  beforeAll(async () => {
    mkdirSync(etc, { recursive: true });
    const nobody = net.srvAddr.replace(/\.\d+$/, '.250');
    writeFileSync(`${etc}/resolv.conf`, `nameserver ${nobody}\noptions timeout:5 attempts:2\n`);
    server = await startServer({ netns: { name: net.srv, address: net.srvAddr }, dns: {} });
  });

  afterAll(async () => {
    rmSync(etc, { recursive: true, force: true });
    await server?.stop();
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
