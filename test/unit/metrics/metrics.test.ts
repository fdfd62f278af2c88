import { describe, expect, it } from 'vitest';
import { dnSchema } from '../../../src/config/schema.js';
import { Directory } from '../../../src/directory/directory.js';
import { closeCauseClass, errorCodeLabel, type MetricSources } from '../../../src/metrics/core-metrics.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import type { Binding } from '../../../src/registrar/binding.js';
import type { RegistrarEvents } from '../../../src/registrar/registrar-events.js';
import type { TransactionLayerEvents, TransactionStats } from '../../../src/transaction/transaction-events.js';
import type { Connection } from '../../../src/transport/connection.js';
import type { CloseCause } from '../../../src/transport/flow.js';
import type { TransportEvents } from '../../../src/transport/transport-events.js';
import { silentLogger } from '../../../src/util/logger.js';
import { TypedEvents } from '../../../src/util/typed-events.js';
import { FakeFlow } from '../../support/fake-transport.js';
import { ManualClock } from '../../support/manual-clock.js';

type Conn = Pick<Connection, 'transport' | 'origin' | 'state'>;

function stats(over: Partial<TransactionStats> = {}): TransactionStats {
  const zero = { 'invite-client': 0, 'non-invite-client': 0, 'invite-server': 0, 'non-invite-server': 0 };
  return {
    active: { ...zero },
    byState: { 'invite-client': {}, 'non-invite-client': {}, 'invite-server': {}, 'non-invite-server': {} },
    created: { ...zero },
    terminated: { completed: 0, timeout: 0, 'transport-error': 0, closed: 0 },
    retransmissionsAbsorbed: 0,
    strayResponses: 0,
    messagesDropped: 0,
    ...over,
  };
}

function binding(aor: string, transport: Binding['transport']): Binding {
  return { aor, contact: `sip:${aor}@192.0.2.1`, expiresAt: 0, callId: 'c', cseq: 1, transport, source: { address: '192.0.2.1', port: 5060 }, flowState: 'live', registeredAt: 0 };
}

function setup() {
  const clock = new ManualClock();
  const directory = new Directory(
    { '1001': dnSchema.parse({ type: 'extension', contact: '*' }), gw1: dnSchema.parse({ type: 'trunk', contact: 'sip:192.0.2.10' }) },
    clock,
    silentLogger,
  );
  const bindings: Binding[] = [];
  const connections: Conn[] = [];
  let txStats = stats();
  const sources: MetricSources = {
    directory,
    registrar: { events: new TypedEvents<RegistrarEvents>(), allBindings: () => bindings },
    transport: { events: new TypedEvents<TransportEvents>(), connections: { all: () => connections } },
    transactions: { events: new TypedEvents<TransactionLayerEvents>(), stats: () => txStats },
  };
  const metrics = new Metrics({ defaultMetrics: false });
  const detach = metrics.attach(sources);
  return { metrics, detach, sources, directory, bindings, connections, setStats: (s: TransactionStats) => (txStats = s) };
}

const FLOW = new FakeFlow('tcp-1', 'TCP', '192.0.2.1', 1, 'accepted');
const closedEvent = (closedBy: CloseCause, cause: string): TransportEvents['connectionClosed'] => ({ flow: FLOW, id: 'tcp-1', transport: 'TCP', origin: 'accepted', remoteAddress: '192.0.2.1', remotePort: 1, closedBy, cause });

