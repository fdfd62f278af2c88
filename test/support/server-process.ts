import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.js';

export const CLI = resolve(import.meta.dirname, '../../dist/cli.js');

export interface RunningServer {
  port: number;
  tlsPort: number;
  dir: string;
  proc: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM and wait for the exit status. */
  stop(): Promise<number | null>;
}

/**
 * Starts the compiled server (`node dist/cli.js --config FILE`) as a real process on free
 * ports, with the given TServer options merged over test defaults; resolves once it logs
 * that its SIP listeners are up.
 */
export async function startServer(
  opts: { tserver?: Record<string, unknown>; dns?: Record<string, unknown>; tls?: boolean } = {},
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sip-server-test-'));
  const port = await freePort();
  const tlsPort = opts.tls ? await freePort() : 0;
  const config = {
    TServer: {
      'sip-address': '127.0.0.1',
      'sip-port': port,
      'sip-port-tls': tlsPort,
      'http-port': 0,
      store: `sqlite:${join(dir, 'state.db')}`,
      ...opts.tserver,
    },
    log: { level: 'debug' },
    dns: opts.dns ?? {},
  };
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  const proc = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (out.includes('SIP listeners up')) {
        proc.stdout?.off('data', check);
        resolve();
      }
    };
    proc.stdout?.on('data', check);
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
  return {
    port,
    tlsPort,
    dir,
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Runs the CLI to completion and returns its exit status and output. */
export function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
