import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { getHeaderValues } from '../../src/sip/message.js';
import { freePort } from '../support/ports.js';
import { runCli, startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer, type IncomingCall, type PeerCall } from '../support/sip-peer.js';
import { waitFor } from '../support/wait-for.js';

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sip-cfg-')), 'config.yaml');
  writeFileSync(path, text);
  return path;
}

describe('command line', () => {
  it('check-config accepts a valid file with exit 0', async () => {
    const f = file('TServer:\n  sip-port: 5090\ndns:\n  "1001": { type: extension, contact: "*" }\n');
    const r = await runCli(['check-config', f]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${f}: ok`);
  });

  it('check-config warns (exit 0) when DNs without a password cannot register from any other host', async () => {
    const open = file('TServer:\n  sip-address: 192.0.2.10\ndns:\n  "1001": { type: extension, contact: "*" }\n  "1002": { type: extension, contact: "*", password: pw }\n');
    const r = await runCli(['check-config', open]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${open}: warning: dns 1001: no password, and sip-trusted-peers trusts only loopback`);
    // Trusting the phones' LAN, or staying on loopback, is fine.
    const lan = file('TServer:\n  sip-address: 192.0.2.10\n  sip-trusted-peers: ["192.0.2.0/24"]\ndns:\n  "1001": { type: extension, contact: "*" }\n');
    expect((await runCli(['check-config', lan])).stderr).toBe('');
    const local = file('dns:\n  "1001": { type: extension, contact: "*" }\n');
    expect((await runCli(['check-config', local])).stderr).toBe('');
    // A gateway given by name is not trusted by it (names are not resolved): say so.
    const named = file('dns:\n  gw1: { type: trunk, contact: "sip:gw.example.net:5060", prefix: "9" }\n  gw2: { type: trunk, contact: "sip:192.0.2.7", prefix: "8" }\n');
    const warned = await runCli(['check-config', named]);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain('dns gw1: contact "sip:gw.example.net:5060" names a host, not an address');
    expect(warned.stderr).not.toContain('gw2');
  });

  it('check-config lists every problem and exits 2', async () => {
    const f = file('TServer:\n  sip-port: 0\n  sip-tcp-conect-timeout: 100\n');
    const r = await runCli(['check-config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}: TServer.sip-port: value "0" is invalid: expected`);
    expect(r.stderr).toContain(`${f}: TServer.sip-tcp-conect-timeout: unknown option (did you mean "sip-tcp-connect-timeout"?)`);
  });

  it('a bad config never half-starts: exit 2 before anything listens', async () => {
    const f = file('TServer:\n  sip-port: 99999\n');
    const r = await runCli(['--config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}: TServer.sip-port: value "99999" is invalid`);
    expect(r.stdout).not.toContain('SIP listeners up');
  });

  it('a TLS certificate that cannot be read is a config error naming the option', async () => {
    const f = file('TServer:\n  sip-port-tls: 5061\n  sip-tls-cert: /nonexistent/a.crt\n  sip-tls-key: /nonexistent/a.key\n');
    const r = await runCli(['check-config', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}: TServer.sip-tls-cert: cannot read "/nonexistent/a.crt"`);
  });

  it('a missing config file is exit 2 with the reason', async () => {
    const r = await runCli(['--config', '/nonexistent/config.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/nonexistent/config.yaml: cannot read file: ENOENT');
  });

  it('a SIP port already in use is a runtime failure: exit 1 with the reason logged', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const r = await runCli(['--config', file(`TServer:\n  sip-port: ${port}\n  http-port: 0\n  store: "memory:"\n`)]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain('EADDRINUSE');
      expect(r.stdout).toContain('could not start');
    } finally {
      blocker.close();
    }
  });

  it('logs "control API up" once per start', async () => {
    const server = await startServer({ logLevel: 'info' });
    expect(await server.stop()).toBe(0);
    expect(server.output().match(/control API up/g)).toHaveLength(1);
  });

  it('unknown commands are usage errors', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('usage:');
  });
});

const REPO = resolve(import.meta.dirname, '../..');
const DNS = Object.fromEntries(['1001', '1002', '1003', '1004'].map((dn) => [dn, { type: 'extension', contact: '*' }]));

function sdp(owner: string, port: number): string {
  return ['v=0', `o=${owner} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');
}

interface UpCall {
  call: PeerCall;
  incoming: IncomingCall;
}

/** Two phones per transport (1001 → 1002 over TCP, 1003 → 1004 over UDP) register, and each pair has a call established. */
async function callsUp(sipPort: number): Promise<{ peers: SipPeer[]; calls: UpCall[] }> {
  const peers: SipPeer[] = [];
  const calls: UpCall[] = [];
  for (const [from, to, transport] of [['1001', '1002', 'TCP'], ['1003', '1004', 'UDP']] as const) {
    const caller = await SipPeer.start({ transport, user: from });
    const callee = await SipPeer.start({ transport, user: to });
    peers.push(caller, callee);
    expect((await caller.register(sipPort)).status).toBe(200);
    expect((await callee.register(sipPort)).status).toBe(200);
    const call = caller.call(sipPort, to, { sdp: sdp(from, 40000) });
    const incoming = await callee.nextIncomingCall();
    incoming.ring();
    const ack = incoming.answer(sdp(to, 50000));
    expect((await call.final()).status).toBe(200);
    await ack;
    calls.push({ call, incoming });
  }
  return { peers, calls };
}

/**
 * Two calls up on `server` while `stop` runs (it signals the server and asserts what it must);
 * whatever happens, the server is killed if still running and the phones are closed.
 */
async function withCallsUp(server: RunningServer, stop: (calls: UpCall[]) => Promise<void>): Promise<void> {
  const { peers, calls } = await callsUp(server.port);
  try {
    await stop(calls);
  } finally {
    if (server.proc.exitCode === null) await server.kill9();
    for (const peer of peers) await peer.close();
  }
}

/** The server exited 0 after `exited`, cleanly (nothing thrown, every line written). */
async function expectExit0(server: RunningServer, exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>): Promise<void> {
  expect(await exited, server.output()).toEqual({ code: 0, signal: null });
  expectCleanExit(server.output());
}

/** Both parties of every call got a BYE that says why (the server's shutdown Reason). */
async function expectReleasedWithReason(calls: UpCall[]): Promise<void> {
  for (const { call, incoming } of calls) {
    for (const party of [call, incoming]) {
      const bye = await party.byeReceived();
      expect(getHeaderValues(bye.request, 'reason')[0]).toMatch(/^SIP;cause=503/);
    }
  }
}

/** Every call has a record with its end and the administrative cause. */
function expectCallRecords(dbFile: string, n: number): void {
  const db = new Database(dbFile, { readonly: true });
  try {
    const rows = db.prepare('SELECT cause, ended_at FROM call_records').all() as { cause: string; ended_at: number | null }[];
    expect(rows).toHaveLength(n);
    for (const row of rows) {
      expect(row.cause).toBe('administrative');
      expect(row.ended_at).toBeTypeOf('number');
    }
  } finally {
    db.close();
  }
}

/** The process ended cleanly: nothing thrown after the logger closed, nothing uncaught, every line written. */
function expectCleanExit(output: string): void {
  expect(output).not.toContain('SonicBoom');
  expect(output).not.toMatch(/uncaught|unhandled/i);
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).toMatch(/"msg":"stopped"/);
}

function exitOf(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
}

/** Every process below `pid`, from /proc (no procps needed): [pid, command line]. */
function descendantsOf(pid: number): [number, string][] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  const below = (p: number): number[] => [...parentOf].filter(([, parent]) => parent === p).flatMap(([child]) => [child, ...below(child)]);
  return below(pid).map((child) => {
    try {
      return [child, readFileSync(`/proc/${child}/cmdline`, 'utf8').replaceAll('\0', ' ')];
    } catch {
      return [child, ''];
    }
  });
}

/** The process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The port can be bound again on 127.0.0.1 (TCP, and UDP too when asked). */
async function bindable(port: number, udp: boolean): Promise<boolean> {
  const tcp = await new Promise<boolean>((r) => {
    const s = createServer();
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
  if (!tcp || !udp) return tcp;
  return new Promise<boolean>((r) => {
    const u = createSocket('udp4');
    u.once('error', () => {
      u.close();
      r(false);
    });
    u.bind(port, '127.0.0.1', () => u.close(() => r(true)));
  });
}

describe('stopping the server', () => {
  // At info, the level it runs at, the registrar's "registered flow closed" for each TCP phone comes after the last line of run().
  it('SIGTERM to node with calls up: BYE with a Reason to both parties of each call, exit 0, nothing thrown after the log closes', async () => {
    const server = await startServer({ dns: DNS, logLevel: 'info' });
    await withCallsUp(server, async (calls) => {
      const exited = exitOf(server.proc);
      server.proc.kill('SIGTERM');
      await expectReleasedWithReason(calls);
      await expectExit0(server, exited);
      expectCallRecords(join(server.dir, 'state.db'), 2);
    });
  });

  it('a second SIGINT while stopping (Ctrl-C reaches npm and node both) is logged and ignored: exit 0, calls released', async () => {
    const server = await startServer({ dns: DNS, logLevel: 'info' });
    await withCallsUp(server, async (calls) => {
      // The callee holds its BYE's answer, so the second SIGINT surely comes while the server is stopping.
      const held = calls[0]!.incoming.answerWith('BYE', 'manual');
      const exited = exitOf(server.proc);
      server.proc.kill('SIGINT');
      const bye = await held.nextRequest('BYE');
      server.proc.kill('SIGINT');
      await waitFor(() => server.output().includes('signal while stopping'), 'the second SIGINT to be logged', 5000);
      bye.respond(200);
      await expectReleasedWithReason(calls);
      await expectExit0(server, exited);
      expectCallRecords(join(server.dir, 'state.db'), 2);
    });
  });

  it('Ctrl-C with socket workers (SIGINT to the server and its workers alike): the workers hold their connections until the calls are released', async () => {
    const server = await startServer({ dns: DNS, logLevel: 'info', tserver: { 'sip-tcp-workers': 2 } });
    await withCallsUp(server, async (calls) => {
      const workers = descendantsOf(server.proc.pid ?? 0).filter(([, cmd]) => cmd.includes('socket-worker'));
      expect(workers.length).toBe(2);
      const exited = exitOf(server.proc);
      // A terminal's Ctrl-C signals the whole process group: here, each process of it.
      for (const [pid] of workers) process.kill(pid, 'SIGINT');
      server.proc.kill('SIGINT');
      await expectReleasedWithReason(calls);
      await expectExit0(server, exited);
      expect(server.output()).toMatch(/"outcome":"stopped"/);
      expect(server.output()).not.toContain('socket worker exited');
    });
  });

  // `npm start` builds first (tsc): allow for it.
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s to the npm process of `npm start`: npm exits 0, its node process is gone, the calls are released and the ports free',
    async (signal) => {
      const dir = mkdtempSync(join(tmpdir(), 'sip-npm-start-'));
      const sipPort = await freePort();
      const httpPort = await freePort();
      const config = join(dir, 'config.yaml');
      writeFileSync(
        config,
        stringify({
          TServer: { 'sip-address': '127.0.0.1', 'sip-port': sipPort, 'http-port': httpPort, store: `sqlite:${join(dir, 'state.db')}` },
          log: { level: 'info' },
          dns: DNS,
        }),
      );
      const npm = spawn('npm', ['start', '--', '--config', config], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      npm.stdout.on('data', (d: Buffer) => (out += d.toString()));
      npm.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = exitOf(npm);
      let node: number | undefined;
      let peers: SipPeer[] = [];
      try {
        const deadline = Date.now() + 90_000;
        for (;;) {
          if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}:\n${out}`);
          if (Date.now() > deadline) throw new Error(`npm start did not come up:\n${out}`);
          const up = await fetch(`http://127.0.0.1:${httpPort}/health`).then((r) => r.ok, () => false);
          if (up) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        node = descendantsOf(npm.pid ?? 0).find(([, cmd]) => cmd.includes('dist/cli.js'))?.[0];
        expect(node, `no node process under npm:\n${JSON.stringify(descendantsOf(npm.pid ?? 0))}`).toBeDefined();
        const up = await callsUp(sipPort);
        peers = up.peers;
        npm.kill(signal);
        await expectReleasedWithReason(up.calls);
        const r = await Promise.race([exited, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 15_000))]);
        expect(r, out).toEqual({ code: 0, signal: null });
        await waitFor(() => !alive(node ?? 0), `node (pid ${node}) to exit`, 5000);
        expect(await bindable(sipPort, true)).toBe(true);
        expect(await bindable(httpPort, false)).toBe(true);
        expectCleanExit(out);
        expectCallRecords(join(dir, 'state.db'), 2);
      } finally {
        if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
        if (node !== undefined && alive(node)) process.kill(node, 'SIGKILL');
        for (const peer of peers) await peer.close();
      }
    },
    120_000,
  );
});
