import type { Call, CallState, ReleaseCause } from '../calls/call.js';
import type { CallEvents } from '../calls/call-events.js';
import type { TypedEvents } from '../util/typed-events.js';
import type { Metrics } from './metrics.js';

/** What the call metrics read: the calls in progress and the call events. */
export interface CallMetricSource {
  events: TypedEvents<CallEvents>;
  all(): Call[];
}

const STATES: readonly CallState[] = ['dialing', 'ringing', 'established'];
const CAUSES: readonly ReleaseCause[] = [
  'normal', 'busy', 'no-answer', 'rejected', 'not-found', 'transport-failure',
  'stale-connection-reopen-failed', 'timeout', 'cancelled', 'administrative',
];

/**
 * Calls in progress by state, calls ended by release cause, and the setup time (INVITE from
 * the caller to the callee's answer) as a histogram. Returns the unsubscribe function.
 */
export function callMetrics(m: Metrics, calls: CallMetricSource): () => void {
  m.gauge('sip_calls', 'calls in progress, by state', ['state'], (g) => {
    const counts: Record<string, number> = { dialing: 0, ringing: 0, established: 0 };
    for (const c of calls.all()) if (c.state in counts) counts[c.state] = (counts[c.state] ?? 0) + 1;
    for (const state of STATES) g.set({ state }, counts[state] ?? 0);
  });
  const released = m.counter('sip_calls_released_total', 'calls ended, by release cause', ['cause']);
  for (const cause of CAUSES) released.inc({ cause }, 0);
  const setup = m.histogram('sip_call_setup_seconds', 'from the caller INVITE to the callee answer', [], [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  const dialingAt = new Map<string, number>();
  const offs = [
    calls.events.on('EventDialing', (e) => dialingAt.set(e.callId, e.time)),
    calls.events.on('EventEstablished', (e) => {
      const start = dialingAt.get(e.callId);
      if (start !== undefined) setup.observe((e.time - start) / 1000);
      dialingAt.delete(e.callId);
    }),
    calls.events.on('EventReleased', (e) => {
      released.inc({ cause: e.cause });
      dialingAt.delete(e.callId);
    }),
  ];
  return () => offs.forEach((off) => off());
}
