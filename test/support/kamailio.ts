import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './ports.js';

/** The edge proxy configuration shipped in the repository (docs/deployment.md). */
export const KAMAILIO_CFG = resolve(import.meta.dirname, '../../deploy/kamailio/kamailio.cfg');

export interface RunningKamailio {
  /** Its SIP address and port, UDP and TCP. */
  address: string;
  port: number;
  output(): string;
  stop(): Promise<void>;
}

export interface KamailioOptions {
  /** The SIP Server instances it dispatches to: their SIP ports (UDP) on `address`. */
  instances: number[];
  /** Run inside this network namespace (`ip netns exec`), listening on `address` (default 127.0.0.1, a free port). */
  netns?: { name: string; address: string; port: number };
  /** TCP keep-alive towards phones, s: idle, interval, count. */
  keepAlive?: { idle: number; intvl: number; cnt: number };
}

/**
 * Starts Debian's Kamailio (`.ci/run` installs it) in the foreground with the repository's
 * edge configuration, a dispatcher list naming `instances`, its runtime files in a temporary
 * directory, listening on a free port; resolves once it takes TCP connections.
 */
export async function startKamailio(opts: KamailioOptions): Promise<RunningKamailio> {
  const dir = mkdtempSync(join(tmpdir(), 'sip-kamailio-'));
  const list = join(dir, 'dispatcher.list');
  const address = opts.netns?.address ?? '127.0.0.1';
  writeFileSync(list, opts.instances.map((p) => `1 sip:${address}:${p}\n`).join(''));
  const port = opts.netns?.port ?? (await freePort());
  const ka = opts.keepAlive ?? { idle: 30, intvl: 5, cnt: 3 };
  const args = [
    '-f', KAMAILIO_CFG, '-DD', '-E', '-Y', dir, '-w', dir, '-m', '64', '-M', '8',
    '-l', `udp:${address}:${port}`, '-l', `tcp:${address}:${port}`,
    '-A', `DS_LIST="${list}"`, '-A', `KEEPALIVE_IDLE=${ka.idle}`, '-A', `KEEPALIVE_INTVL=${ka.intvl}`, '-A', `KEEPALIVE_CNT=${ka.cnt}`,
  ];
  // Its own process group: kamailio forks workers, and stop() signals them all.
  const ns = opts.netns;
  const proc: ChildProcess = ns
    ? spawn('ip', ['netns', 'exec', ns.name, 'kamailio', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    : spawn('kamailio', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const signal = (sig: NodeJS.Signals): void => {
    try {
      if (proc.pid !== undefined) process.kill(-proc.pid, sig);
    } catch {
      /* gone */
    }
  };
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`kamailio exited with ${proc.exitCode}:\n${out.slice(-3000)}`);
    if (await accepts(address, port)) break;
    if (Date.now() > deadline) {
      signal('SIGKILL');
      throw new Error(`kamailio did not listen on ${port} within 10 s:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    address,
    port,
    output: () => out,
    stop: async () => {
      if (proc.exitCode === null) signal('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      signal('SIGKILL');
      if (proc.exitCode === null) await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
