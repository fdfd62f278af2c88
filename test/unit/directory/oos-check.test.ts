import { describe, expect, it } from 'vitest';
import type { DnOptions } from '../../../src/config/schema.js';
import { OosChecker } from '../../../src/directory/oos-check.js';
import { getHeader, type SipRequest } from '../../../src/sip/message.js';
import type { Destination, Source } from '../../../src/transport/types.js';
import { silentLogger } from '../../../src/util/logger.js';
import { FakeFlow, flushPromises } from '../../support/fake-transport.js';
import { response, source } from '../../support/sip-builders.js';
import { dn, eventNames, register, world, type World } from '../registrar/harness.js';

const T0 = 1_700_000_000_000;
const GW_SOURCE: Source = source('UDP', { address: '192.0.2.10', port: 5060 });

interface OosWorld extends World {
  oos: OosChecker;
}

function oosWorld(dns: Record<string, DnOptions>, recoveryMs = 0): OosWorld {
  const w = world(dns);
  const oos = new OosChecker({
    directory: w.directory,
    transactions: w.layer,
    clock: w.clock,
    log: silentLogger,
    localAddress: '127.0.0.1',
    targetOf: (number) => w.registrar.targetOf(number),
    recoveryMs,
  });
  oos.start();
  return { ...w, oos };
}

function gateway(options: Partial<DnOptions> = {}): Record<string, DnOptions> {
  return { gw1: dn({ type: 'trunk', contact: 'sip:192.0.2.10:5060', 'oos-check': 10, 'oos-force': 2, ...options }) };
}

/** The OPTIONS checks sent so far, one per transaction (UDP retransmissions left out), in order. */
function checks(w: World): { req: SipRequest; dest: Destination }[] {
  const seen = new Set<string>();
  const out: { req: SipRequest; dest: Destination }[] = [];
  for (const s of w.transport.sent) {
    if (s.kind !== 'request' || s.message.method !== 'OPTIONS') continue;
    const callId = getHeader(s.message, 'call-id') ?? '';
    if (seen.has(callId)) continue;
    seen.add(callId);
    out.push({ req: s.message, dest: s.dest });
  }
  return out;
}

/** The i-th OPTIONS check (negative: from the end). */
function check(w: World, i: number): { req: SipRequest; dest: Destination } {
  const found = checks(w).at(i);
  if (!found) throw new Error(`no OPTIONS check #${i}`);
  return found;
}

function lastCheck(w: World): SipRequest {
  return check(w, -1).req;
}

function answer(w: World, req: SipRequest, status: number, from: Source = GW_SOURCE): void {
  w.layer.receive({ message: response(req, status), source: from });
}

/** Advances to `atMs` after T0. */
function advanceTo(w: World, atMs: number): void {
  w.clock.advance(T0 + atMs - w.clock.now());
}

