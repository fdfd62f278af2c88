import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipMessage, type SipResponse } from '../../src/sip/message.js';
import { EventStream, getJson, type ApiEvent } from '../support/api-client.js';
import { digestAnswer } from '../support/digest-answer.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';

/*
 * "Authenticate or be trusted" (SPEC §9) against the running server. Only 127.0.0.2 is a
 * trusted peer here (and the trunk's host, 127.0.0.3), so peers on 127.0.0.1 stand for the
 * rest of the network: all on loopback, nothing leaves the machine.
 *   5501 extension, no password;  5502 extension, password;  5503 password, INVITE not challenged;
 *   gw1 trunk at 127.0.0.3, prefix 9.
 */

const SDP = ['v=0', 'o=p 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', 'm=audio 40000 RTP/AVP 0', ''].join('\r\n');
const one = (m: SipMessage, name: string): string => getHeaderValues(m, name)[0] ?? '';
const md5Challenge = (res: SipResponse, header: string): string => getHeaderValues(res, header).find((v) => v.includes('MD5')) ?? '';

describe('authenticate or be trusted', () => {
  let server: RunningServer;
  let events: EventStream;
  let gateway: SipPeer;
  const peers: SipPeer[] = [];
  let mark = 0;

  const peer = async (user: string, address: string): Promise<SipPeer> => {
    const p = await SipPeer.start({ transport: 'UDP', user, address });
    peers.push(p);
    return p;
  };
  const at = (): { address: string; port: number } => ({ address: '127.0.0.1', port: server.port });
  const event = (name: string, match: (e: ApiEvent) => boolean = () => true): Promise<ApiEvent> => events.next((e) => e.event === name && match(e), 5000, mark);

  /** A REGISTER for `dn` from `p`, optionally answering the challenge in `challenge` with `password`. */
  async function register(p: SipPeer, dn: string, opts: { contact?: string; challenge?: SipResponse; password?: string; cseq?: number; callId?: string; expires?: number } = {}): Promise<SipResponse> {
    const uri = `sip:127.0.0.1:${server.port}`;
    const headers = [{ name: 'Expires', value: String(opts.expires ?? 600) }];
    if (opts.challenge) {
      const auth = digestAnswer(md5Challenge(opts.challenge, 'www-authenticate'), { algorithm: 'MD5', user: dn, password: opts.password ?? 'x', uri, nc: '00000001' });
      headers.push({ name: 'Authorization', value: auth });
    }
    const req = p.newRequest('REGISTER', uri, { to: `<sip:${dn}@127.0.0.1>`, callId: opts.callId ?? `reg-${dn}-${p.port}`, cseq: opts.cseq ?? 1, headers });
    const from = req.headers.find((h) => h.name === 'From');
    if (from) from.value = `<sip:${dn}@127.0.0.1>;tag=r${p.port}`;
    if (opts.contact) {
      const c = req.headers.find((h) => h.name === 'Contact');
      if (c) c.value = opts.contact;
    }
    return p.sendRequest(req, at()).waitFinal();
  }

  /** An INVITE from `p` as `fromUser` to `number`, optionally answering a 407. */
  function invite(p: SipPeer, fromUser: string, number: string, opts: { challenge?: SipResponse; password?: string } = {}): Promise<SipResponse> {
    const uri = `sip:${number}@127.0.0.1:${server.port}`;
    const headers = [];
    if (opts.challenge) {
      const auth = digestAnswer(md5Challenge(opts.challenge, 'proxy-authenticate'), { algorithm: 'MD5', user: fromUser, password: opts.password ?? 'x', uri, nc: '00000001', method: 'INVITE' });
      headers.push({ name: 'Proxy-Authorization', value: auth });
    }
    const req = p.newRequest('INVITE', uri, { to: `<sip:${number}@127.0.0.1>`, body: SDP, headers, cseq: opts.challenge ? 2 : 1 });
    const from = req.headers.find((h) => h.name === 'From');
    if (from) from.value = from.value.replace(`sip:${p.user}@`, `sip:${fromUser}@`);
    return p.sendRequest(req, at()).waitFinal();
  }

  beforeAll(async () => {
    gateway = await SipPeer.start({ transport: 'UDP', user: 'gw', address: '127.0.0.3' });
    server = await startServer({
      tserver: { 'sip-trusted-peers': ['127.0.0.2/32'] },
      dns: {
        '5501': { type: 'extension', contact: '*' },
        '5502': { type: 'extension', contact: '*', password: 's3cret' },
        '5503': { type: 'extension', contact: '*', password: 'other', 'authenticate-requests': ['register'] },
        gw1: { type: 'trunk', contact: `sip:127.0.0.3:${gateway.port}`, prefix: '9' },
      },
    });
    events = await EventStream.open(server.api);
  });

  afterEach(async () => {
    for (const p of peers.splice(0)) await p.close();
  });

  afterAll(async () => {
    events.close();
    await gateway.close();
    expect(await server.stop()).toBe(0);
  });

  it('a DN without a password registers from a trusted peer, and from anywhere else gets the challenge-then-403 an unknown DN gets', async () => {
    const outsider = await peer('x', '127.0.0.1');
    const shapes: string[] = [];
    for (const dn of ['5501', '5599']) {
      const first = await register(outsider, dn);
      expect(first.status).toBe(401);
      expect(getHeaderValues(first, 'www-authenticate')).toHaveLength(2);
      const second = await register(outsider, dn, { challenge: first, cseq: 2 });
      expect([second.status, second.reason]).toEqual([403, 'Forbidden']);
      shapes.push(`${first.status} ${first.reason} ${getHeaderValues(first, 'www-authenticate').map((v) => v.replace(/nonce="[^"]+"/, '')).join('|')} / ${second.status} ${second.reason}`);
    }
    // Nothing tells the configured DN from a made-up one.
    expect(shapes[0]).toBe(shapes[1]);
    expect((await getJson<{ state: string }>(server.api, '/dns/5501')).body.state).toBe('out-of-service');

    const insider = await peer('5501', '127.0.0.2');
    expect((await register(insider, '5501')).status).toBe(200);
    expect((await register(insider, '5599', { callId: 'unknown' })).status).toBe(404);
    // Removing the binding is registering: an outsider's Contact: * is refused the same way.
    const wipe = outsider.newRequest('REGISTER', `sip:127.0.0.1:${server.port}`, { to: '<sip:5501@127.0.0.1>', callId: 'wipe', headers: [{ name: 'Expires', value: '0' }] });
    const contact = wipe.headers.find((h) => h.name === 'Contact');
    if (contact) contact.value = '*';
    expect((await outsider.sendRequest(wipe, at()).waitFinal()).status).toBe(401);
    expect((await getJson<{ contacts: unknown[] }>(server.api, '/dns/5501')).body.contacts).toHaveLength(1);
    expect((await register(insider, '5501', { cseq: 2, expires: 0 })).status).toBe(200);
  });

  it('a phone with a password registers from anywhere; a Contact naming another host is reached where the REGISTER came from (NAT)', async () => {
    const phone = await peer('5502', '127.0.0.1');
    const first = await register(phone, '5502', { contact: '<sip:5502@127.0.0.9:5999>' });
    expect(first.status).toBe(401);
    expect((await register(phone, '5502', { contact: '<sip:5502@127.0.0.9:5999>', challenge: first, password: 's3cret', cseq: 2 })).status).toBe(200);
    // A trusted caller's INVITE reaches the phone at its source address and port, not at 127.0.0.9:5999.
    const caller = await peer('c', '127.0.0.2');
    const call = caller.call(at(), '5502', { sdp: SDP });
    const incoming = await phone.nextIncomingCall();
    expect(incoming.invite.uri).toBe('sip:5502@127.0.0.9:5999');
    await incoming.reject(486);
    expect((await call.final()).status).toBe(486);
    const challenge = await register(phone, '5502', { contact: '<sip:5502@127.0.0.9:5999>', cseq: 3, expires: 0 });
    expect((await register(phone, '5502', { contact: '<sip:5502@127.0.0.9:5999>', challenge, password: 's3cret', cseq: 4, expires: 0 })).status).toBe(200);
  });

  it('toll fraud: an untrusted INVITE to a trunk is refused (anonymous 403; a claimed DN 407, then 403) and the trunk sees nothing', async () => {
    mark = events.events.length;
    const outsider = await peer('anonymous', '127.0.0.1');
    expect((await invite(outsider, 'anonymous', '90012345')).status).toBe(403);
    const challenged = await invite(outsider, '5501', '90012345');
    expect(challenged.status).toBe(407);
    expect(getHeaderValues(challenged, 'proxy-authenticate')).toHaveLength(2);
    expect(await invite(outsider, '5501', '90012345', { challenge: challenged, password: 'guess' })).toMatchObject({ status: 403, reason: 'Forbidden' });
    // A trusted peer's call to the trunk goes through.
    const insider = await peer('5501', '127.0.0.2');
    const allowed = invite(insider, '5501', '90012345');
    const atGateway = await gateway.nextIncomingCall();
    expect(atGateway.invite.uri).toMatch(/^sip:90012345@127\.0\.0\.3/);
    await atGateway.reject(486);
    expect((await allowed).status).toBe(486);
    expect(gateway.received('INVITE')).toHaveLength(1);
    // Refused INVITEs are no calls: only the trusted one was dialled. (Counted by the number
    // dialled: the previous test's events may still be on their way when `mark` is taken.)
    await event('EventReleased', (e) => e.to === '90012345');
    expect(events.events.slice(mark).filter((e) => e.event === 'EventDialing' && e.to === '90012345')).toHaveLength(1);
  });

  it('an INVITE claiming a DN with a password is challenged (407) even from a trusted peer, and then calls as that DN', async () => {
    mark = events.events.length;
    const callee = await peer('5501', '127.0.0.2');
    expect((await register(callee, '5501')).status).toBe(200);
    for (const address of ['127.0.0.1', '127.0.0.2']) {
      const caller = await peer('5502', address);
      const first = await invite(caller, '5502', '5501');
      expect(first.status).toBe(407);
      const second = invite(caller, '5502', '5501', { challenge: first, password: 's3cret' });
      const incoming = await callee.nextIncomingCall();
      expect(one(incoming.invite, 'from')).toMatch(/<sip:5502@/);
      await incoming.reject(486);
      expect((await second).status).toBe(486);
      expect(await event('EventDialing', (e) => e.from === '5502')).toMatchObject({ from: '5502', dn: '5502' });
      mark = events.events.length;
    }
    expect((await register(callee, '5501', { cseq: 2, expires: 0 })).status).toBe(200);
  });

  it('a DN whose INVITEs are not challenged calls from the binding it authenticated for, and only from there', async () => {
    mark = events.events.length;
    const callee = await peer('5501', '127.0.0.2');
    expect((await register(callee, '5501')).status).toBe(200);
    const phone = await peer('5503', '127.0.0.1');
    const first = await register(phone, '5503');
    expect((await register(phone, '5503', { challenge: first, password: 'other', cseq: 2 })).status).toBe(200);
    const call = invite(phone, '5503', '5501');
    const incoming = await callee.nextIncomingCall();
    await incoming.reject(486);
    expect((await call).status).toBe(486);
    expect(await event('EventDialing')).toMatchObject({ from: '5503' });
    // The same claim from another untrusted port is nobody's binding.
    const other = await peer('5503', '127.0.0.1');
    expect((await invite(other, '5503', '5501')).status).toBe(407);
    const bye = await register(phone, '5503', { cseq: 3, expires: 0 });
    expect((await register(phone, '5503', { challenge: bye, password: 'other', cseq: 4, expires: 0 })).status).toBe(200);
    expect((await register(callee, '5501', { cseq: 2, expires: 0 })).status).toBe(200);
  });
});
