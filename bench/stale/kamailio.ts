import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/*
 * Kamailio for bench/stale: started inside the server's network namespace with
 * bench/kamailio/stale.cfg, every line it writes to stderr kept with the time it arrived here
 * (Kamailio's stderr log has no timestamps of its own; this process is idle while it waits
 * for the detection, so the arrival time is within a few ms of the write).
 */

const CFG = resolve(import.meta.dirname, '../kamailio/stale.cfg');

export interface KamailioOptions {
  /** The server's network namespace and the address to listen on there. */
  netns: string;
  address: string;
  port: number;
  frInvTimerMs: number;
  keepalive: { idle: number; intvl: number; cnt: number };
}

export interface LogLine {
  at: number;
  text: string;
}

export interface RunningKamailio {
  pid: number;
  /** Every stderr line so far, with its arrival time. */
  lines: LogLine[];
  /** SIGTERM (Kamailio stops its children), SIGKILL to the process group after 5 s. */
  stop(): Promise<void>;
}

const running = new Set<RunningKamailio>();

/** Debian's package, installed if missing (as bench/calls does). */
export function ensureKamailio(): void {
  if (existsSync('/usr/sbin/kamailio')) return;
  console.log('installing Debian package kamailio …');
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'kamailio'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function listening(netns: string, port: number): boolean {
  const out = execFileSync('ip', ['netns', 'exec', netns, 'ss', '-tlnH', 'sport', '=', `:${port}`], { encoding: 'utf8' });
  return out.trim().length > 0;
}

export async function startKamailio(opts: KamailioOptions): Promise<RunningKamailio> {
  ensureKamailio();
  const dir = mkdtempSync(join(tmpdir(), 'bench-stale-kamailio-'));
  const cfg = join(dir, 'stale.cfg');
  const text = readFileSync(CFG, 'utf8')
    .replaceAll('__ADDR__', opts.address)
    .replaceAll('__PORT__', String(opts.port))
    .replaceAll('__FR_INV_TIMER__', String(opts.frInvTimerMs))
    .replaceAll('__KEEPIDLE__', String(opts.keepalive.idle))
    .replaceAll('__KEEPINTVL__', String(opts.keepalive.intvl))
    .replaceAll('__KEEPCNT__', String(opts.keepalive.cnt));
  writeFileSync(cfg, text);
  // `ip netns exec` execs Kamailio itself (same pid); detached: its own process group, so
  // that a SIGKILL can reach the children too. -DD: foreground; -E: log to stderr;
  // tlsf: Debian's default allocator is ~5× slower (NOTES.md).
  const proc: ChildProcess = spawn('ip', ['netns', 'exec', opts.netns, 'kamailio', '-f', cfg, '-DD', '-E', '-x', 'tlsf', '-X', 'tlsf', '-m', '2048', '-M', '64', '-Y', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const pid = proc.pid;
  if (pid === undefined) throw new Error('kamailio did not start');
  const lines: LogLine[] = [];
  let partial = '';
  proc.stderr?.on('data', (d: Buffer) => {
    const at = Date.now();
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) lines.push({ at, text: p });
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kam: RunningKamailio = {
    pid,
    lines,
    stop: async () => {
      running.delete(kam);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000).unref());
        if ((await Promise.race([exited, timer])) === 'timeout') proc.kill('SIGKILL');
      }
      // Children left over (the main process killed before it could stop them): the group.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* the group is gone */
      }
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(kam);
  const end = Date.now() + 15_000;
  while (!listening(opts.netns, opts.port)) {
    if (proc.exitCode !== null || Date.now() > end) {
      await kam.stop();
      throw new Error(`kamailio did not come up:\n${lines.map((l) => l.text).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return kam;
}

/** Stops every Kamailio still running (afterAll). */
export async function stopAllKamailio(): Promise<void> {
  await Promise.all([...running].map((k) => k.stop()));
}
