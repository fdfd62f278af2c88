import type { FlowRecoveryEvents } from '../transaction/flow-recovery.js';
import type { TypedEvents } from '../util/typed-events.js';
import type { Metrics } from './metrics.js';

/**
 * Stale connections (SPEC §5.7): dead connections by how they were found, re-opens by result,
 * the time a re-open took, and the transactions re-sent. Returns the unsubscribe function.
 */
export function flowMetrics(m: Metrics, recovery: { events: TypedEvents<FlowRecoveryEvents> }): () => void {
  const failures = m.counter('sip_keepalive_failures_total', 'TCP/TLS connections found dead, by transport and how (keepalive-timeout, reset, peer-closed, …)', ['transport', 'detected_by']);
  const reopens = m.counter('sip_connection_reopen_total', 're-opens of a dead connection for the transactions waiting on it, by result', ['transport', 'result']);
  for (const transport of ['TCP', 'TLS']) for (const result of ['ok', 'failed']) reopens.inc({ transport, result }, 0);
  const resent = m.counter('sip_transactions_resent_total', 'client transactions re-sent on a re-opened connection');
  const failed = m.counter('sip_transactions_reopen_failed_total', 'client transactions failed because their dead connection was not or could not be re-opened');
  const latency = m.histogram('sip_connection_reopen_seconds', 'from the detection of a dead connection to the re-send on the new one (or the failure)', ['result'], [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10]);
  const offs = [
    recovery.events.on('ConnectionStale', (e) => failures.inc({ transport: e.transport, detected_by: e.detectedBy })),
    recovery.events.on('ConnectionReopened', (e) => {
      reopens.inc({ transport: e.transport, result: 'ok' });
      resent.inc(e.resent.length);
      latency.observe({ result: 'ok' }, e.reopenMs / 1000);
    }),
    recovery.events.on('ConnectionReopenFailed', (e) => {
      reopens.inc({ transport: e.transport, result: 'failed' });
      failed.inc(e.failed.length);
      latency.observe({ result: 'failed' }, e.reopenMs / 1000);
    }),
  ];
  return () => offs.forEach((off) => off());
}
