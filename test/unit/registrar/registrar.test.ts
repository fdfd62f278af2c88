import { describe, expect, it } from 'vitest';
import type { DnOptions } from '../../../src/config/schema.js';
import type { Binding } from '../../../src/registrar/binding.js';
import { computeDigestResponse } from '../../../src/sip/digest.js';
import { getHeaderValues, type SipResponse } from '../../../src/sip/message.js';
import { FakeFlow } from '../../support/fake-transport.js';
import { source } from '../../support/sip-builders.js';
import { DEFAULT_EXPIRES_S, dn, eventNames, MIN_EXPIRES_S, NONCE_LIFETIME_MS, REALM, register, world } from './harness.js';

const T0 = 1_700_000_000_000;

function dns(): Record<string, DnOptions> {
  return {
    '1001': dn({ type: 'extension', contact: '*' }),
    '1002': dn({ type: 'extension', contact: '*' }),
    '1003': dn({ type: 'extension', contact: '*', password: 's3cret' }),
    gw1: dn({ type: 'trunk', contact: 'sip:192.0.2.10:5060' }),
  };
}

function contactsOf(res: SipResponse): string[] {
  return getHeaderValues(res, 'contact');
}

describe('Registrar: expiry on the clock', () => {
  it('a binding expires exactly at its expiry, not a millisecond before, with EventUnregistered "expired" and the DN out of service', () => {
    const w = world(dns());
    const res = w.send(register({ expires: 120 }));
    expect(res.status).toBe(200);
    expect(w.directory.get('1001')?.state).toBe('in-service');
    expect(w.registrar.bindingsOf('1001')[0]?.expiresAt).toBe(T0 + 120_000);
    w.events.length = 0;

    w.clock.advance(119_999);
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
    expect(w.events).toEqual([]);

    w.clock.advance(1);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(w.store.load(w.clock.now())).toEqual([]);
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    expect(w.events).toEqual([
      { name: 'EventUnregistered', event: { dn: '1001', contact: 'sip:1001@192.0.2.1:5060', reason: 'expired', time: T0 + 120_000 } },
      { name: 'EventDNOutOfService', event: { dn: '1001', type: 'extension', reason: 'registration expired', time: T0 + 120_000 } },
    ]);
  });

  it('a refresh before expiry moves the expiry: the old timer is cancelled, nothing happens at the old time, it expires at the new one', () => {
    const w = world(dns());
    // Over TCP the server transactions leave no timer (timer J is 0), so the clock holds only expiry timers.
    const tcp = source('TCP');
    expect(w.send(register({ expires: 120, cseq: 1, transport: 'TCP' }), tcp).status).toBe(200);
    expect(w.clock.pendingCount).toBe(1);
    w.clock.advance(60_000);
    const res = w.send(register({ expires: 120, cseq: 2, transport: 'TCP' }), tcp);
    expect(res.status).toBe(200);
    expect(w.clock.pendingCount).toBe(1);
    expect(contactsOf(res)).toEqual(['<sip:1001@192.0.2.1:5060>;expires=120']);
    const refreshed = w.events.at(-1);
    expect(refreshed).toMatchObject({ name: 'EventRegistered', event: { dn: '1001', expires: 120, refresh: true } });
    const b = w.registrar.bindingsOf('1001')[0];
    expect(b?.expiresAt).toBe(T0 + 180_000);
    expect(b?.registeredAt).toBe(T0);
    expect(b?.cseq).toBe(2);
    w.events.length = 0;

    w.clock.advance(60_000); // the old expiry, T0 + 120 s
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
    expect(w.directory.get('1001')?.state).toBe('in-service');
    expect(w.events).toEqual([]);

    w.clock.advance(59_999);
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
    w.clock.advance(1);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(eventNames(w)).toEqual(['EventUnregistered', 'EventDNOutOfService']);
  });
});

