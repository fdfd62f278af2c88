import { describe, expect, it } from 'vitest';
import { FLOW_DIED, FlowRecovery, REOPEN_FAILED, detectedBy, type FlowRecoveryEvents } from '../../../src/transaction/flow-recovery.js';
import { TransactionLayer } from '../../../src/transaction/transaction-layer.js';
import type { Destination } from '../../../src/transport/types.js';
import { newBranch } from '../../../src/util/ids.js';
import { silentLogger } from '../../../src/util/logger.js';
import { FakeTransport, flushPromises, type FakeFlow } from '../../support/fake-transport.js';
import { ManualClock } from '../../support/manual-clock.js';
import { request, response } from '../../support/sip-builders.js';
import { recordingUser, type RecordingUser } from './harness.js';

/**
 * The keep-alive path in the transaction layer (SPEC §5.3): real client transactions on a
 * fake transport whose flows a test kills, on the manual clock. What is checked is what the
 * far end would see (the request re-sent, unchanged, on a new flow to its destination), what
 * the TU gets (nothing, or a local 503 with REOPEN_FAILED / FLOW_DIED) and the reports.
 * (The real thing against a silent firewall is test/fault/keepalive.test.ts.)
 */

/** The phone's listening address (its Contact), where a re-open goes. */
const PHONE: Destination = { transport: 'TCP', address: '10.0.0.2', port: 5070 };

function rig(opts: { recovery?: boolean } = {}) {
  const clock = new ManualClock();
  const transport = new FakeTransport();
  const recovery = opts.recovery === false ? undefined : new FlowRecovery({ transport, clock, log: silentLogger });
  const layer = new TransactionLayer({ clock, transport, ...(recovery ? { recovery } : {}), onRequest: () => {} });
  const seen: { name: keyof FlowRecoveryEvents; e: Record<string, unknown> }[] = [];
  for (const name of ['ConnectionStale', 'ConnectionReopened', 'ConnectionReopenFailed'] as const) recovery?.events.on(name, (e) => seen.push({ name, e: e as unknown as Record<string, unknown> }));
  /** The phone's connection: it opened it (accepted), from an ephemeral port. */
  const phoneFlow = (port = 40000, dest = PHONE): FakeFlow => {
    const f = transport.newFlow({ ...dest, port }, 'accepted');
    return f;
  };
  /** A request sent to dest on `flow` (as a call to a registered phone goes on its flow). */
  const send = (method: string, flow: FakeFlow, user: RecordingUser = recordingUser(), dest = PHONE) => {
    const tx = layer.sendRequest(request({ method, transport: 'TCP', branch: newBranch() }), { ...dest, flow }, user);
    return { tx, user };
  };
  const reopenAt = (): number[] => transport.opened.map((d) => d.port);
  return { clock, transport, recovery, layer, seen, phoneFlow, send, reopenAt, names: () => seen.map((s) => s.name) };
}

/** An asymmetric matcher where an event's payload goes. */
function containing(fields: Record<string, unknown>): Record<string, unknown> {
  return expect.objectContaining(fields) as Record<string, unknown>;
}

