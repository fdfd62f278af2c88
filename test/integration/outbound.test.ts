import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipMessage, type SipRequest } from '../../src/sip/message.js';
import { getJson } from '../support/api-client.js';
import { serverFixture } from '../support/server-fixture.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * RFC 5626 outbound and RFC 3327 Path against the running server, with the project's peer:
 * a phone that registers two flows of one instance over TCP, and an edge proxy (a peer
 * standing in for it) that registers phones behind it with a Path.
 */

interface ContactView {
  contact: string;
  flowId: string | null;
  instance: string | null;
  regId: number | null;
  path: string[] | null;
}
interface DnView {
  state: string;
  contacts: ContactView[];
}

const INSTANCE = '"<urn:uuid:6c0ffd1c-3b70-4c4a-9a65-2d1b0f4b1e01>"';
const SUPPORTED = { name: 'Supported', value: 'outbound, path' };
const one = (m: SipMessage, name: string): string | undefined => getHeaderValues(m, name)[0];

const fixture = serverFixture({
  dns: {
    '1001': { type: 'extension', contact: '*' },
    '1002': { type: 'extension', contact: '*' },
    '1003': { type: 'extension', contact: '*' },
    '1004': { type: 'extension', contact: '*' },
  },
  tserver: { 'registrar-flow-timer': 25 },
});

let caller: SipPeer;
beforeAll(async () => {
  caller = await SipPeer.start({ user: '1001' });
  await caller.register(fixture.server.port);
});
afterAll(async () => {
  await caller.close();
});

/** The flow (peer's connection id) an INVITE of this call came on. */
function flowOf(peer: SipPeer, invite: SipRequest): string | undefined {
  return peer.messages.find((m) => m.dir === 'in' && m.message === invite)?.remote.flowId;
}

describe('RFC 5626: a phone with two flows of one instance, straight to the server', () => {
  it('each REGISTER gets Require: outbound and Flow-Timer; both flows are listed; a call goes on the newer flow', async () => {
    const { server } = fixture;
    const phone = await SipPeer.start({ user: '1002', transport: 'TCP' });
    try {
      const first = await phone.register(server.port, { contactParams: `;+sip.instance=${INSTANCE};reg-id=1`, headers: [SUPPORTED], callId: 'flow-1' });
      expect([one(first, 'require'), one(first, 'flow-timer')]).toEqual(['outbound', '25']);
      const flow2 = await phone.connect(server.port);
      const second = await phone.register(flow2, { contactParams: `;+sip.instance=${INSTANCE};reg-id=2`, headers: [SUPPORTED], callId: 'flow-2' });
      expect(getHeaderValues(second, 'contact').map((c) => c.replace(/.*reg-id=(\d).*/, '$1')).sort()).toEqual(['1', '2']);

      const dn = (await getJson<DnView>(server.api, '/dns/1002')).body;
      expect(dn.contacts.map((c) => [c.instance, c.regId]).sort()).toEqual([
        [INSTANCE, 1],
        [INSTANCE, 2],
      ]);
      // Same Contact URI, two bindings: the flows tell them apart.
      expect(new Set(dn.contacts.map((c) => c.contact)).size).toBe(1);

      const call = caller.call(server.port, '1002');
      const incoming = await phone.nextIncomingCall();
      expect(flowOf(phone, incoming.invite)).toBe(flow2.flowId);
      await incoming.reject(486);
      expect((await call.final()).status).toBe(486);
    } finally {
      await phone.close();
    }
  });

  it('Require: outbound is for REGISTER: an INVITE requiring it gets 420 with Unsupported: outbound', async () => {
    const req = caller.newRequest('INVITE', `sip:1002@127.0.0.1:${fixture.server.port}`, { headers: [{ name: 'Require', value: 'outbound' }] });
    const res = await caller.sendRequest(req, fixture.server.port).waitFinal();
    expect([res.status, one(res, 'unsupported')]).toEqual([420, 'outbound']);
  });
});