describe('Registrar: REGISTER handling', () => {
  it('keeps several contacts per DN; removing one with expires=0 leaves the DN in service on the other', () => {
    const w = world(dns());
    const res = w.send(
      register({ contacts: ['<sip:1001@192.0.2.1:5060>', '<sip:1001@192.0.2.5:5062>;expires=600'], expires: 300 }),
    );
    expect(res.status).toBe(200);
    expect(contactsOf(res)).toEqual(['<sip:1001@192.0.2.1:5060>;expires=300', '<sip:1001@192.0.2.5:5062>;expires=600']);
    expect(w.registrar.bindingsOf('1001').map((b) => b.contact)).toEqual(['sip:1001@192.0.2.1:5060', 'sip:1001@192.0.2.5:5062']);
    expect(eventNames(w)).toEqual(['EventRegistered', 'EventRegistered', 'EventDNBackInService']);
    w.events.length = 0;

    const removed = w.send(register({ contacts: ['<sip:1001@192.0.2.1:5060>;expires=0'], cseq: 2 }));
    expect(removed.status).toBe(200);
    expect(contactsOf(removed)).toEqual(['<sip:1001@192.0.2.5:5062>;expires=600']);
    expect(w.registrar.bindingsOf('1001').map((b) => b.contact)).toEqual(['sip:1001@192.0.2.5:5062']);
    expect(w.store.load(w.clock.now()).map((b) => b.contact)).toEqual(['sip:1001@192.0.2.5:5062']);
    expect(w.directory.get('1001')?.state).toBe('in-service');
    expect(w.events).toEqual([
      { name: 'EventUnregistered', event: { dn: '1001', contact: 'sip:1001@192.0.2.1:5060', reason: 'removed', time: T0 } },
    ]);
  });

  it('Contact: * with Expires: 0 removes every binding and puts the DN out of service', () => {
    const w = world(dns());
    w.send(register({ contacts: ['<sip:1001@192.0.2.1:5060>', '<sip:1001@192.0.2.5:5062>'], expires: 300 }));
    w.events.length = 0;
    const res = w.send(register({ contacts: ['*'], expires: 0, cseq: 2 }));
    expect(res.status).toBe(200);
    expect(contactsOf(res)).toEqual([]);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(w.store.load(w.clock.now())).toEqual([]);
    expect(eventNames(w)).toEqual(['EventUnregistered', 'EventUnregistered', 'EventDNOutOfService']);
  });

  it.each([
    ['without an Expires header', undefined],
    ['with Expires: 60', 60],
  ])('Contact: * %s gets 400 and removes nothing', (_what, expires) => {
    const w = world(dns());
    w.send(register({ expires: 300 }));
    w.events.length = 0;
    const res = w.send(register({ contacts: ['*'], expires, cseq: 2 }));
    expect(res.status).toBe(400);
    expect(res.reason).toBe('Contact * Needs Expires: 0 Alone');
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
    expect(w.events).toEqual([]);
  });

  it.each([
    ['a lower CSeq', 4],
    ['the same CSeq', 5],
  ])('a REGISTER with the same Call-ID and %s gets 500 and leaves the binding as it was', (_what, cseq) => {
    const w = world(dns());
    expect(w.send(register({ expires: 300, cseq: 5 })).status).toBe(200);
    const before = w.registrar.bindingsOf('1001')[0];
    w.clock.advance(10_000);
    w.events.length = 0;

    const res = w.send(register({ expires: 900, cseq }));
    expect(res.status).toBe(500);
    expect(res.reason).toBe('Out of Order REGISTER');
    expect(w.registrar.bindingsOf('1001')).toEqual([before]);
    expect(w.registrar.bindingsOf('1001')[0]?.expiresAt).toBe(T0 + 300_000);
    expect(w.store.load(w.clock.now())).toEqual([before]);
    expect(w.events).toEqual([]);

    const removal = w.send(register({ contacts: ['*'], expires: 0, cseq }));
    expect(removal.status).toBe(500);
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
  });

  it('a REGISTER with another Call-ID and a lower CSeq is accepted (ordering is per Call-ID)', () => {
    const w = world(dns());
    w.send(register({ expires: 300, cseq: 5 }));
    const res = w.send(register({ expires: 900, cseq: 1, callId: 'reg-call-2@192.0.2.1' }));
    expect(res.status).toBe(200);
    expect(w.registrar.bindingsOf('1001')[0]).toMatchObject({ callId: 'reg-call-2@192.0.2.1', cseq: 1, expiresAt: T0 + 900_000 });
  });

  it('grants registrar-default-expires when the REGISTER asks for no expiry', () => {
    const w = world(dns());
    const res = w.send(register({ expires: undefined }));
    expect(res.status).toBe(200);
    expect(contactsOf(res)).toEqual([`<sip:1001@192.0.2.1:5060>;expires=${DEFAULT_EXPIRES_S}`]);
    expect(w.registrar.bindingsOf('1001')[0]?.expiresAt).toBe(T0 + DEFAULT_EXPIRES_S * 1000);
    expect(w.events[0]).toMatchObject({ name: 'EventRegistered', event: { expires: DEFAULT_EXPIRES_S, refresh: false } });
  });

  it('a Contact expires parameter wins over the Expires header', () => {
    const w = world(dns());
    const res = w.send(register({ contacts: ['<sip:1001@192.0.2.1:5060>;expires=200'], expires: 600 }));
    expect(res.status).toBe(200);
    expect(contactsOf(res)).toEqual(['<sip:1001@192.0.2.1:5060>;expires=200']);
    expect(w.registrar.bindingsOf('1001')[0]?.expiresAt).toBe(T0 + 200_000);
  });

  it('an expiry below registrar-min-expires gets 423 with Min-Expires and stores nothing', () => {
    const w = world(dns());
    const res = w.send(register({ expires: MIN_EXPIRES_S - 1 }));
    expect(res.status).toBe(423);
    expect(res.reason).toBe('Interval Too Brief');
    expect(getHeaderValues(res, 'min-expires')).toEqual([String(MIN_EXPIRES_S)]);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(w.store.load(w.clock.now())).toEqual([]);
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    expect(w.send(register({ expires: MIN_EXPIRES_S, cseq: 2 })).status).toBe(200);
  });

  it('the binding is in the store when the 200 OK is handed to the transport', () => {
    const w = world(dns());
    const atSend: { status: number; stored: Binding[] }[] = [];
    w.transport.beforeResponse = (res) => atSend.push({ status: res.status, stored: w.store.load(w.clock.now()) });
    w.send(register({ expires: 300 }), source('TCP', { port: 49152 }));
    expect(atSend).toHaveLength(1);
    expect(atSend[0]?.status).toBe(200);
    expect(atSend[0]?.stored).toEqual([
      {
        aor: '1001',
        contact: 'sip:1001@192.0.2.1:5060',
        expiresAt: T0 + 300_000,
        callId: 'reg-call-1@192.0.2.1',
        cseq: 1,
        transport: 'TCP',
        source: { address: '192.0.2.1', port: 49152 },
        flowId: 'tcp-in-1',
        flowState: 'live',
        registeredAt: T0,
        updatedAt: T0,
      },
    ]);
  });

  it('a store that cannot write gets 500 Registration Not Stored, and the DN stays out of service', () => {
    const w = world(dns());
    w.store.close();
    const res = w.send(register({ expires: 300 }));
    expect(res.status).toBe(500);
    expect(res.reason).toBe('Registration Not Stored');
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    expect(w.events).toEqual([]);
  });

  it('REGISTER for an unknown DN gets 404, for a fixed-contact DN 403', () => {
    const w = world(dns());
    expect(w.send(register({ dn: '4242' })).status).toBe(404);
    expect(w.send(register({ dn: 'gw1' })).status).toBe(403);
    expect(w.registrar.allBindings()).toEqual([]);
  });
});