describe('Metrics', () => {
  it('counts open connections by transport and origin at scrape time, skipping closed ones', async () => {
    const { metrics, connections } = setup();
    connections.push({ transport: 'TCP', origin: 'accepted', state: 'open' }, { transport: 'TCP', origin: 'accepted', state: 'closing' });
    connections.push({ transport: 'TLS', origin: 'outbound', state: 'open' }, { transport: 'TCP', origin: 'outbound', state: 'closed' });
    const text = await metrics.text();
    expect(text).toContain('sip_connections{transport="TCP",origin="accepted"} 2');
    expect(text).toContain('sip_connections{transport="TLS",origin="outbound"} 1');
    expect(text).toContain('sip_connections{transport="TCP",origin="outbound"} 0');
  });

  it('counts connection closes by a bounded cause class, not by the free-text cause', async () => {
    const { metrics, sources } = setup();
    sources.transport.events.emit('connectionClosed', closedEvent('reset', 'error: ECONNRESET'));
    sources.transport.events.emit('connectionClosed', closedEvent('unframeable', 'unframeable: message too large'));
    sources.transport.events.emit('connectionClosed', closedEvent('local', 'something new'));
    const text = await metrics.text();
    expect(text).toContain('sip_connections_closed_total{transport="TCP",cause_class="error"} 1');
    expect(text).toContain('sip_connections_closed_total{transport="TCP",cause_class="unframeable"} 1');
    expect(text).toContain('sip_connections_closed_total{transport="TCP",cause_class="other"} 1');
    expect(text).toContain('sip_connections_closed_total{transport="TLS",cause_class="remote-closed"} 0');
    expect(text).not.toContain('ECONNRESET');
  });

  it('maps close causes and error codes onto small label sets', () => {
    expect(closeCauseClass('peer-closed')).toBe('remote-closed');
    expect(closeCauseClass('keepalive-timeout')).toBe('error');
    expect(closeCauseClass('write-error')).toBe('error');
    expect(closeCauseClass('stopping')).toBe('stopping');
    expect(closeCauseClass('local')).toBe('other');
    expect(errorCodeLabel('CONNECT_TIMEOUT')).toBe('CONNECT_TIMEOUT');
    expect(errorCodeLabel('connect ECONNREFUSED 1.2.3.4:5')).toBe('OTHER');
  });

  it('counts opened, failed and refused connections and dropped messages from transport events', async () => {
    const { metrics, sources } = setup();
    const ev = sources.transport.events;
    ev.emit('connectionOpened', { flow: FLOW, id: 'tcp-1', transport: 'TCP', origin: 'outbound', remoteAddress: 'a', remotePort: 1, localAddress: 'b', localPort: 2 });
    ev.emit('connectionFailed', { transport: 'TCP', address: 'a', port: 1, code: 'CONNECT_REFUSED', reason: 'refused' });
    ev.emit('connectionRefused', { transport: 'TLS', address: 'a', port: 1, reason: 'sip-max-connections reached' });
    ev.emit('messageDropped', { source: { transport: 'UDP', address: 'a', port: 1, localAddress: 'b', localPort: 2 }, reason: 'bad' });
    const text = await metrics.text();
    expect(text).toContain('sip_connections_opened_total{transport="TCP",origin="outbound"} 1');
    expect(text).toContain('sip_connection_failures_total{transport="TCP",code="CONNECT_REFUSED"} 1');
    expect(text).toContain('sip_connections_refused_total{transport="TLS"} 1');
    expect(text).toContain('sip_messages_dropped_total{transport="UDP"} 1');
  });

  it('shows DNs by state and counts state changes from directory events', async () => {
    const { metrics, directory } = setup();
    expect(await metrics.text()).toContain('sip_dns{state="out-of-service"} 1');
    directory.setState('1001', 'in-service', 'registered');
    const text = await metrics.text();
    expect(text).toContain('sip_dns{state="in-service"} 2');
    expect(text).toContain('sip_dns{state="out-of-service"} 0');
    expect(text).toContain('sip_dn_state_changes_total{state="in-service"} 1');
  });

  it('shows bindings by transport and counts registrar events', async () => {
    const { metrics, bindings, sources } = setup();
    bindings.push(binding('1001', 'TCP'), binding('1002', 'TCP'), binding('1003', 'UDP'));
    sources.registrar.events.emit('EventRegistered', { dn: '1001', contact: 'c', expires: 60, transport: 'TCP', source: 'a:1', refresh: false, time: 0 });
    sources.registrar.events.emit('EventRegistered', { dn: '1001', contact: 'c', expires: 60, transport: 'TCP', source: 'a:1', refresh: true, time: 0 });
    sources.registrar.events.emit('EventUnregistered', { dn: '1001', contact: 'c', reason: 'expired', time: 0 });
    const text = await metrics.text();
    expect(text).toContain('sip_registrations{transport="TCP"} 2');
    expect(text).toContain('sip_registrations{transport="UDP"} 1');
    expect(text).toContain('sip_registrations{transport="TLS"} 0');
    expect(text).toContain('sip_registration_events_total{event="registered"} 1');
    expect(text).toContain('sip_registration_events_total{event="refreshed"} 1');
    expect(text).toContain('sip_registration_events_total{event="expired"} 1');
  });

  it('reads live and total transactions from stats() at scrape time', async () => {
    const { metrics, setStats, sources } = setup();
    const s = stats();
    s.active['invite-client'] = 2;
    s.created['non-invite-server'] = 7;
    s.terminated.timeout = 3;
    s.strayResponses = 4;
    setStats(s);
    sources.transactions.events.emit('terminated', { id: 'x', kind: 'invite-client', method: 'INVITE', reason: 'completed', durationMs: 300, active: s.active });
    const text = await metrics.text();
    expect(text).toContain('sip_transactions{kind="invite-client"} 2');
    expect(text).toContain('sip_transactions_total{kind="non-invite-server"} 7');
    expect(text).toContain('sip_transactions_terminated_total{reason="timeout"} 3');
    expect(text).toContain('sip_stray_responses_total 4');
    expect(text).toContain('sip_transaction_duration_seconds_bucket{le="0.5",kind="invite-client"} 1');
    expect(text).toMatch(/# TYPE sip_transactions_total counter/);
  });

  it('stops counting events after detach', async () => {
    const { metrics, detach, sources } = setup();
    detach();
    sources.transport.events.emit('connectionClosed', closedEvent('peer-closed', 'remote closed'));
    expect(await metrics.text()).toContain('sip_connections_closed_total{transport="TCP",cause_class="remote-closed"} 0');
  });

  it('refuses a second attach instead of failing on duplicate metric names', () => {
    const { metrics, sources } = setup();
    expect(() => metrics.attach(sources)).toThrow(/already attached/);
  });

  it('keeps a registry per instance, so two servers in one process do not collide', async () => {
    const a = setup();
    const b = setup();
    a.directory.setState('1001', 'in-service', 'registered');
    expect(await a.metrics.text()).toContain('sip_dns{state="in-service"} 2');
    expect(await b.metrics.text()).toContain('sip_dns{state="in-service"} 1');
  });

  it('includes Node process metrics unless turned off', async () => {
    expect(await new Metrics().text()).toContain('process_cpu_user_seconds_total');
    expect(await new Metrics({ defaultMetrics: false }).text()).not.toContain('process_cpu_user_seconds_total');
    expect(new Metrics({ defaultMetrics: false }).contentType).toMatch(/^text\/plain/);
  });
});
