import type { Ban, SourceGuardEvents } from '../transport/source-guard.js';
import type { TypedEvents } from '../util/typed-events.js';
import type { Metrics } from './metrics.js';

/**
 * Per-source limits (SPEC §9): bans by reason, sources banned now, and what their bans
 * dropped (messages, connections) so far. Returns the unsubscribe function.
 */
export function guardMetrics(m: Metrics, guard: { events: TypedEvents<SourceGuardEvents>; bans(): Ban[]; readonly scannerRequestsDropped: number }): () => void {
  const bans = m.counter('sip_source_bans_total', 'sources banned, by reason (message-rate, auth-failures, connections, pending-bytes, scanner)', ['reason']);
  for (const reason of ['message-rate', 'auth-failures', 'connections', 'pending-bytes', 'scanner']) bans.inc({ reason }, 0);
  m.gauge('sip_sources_banned', 'sources banned now', [], (g) => g.set(guard.bans().length));
  m.gauge('sip_banned_dropped', 'messages and connections dropped from the sources banned now', [], (g) => g.set(guard.bans().reduce((n, b) => n + b.dropped, 0)));
  m.counter('sip_scanner_requests_dropped_total', 'requests dropped unanswered for a known scanner\'s User-Agent', [], (c) => {
    c.reset();
    c.inc(guard.scannerRequestsDropped);
  });
  const off = guard.events.on('EventSourceBanned', (e) => bans.inc({ reason: e.reason }));
  return off;
}
