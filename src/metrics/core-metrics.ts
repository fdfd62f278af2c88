import type { Directory } from '../directory/directory.js';
import type { DnState } from '../directory/dn.js';
import type { Binding, BindingTransport } from '../registrar/binding.js';
import type { RegistrarEvents } from '../registrar/registrar-events.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import { TRANSACTION_KINDS, type TerminationReason } from '../transaction/types.js';
import type { Connection } from '../transport/connection.js';
import type { CloseCause } from '../transport/flow.js';
import type { TransportEvents } from '../transport/transport-events.js';
import type { TypedEvents } from '../util/typed-events.js';
import type { Metrics } from './metrics.js';

/**
 * What the core metrics read, as narrow structural types: the real Directory, Registrar,
 * TransportLayer and TransactionLayer satisfy them, and unit tests can pass small fakes.
 */
export interface MetricSources {
  directory: Pick<Directory, 'events' | 'countByState'>;
  registrar: { events: TypedEvents<RegistrarEvents>; allBindings(): Binding[] };
  transport: {
    events: TypedEvents<TransportEvents>;
    connections: { all(): readonly Pick<Connection, 'transport' | 'origin' | 'state'>[] };
  };
  transactions: Pick<TransactionLayer, 'events' | 'stats'>;
}

type Unsubscribe = () => void;

const BINDING_TRANSPORTS: readonly BindingTransport[] = ['UDP', 'TCP', 'TLS'];
const STREAMS = ['TCP', 'TLS'] as const;
const ORIGINS = ['accepted', 'outbound'] as const;
const DN_STATES: readonly DnState[] = ['in-service', 'out-of-service'];
const TERMINATION_REASONS: readonly TerminationReason[] = ['completed', 'timeout', 'transport-error', 'closed'];

/** Bounded label values for why a connection closed (its free-text cause is not a label). */
export type CloseCauseClass = 'remote-closed' | 'error' | 'unframeable' | 'stopping' | 'other';
export const CLOSE_CAUSE_CLASSES: readonly CloseCauseClass[] = ['remote-closed', 'error', 'unframeable', 'stopping', 'other'];

/** The label for how a flow ended (flow.ts): the socket errors are one class. */
export function closeCauseClass(cause: CloseCause): CloseCauseClass {
  switch (cause) {
    case 'peer-closed':
      return 'remote-closed';
    case 'keepalive-timeout':
    case 'reset':
    case 'write-error':
    case 'error':
      return 'error';
    case 'unframeable':
    case 'stopping':
      return cause;
    case 'local':
      return 'other';
  }
}

/** A TransportError code as a label value; anything not shaped like one is "OTHER". */
export function errorCodeLabel(code: string): string {
  return /^[A-Z][A-Z0-9_]{0,39}$/.test(code) ? code : 'OTHER';
}

export function directoryMetrics(m: Metrics, directory: MetricSources['directory']): Unsubscribe {
  m.gauge('sip_dns', 'DNs by service state', ['state'], (g) => {
    const counts = directory.countByState();
    for (const state of DN_STATES) g.set({ state }, counts[state]);
  });
  const changes = m.counter('sip_dn_state_changes_total', 'DN service state changes, by the state entered', ['state']);
  for (const state of DN_STATES) changes.inc({ state }, 0);
  const offs = [
    directory.events.on('EventDNOutOfService', () => changes.inc({ state: 'out-of-service' })),
    directory.events.on('EventDNBackInService', () => changes.inc({ state: 'in-service' })),
  ];
  return () => offs.forEach((off) => off());
}

export function registrarMetrics(m: Metrics, registrar: MetricSources['registrar']): Unsubscribe {
  m.gauge('sip_registrations', 'registered contact bindings, by the transport they registered over', ['transport'], (g) => {
    const counts = new Map<BindingTransport, number>(BINDING_TRANSPORTS.map((t) => [t, 0]));
    for (const b of registrar.allBindings()) counts.set(b.transport, (counts.get(b.transport) ?? 0) + 1);
    for (const [transport, n] of counts) g.set({ transport }, n);
  });
  const events = m.counter('sip_registration_events_total', 'bindings registered, refreshed, removed or expired', ['event']);
  for (const event of ['registered', 'refreshed', 'removed', 'expired']) events.inc({ event }, 0);
  const offs = [
    registrar.events.on('EventRegistered', (e) => events.inc({ event: e.refresh ? 'refreshed' : 'registered' })),
    registrar.events.on('EventUnregistered', (e) => events.inc({ event: e.reason })),
  ];
  return () => offs.forEach((off) => off());
}

