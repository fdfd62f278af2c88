import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DnOptions } from '../../../src/config/schema.js';
import { SqliteStore } from '../../../src/registrar/sqlite-store.js';
import { getHeaderValues, type SipHeader, type SipResponse } from '../../../src/sip/message.js';
import { FakeFlow } from '../../support/fake-transport.js';
import { source } from '../../support/sip-builders.js';
import { dn, register, world } from './harness.js';

/*
 * The registrar side of RFC 5626 (outbound) and RFC 3327 (Path): which REGISTERs get outbound
 * processing, what the 200 says, how flows of one phone are kept and chosen, and where
 * requests to a phone behind an edge proxy go.
 */

const INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"';
const CONTACT = 'sip:1001@192.0.2.1:5070;transport=tcp';
const SUPPORTED: SipHeader = { name: 'Supported', value: 'outbound, path' };
let edgeBranch = 0;
/** The edge proxy's Via: a branch of its own per request (the server matches transactions by the top Via). */
const edgeVia = (): string => `SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bK-edge-${++edgeBranch}`;

function dns(): Record<string, DnOptions> {
  return { '1001': dn({ type: 'extension', contact: '*' }) };
}

const flowContact = (regId: number, uri = CONTACT, expires?: number): string =>
  `<${uri}>;+sip.instance=${INSTANCE};reg-id=${regId}${expires === undefined ? '' : `;expires=${expires}`}`;