describe('Registrar: flows and targets', () => {
  it('flowClosed marks the binding dead (in memory: a restart loads stream bindings as dead) and targetOf then goes to the Contact address without the flow', () => {
    const w = world(dns());
    const phone = new FakeFlow('tcp-in-7', 'TCP', '192.0.2.1', 49152, 'accepted');
    const other = new FakeFlow('tcp-in-8', 'TCP', '192.0.2.1', 49153, 'accepted');
    w.send(register({ contacts: ['<sip:1001@192.0.2.1:5070;transport=tcp>'], transport: 'TCP', expires: 300 }), source('TCP', { port: 49152, flow: phone }));
    expect(w.registrar.targetOf('1001')).toEqual({
      requestUri: 'sip:1001@192.0.2.1:5070;transport=tcp',
      destination: { transport: 'TCP', address: '192.0.2.1', port: 5070, flow: phone },
    });

    other.die('peer-closed', 'remote closed');
    expect(w.registrar.bindingsOf('1001')[0]?.flowState).toBe('live');

    phone.die('peer-closed', 'remote closed');
    expect(w.registrar.bindingsOf('1001')[0]?.flowState).toBe('dead');
    expect(w.registrar.targetOf('1001')).toEqual({
      requestUri: 'sip:1001@192.0.2.1:5070;transport=tcp',
      destination: { transport: 'TCP', address: '192.0.2.1', port: 5070 },
    });
    expect(w.directory.get('1001')?.state).toBe('in-service');
  });

  it('a binding refreshed over a new connection stays live when the old connection closes; the new one closing kills it', () => {
    const w = world(dns());
    const contact = '<sip:1001@192.0.2.1:5070;transport=tcp>';
    const first = new FakeFlow('tcp-in-1', 'TCP', '192.0.2.1', 49152, 'accepted');
    const second = new FakeFlow('tcp-in-2', 'TCP', '192.0.2.1', 49153, 'accepted');
    w.send(register({ contacts: [contact], transport: 'TCP', expires: 300, cseq: 1 }), source('TCP', { port: 49152, flow: first }));
    w.send(register({ contacts: [contact], transport: 'TCP', expires: 300, cseq: 2 }), source('TCP', { port: 49153, flow: second }));
    // Only the flow a binding is on has the registrar listening.
    expect([first.listening, second.listening]).toEqual([0, 1]);

    first.die('peer-closed', 'remote closed');
    expect(w.registrar.bindingsOf('1001').map((b) => [b.flowId, b.flowState])).toEqual([['tcp-in-2', 'live']]);

    second.die('peer-closed', 'remote closed');
    expect(w.registrar.bindingsOf('1001').map((b) => [b.flowId, b.flowState])).toEqual([['tcp-in-2', 'dead']]);
  });

  it('targetOf picks the highest q, then the most recently registered contact', () => {
    const w = world(dns());
    w.send(register({ contacts: ['<sip:1001@192.0.2.1:5061>;q=0.9'], expires: 300, cseq: 1 }));
    w.clock.advance(1000);
    w.send(register({ contacts: ['<sip:1001@192.0.2.1:5062>;q=0.5'], expires: 300, cseq: 2 }));
    w.clock.advance(1000);
    w.send(register({ contacts: ['<sip:1001@192.0.2.1:5063>;q=0.5'], expires: 300, cseq: 3 }));
    expect(w.registrar.targetOf('1001')?.requestUri).toBe('sip:1001@192.0.2.1:5061');

    w.send(register({ contacts: ['<sip:1001@192.0.2.1:5061>;expires=0'], cseq: 4 }));
    expect(w.registrar.targetOf('1001')?.requestUri).toBe('sip:1001@192.0.2.1:5063');

    w.clock.advance(1000);
    w.send(register({ contacts: ['<sip:1001@192.0.2.1:5064>'], expires: 300, cseq: 5 })); // no q: 1.0
    expect(w.registrar.targetOf('1001')?.requestUri).toBe('sip:1001@192.0.2.1:5064');
    expect(w.registrar.targetOf('1001')?.destination).toEqual({ transport: 'UDP', address: '192.0.2.1', port: 5064 });
  });

  it('targetOf gives a fixed DN its configured contact and an unregistered * DN nothing', () => {
    const w = world(dns());
    expect(w.registrar.targetOf('gw1')).toEqual({
      requestUri: 'sip:192.0.2.10:5060',
      destination: { transport: 'UDP', address: '192.0.2.10', port: 5060 },
    });
    expect(w.registrar.targetOf('1001')).toBeUndefined();
    expect(w.registrar.targetOf('nope')).toBeUndefined();
  });
});