/** A connect the test completes (or fails) when it likes. */
function pendingConnect(): { promise: Promise<void>; open: () => void; fail: (err: Error) => void } {
  let open: () => void = () => {};
  let fail: (err: Error) => void = () => {};
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

describe('the keep-alive path: a client transaction follows the flow it sent on (SPEC §5.3)', () => {
  it('a dead connection with no transaction waiting is reported stale, and nothing is opened', async () => {
    const r = rig();
    const flow = r.phoneFlow();
    flow.die();
    await flushPromises();
    expect(r.transport.opened).toEqual([]);
    expect(r.seen).toEqual([{ name: 'ConnectionStale', e: containing({ connectionId: flow.id, remote: '10.0.0.2:40000', detectedBy: 'keepalive-timeout', active: [] }) }]);
  });

  it('re-opens to the destination (the Contact, not the dead flow) and re-sends each waiting request unchanged on the new flow', async () => {
    const r = rig();
    const flow = r.phoneFlow();
    const invite = r.send('INVITE', flow);
    const bye = r.send('BYE', flow);
    await flushPromises();
    flow.die();
    await flushPromises();
    // One connect for both (the transport joins opens to one address), to the Contact's port.
    expect(r.transport.opened.map((d) => [d.address, d.port, d.flow])).toEqual([
      ['10.0.0.2', 5070, undefined],
      ['10.0.0.2', 5070, undefined],
    ]);
    const invites = r.transport.sent.filter((s) => s.kind === 'request' && s.message.method === 'INVITE');
    expect(invites).toHaveLength(2);
    expect(invites[1]?.message).toBe(invites[0]?.message); // the very request: same branch, same CSeq
    const fresh = invite.tx.flow?.flow;
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(flow);
    expect(bye.tx.flow?.flow?.remotePort).toBe(5070);
    expect(invite.user.finals).toEqual([]); // the TU saw nothing
    expect(r.names()).toEqual(['ConnectionStale', 'ConnectionReopened']);
    expect(r.seen[0]?.e).toMatchObject({ active: [{ method: 'INVITE' }, { method: 'BYE' }] });
    expect(r.seen[1]?.e).toMatchObject({ destination: '10.0.0.2:5070', resent: [{ method: 'INVITE' }, { method: 'BYE' }] });
    // The transaction now follows the new flow: its death re-opens again.
    (fresh as FakeFlow).die('reset', 'error: ECONNRESET');
    await flushPromises();
    expect(r.transport.opened).toHaveLength(3);
    expect(r.seen.at(-2)?.e).toMatchObject({ detectedBy: 'reset', active: [{ method: 'INVITE' }] });
    r.layer.close();
  });

  it('when no flow can be opened, each waiting transaction ends with a local 503 (REOPEN_FAILED), reported once', async () => {
    const r = rig();
    r.transport.connect = () => Promise.reject(new Error('connect to TCP 10.0.0.2:5070 timed out after 2000 ms'));
    const flow = r.phoneFlow();
    const a = r.send('INVITE', flow);
    await flushPromises();
    flow.die();
    await flushPromises();
    expect(a.user.finals.map((f) => [f.res.status, f.info.local, f.info.local === 'transport-error' ? f.info.cause.code : undefined])).toEqual([[503, 'transport-error', REOPEN_FAILED]]);
    expect(a.tx.state).toBe('Terminated');
    expect(r.names()).toEqual(['ConnectionStale', 'ConnectionReopenFailed']);
    expect(r.seen[1]?.e).toMatchObject({ destination: '10.0.0.2:5070', reason: 'connect to TCP 10.0.0.2:5070 timed out after 2000 ms', failed: [{ method: 'INVITE' }] });
  });

  it('a transaction whose TU said reopen: false (voip-service) fails at once with FLOW_DIED and is not re-sent', async () => {
    const r = rig();
    const flow = r.phoneFlow();
    const user = { ...recordingUser(), reopen: false };
    const a = r.send('INVITE', flow, user);
    await flushPromises();
    flow.die();
    expect(a.user.finals.map((f) => (f.info.local === 'transport-error' ? f.info.cause.code : f.info.local))).toEqual([FLOW_DIED]);
    await flushPromises();
    expect(r.transport.opened).toEqual([]);
    expect(r.names()).toEqual(['ConnectionStale', 'ConnectionReopenFailed']);
    expect(r.seen[1]?.e).toMatchObject({ reopenMs: 0, failed: [{ method: 'INVITE' }] });
    expect(String(r.seen[1]?.e.reason)).toContain('voip-service');
  });

  it('only a transaction still waiting acts: one with its final response in, or now on another flow, does not', async () => {
    const r = rig();
    const flow = r.phoneFlow();
    const done = r.send('OPTIONS', flow);
    const moved = r.send('INVITE', flow);
    await flushPromises();
    r.layer.receive({ message: response(done.tx.request, 200), source: { transport: 'TCP', address: '10.0.0.2', port: 40000, flow, localAddress: '127.0.0.1', localPort: 5060 } });
    await moved.tx.resend({ ...PHONE, port: 5080 });
    expect(flow.listening).toBe(0); // neither listens any more
    flow.die();
    await flushPromises();
    expect(r.transport.opened).toEqual([]);
    expect(r.seen).toEqual([{ name: 'ConnectionStale', e: containing({ active: [] }) }]);
    r.layer.close();
  });

  it('with keep-alive recovery off (no FlowRecovery) a dead flow changes nothing: the transaction waits for its timer', async () => {
    const r = rig({ recovery: false });
    const flow = r.phoneFlow();
    const a = r.send('OPTIONS', flow);
    await flushPromises();
    expect(flow.listening).toBe(0);
    flow.die();
    await flushPromises();
    expect(r.transport.opened).toEqual([]);
    expect(a.user.finals).toEqual([]);
    r.clock.advance(32_000); // timer F on TCP
    expect(a.user.finals.map((f) => [f.res.status, f.info.local])).toEqual([[408, 'timeout']]);
  });

  it('after stop() (shutdown) a dead flow is neither re-opened nor reported', async () => {
    const r = rig();
    const flow = r.phoneFlow();
    const a = r.send('INVITE', flow);
    await flushPromises();
    r.recovery?.stop();
    flow.die('stopping', 'server stopping');
    await flushPromises();
    expect(r.transport.opened).toEqual([]);
    expect(r.seen).toEqual([]);
    expect(a.user.finals).toEqual([]);
    r.layer.close();
  });

  it('when many connections die together, each re-open starts as its flow dies; each is reported stale at once and re-opened when its connect is through', async () => {
    const r = rig();
    const connects = new Map<number, ReturnType<typeof pendingConnect>>();
    r.transport.connect = (d) => {
      const c = pendingConnect();
      connects.set(d.port, c);
      return c.promise;
    };
    const phones = [1, 2, 3].map((n) => {
      const dest = { ...PHONE, port: 5070 + n };
      const flow = r.phoneFlow(40000 + n, dest);
      return { flow, ...r.send('INVITE', flow, recordingUser(), dest) };
    });
    await flushPromises();
    for (const p of phones) p.flow.die();
    expect(r.reopenAt()).toEqual([5071, 5072, 5073]);
    expect(r.names()).toEqual(['ConnectionStale', 'ConnectionStale', 'ConnectionStale']);
    connects.get(5073)?.open();
    connects.get(5071)?.open();
    await flushPromises();
    expect(r.names().slice(3)).toEqual(['ConnectionReopened', 'ConnectionReopened']);
    connects.get(5072)?.open();
    await flushPromises();
    expect(phones.map((p) => p.tx.flow?.flow?.remotePort)).toEqual([5071, 5072, 5073]);
    for (const p of phones) {
      const order = r.seen.filter((s) => s.e.connectionId === p.flow.id).map((s) => s.name);
      expect(order).toEqual(['ConnectionStale', 'ConnectionReopened']);
    }
    r.layer.close();
  });

  it('reports carry the time they describe: ConnectionStale the detection, reopenMs from the death to the re-send', async () => {
    const r = rig();
    const connect = pendingConnect();
    r.transport.connect = () => connect.promise;
    const flow = r.phoneFlow();
    r.send('INVITE', flow);
    await flushPromises();
    r.clock.advance(1000);
    const detectedAt = r.clock.now();
    flow.die();
    r.clock.advance(7);
    connect.open();
    await flushPromises();
    expect(r.seen[0]).toMatchObject({ name: 'ConnectionStale', e: { time: detectedAt } });
    expect(r.seen[1]).toMatchObject({ name: 'ConnectionReopened', e: { time: detectedAt, reopenMs: 7 } });
    r.layer.close();
  });

  it('a transaction that ends while its re-open is under way (timer F) is neither re-sent nor failed twice', async () => {
    const r = rig();
    const connect = pendingConnect();
    r.transport.connect = () => connect.promise;
    const flow = r.phoneFlow();
    const a = r.send('OPTIONS', flow);
    await flushPromises();
    flow.die();
    r.clock.advance(32_000);
    expect(a.user.finals.map((f) => f.res.status)).toEqual([408]);
    connect.open();
    await flushPromises();
    expect(r.transport.requests('OPTIONS')).toHaveLength(1);
    expect(a.user.finals).toHaveLength(1);
    expect(r.names()).toEqual(['ConnectionStale', 'ConnectionReopened']);
    expect(r.seen[1]?.e).toMatchObject({ resent: [] });
  });

  it('names how the connection was found dead in the events’ terms', () => {
    expect(detectedBy('keepalive-timeout')).toBe('keepalive-timeout');
    expect(detectedBy('reset')).toBe('reset');
    expect(detectedBy('write-error')).toBe('write-error');
    expect(detectedBy('peer-closed')).toBe('peer-closed');
    expect(detectedBy('unframeable')).toBe('local');
    expect(detectedBy('local')).toBe('local');
  });
});

describe('★ another flow of the same phone (RFC 5626 outbound)', () => {
  it('a request waiting on a dead flow goes, unchanged, on the other live flow its TU names: no connection opened, one ConnectionReopened with otherFlow', async () => {
    const r = rig();
    const dying = r.phoneFlow(40000);
    const spare = r.phoneFlow(40001);
    const user = { ...recordingUser(), otherFlow: (dead: unknown) => (dead === dying ? { ...PHONE, flow: spare } : undefined) };
    const invite = r.send('INVITE', dying, user);
    // A request of another TU on the same flow, with no other flow: it re-opens as before.
    const options = r.send('OPTIONS', dying);
    await flushPromises();
    dying.die();
    await flushPromises();
    const invites = r.transport.sent.filter((s) => s.kind === 'request' && s.message.method === 'INVITE');
    expect(invites.map((s) => (s.kind === "request" ? s.dest.flow?.id : undefined))).toEqual([dying.id, spare.id]);
    expect(invites[1]?.message).toBe(invites[0]?.message);
    expect(invite.tx.flow?.flow).toBe(spare);
    expect(invite.user.finals).toEqual([]);
    expect(r.transport.opened.map((d) => d.port)).toEqual([5070]); // the OPTIONS' re-open only
    expect(options.tx.flow?.flow?.remotePort).toBe(5070);
    expect(r.names()).toEqual(['ConnectionStale', 'ConnectionReopened', 'ConnectionReopened']);
    const [viaSpare, reopened] = [r.seen.find((s) => s.e.otherFlow === true)?.e, r.seen.find((s) => s.name === 'ConnectionReopened' && s.e.otherFlow === undefined)?.e];
    expect(viaSpare).toMatchObject({ newConnectionId: spare.id, resent: [{ method: 'INVITE' }] });
    expect(reopened).toMatchObject({ destination: '10.0.0.2:5070', resent: [{ method: 'OPTIONS' }] });
    r.layer.close();
  });

  it('when the other flow is gone too, the request re-opens to the destination as before', async () => {
    const r = rig();
    const dying = r.phoneFlow(40000);
    const spare = r.phoneFlow(40001);
    spare.die();
    const user = { ...recordingUser(), otherFlow: () => ({ ...PHONE, flow: spare }) };
    r.send('INVITE', dying, user);
    await flushPromises();
    dying.die();
    await flushPromises();
    expect(r.transport.opened.map((d) => d.port)).toEqual([5070]);
    r.layer.close();
  });
});