const one = (res: SipResponse, name: string): string | undefined => getHeaderValues(res, name)[0];

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('RFC 5626 outbound: a phone connected straight to the registrar', () => {
  it('gets Require: outbound and Flow-Timer (over TCP), its Contact listed with instance and reg-id', () => {
    const w = world(dns(), { flowTimerS: 30 });
    const flow = new FakeFlow('tcp-in-1', 'TCP', '192.0.2.1', 49152, 'accepted');
    const res = w.send(register({ contacts: [flowContact(1)], transport: 'TCP', expires: 300, headers: [SUPPORTED] }), source('TCP', { port: 49152, flow }));
    expect(res.status).toBe(200);
    expect(one(res, 'require')).toBe('outbound');
    expect(one(res, 'flow-timer')).toBe('30');
    expect(getHeaderValues(res, 'contact')).toEqual([`<${CONTACT}>;expires=300;+sip.instance=${INSTANCE};reg-id=1`]);
    expect(w.registrar.bindingsOf('1001')).toMatchObject([{ outbound: true, instanceId: INSTANCE, regId: 1, flowId: 'tcp-in-1' }]);
  });

  it('no Flow-Timer over UDP, nor when registrar-flow-timer is 0; a Contact without reg-id gets no Require', () => {
    const udp = world(dns(), { flowTimerS: 30 });
    const overUdp = udp.send(register({ contacts: [flowContact(1, 'sip:1001@192.0.2.1:5070')], expires: 300, headers: [SUPPORTED] }));
    expect([overUdp.status, one(overUdp, 'require'), one(overUdp, 'flow-timer')]).toEqual([200, 'outbound', undefined]);

    const off = world(dns());
    const flow = new FakeFlow('tcp-in-1', 'TCP', '192.0.2.1', 49152, 'accepted');
    const res = off.send(register({ contacts: [flowContact(1)], transport: 'TCP', expires: 300, headers: [SUPPORTED] }), source('TCP', { port: 49152, flow }));
    expect([res.status, one(res, 'require'), one(res, 'flow-timer')]).toEqual([200, 'outbound', undefined]);

    const plain = world(dns(), { flowTimerS: 30 });
    const noRegId = plain.send(register({ contacts: [`<${CONTACT}>;+sip.instance=${INSTANCE}`], expires: 300, headers: [SUPPORTED] }));
    expect([noRegId.status, one(noRegId, 'require')]).toEqual([200, undefined]);
    expect(plain.registrar.bindingsOf('1001')[0]?.outbound).toBeUndefined();
  });

  it('two flows of one phone, same Contact, are two bindings; requests take the freshest live one, then the other when it dies', () => {
    const w = world(dns());
    const a = new FakeFlow('tcp-in-1', 'TCP', '192.0.2.1', 49152, 'accepted');
    const b = new FakeFlow('tcp-in-2', 'TCP', '192.0.2.1', 49153, 'accepted');
    w.send(register({ contacts: [flowContact(1)], transport: 'TCP', expires: 300, cseq: 1, headers: [SUPPORTED] }), source('TCP', { port: 49152, flow: a }));
    w.clock.advance(1000);
    const res = w.send(register({ contacts: [flowContact(2)], transport: 'TCP', expires: 300, cseq: 1, callId: 'reg-call-2', headers: [SUPPORTED] }), source('TCP', { port: 49153, flow: b }));
    expect(getHeaderValues(res, 'contact')).toHaveLength(2);
    expect(w.registrar.bindingsOf('1001').map((x) => [x.regId, x.flowId])).toEqual([
      [1, 'tcp-in-1'],
      [2, 'tcp-in-2'],
    ]);
    const target = w.registrar.targetOf('1001');
    expect(target).toMatchObject({ requestUri: CONTACT, destination: { flow: b } });
    // ★ the other flow of the instance, for a request that was on b when it died
    expect(target?.otherFlow?.(b)).toEqual({ transport: 'TCP', address: '192.0.2.1', port: 5070, flow: a });

    b.die('keepalive-timeout', 'error: ETIMEDOUT');
    expect(w.registrar.targetOf('1001')).toMatchObject({ destination: { flow: a } });
    expect(target?.otherFlow?.(b)).toMatchObject({ flow: a });
    a.die('keepalive-timeout', 'error: ETIMEDOUT');
    // no live flow left: at its Contact, as any binding; no other flow to offer
    expect(w.registrar.targetOf('1001')?.destination).toEqual({ transport: 'TCP', address: '192.0.2.1', port: 5070 });
    expect(target?.otherFlow?.(b)).toBeUndefined();
  });

  it('a re-registration of a reg-id from a new connection and a new Contact replaces that flow; expires=0 on it removes only it', () => {
    const w = world(dns());
    const a = new FakeFlow('tcp-in-1', 'TCP', '192.0.2.1', 49152, 'accepted');
    const b = new FakeFlow('tcp-in-2', 'TCP', '192.0.2.1', 49153, 'accepted');
    const c = new FakeFlow('tcp-in-3', 'TCP', '192.0.2.9', 49200, 'accepted');
    w.send(register({ contacts: [flowContact(1)], transport: 'TCP', expires: 300, cseq: 1, headers: [SUPPORTED] }), source('TCP', { port: 49152, flow: a }));
    w.send(register({ contacts: [flowContact(2)], transport: 'TCP', expires: 300, cseq: 2, headers: [SUPPORTED] }), source('TCP', { port: 49153, flow: b }));
    w.send(register({ contacts: [flowContact(1, 'sip:1001@192.0.2.9:5070;transport=tcp')], transport: 'TCP', expires: 300, cseq: 3, headers: [SUPPORTED] }), source('TCP', { address: '192.0.2.9', port: 49200, flow: c }));
    expect(w.registrar.bindingsOf('1001').map((x) => [x.regId, x.contact, x.flowId])).toEqual([
      [1, 'sip:1001@192.0.2.9:5070;transport=tcp', 'tcp-in-3'],
      [2, CONTACT, 'tcp-in-2'],
    ]);
    expect(w.store.load(w.clock.now()).map((x) => [x.regId, x.flowId]).sort()).toEqual([
      [1, 'tcp-in-3'],
      [2, 'tcp-in-2'],
    ]);
    w.send(register({ contacts: [flowContact(2, CONTACT, 0)], transport: 'TCP', cseq: 4, headers: [SUPPORTED] }), source('TCP', { port: 49153, flow: b }));
    expect(w.registrar.bindingsOf('1001').map((x) => x.regId)).toEqual([1]);
    expect(w.store.load(w.clock.now()).map((x) => x.regId)).toEqual([1]);
  });

  it('several Contacts with an expiry where one has a reg-id: 400, nothing stored', () => {
    const w = world(dns());
    const res = w.send(register({ contacts: [flowContact(1), '<sip:1001@192.0.2.1:5080>'], expires: 300, headers: [SUPPORTED] }));
    expect(res.status).toBe(400);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
  });

  it('a bad reg-id is a 400', () => {
    const w = world(dns());
    expect(w.send(register({ contacts: [`<${CONTACT}>;+sip.instance=${INSTANCE};reg-id=x`], expires: 300 })).status).toBe(400);
  });
});

