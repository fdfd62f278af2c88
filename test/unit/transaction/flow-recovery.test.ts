import { describe, expect, it } from 'vitest';
import type { SipRequest } from '../../../src/sip/message.js';
import { detectedBy, FLOW_DIED, FlowRecovery, REOPEN_FAILED, REPORT_MAX_WAIT_MS, type FlowRecoveryEvents } from '../../../src/transaction/flow-recovery.js';
import type { ClientTransaction } from '../../../src/transaction/types.js';
import type { TransportEvents } from '../../../src/transport/transport-events.js';
import type { Destination, SendResult } from '../../../src/transport/types.js';
import type { TransportError } from '../../../src/util/errors.js';
import { silentLogger } from '../../../src/util/logger.js';
import { TypedEvents } from '../../../src/util/typed-events.js';
import { ManualClock } from '../../support/manual-clock.js';

/**
 * FlowRecovery's decisions, with the transport and the transactions stood in for: which
 * transactions are re-sent where, which fail and with what, and what is reported. (The real
 * thing against a silent firewall is test/fault/keepalive.test.ts.)
 */

interface FakeTx extends ClientTransaction {
  resentTo: Destination[];
  failedWith: TransportError[];
}

function tx(branch: string, dest: Destination, opts: { reopen?: boolean; method?: string } = {}): FakeTx {
  const request = {
    kind: 'request',
    method: opts.method ?? 'INVITE',
    uri: 'sip:1002@10.0.0.2',
    version: 'SIP/2.0',
    headers: [
      { name: 'Via', value: `SIP/2.0/TCP 10.0.0.1:5060;branch=${branch}` },
      { name: 'Call-ID', value: `call-${branch}` },
    ],
    body: Buffer.alloc(0),
  } as SipRequest;
  const fake = {
    request,
    lastRequest: request,
    destination: dest,
    active: true,
    reopen: opts.reopen ?? true,
    resentTo: [] as Destination[],
    failedWith: [] as TransportError[],
    resend(d?: Destination): Promise<SendResult> {
      if (d) fake.resentTo.push(d);
      return Promise.resolve({ transport: 'TCP', address: d?.address ?? '', port: d?.port ?? 0, ...(d?.flowId ? { flowId: d.flowId } : {}) });
    },
    failFlow(e: TransportError): void {
      fake.failedWith.push(e);
      fake.active = false;
    },
  };
  return fake as unknown as FakeTx;
}

/** `active` wait on the connection that dies (tcp-1); `others` on further ones, by id. */
function rig(opts: { active: FakeTx[]; others?: Record<string, FakeTx[]>; open?: (d: Destination) => Promise<{ id: string }> }) {
  const clock = new ManualClock();
  const transportEvents = new TypedEvents<TransportEvents>();
  const opened: Destination[] = [];
  const recovery = new FlowRecovery({
    transport: {
      events: transportEvents,
      openConnection: (d) => {
        opened.push(d);
        return (opts.open?.(d) ?? Promise.resolve({ id: 'tcp-9' })) as never;
      },
    },
    transactions: { activeClientTransactionsOnFlow: (id) => (id === 'tcp-1' ? opts.active : (opts.others?.[id] ?? [])) },
    clock,
    log: silentLogger,
    // Later turns of the real event loop (flush() below steps through them).
    defer: (fn) => setImmediate(fn),
  });
  const seen: { name: keyof FlowRecoveryEvents; e: unknown }[] = [];
  for (const name of ['ConnectionStale', 'ConnectionReopened', 'ConnectionReopenFailed'] as const) recovery.events.on(name, (e) => seen.push({ name, e }));
  const dieOn = (id: string, remotePort: number, errorCode = 'ETIMEDOUT'): void =>
    transportEvents.emit('connectionClosed', { id, transport: 'TCP', origin: 'accepted', remoteAddress: '10.0.0.2', remotePort, cause: `error: ${errorCode}`, errorCode });
  const die = (errorCode = 'ETIMEDOUT'): void => dieOn('tcp-1', 40000, errorCode);
  return { clock, recovery, seen, opened, die, dieOn };
}

