import type { KeepAliveInfo } from '../api/api-context.js';
import type { ConnectionView } from '../api/views.js';
import { duration, formatTable, type Column } from './tables.js';

/**
 * A connection's keep-alive as the API reports it: "off", "on (OS timers)" when the
 * operating system's timers apply, else "on idle=30s interval=7s count=4 user-timeout=20000ms"
 * with whichever the API gives (the others being the OS's).
 */
export function keepAliveText(k: KeepAliveInfo | undefined): string {
  if (!k?.enabled) return 'off';
  const parts = [
    k.idleS === undefined ? undefined : `idle=${k.idleS}s`,
    k.intervalS === undefined ? undefined : `interval=${k.intervalS}s`,
    k.count === undefined ? undefined : `count=${k.count}`,
    k.userTimeoutMs === undefined || k.userTimeoutMs === 0 ? undefined : `user-timeout=${k.userTimeoutMs}ms`,
  ].filter((p) => p !== undefined);
  return parts.length === 0 ? 'on (OS timers)' : `on ${parts.join(' ')}`;
}

const COLUMNS: Column<ConnectionView>[] = [
  { header: 'ID', value: (c) => c.id },
  { header: 'TRANSPORT', value: (c) => c.transport },
  { header: 'ORIGIN', value: (c) => c.origin },
  { header: 'STATE', value: (c) => c.state },
  { header: 'LOCAL', value: (c) => c.local },
  { header: 'REMOTE', value: (c) => c.remote },
  { header: 'AGE', value: (c) => duration(c.ageS), right: true },
  { header: 'IDLE', value: (c) => duration(c.idleS), right: true },
  { header: 'ACTIVE', value: (c) => c.activeTransactions, right: true },
  { header: 'KEEP-ALIVE', value: (c) => keepAliveText(c.keepAlive) },
];

/** GET /connections as a table; ACTIVE = client transactions waiting for a final response on it. */
export function connectionTable(connections: readonly ConnectionView[]): string {
  if (connections.length === 0) return 'no connections';
  return formatTable(COLUMNS, connections);
}