describe('Registrar: start() loads the store', () => {
  const stored = (over: Partial<Binding>): Binding => ({
    aor: '1001',
    contact: 'sip:1001@192.0.2.1:5070;transport=tcp',
    expiresAt: T0 + 600_000,
    callId: 'old-call@192.0.2.1',
    cseq: 7,
    transport: 'TCP',
    source: { address: '192.0.2.1', port: 49152 },
    flowId: 'flow-of-the-previous-process',
    flowState: 'live',
    registeredAt: T0 - 60_000,
    ...over,
  });

  it('drops the old flowId of TCP bindings, puts their DNs in service and deletes bindings of DNs no longer configured', () => {
    const w = world(dns(), {
      beforeStart: (store) => {
        store.put(stored({}));
        store.put(stored({ aor: '1002', contact: 'sip:1002@192.0.2.2:5060', transport: 'UDP', flowId: undefined, source: { address: '192.0.2.2', port: 5060 } }));
        store.put(stored({ aor: '7777', contact: 'sip:7777@192.0.2.7:5060' }));
        store.put(stored({ aor: '1003', expiresAt: T0 })); // already expired
      },
    });
    const tcp = w.registrar.bindingsOf('1001');
    expect(tcp).toHaveLength(1);
    expect(tcp[0]?.flowId).toBeUndefined();
    expect(tcp[0]?.flowState).toBe('dead');
    expect(w.registrar.bindingsOf('1002')[0]?.flowState).toBe('live');
    expect(w.registrar.bindingsOf('7777')).toEqual([]);
    expect(w.registrar.bindingsOf('1003')).toEqual([]);
    expect(w.registrar.allBindings().map((b) => b.aor)).toEqual(['1001', '1002']);
    expect(w.store.load(T0).map((b) => b.aor).sort()).toEqual(['1001', '1002']);

    expect(w.directory.get('1001')?.state).toBe('in-service');
    expect(w.directory.get('1002')?.state).toBe('in-service');
    expect(w.directory.get('1003')?.state).toBe('out-of-service');
    expect(w.events).toEqual([
      { name: 'EventDNBackInService', event: { dn: '1001', type: 'extension', reason: 'registration loaded', time: T0 } },
      { name: 'EventDNBackInService', event: { dn: '1002', type: 'extension', reason: 'registration loaded', time: T0 } },
    ]);
    expect(w.registrar.targetOf('1001')?.destination).toEqual({ transport: 'TCP', address: '192.0.2.1', port: 5070 });
  });

  it('a loaded binding still expires at its stored expiry', () => {
    const w = world(dns(), { beforeStart: (store) => store.put(stored({})) });
    w.clock.advance(599_999);
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
    w.clock.advance(1);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
  });
});

