import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { runCli, startServer } from '../support/server-process.js';

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