describe('RFC 3327 Path and RFC 5626 through an edge proxy', () => {
  it('first hop without ;ob and the phone asks for outbound: 439 First Hop Lacks Outbound Support; without Supported: outbound, reg-id is ignored', () => {
    const w = world(dns());
    const path: SipHeader = { name: 'Path', value: '<sip:198.51.100.7:5060;lr>' };
    const refused = w.send(register({ contacts: [flowContact(1)], proxyVias: [edgeVia()], expires: 300, headers: [SUPPORTED, path] }));
    expect([refused.status, refused.reason]).toEqual([439, 'First Hop Lacks Outbound Support']);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);

    const ignored = w.send(register({ contacts: [flowContact(1)], proxyVias: [edgeVia()], expires: 300, cseq: 2, headers: [path] }));
    expect([ignored.status, one(ignored, 'require')]).toEqual([200, undefined]);
    expect(w.registrar.bindingsOf('1001')).toMatchObject([{ contact: CONTACT, path: ['<sip:198.51.100.7:5060;lr>'] }]);
    expect(w.registrar.bindingsOf('1001')[0]?.outbound).toBeUndefined();
  });

  it('with ;ob on the edge entry: outbound, no Flow-Timer (the edge keeps the flow), Path echoed; requests route through the Path', () => {
    const w = world(dns(), { flowTimerS: 30 });
    const edge = '<sip:flowtoken1@198.51.100.7:5060;transport=tcp;lr;ob>';
    const core = '<sip:198.51.100.8;lr>';
    const fromEdge = new FakeFlow('tcp-in-5', 'TCP', '198.51.100.8', 40000, 'accepted');
    const res = w.send(
      register({ contacts: [flowContact(1)], proxyVias: ['SIP/2.0/TCP 198.51.100.8;branch=z9hG4bK-core-1', edgeVia()], expires: 300, headers: [SUPPORTED, { name: 'Path', value: core }, { name: 'Path', value: edge }] }),
      source('TCP', { address: '198.51.100.8', port: 40000, flow: fromEdge }),
    );
    expect(res.status).toBe(200);
    expect(one(res, 'require')).toBe('outbound');
    expect(one(res, 'flow-timer')).toBeUndefined();
    expect(getHeaderValues(res, 'path')).toEqual([core, edge]);
    const target = w.registrar.targetOf('1001');
    expect(target?.requestUri).toBe(CONTACT);
    expect(target?.route).toEqual([core, edge]);
    // To the topmost Path entry (the proxy next to the registrar), on the connection the REGISTER came on while it lives.
    expect(target?.destination).toEqual({ transport: 'TCP', address: '198.51.100.8', port: 5060, flow: fromEdge });
    fromEdge.die('peer-closed', 'remote closed');
    expect(w.registrar.targetOf('1001')?.destination).toEqual({ transport: 'TCP', address: '198.51.100.8', port: 5060 });
  });

  it('Path is not echoed to a phone that did not say Supported: path, but is used all the same', () => {
    const w = world(dns());
    const res = w.send(register({ proxyVias: [edgeVia()], expires: 300, headers: [{ name: 'Path', value: '<sip:198.51.100.7:5062;transport=udp;lr>' }] }));
    expect(res.status).toBe(200);
    expect(getHeaderValues(res, 'path')).toEqual([]);
    expect(w.registrar.targetOf('1001')).toMatchObject({ route: ['<sip:198.51.100.7:5062;transport=udp;lr>'], destination: { transport: 'UDP', address: '198.51.100.7', port: 5062 } });
  });

  it('a Path that is no SIP URI is a 400', () => {
    const w = world(dns());
    expect(w.send(register({ proxyVias: [edgeVia()], expires: 300, headers: [{ name: 'Path', value: '<tel:+123>' }] })).status).toBe(400);
  });

  it('430 Flow Failed: the flow is removed, the next flow of the phone is the target; with none left the DN goes out of service', () => {
    const w = world(dns());
    const edge = (token: string): SipHeader => ({ name: 'Path', value: `<sip:${token}@198.51.100.7;lr;ob>` });
    w.send(register({ contacts: [flowContact(1)], proxyVias: [edgeVia()], expires: 300, cseq: 1, headers: [SUPPORTED, edge('t1')] }));
    w.clock.advance(1000);
    w.send(register({ contacts: [flowContact(2)], proxyVias: [edgeVia()], expires: 300, cseq: 2, headers: [SUPPORTED, edge('t2')] }));
    const first = w.registrar.targetOf('1001');
    expect(first?.route).toEqual(['<sip:t2@198.51.100.7;lr;ob>']);
    const next = first?.flowFailed?.();
    expect(next?.route).toEqual(['<sip:t1@198.51.100.7;lr;ob>']);
    expect(w.registrar.bindingsOf('1001').map((b) => b.regId)).toEqual([1]);
    expect(next?.flowFailed?.()).toBeUndefined();
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    expect(w.store.load(w.clock.now())).toEqual([]);
  });
});

describe('outbound flows and Paths in the SQLite store', () => {
  it('two flows sharing a Contact, and a Path, survive a restart', () => {
    dir = mkdtempSync(join(tmpdir(), 'sip-outbound-'));
    const file = join(dir, 'state.db');
    const w = world(dns(), { store: new SqliteStore(file) });
    const edge = '<sip:t1@198.51.100.7;lr;ob>';
    w.send(register({ contacts: [flowContact(1)], proxyVias: [edgeVia()], expires: 300, cseq: 1, headers: [SUPPORTED, { name: 'Path', value: edge }] }));
    w.send(register({ contacts: [flowContact(2)], proxyVias: [edgeVia()], expires: 300, cseq: 2, headers: [SUPPORTED, { name: 'Path', value: edge }] }));
    w.store.close();
    const again = world(dns(), { store: new SqliteStore(file), clock: w.clock });
    expect(again.registrar.bindingsOf('1001').map((b) => [b.contact, b.regId, b.outbound, b.path])).toEqual([
      [CONTACT, 1, true, [edge]],
      [CONTACT, 2, true, [edge]],
    ]);
    expect(again.registrar.targetOf('1001')?.route).toEqual([edge]);
    again.store.close();
  });
});