describe('Registrar: digest authentication', () => {
  const PASSWORD = 's3cret';

  function nonceOf(res: SipResponse): string {
    const value = getHeaderValues(res, 'www-authenticate')[0] ?? '';
    const m = /nonce="([^"]+)"/.exec(value);
    if (!m?.[1]) throw new Error(`no nonce in ${value}`);
    return m[1];
  }

  function authorization(nonce: string, nc = '00000001'): { name: string; value: string } {
    const uri = 'sip:127.0.0.1';
    const cnonce = 'c0ffee';
    const response = computeDigestResponse({
      algorithm: 'SHA-256',
      username: '1003',
      realm: REALM,
      password: PASSWORD,
      method: 'REGISTER',
      uri,
      nonce,
      qop: 'auth',
      nc,
      cnonce,
    });
    return {
      name: 'Authorization',
      value: `Digest username="1003", realm="${REALM}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=SHA-256, qop=auth, nc=${nc}, cnonce="${cnonce}"`,
    };
  }

  it('challenges with 401, then accepts the right credentials', () => {
    const w = world(dns());
    const challenge = w.send(register({ dn: '1003', expires: 300, cseq: 1 }));
    expect(challenge.status).toBe(401);
    expect(getHeaderValues(challenge, 'www-authenticate').map((v) => /algorithm=([\w-]+)/.exec(v)?.[1])).toEqual(['SHA-256', 'MD5']);
    expect(w.registrar.bindingsOf('1003')).toEqual([]);
    const ok = w.send(register({ dn: '1003', expires: 300, cseq: 2, headers: [authorization(nonceOf(challenge))] }));
    expect(ok.status).toBe(200);
    expect(w.registrar.bindingsOf('1003')).toHaveLength(1);
  });

  it('a nonce older than the NonceManager lifetime gets 401 with stale=true and a fresh nonce that works', () => {
    const w = world(dns());
    const challenge = w.send(register({ dn: '1003', expires: 300, cseq: 1 }));
    const nonce = nonceOf(challenge);
    w.clock.advance(NONCE_LIFETIME_MS + 1);

    const stale = w.send(register({ dn: '1003', expires: 300, cseq: 2, headers: [authorization(nonce)] }));
    expect(stale.status).toBe(401);
    expect(stale.reason).toBe('Stale Nonce');
    const challenges = getHeaderValues(stale, 'www-authenticate');
    expect(challenges).toHaveLength(2);
    for (const c of challenges) expect(c).toMatch(/, stale=true$/);
    expect(nonceOf(stale)).not.toBe(nonce);
    expect(w.registrar.bindingsOf('1003')).toEqual([]);

    const ok = w.send(register({ dn: '1003', expires: 300, cseq: 3, headers: [authorization(nonceOf(stale))] }));
    expect(ok.status).toBe(200);
  });

  it('a nonce one millisecond inside its lifetime is still accepted', () => {
    const w = world(dns());
    const nonce = nonceOf(w.send(register({ dn: '1003', expires: 300, cseq: 1 })));
    w.clock.advance(NONCE_LIFETIME_MS);
    expect(w.send(register({ dn: '1003', expires: 300, cseq: 2, headers: [authorization(nonce)] })).status).toBe(200);
  });
});
