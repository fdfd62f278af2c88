import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeaderValues, type SipResponse } from '../../src/sip/message.js';
import { EventStream, getJson } from '../support/api-client.js';
import { RawPeer } from '../support/raw-peer.js';
import { digestAnswer } from '../support/digest-answer.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { runSipp } from '../support/sipp.js';

interface DnView {
  number: string;
  state: string;
  contacts: { contact: string; expires: number; transport: string; flowId: string | null; flowState: string; source: string }[];
}

const DNS = {
  '1001': { type: 'extension', contact: '*' },
  '1003': { type: 'extension', contact: '*' },
  '1002': { type: 'extension', contact: '*', password: 's3cret' },
  gw1: { type: 'trunk', contact: 'sip:127.0.0.1:5999', prefix: '9' },
};

/** A REGISTER as a phone writes it; `auth` is an Authorization value. */
function register(peer: RawPeer, port: number, dn: string, opts: { callId: string; cseq: number; auth?: string; expires?: number }): string {
  return [
    `REGISTER sip:127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/${peer.transport} 127.0.0.1:${peer.localPort};branch=z9hG4bK${Math.random().toString(16).slice(2)};rport`,
    'Max-Forwards: 70',
    `From: <sip:${dn}@127.0.0.1>;tag=${opts.callId}`,
    `To: <sip:${dn}@127.0.0.1>`,
    `Call-ID: ${opts.callId}`,
    `CSeq: ${opts.cseq} REGISTER`,
    `Contact: <sip:${dn}@127.0.0.1:${peer.localPort}>`,
    `Expires: ${opts.expires ?? 600}`,
    ...(opts.auth ? [`Authorization: ${opts.auth}`] : []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}



describe('registrar against the running server', () => {
  let server: RunningServer;
  let events: EventStream;

  beforeAll(async () => {
    server = await startServer({ dns: DNS });
    events = await EventStream.open(server.api);
  });

  afterAll(async () => {
    events.close();
    await server.stop();
  });

  it('starts with registering DNs out of service and fixed ones in service', async () => {
    expect((await getJson<DnView>(server.api, '/dns/1001')).body.state).toBe('out-of-service');
    expect((await getJson<DnView>(server.api, '/dns/gw1')).body.state).toBe('in-service');
  });

  it('SIPp REGISTER over UDP: 200, in service with its contact, EventRegistered', async () => {
    const r = await runSipp({ scenario: 'register-uac.xml', port: server.port, transport: 'u1', inject: '1001;' });
    expect(r.code, r.output).toBe(0);
    const { status, body } = await getJson<DnView>(server.api, '/dns/1001');
    expect(status).toBe(200);
    expect(body.state).toBe('in-service');
    expect(body.contacts).toHaveLength(1);
    expect(body.contacts[0]).toMatchObject({ transport: 'UDP', flowState: 'live', contact: expect.stringMatching(/^sip:1001@127\.0\.0\.1:\d+;transport=UDP$/) as unknown });
    expect(body.contacts[0]?.expires).toBeGreaterThan(290);
    const ev = await events.next((e) => e.event === 'EventRegistered' && e.dn === '1001');
    expect(ev).toMatchObject({ transport: 'UDP', expires: 300 });
    await events.next((e) => e.event === 'EventDNBackInService' && e.dn === '1001');
  });

  it('SIPp REGISTER over TCP: the binding remembers the connection it came on', async () => {
    const r = await runSipp({ scenario: 'register-uac.xml', port: server.port, transport: 't1', inject: '1003;' });
    expect(r.code, r.output).toBe(0);
    const { body } = await getJson<DnView>(server.api, '/dns/1003');
    expect(body.state).toBe('in-service');
    expect(body.contacts[0]).toMatchObject({ transport: 'TCP', flowId: expect.stringMatching(/^tcp-\d+$/) as unknown });
    await events.next((e) => e.event === 'EventRegistered' && e.dn === '1003' && e.transport === 'TCP');
    // SIPp closed its connection when done: the flow is dead, the binding stays.
    await expect.poll(async () => (await getJson<DnView>(server.api, '/dns/1003')).body.contacts[0]?.flowState).toBe('dead');
  });

  it('REGISTER for an unknown DN gets 404, for a fixed-contact DN 403', async () => {
    const peer = await RawPeer.udp(server.port);
    try {
      peer.send(register(peer, server.port, '7777', { callId: 'unknown-1', cseq: 1 }));
      expect((await peer.response(0)).status).toBe(404);
      peer.send(register(peer, server.port, 'gw1', { callId: 'fixed-1', cseq: 1 }));
      expect((await peer.response(1)).status).toBe(403);
    } finally {
      peer.close();
    }
  });

  it('too short an expiry gets 423 with Min-Expires', async () => {
    const peer = await RawPeer.udp(server.port);
    try {
      peer.send(register(peer, server.port, '1001', { callId: 'short-1', cseq: 1, expires: 10 }));
      const res = await peer.response();
      expect(res.status).toBe(423);
      expect(getHeaderValues(res, 'min-expires')).toEqual(['60']);
    } finally {
      peer.close();
    }
  });

  describe('digest authentication', () => {
    const uri = (s: RunningServer): string => `sip:127.0.0.1:${s.port}`;
    const challenges = (res: SipResponse): string[] => getHeaderValues(res, 'www-authenticate');

    it.each(['SHA-256', 'MD5'] as const)('%s: 401 with a challenge, then 200 for the right answer', async (algorithm) => {
      const peer = await RawPeer.udp(server.port);
      try {
        peer.send(register(peer, server.port, '1002', { callId: `auth-${algorithm}`, cseq: 1 }));
        const first = await peer.response(0);
        expect(first.status).toBe(401);
        const offered = challenges(first);
        expect(offered[0]).toMatch(/algorithm=SHA-256/);
        expect(offered[1]).toMatch(/algorithm=MD5/);
        const challenge = offered.find((c) => c.includes(`algorithm=${algorithm}`)) ?? '';
        peer.send(register(peer, server.port, '1002', { callId: `auth-${algorithm}`, cseq: 2, auth: digestAnswer(challenge, { algorithm, user: '1002', password: 's3cret', uri: uri(server), nc: '00000001' }) }));
        expect((await peer.response(1)).status).toBe(200);
        expect((await getJson<DnView>(server.api, '/dns/1002')).body.state).toBe('in-service');
      } finally {
        peer.close();
      }
    });

    it('a wrong password gets 403, and a replayed nonce is refused', async () => {
      const peer = await RawPeer.udp(server.port);
      try {
        peer.send(register(peer, server.port, '1002', { callId: 'auth-bad', cseq: 1 }));
        const challenge = challenges(await peer.response(0))[1] ?? '';
        peer.send(register(peer, server.port, '1002', { callId: 'auth-bad', cseq: 2, auth: digestAnswer(challenge, { algorithm: 'MD5', user: '1002', password: 'guess', uri: uri(server), nc: '00000001' }) }));
        expect((await peer.response(1)).status).toBe(403);
        const good = digestAnswer(challenge, { algorithm: 'MD5', user: '1002', password: 's3cret', uri: uri(server), nc: '00000001' });
        peer.send(register(peer, server.port, '1002', { callId: 'auth-bad', cseq: 3, auth: good }));
        expect((await peer.response(2)).status).toBe(200);
        // The very same credentials again (same nonce, same nc): a replay.
        peer.send(register(peer, server.port, '1002', { callId: 'auth-bad', cseq: 4, auth: good }));
        const replay = await peer.response(3);
        expect(replay.status).toBe(401);
        expect(replay.reason).toMatch(/replay/i);
      } finally {
        peer.close();
      }
    });
  });

  it('Expires: 0 removes the binding: EventUnregistered, out of service', async () => {
    const peer = await RawPeer.udp(server.port);
    try {
      peer.send(register(peer, server.port, '1001', { callId: 'remove-1', cseq: 1, expires: 120 }));
      expect((await peer.response(0)).status).toBe(200);
      expect((await getJson<DnView>(server.api, '/dns/1001')).body.contacts).toHaveLength(2);
      peer.send(`${register(peer, server.port, '1001', { callId: 'remove-1', cseq: 2 }).replace(/Contact: .*\r\n/, 'Contact: *\r\n').replace('Expires: 600', 'Expires: 0')}`);
      expect((await peer.response(1)).status).toBe(200);
      await events.next((e) => e.event === 'EventUnregistered' && e.dn === '1001' && e.reason === 'removed');
      const { body } = await getJson<DnView>(server.api, '/dns/1001');
      expect(body.contacts).toHaveLength(0);
      expect(body.state).toBe('out-of-service');
      await events.next((e) => e.event === 'EventDNOutOfService' && e.dn === '1001');
    } finally {
      peer.close();
    }
  });
});

describe('registrations survive a crash', () => {
  it('kill -9 after the 200 OK: on restart the binding is there with its expiry', async () => {
    const first = await startServer({ dns: DNS });
    const peer = await RawPeer.udp(first.port);
    const phonePort = peer.localPort;
    try {
      peer.send(register(peer, first.port, '1001', { callId: 'crash-1', cseq: 1, expires: 900 }));
      expect((await peer.response()).status).toBe(200);
    } finally {
      peer.close();
    }
    await first.kill9();
    const second = await startServer({ dns: DNS, restartOf: first });
    try {
      const { body } = await getJson<DnView>(second.api, '/dns/1001');
      expect(body.state).toBe('in-service');
      expect(body.contacts).toHaveLength(1);
      expect(body.contacts[0]?.contact).toBe(`sip:1001@127.0.0.1:${phonePort}`);
      expect(body.contacts[0]?.expires).toBeGreaterThan(880);
      expect(body.contacts[0]?.expires).toBeLessThanOrEqual(900);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
