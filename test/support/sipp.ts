import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const SCENARIOS = resolve(import.meta.dirname, '../sipp');

export interface SippResult {
  code: number | null;
  output: string;
}

/**
 * Runs SIPp as a client against 127.0.0.1:port and resolves with its exit status
 * (0 = every call succeeded, 1 = at least one failed).
 */
export function runSipp(opts: { scenario: string; port: number; transport: 'u1' | 't1'; calls?: number; timeoutS?: number; extra?: string[]; inject?: string }): Promise<SippResult> {
  const args = [
    '-sf', resolve(SCENARIOS, opts.scenario),
    '-t', opts.transport,
    '-i', '127.0.0.1',
    '-m', String(opts.calls ?? 1),
    '-timeout', `${opts.timeoutS ?? 10}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_err',
    ...(opts.inject ? ['-inf', injectionFile(opts.inject)] : []),
    ...(opts.extra ?? []),
    `127.0.0.1:${opts.port}`,
  ];
  return new Promise((done) => {
    const proc = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp' });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    proc.once('exit', (code) => done({ code, output }));
  });
}

/** A SIPp injection file whose rows are `fields` (";"-separated), read in sequence. */
function injectionFile(rows: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sipp-inf-')), 'fields.csv');
  writeFileSync(file, `SEQUENTIAL\n${rows}\n`);
  return file;
}

/**
 * SIPp as a UAS on 127.0.0.1:port running `scenario` for every incoming call until stopped.
 * Resolves once it has bound its port.
 */
export async function startSippServer(opts: { scenario: string; port: number; transport: 'u1' | 't1' }): Promise<{ proc: ChildProcess; stop(): Promise<void> }> {
  const proc = spawn('sipp', ['-sf', resolve(SCENARIOS, opts.scenario), '-t', opts.transport, '-i', '127.0.0.1', '-p', String(opts.port), '-nostdin', '-trace_err'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: tmpdir(),
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  // SIPp's screen output is block-buffered on a pipe, so wait until its port is taken instead.
  const deadline = Date.now() + 5000;
  while (!(await portTaken(opts.port, opts.transport))) {
    if (proc.exitCode !== null) throw new Error('sipp exited at start');
    if (Date.now() > deadline) throw new Error(`sipp did not bind 127.0.0.1:${opts.port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

function portTaken(port: number, transport: 'u1' | 't1'): Promise<boolean> {
  return new Promise((resolveTaken) => {
    if (transport === 'u1') {
      const u = createSocket('udp4');
      u.once('error', () => resolveTaken(true));
      u.bind(port, '127.0.0.1', () => u.close(() => resolveTaken(false)));
    } else {
      const t = createServer();
      t.once('error', () => resolveTaken(true));
      t.listen(port, '127.0.0.1', () => t.close(() => resolveTaken(false)));
    }
  });
}
