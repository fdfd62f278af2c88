import Database from 'better-sqlite3';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { getHeaderValues } from '../../src/sip/message.js';
import { freePort } from '../support/ports.js';
import { runCli, startServer } from '../support/server-process.js';
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

describe('stopping the server', () => {
  // At info, the level it runs at, the registrar's "registered flow closed" for each TCP phone comes after the last line of run().
  it('SIGTERM to node with calls up: BYE with a Reason to both parties of each call, exit 0, nothing thrown after the log closes', async () => {
    const server = await startServer({ dns: DNS, logLevel: 'info' });
    const { peers, calls } = await callsUp(server.port);
    try {
      const exited = exitOf(server.proc);
      server.proc.kill('SIGTERM');
      await expectReleasedWithReason(calls);
      expect(await exited, server.output()).toEqual({ code: 0, signal: null });
      expectCleanExit(server.output());
      expectCallRecords(join(server.dir, 'state.db'), 2);
    } finally {
      if (server.proc.exitCode === null) await server.kill9();
      for (const peer of peers) await peer.close();
    }
  });

  it('a second SIGINT while stopping (Ctrl-C reaches npm and node both) is logged and ignored: exit 0, calls released', async () => {
    const server = await startServer({ dns: DNS, logLevel: 'info' });
    const { peers, calls } = await callsUp(server.port);
    try {
      // The callee holds its BYE's answer, so the second SIGINT surely comes while the server is stopping.
      const held = calls[0]!.incoming.answerWith('BYE', 'manual');
      const exited = exitOf(server.proc);
      server.proc.kill('SIGINT');
      const bye = await held.nextRequest('BYE');
      server.proc.kill('SIGINT');
      await waitFor(() => server.output().includes('signal while stopping'), 'the second SIGINT to be logged', 5000);
      bye.respond(200);
      await expectReleasedWithReason(calls);
      expect(await exited, server.output()).toEqual({ code: 0, signal: null });
      expectCleanExit(server.output());
      expectCallRecords(join(server.dir, 'state.db'), 2);
    } finally {
      if (server.proc.exitCode === null) await server.kill9();
      for (const peer of peers) await peer.close();
    }
  });
});