describe('RFC 3327 Path: phones behind an edge proxy', () => {
  let edge: SipPeer;
  beforeAll(async () => {
    edge = await SipPeer.start({ user: 'edge' });
  });
  afterAll(async () => {
    await edge.close();
  });

  /** A REGISTER the edge proxy forwards for a phone behind it: its own Via on top, its Path entry. */
  function forwarded(dn: string, opts: { path: string; contact: string; callId: string; cseq?: number; supported?: string }): Promise<SipMessage> {
    const { server } = fixture;
    const req = edge.newRequest('REGISTER', `sip:127.0.0.1:${server.port}`, {
      to: `<sip:${dn}@127.0.0.1>`,
      callId: opts.callId,
      cseq: opts.cseq ?? 1,
      headers: [
        { name: 'Expires', value: '300' },
        { name: 'Path', value: opts.path },
        ...(opts.supported ? [{ name: 'Supported', value: opts.supported }] : []),
      ],
    });
    const viaAt = req.headers.findIndex((h) => h.name === 'Via');
    req.headers.splice(viaAt + 1, 0, { name: 'Via', value: `SIP/2.0/TCP 203.0.113.50:5060;branch=z9hG4bK-${opts.callId};received=203.0.113.50` });
    const contact = req.headers.find((h) => h.name === 'Contact');
    if (contact) contact.value = opts.contact;
    return edge.sendRequest(req, server.port).waitFinal();
  }

  it('the binding keeps the Path; a call goes to the proxy with the Path as Route and the Contact as Request-URI', async () => {
    const { server } = fixture;
    const path = `<sip:127.0.0.1:${edge.port};lr>`;
    const res = await forwarded('1003', { path, contact: '<sip:1003@203.0.113.50:5060;transport=tcp>', callId: 'behind-edge-1', supported: 'path' });
    expect(res.kind === 'response' && res.status).toBe(200);
    expect(getHeaderValues(res, 'path')).toEqual([path]);
    expect((await getJson<DnView>(server.api, '/dns/1003')).body.contacts).toMatchObject([{ path: [path], instance: null }]);

    const call = caller.call(server.port, '1003');
    const incoming = await edge.nextIncomingCall();
    expect(incoming.invite.uri).toBe('sip:1003@203.0.113.50:5060;transport=tcp');
    expect(getHeaderValues(incoming.invite, 'route')).toEqual([path]);
    await incoming.reject(486);
    expect((await call.final()).status).toBe(486);
  });

  it('a phone asking for outbound through an edge without ;ob gets 439; with ;ob its flows are kept, and a 430 moves the call to its other flow', async () => {
    const { server } = fixture;
    const contact = (regId: number): string => `<sip:1004@203.0.113.60:5060;transport=tcp>;+sip.instance=${INSTANCE};reg-id=${regId}`;
    const refused = await forwarded('1004', { path: `<sip:127.0.0.1:${edge.port};lr>`, contact: contact(1), callId: 'no-ob', supported: 'outbound' });
    expect(refused.kind === 'response' && [refused.status, refused.reason]).toEqual([439, 'First Hop Lacks Outbound Support']);

    const tokenPath = (token: string): string => `<sip:${token}@127.0.0.1:${edge.port};lr;ob>`;
    const a = await forwarded('1004', { path: tokenPath('flowA'), contact: contact(1), callId: 'ob-1', supported: 'outbound' });
    const b = await forwarded('1004', { path: tokenPath('flowB'), contact: contact(2), callId: 'ob-2', supported: 'outbound' });
    expect([a, b].map((r) => one(r, 'require'))).toEqual(['outbound', 'outbound']);
    // Not the first hop: the edge proxy keeps the flow alive, not the registrar.
    expect(one(b, 'flow-timer')).toBeUndefined();

    const call = caller.call(server.port, '1004');
    const viaB = await edge.nextIncomingCall();
    expect(getHeaderValues(viaB.invite, 'route')).toEqual([tokenPath('flowB')]);
    await viaB.reject(430);
    const viaA = await edge.nextIncomingCall();
    expect(getHeaderValues(viaA.invite, 'route')).toEqual([tokenPath('flowA')]);
    await viaA.reject(486);
    expect((await call.final()).status).toBe(486);
    expect((await getJson<DnView>(server.api, '/dns/1004')).body.contacts.map((c) => c.regId)).toEqual([1]);
  });
});