export function transportMetrics(m: Metrics, transport: MetricSources['transport']): Unsubscribe {
  m.gauge('sip_connections', 'TCP/TLS connections not yet closed', ['transport', 'origin'], (g) => {
    const counts = new Map<string, number>();
    for (const c of transport.connections.all()) {
      if (c.state === 'closed') continue;
      const key = `${c.transport}|${c.origin}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    for (const t of STREAMS) for (const origin of ORIGINS) g.set({ transport: t, origin }, counts.get(`${t}|${origin}`) ?? 0);
  });
  const opened = m.counter('sip_connections_opened_total', 'TCP/TLS connections opened', ['transport', 'origin']);
  const closed = m.counter('sip_connections_closed_total', 'TCP/TLS connections closed, by class of cause', ['transport', 'cause_class']);
  const failures = m.counter('sip_connection_failures_total', 'connections the server could not open (or TLS handshakes that failed)', ['transport', 'code']);
  const refused = m.counter('sip_connections_refused_total', 'accepted connections refused (sip-max-connections)', ['transport']);
  const dropped = m.counter('sip_messages_dropped_total', 'messages the transport could not parse or frame', ['transport']);
  for (const t of STREAMS) {
    for (const origin of ORIGINS) opened.inc({ transport: t, origin }, 0);
    for (const cause_class of CLOSE_CAUSE_CLASSES) closed.inc({ transport: t, cause_class }, 0);
    refused.inc({ transport: t }, 0);
  }
  for (const t of BINDING_TRANSPORTS) dropped.inc({ transport: t }, 0);
  const offs = [
    transport.events.on('connectionOpened', (e) => opened.inc({ transport: e.transport, origin: e.origin })),
    transport.events.on('connectionClosed', (e) => closed.inc({ transport: e.transport, cause_class: closeCauseClass(e.closedBy) })),
    transport.events.on('connectionFailed', (e) => failures.inc({ transport: e.transport, code: errorCodeLabel(e.code) })),
    transport.events.on('connectionRefused', (e) => refused.inc({ transport: e.transport })),
    transport.events.on('messageDropped', (e) => dropped.inc({ transport: e.source.transport })),
  ];
  return () => offs.forEach((off) => off());
}

export function transactionMetrics(m: Metrics, transactions: MetricSources['transactions']): Unsubscribe {
  m.gauge('sip_transactions', 'live transactions', ['kind'], (g) => {
    const { active } = transactions.stats();
    for (const kind of TRANSACTION_KINDS) g.set({ kind }, active[kind]);
  });
  m.counter('sip_transactions_total', 'transactions created', ['kind'], (c) => {
    const { created } = transactions.stats();
    c.reset();
    for (const kind of TRANSACTION_KINDS) c.inc({ kind }, created[kind]);
  });
  m.counter('sip_transactions_terminated_total', 'transactions ended, by reason', ['reason'], (c) => {
    const { terminated } = transactions.stats();
    c.reset();
    for (const reason of TERMINATION_REASONS) c.inc({ reason }, terminated[reason]);
  });
  m.counter('sip_retransmissions_absorbed_total', 'retransmitted requests absorbed by their server transaction', [], (c) => {
    c.reset();
    c.inc(transactions.stats().retransmissionsAbsorbed);
  });
  m.counter('sip_transaction_messages_dropped_total', 'messages the transaction layer could not match (no usable Via or CSeq)', [], (c) => {
    c.reset();
    c.inc(transactions.stats().messagesDropped);
  });
  m.counter('sip_stray_responses_total', 'responses that matched no client transaction', [], (c) => {
    c.reset();
    c.inc(transactions.stats().strayResponses);
  });
  const duration = m.histogram('sip_transaction_duration_seconds', 'how long transactions lived', ['kind'], [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64]);
  const off = transactions.events.on('terminated', (e) => duration.observe({ kind: e.kind }, e.durationMs / 1000));
  return off;
}