describe('OosChecker: the active OPTIONS check (SPEC §4)', () => {
  it('with oos-check 10 sends an OPTIONS every 10 s to the fixed contact, and answered checks keep the DN in service silently', () => {
    const w = oosWorld(gateway());
    advanceTo(w, 9_999);
    expect(checks(w)).toEqual([]);

    advanceTo(w, 10_000);
    expect(checks(w)).toHaveLength(1);
    const first = check(w, 0);
    expect(first.dest).toEqual({ transport: 'UDP', address: '192.0.2.10', port: 5060 });
    expect(first.req.uri).toBe('sip:192.0.2.10:5060');
    expect(getHeader(first.req, 'to')).toBe('<sip:192.0.2.10:5060>');
    expect(getHeader(first.req, 'via')).toMatch(/^SIP\/2\.0\/UDP 127\.0\.0\.1:5060;branch=z9hG4bK/);
    answer(w, lastCheck(w), 200);

    advanceTo(w, 19_999);
    expect(checks(w)).toHaveLength(1);
    advanceTo(w, 20_000);
    expect(checks(w)).toHaveLength(2);
    answer(w, lastCheck(w), 200);
    advanceTo(w, 30_000);
    expect(checks(w)).toHaveLength(3);
    answer(w, lastCheck(w), 200);

    expect(checks(w).map((c) => getHeader(c.req, 'cseq'))).toEqual(['1 OPTIONS', '2 OPTIONS', '3 OPTIONS']);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    expect(w.events).toEqual([]);
  });

  it.each([200, 404, 503])('a %d from the network counts as alive: it brings an out-of-service DN back with EventDNBackInService', (status) => {
    const w = oosWorld(gateway());
    w.directory.setState('gw1', 'out-of-service', 'INVITE timed out'); // e.g. a failed call
    w.events.length = 0;
    advanceTo(w, 10_000);
    answer(w, lastCheck(w), status);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    expect(w.events).toEqual([
      { name: 'EventDNBackInService', event: { dn: 'gw1', type: 'trunk', reason: `OPTIONS answered ${status}`, time: T0 + 10_000 } },
    ]);

    advanceTo(w, 20_000);
    answer(w, lastCheck(w), status);
    advanceTo(w, 29_999);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    expect(w.events).toHaveLength(1);
  });

  it('no response within oos-force 2 s: out of service at 12 s, the check goes on at 20 s, and its response brings the DN back', () => {
    const w = oosWorld(gateway());
    advanceTo(w, 10_000);
    expect(checks(w)).toHaveLength(1);
    advanceTo(w, 11_999);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    advanceTo(w, 12_000);
    expect(w.directory.get('gw1')?.state).toBe('out-of-service');
    expect(w.events).toEqual([
      { name: 'EventDNOutOfService', event: { dn: 'gw1', type: 'trunk', reason: 'no response to OPTIONS within 2 s', time: T0 + 12_000 } },
    ]);

    advanceTo(w, 19_999);
    expect(checks(w)).toHaveLength(1);
    advanceTo(w, 20_000);
    expect(checks(w)).toHaveLength(2);
    advanceTo(w, 21_000);
    answer(w, lastCheck(w), 200);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    expect(eventNames(w)).toEqual(['EventDNOutOfService', 'EventDNBackInService']);
    expect(w.events[1]?.event.time).toBe(T0 + 21_000);

    // The first OPTIONS's own timeout (timer F at 10 s + 32 s) must not undo the newer answers.
    advanceTo(w, 30_000);
    answer(w, lastCheck(w), 200);
    advanceTo(w, 40_000);
    answer(w, lastCheck(w), 200);
    expect(checks(w)).toHaveLength(4);
    advanceTo(w, 42_000);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    expect(eventNames(w)).toEqual(['EventDNOutOfService', 'EventDNBackInService']);
  });

  it('a late answer to an OPTIONS that outlived oos-force still brings the DN back', () => {
    const w = oosWorld(gateway());
    advanceTo(w, 10_000);
    const first = lastCheck(w);
    advanceTo(w, 15_000);
    expect(w.directory.get('gw1')?.state).toBe('out-of-service');
    answer(w, first, 200);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    expect(eventNames(w)).toEqual(['EventDNOutOfService', 'EventDNBackInService']);
    advanceTo(w, 20_000);
    expect(checks(w)).toHaveLength(2);
  });

  it('oos-force 0: out of service only when the transaction times out (timer F, 32 s with T1 500), then the check goes on', () => {
    const w = oosWorld(gateway({ 'oos-force': 0 }));
    advanceTo(w, 10_000);
    advanceTo(w, 41_999);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
    expect(w.events).toEqual([]);
    advanceTo(w, 42_000);
    expect(w.directory.get('gw1')?.state).toBe('out-of-service');
    expect(w.events).toEqual([
      { name: 'EventDNOutOfService', event: { dn: 'gw1', type: 'trunk', reason: 'OPTIONS timed out', time: T0 + 42_000 } },
    ]);
    advanceTo(w, 50_000);
    expect(checks(w)).toHaveLength(2);
    answer(w, lastCheck(w), 200);
    expect(eventNames(w)).toEqual(['EventDNOutOfService', 'EventDNBackInService']);
  });

  it('while an OPTIONS is pending no second one is sent: the checks due at 20, 30 and 40 s are skipped', () => {
    const w = oosWorld(gateway({ 'oos-force': 0 }));
    advanceTo(w, 10_000);
    const first = lastCheck(w);
    advanceTo(w, 40_000);
    expect(checks(w)).toHaveLength(1);
    // UDP retransmissions of the one transaction are not new checks.
    expect(w.transport.requests('OPTIONS').length).toBeGreaterThan(1);
    answer(w, first, 200);
    advanceTo(w, 49_999);
    expect(checks(w)).toHaveLength(1);
    advanceTo(w, 50_000);
    expect(checks(w)).toHaveLength(2);
  });

  it('a transport error puts the DN out of service at once, and the next check still goes out', async () => {
    const w = oosWorld(gateway());
    w.transport.failNext({ match: (s) => s.kind === 'request' && s.message.method === 'OPTIONS', code: 'ECONNREFUSED' });
    advanceTo(w, 10_000);
    await flushPromises();
    expect(w.directory.get('gw1')?.state).toBe('out-of-service');
    expect(w.events).toEqual([
      { name: 'EventDNOutOfService', event: { dn: 'gw1', type: 'trunk', reason: 'transport error: ECONNREFUSED', time: T0 + 10_000 } },
    ]);
    advanceTo(w, 20_000);
    expect(checks(w)).toHaveLength(2);
    answer(w, lastCheck(w), 200);
    expect(eventNames(w)).toEqual(['EventDNOutOfService', 'EventDNBackInService']);
  });

  it('an unregistered contact "*" DN gets no OPTIONS; once registered over TCP its OPTIONS goes on the registered flow', () => {
    const w = oosWorld({ '1001': dn({ type: 'extension', contact: '*', 'oos-check': 10, 'oos-force': 2 }) });
    advanceTo(w, 30_000);
    expect(checks(w)).toEqual([]);
    expect(w.events).toEqual([]);

    const phoneFlow = new FakeFlow('tcp-in-7', 'TCP', '192.0.2.1', 49152, 'accepted');
    const flow = source('TCP', { port: 49152, flow: phoneFlow });
    expect(w.send(register({ contacts: ['<sip:1001@192.0.2.1:5070;transport=tcp>'], transport: 'TCP', expires: 300 }), flow).status).toBe(200);
    advanceTo(w, 40_000);
    expect(checks(w)).toHaveLength(1);
    const options = check(w, 0);
    // On the registered flow, addressed to the phone's Contact (where a re-open would go, SPEC §5).
    expect(options.dest).toEqual({ transport: 'TCP', address: '192.0.2.1', port: 5070, flow: phoneFlow });
    expect(options.req.uri).toBe('sip:1001@192.0.2.1:5070;transport=tcp');
    expect(getHeader(options.req, 'via')).toMatch(/^SIP\/2\.0\/TCP /);
    answer(w, lastCheck(w), 200, flow);
    advanceTo(w, 43_000);
    expect(w.directory.get('1001')?.state).toBe('in-service');
    expect(eventNames(w)).toEqual(['EventRegistered', 'EventDNBackInService']);
  });

  it('a DN registered through an edge proxy (Path) is checked through it: the OPTIONS carries the Path as Route and goes to the proxy, the Contact as Request-URI', () => {
    const w = oosWorld({ '1001': dn({ type: 'extension', contact: '*', 'oos-check': 10, 'oos-force': 2 }) });
    const path = '<sip:edge@198.51.100.7:5060;lr;received=sip:203.0.113.9:40000%3Btransport%3Dtcp>';
    const req = register({ contacts: ['<sip:1001@203.0.113.9:5070;transport=tcp>'], expires: 300, headers: [{ name: 'Path', value: path }] });
    req.headers.unshift({ name: 'Via', value: 'SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-edge-oos' });
    expect(w.send(req, source('UDP', { address: '198.51.100.7', port: 5060 })).status).toBe(200);
    advanceTo(w, 10_000);
    const options = check(w, 0);
    expect(options.dest).toEqual({ transport: 'UDP', address: '198.51.100.7', port: 5060 });
    expect(options.req.uri).toBe('sip:1001@203.0.113.9:5070;transport=tcp');
    expect(getHeader(options.req, 'route')).toBe(path);
  });

  it('an answer that arrives after the DN\'s last registration expired does not bring a contact "*" DN back in service', () => {
    const w = oosWorld({ '1001': dn({ type: 'extension', contact: '*', 'oos-check': 10, 'oos-force': 2 }) });
    advanceTo(w, 1_000);
    w.send(register({ expires: 60 })); // expires at 61 s
    for (const at of [10_000, 20_000, 30_000, 40_000, 50_000]) {
      advanceTo(w, at);
      answer(w, lastCheck(w), 200, source('UDP'));
    }
    advanceTo(w, 60_000);
    const pending = lastCheck(w);
    expect(checks(w)).toHaveLength(6);
    advanceTo(w, 61_500);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    answer(w, pending, 200, source('UDP'));
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    expect(eventNames(w)).toEqual(['EventRegistered', 'EventDNBackInService', 'EventUnregistered', 'EventDNOutOfService']);
    advanceTo(w, 100_000);
    expect(checks(w)).toHaveLength(6);
  });

  it('stop() leaves no timer behind (with the transaction layer closed too) and no further OPTIONS goes out', () => {
    const w = oosWorld(gateway());
    advanceTo(w, 10_000);
    expect(checks(w)).toHaveLength(1); // pending, with its oos-force timer armed
    w.oos.stop();
    w.layer.close();
    expect(w.clock.pendingCount).toBe(0);
    const sent = w.transport.sent.length;
    advanceTo(w, 120_000);
    expect(w.transport.sent.length).toBe(sent);
    expect(w.directory.get('gw1')?.state).toBe('in-service');
  });

  it('a DN without oos-check is never checked', () => {
    const w = oosWorld(gateway({ 'oos-check': 0 }));
    advanceTo(w, 600_000);
    expect(checks(w)).toEqual([]);
    expect(w.clock.pendingCount).toBe(0);
  });

  it('a DN without oos-check that went out of service while reachable is asked with OPTIONS until it answers, then no more', async () => {
    const w = oosWorld(gateway({ 'oos-check': 0 }), 5000);
    w.directory.setState('gw1', 'out-of-service', 'INVITE timed out');
    w.clock.advance(4999);
    expect(checks(w)).toHaveLength(0);
    w.clock.advance(1);
    expect(checks(w)).toHaveLength(1);
    // Unanswered (timer F: 32 s): still out of service, asked again every 5 s meanwhile.
    w.clock.advance(5000);
    expect(w.directory.get('gw1')?.state).toBe('out-of-service');
    answer(w, lastCheck(w), 200);
    await flushPromises();
    expect(w.directory.get('gw1')).toMatchObject({ state: 'in-service', reason: 'OPTIONS answered 200' });
    const sent = checks(w).length;
    w.clock.advance(60_000);
    expect(checks(w)).toHaveLength(sent);
    w.oos.stop();
  });

  it('recovery probes are off with recoveryMs 0: the DN waits to be heard from otherwise', () => {
    const w = oosWorld(gateway({ 'oos-check': 0 }));
    w.directory.setState('gw1', 'out-of-service', 'INVITE timed out');
    w.clock.advance(120_000);
    expect(checks(w)).toHaveLength(0);
    w.oos.stop();
  });
});
