import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { makeCertificates, type Certificates } from '../support/certs.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer, type PeerTransportName } from '../support/sip-peer.js';
import { waitFor } from '../support/wait-for.js';

/*
 * sip-tcp-workers (SPEC §3.1 extension): accepted TCP/TLS connections live in worker
 * processes, so the server is not bound by one process's open-file limit. Seen from outside:
 * which process owns each connection (ss -p), calls over TCP and TLS through them, keep-alive
 * read back from the workers' sockets, and what happens when a worker dies.
 */

const SDP = ['v=0', 'o=p 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 40000 RTP/AVP 0', ''].join('\r\n');

/** The process ids owning the server's established connections on `port` (accepted side). */
function ownersOf(port: number): number[] {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established', 'sport', '=', `:${port}`]).toString();
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

/** Child processes of pid, from /proc (no procps needed). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The ppid is the 2nd field after the ")" that ends the command name.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

interface ConnectionRow {
  id: string;
  transport: string;
  origin: string;
  remote: string;
  keepAlive: { enabled: boolean; idleS?: number; intervalS?: number; count?: number };
}

describe('socket workers hold the accepted connections', () => {
  const dns = ['3001', '3002', '3003', '3004', '3005'];
  let certs: Certificates;
  let server: RunningServer;
  let events: EventStream;
  const peers = new Map<string, SipPeer>();
  const transportOf = (dn: string): PeerTransportName => (dn === '3005' ? 'TLS' : 'TCP');
  const serverFor = (dn: string): number => (transportOf(dn) === 'TLS' ? server.tlsPort : server.port);

  beforeAll(async () => {
    certs = makeCertificates({ server: ['DNS:localhost', 'IP:127.0.0.1'] });
    const files = certs.issued.server;
    if (!files) throw new Error('no certificate');
    server = await startServer({
      tls: true,
      tserver: {
        'sip-tcp-workers': 2,
        'sip-enable-tcp-keep-alive': true,
        'sip-tcp-keep-alive-idle': 30,
        'sip-tcp-keep-alive-interval': 7,
        'sip-tls-cert': files.cert,
        'sip-tls-key': files.key,
      },
      dns: Object.fromEntries(dns.map((dn) => [dn, { type: 'extension', contact: '*' }])),
    });
    events = await EventStream.open(server.api);
    for (const dn of dns) {
      const tls = transportOf(dn) === 'TLS' ? { tls: { cert: certs.read(files.cert), key: certs.read(files.key), ca: certs.read(certs.ca) } } : {};
      const peer = await SipPeer.start({ user: dn, transport: transportOf(dn), ...tls });
      expect((await peer.register(serverFor(dn), { expires: 300 })).status).toBe(200);
      peers.set(dn, peer);
    }
  });

  afterAll(async () => {
    events.close();
    for (const peer of peers.values()) await peer.close();
    expect(await server.stop()).toBe(0);
    // The workers go with the server.
    await waitFor(() => childrenOf(server.proc.pid ?? 0).length === 0, 'the workers to exit');
  });

  it('every accepted connection is owned by one of two worker processes, not by the server, spread evenly', () => {
    const pid = server.proc.pid ?? 0;
    const workers = childrenOf(pid);
    expect(workers).toHaveLength(2);
    const owners = [...ownersOf(server.port), ...ownersOf(server.tlsPort)];
    expect(owners).toHaveLength(5);
    expect(owners).not.toContain(pid);
    for (const owner of owners) expect(workers).toContain(owner);
    const perWorker = workers.map((w) => owners.filter((o) => o === w).length).sort();
    expect(perWorker).toEqual([2, 3]);
  });

  it('GET /connections lists them with keep-alive as read back from the worker sockets', async () => {
    const rows = (await getJson<ConnectionRow[]>(server.api, '/connections')).body.filter((c) => c.origin === 'accepted');
    expect(rows.map((r) => r.transport).sort()).toEqual(['TCP', 'TCP', 'TCP', 'TCP', 'TLS']);
    for (const r of rows) expect(r.keepAlive).toMatchObject({ enabled: true, idleS: 30, intervalS: 7 });
  });

  it('a call from a TCP phone to a TLS phone goes through the workers both ways and clears', async () => {
    const mark = events.events.length;
    const call = peers.get('3001')?.call(server.port, '3005', { sdp: SDP });
    const incoming = await peers.get('3005')?.nextIncomingCall();
    if (!call || !incoming) throw new Error('no peers');
    await incoming.answer(SDP);
    expect((await call.final()).status).toBe(200);
    await events.next((e: ApiEvent) => e.event === 'EventEstablished' && e.from === '3001' && e.to === '3005', 5000, mark);
    expect((await call.bye()).status).toBe(200);
    await incoming.byeReceived();
    const released = await events.next((e: ApiEvent) => e.event === 'EventReleased' && e.from === '3001', 5000, mark);
    expect(released.cause).toBe('normal');
  });

  it('a worker killed: its connections are closed, the worker is started again, and a phone that was on it is still reached at its Contact', async () => {
    const pid = server.proc.pid ?? 0;
    const [victim] = childrenOf(pid);
    if (!victim) throw new Error('no worker');
    const lost = ownersOf(server.port).filter((o) => o === victim).length + ownersOf(server.tlsPort).filter((o) => o === victim).length;
    expect(lost).toBeGreaterThan(0);
    process.kill(victim, 'SIGKILL');
    await waitFor(() => server.output().includes('socket worker exited; starting it again'), 'the worker to be restarted', 5000);
    await waitFor(() => childrenOf(pid).length === 2 && !childrenOf(pid).includes(victim), 'two workers again', 5000);
    // The connections of the dead worker are gone from the table (closed before the restart is
    // logged); the others remain.
    const accepted = (await getJson<ConnectionRow[]>(server.api, '/connections')).body.filter((c) => c.origin === 'accepted').length;
    expect(accepted).toBe(5 - lost);

    // A TCP phone whose connection died: the server opens a new connection to its Contact.
    const rows = (await getJson<ConnectionRow[]>(server.api, '/connections')).body;
    const alive = new Set(rows.map((r) => r.remote));
    const orphan = ['3001', '3002', '3003', '3004'].find((dn) => {
      const flows = peers.get(dn)?.flows() ?? [];
      return flows.every((f) => !alive.has(`127.0.0.1:${f.localPort}`));
    });
    if (!orphan) throw new Error('no TCP phone lost its connection');
    const caller = ['3001', '3002', '3003', '3004'].find((dn) => dn !== orphan) ?? '';
    const call = peers.get(caller)?.call(server.port, orphan, { sdp: SDP });
    const incoming = await peers.get(orphan)?.nextIncomingCall();
    if (!call || !incoming) throw new Error('no peers');
    await incoming.answer(SDP);
    expect((await call.final()).status).toBe(200);
    expect((await call.bye()).status).toBe(200);
    await incoming.byeReceived();
    const outbound = (await getJson<ConnectionRow[]>(server.api, '/connections')).body.filter((c) => c.origin === 'outbound');
    expect(outbound.length).toBeGreaterThan(0);
  });
});
