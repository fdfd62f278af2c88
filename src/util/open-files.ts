import { readFileSync } from 'node:fs';

/**
 * This process's soft limit on open files (RLIMIT_NOFILE), read from /proc/self/limits on
 * Linux; undefined where it cannot be read (it is then not enforced here). Node cannot raise
 * it: set it before starting (ulimit -n, systemd LimitNOFILE=).
 */
export function openFileLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  let text: string;
  try {
    text = read();
  } catch {
    return undefined;
  }
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
}

/** Files kept for everything but accepted connections: listeners, the store, outbound connections, control API clients, logs. */
export const RESERVED_FILES = 200;

/** Files a socket worker keeps for itself (its IPC channel, stdio, TLS): it holds at most its limit less these. */
export const WORKER_RESERVED_FILES = 100;

/**
 * How many accepted TCP/TLS connections the server can really hold: `configured`, but never
 * more than the open files of the processes that hold them — this one (less RESERVED_FILES)
 * or each socket worker (less 100) — so a connection flood cannot starve the control API,
 * the store or outbound connections of file descriptors.
 */
export function connectionCapacity(configured: number, workers: number, limit: number | undefined): number {
  if (limit === undefined) return configured;
  const holdable = workers > 0 ? workers * Math.max(0, limit - WORKER_RESERVED_FILES) : Math.max(0, limit - RESERVED_FILES);
  return Math.max(1, Math.min(configured, holdable));
}
