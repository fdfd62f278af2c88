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
  /** Control API port. */
  httpPort: number;
  /** Base URL of the control API, e.g. http://127.0.0.1:8123 */
  api: string;
  /** The API's bearer token, when one is set (always in a namespace: the API is then not on loopback). */
  token?: string;
  dir: string;
  proc: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM and wait for the exit status. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, nothing flushed by the server itself. */
  kill9(): Promise<void>;
}

export interface StartOptions {
  tserver?: Record<string, unknown>;
  dns?: Record<string, unknown>;
  tls?: boolean;
  /** Reuse a previous run's directory (and so its store) and ports: a restart. */
  restartOf?: RunningServer;
  /**
   * Run the server inside this network namespace (`ip netns exec`), listening for SIP and
   * HTTP on `address` with fixed ports (5060, 5061, 8080: the namespace is the test's own).
   */
  netns?: { name: string; address: string };
  /** A command the server runs under, e.g. ['prlimit', '--nofile=400:400', '--'] (not with netns). */
  wrap?: string[];
  /** Log level (default debug); below info, readiness is asked of /health. */
  logLevel?: string;
}

/**
 * Starts the compiled server (`node dist/cli.js --config FILE`) as a real process on free
 * ports, with the given TServer options merged over test defaults; resolves once it logs
 * that its control API is up (which it opens after the SIP listeners).
 */
export async function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  const prev = opts.restartOf;
  const dir = prev?.dir ?? mkdtempSync(join(tmpdir(), 'sip-server-test-'));
  const ns = opts.netns;
  const port = prev?.port ?? (ns ? 5060 : await freePort());
  const tlsPort = prev?.tlsPort ?? (opts.tls ? (ns ? 5061 : await freePort()) : 0);
  const httpPort = prev?.httpPort ?? (ns ? 8080 : await freePort());
  const address = ns?.address ?? '127.0.0.1';
  const config = {
    TServer: {
      'sip-address': address,
      // In the fault-test namespaces every endpoint (10.x) is the test's own phone: trusted, as
      // loopback is outside them (access control has its own tests).
      ...(ns ? { 'http-address': address, 'http-token': 'fault-test-token', 'sip-trusted-peers': ['127.0.0.0/8', '::1', '10.0.0.0/8'] } : {}),
      'sip-port': port,
      'sip-port-tls': tlsPort,
      'http-port': httpPort,
      store: `sqlite:${join(dir, 'state.db')}`,
      ...opts.tserver,
    },
    log: { level: opts.logLevel ?? 'debug' },
    dns: opts.dns ?? {},
  };
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  // SIP_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": to profile the server a test or bench runs.
  const nodeArgs = (process.env.SIP_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = ns
    ? spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...nodeArgs, CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    : opts.wrap
      ? spawn(opts.wrap[0] ?? '', [...opts.wrap.slice(1), process.execPath, ...nodeArgs, CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [...nodeArgs, CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const apiBase = `http://${address}:${httpPort}`;
  const token = ns ? 'fault-test-token' : undefined;
  await new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (): void => {
      done = true;
      proc.stdout?.off('data', check);
      resolve();
    };
    const check = (): void => {
      if (out.includes('control API up')) finish();
    };
    proc.stdout?.on('data', check);
    // Below info level the line is not logged: ask /health instead.
    const poll = async (): Promise<void> => {
      while (!done && proc.exitCode === null) {
        try {
          const res = await fetch(`${apiBase}/health`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
          if (res.ok) return finish();
        } catch {
          /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    if (opts.logLevel === 'warn' || opts.logLevel === 'error') void poll();
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
  return {
    port,
    tlsPort,
    httpPort,
    api: apiBase,
    ...(token ? { token } : {}),
    dir,
    proc,
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      proc.kill('SIGKILL');
      await exited;
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
