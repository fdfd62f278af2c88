import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const SCENARIOS = resolve(import.meta.dirname, '../sipp');

export interface SippResult {
  code: number | null;
  output: string;
}

/**
 * Runs SIPp as a client against 127.0.0.1:port and resolves with its exit status
 * (0 = every call succeeded, 1 = at least one failed).
 */
export function runSipp(opts: { scenario: string; port: number; transport: 'u1' | 't1'; calls?: number; timeoutS?: number; extra?: string[] }): Promise<SippResult> {
  const args = [
    '-sf', resolve(SCENARIOS, opts.scenario),
    '-t', opts.transport,
    '-i', '127.0.0.1',
    '-m', String(opts.calls ?? 1),
    '-timeout', `${opts.timeoutS ?? 10}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_err',
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
