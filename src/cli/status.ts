import type { CallView } from '../api/call-routes.js';
import type { ConnectionView, DnView } from '../api/views.js';
import { ControlApiError } from './cli-errors.js';
import type { ApiAnswer, ControlClient } from './control-client.js';
import { duration, formatFields } from './tables.js';

/** What `status` reads: the API's answers, as sent. */
export interface StatusAnswers {
  health: ApiAnswer<{ status?: string }>;
  dns: ApiAnswer<DnView[]>;
  connections: ApiAnswer<ConnectionView[]>;
  /** Absent when the server serves no /calls. */
  calls: ApiAnswer<CallView[]> | undefined;
  /** Seconds since the server process started, from /metrics (process_start_time_seconds), when it tells. */
  uptimeS: number | undefined;
}

/** GET /health, /dns, /connections, /calls and /metrics at once. */
export async function readStatus(client: ControlClient, now: number): Promise<StatusAnswers> {
  const [health, dns, connections, calls, uptimeS] = await Promise.all([
    client.get<{ status?: string }>('/health'),
    client.get<DnView[]>('/dns'),
    client.get<ConnectionView[]>('/connections'),
    client.get<CallView[]>('/calls').catch((err: unknown) => {
      if (err instanceof ControlApiError && err.status === 404) return undefined;
      throw err;
    }),
    client.text('/metrics').then(
      (text) => uptimeFrom(text, now),
      () => undefined, // uptime is a nicety: without /metrics, status still answers
    ),
  ]);
  return { health, dns, connections, calls, uptimeS };
}

function uptimeFrom(metrics: string, now: number): number | undefined {
  const start = Number(/^process_start_time_seconds(?:\{[^}]*\})? (\S+)/m.exec(metrics)?.[1]);
  return Number.isFinite(start) && start > 0 ? Math.max(0, now / 1000 - start) : undefined;
}

/** `--json`: the API's answers unchanged, under the path each came from. */
export function statusJson(s: StatusAnswers): string {
  const parts = [`"health":${s.health.text}`, `"dns":${s.dns.text}`, `"connections":${s.connections.text}`];
  if (s.calls) parts.push(`"calls":${s.calls.text}`);
  return `{${parts.join(',')}}`;
}

/** " (established 2, ringing 1)": how a count splits, largest first; '' for none. */
function split<T>(items: readonly T[], key: (item: T) => string): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  const parts = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k} ${n}`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

export function statusText(s: StatusAnswers, url: string): string {
  const dns = s.dns.json;
  const inService = dns.filter((d) => d.state === 'in-service').length;
  const contacts = dns.reduce((n, d) => n + (d.contacts?.length ?? 0), 0);
  const registered = dns.filter((d) => (d.contacts?.length ?? 0) > 0).length;
  return formatFields([
    ['control API', url],
    ['health', s.health.json.status ?? JSON.stringify(s.health.json)],
    ['uptime', s.uptimeS === undefined ? null : duration(s.uptimeS)],
    ['DNs', `${dns.length} (in service ${inService}, out of service ${dns.length - inService})`],
    ['registrations', `${contacts} (${registered} DN${registered === 1 ? '' : 's'} registered)`],
    ['connections', `${s.connections.json.length}${split(s.connections.json, (c) => c.transport)}`],
    ['calls', s.calls ? `${s.calls.json.length} in progress${split(s.calls.json, (c) => c.state)}` : 'not served'],
  ]);
}
