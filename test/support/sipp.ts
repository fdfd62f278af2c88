import { spawn, type ChildProcess } from 'node:child_process';
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
  // SIPp prints its screen once running; give it until then (or fail if it exits).
  await new Promise<void>((resolveStart, reject) => {
    const onData = (): void => {
      proc.stdout?.off('data', onData);
      resolveStart();
    };
    proc.stdout?.on('data', onData);
    void exited.then(() => reject(new Error('sipp exited at start')));
  });
  return {
    proc,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