/** A few turns of the event loop: re-opens settle, then their reports go out. */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

/** A connect the test completes (or fails) when it likes. */
function pendingConnect(): { promise: Promise<{ id: string }>; open: (id: string) => void; fail: (err: Error) => void } {
  let open: (id: string) => void = () => {};
  let fail: (err: Error) => void = () => {};
  const promise = new Promise<{ id: string }>((resolve, reject) => {
    open = (id) => resolve({ id });
    fail = reject;
  });
  return { promise, open, fail };
}
const PHONE: Destination = { transport: 'TCP', address: '10.0.0.2', port: 5070, flowId: 'tcp-1' };

describe('FlowRecovery (SPEC §5.3)', () => {
  it('a dead connection with no transaction waiting is reported and nothing is opened', async () => {
    const r = rig({ active: [] });
    r.die();
    await flush();
    expect(r.opened).toEqual([]);
    expect(r.seen).toHaveLength(1);
    expect(r.seen[0]).toMatchObject({ name: 'ConnectionStale', e: { connectionId: 'tcp-1', remote: '10.0.0.2:40000', detectedBy: 'keepalive-timeout', active: [] } });
  });

  it('re-opens once per destination (the Contact, not the dead flow) and re-sends each waiting transaction on the new connection', async () => {
    const a = tx('z9hG4bKa', PHONE);
    const b = tx('z9hG4bKb', PHONE, { method: 'BYE' });
    const r = rig({ active: [a, b] });
    r.die();
    await flush();
    expect(r.opened).toEqual([{ transport: 'TCP', address: '10.0.0.2', port: 5070 }]);
    expect(a.resentTo).toEqual([{ transport: 'TCP', address: '10.0.0.2', port: 5070, flowId: 'tcp-9' }]);
    expect(b.resentTo).toHaveLength(1);
    const reopened = r.seen.find((s) => s.name === 'ConnectionReopened')?.e;
    expect(reopened).toMatchObject({ destination: '10.0.0.2:5070', newConnectionId: 'tcp-9', resent: [{ method: 'INVITE', branch: 'z9hG4bKa', callId: 'call-z9hG4bKa' }, { method: 'BYE', branch: 'z9hG4bKb' }] });
  });

  it('when the new connection cannot be opened, every waiting transaction fails with REOPEN_FAILED', async () => {
    const a = tx('z9hG4bKa', PHONE);
    const r = rig({ active: [a], open: () => Promise.reject(new Error('connect to TCP 10.0.0.2:5070 timed out after 2000 ms')) });
    r.die();
    await flush();
    expect(a.failedWith.map((e) => e.code)).toEqual([REOPEN_FAILED]);
    expect(r.seen.at(-1)).toMatchObject({ name: 'ConnectionReopenFailed', e: { reason: 'connect to TCP 10.0.0.2:5070 timed out after 2000 ms', failed: [{ branch: 'z9hG4bKa' }] } });
  });

  it('a transaction whose TU said reopen: false (voip-service) fails at once with FLOW_DIED and is not re-sent', async () => {
    const a = tx('z9hG4bKa', PHONE, { reopen: false });
    const r = rig({ active: [a] });
    r.die();
    await flush();
    expect(r.opened).toEqual([]);
    expect(a.resentTo).toEqual([]);
    expect(a.failedWith.map((e) => e.code)).toEqual([FLOW_DIED]);
    expect(r.seen.map((s) => s.name)).toEqual(['ConnectionStale', 'ConnectionReopenFailed']);
  });

  it('after stop() (shutdown) closes are not acted on', async () => {
    const a = tx('z9hG4bKa', PHONE);
    const r = rig({ active: [a] });
    r.recovery.stop();
    r.die();
    await flush();
    expect(r.seen).toEqual([]);
    expect(a.resentTo).toEqual([]);
  });

  it('when many connections die in one turn, every re-open starts before anything is reported, and each is reported stale before re-opened', async () => {
    const phones = [1, 2, 3].map((n) => ({ flow: `tcp-${n}`, dest: { ...PHONE, port: 5070 + n, flowId: `tcp-${n}` } }));
    const txs = phones.map((p, i) => tx(`z9hG4bK${i}`, p.dest));
    const connects = phones.map(() => pendingConnect());
    const r = rig({
      active: [txs[0]!],
      others: { 'tcp-2': [txs[1]!], 'tcp-3': [txs[2]!] },
      open: (d) => connects[d.port - 5071]!.promise,
    });
    phones.forEach((_, i) => r.dieOn(`tcp-${i + 1}`, 40001 + i));
    expect(r.opened.map((d) => d.port)).toEqual([5071, 5072, 5073]);
    await flush();
    expect(r.seen).toEqual([]); // the connects are still under way
    connects[2]!.open('tcp-13');
    connects[0]!.open('tcp-11');
    await flush();
    expect(r.seen).toEqual([]); // one is still under way
    connects[1]!.open('tcp-12');
    await flush();
    expect(txs.map((t) => t.resentTo[0]?.flowId)).toEqual(['tcp-11', 'tcp-12', 'tcp-13']);
    expect(r.seen.map((s) => s.name)).toEqual(['ConnectionStale', 'ConnectionStale', 'ConnectionStale', 'ConnectionReopened', 'ConnectionReopened', 'ConnectionReopened']);
    for (const p of phones) {
      const order = r.seen.filter((s) => (s.e as { connectionId: string }).connectionId === p.flow).map((s) => s.name);
      expect(order).toEqual(['ConnectionStale', 'ConnectionReopened']);
    }
  });

  it('reports keep the time they describe: ConnectionStale the detection, reopenMs from the close to the re-send', async () => {
    const a = tx('z9hG4bKa', PHONE);
    const connect = pendingConnect();
    const r = rig({ active: [a], open: () => connect.promise });
    const detectedAt = r.clock.now();
    r.die();
    r.clock.advance(7);
    connect.open('tcp-9');
    await flush();
    expect(r.seen[0]).toMatchObject({ name: 'ConnectionStale', e: { time: detectedAt } });
    expect(r.seen[1]).toMatchObject({ name: 'ConnectionReopened', e: { time: detectedAt, reopenMs: 7 } });
  });

  it(`a re-open that hangs holds the reports back for at most ${REPORT_MAX_WAIT_MS} ms`, async () => {
    const a = tx('z9hG4bKa', PHONE);
    const connect = pendingConnect();
    const r = rig({ active: [a], open: () => connect.promise });
    r.die();
    await flush();
    expect(r.seen).toEqual([]);
    r.clock.advance(REPORT_MAX_WAIT_MS);
    expect(r.seen.map((s) => s.name)).toEqual(['ConnectionStale']);
    connect.fail(new Error('connect to TCP 10.0.0.2:5070 timed out after 2000 ms'));
    await flush();
    expect(r.seen.map((s) => s.name)).toEqual(['ConnectionStale', 'ConnectionReopenFailed']);
  });

  it('stop() sends the reports still waiting at once', () => {
    const r = rig({ active: [] });
    r.die();
    expect(r.seen).toEqual([]);
    r.recovery.stop();
    expect(r.seen.map((s) => s.name)).toEqual(['ConnectionStale']);
  });

  it('names how the connection was found dead', () => {
    const base = { id: 'x', transport: 'TCP', origin: 'accepted', remoteAddress: 'a', remotePort: 1 } as const;
    expect(detectedBy({ ...base, cause: 'error: ETIMEDOUT', errorCode: 'ETIMEDOUT' })).toBe('keepalive-timeout');
    expect(detectedBy({ ...base, cause: 'error: ECONNRESET', errorCode: 'ECONNRESET' })).toBe('reset');
    expect(detectedBy({ ...base, cause: 'error: EPIPE', errorCode: 'EPIPE' })).toBe('write-error');
    expect(detectedBy({ ...base, cause: 'error: EHOSTUNREACH', errorCode: 'EHOSTUNREACH' })).toBe('error');
    expect(detectedBy({ ...base, cause: 'remote closed' })).toBe('peer-closed');
    expect(detectedBy({ ...base, cause: 'unframeable: no Content-Length' })).toBe('local');
  });
});
