import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../support/api-client.js';
import { RawPeer } from '../support/raw-peer.js';
import { startServer, type RunningServer } from '../support/server-process.js';

/** The control API of the running process, configured from YAML with an http-token. */
describe('control API of the running server', () => {
  const token = 'test-token-0042-control';
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ tserver: { 'http-token': token }, dns: { '1001': { type: 'extension', contact: '*' } } });
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('answers /health with the token, 401 without it or with a wrong one', async () => {
    expect(await getJson(server.api, '/health', token)).toEqual({ status: 200, body: { status: 'ok' } });
    const none = await fetch(`${server.api}/health`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await getJson(server.api, '/health', 'wrong')).status).toBe(401);
  });

  it('unknown DN gets 404 with a JSON error', async () => {
    expect(await getJson(server.api, '/dns/9999', token)).toEqual({ status: 404, body: { error: 'unknown DN 9999' } });
  });

  it('shows a registration over TCP in /dns, /connections and /metrics', async () => {
    const phone = await RawPeer.tcp(server.port);
    try {
      phone.send(
        [
          `REGISTER sip:127.0.0.1:${server.port} SIP/2.0`,
          `Via: SIP/2.0/TCP 127.0.0.1:${phone.localPort};branch=z9hG4bKapi1`,
          'From: <sip:1001@127.0.0.1>;tag=a1',
          'To: <sip:1001@127.0.0.1>',
          'Call-ID: api-reg-1',
          'CSeq: 1 REGISTER',
          `Contact: <sip:1001@127.0.0.1:${phone.localPort};transport=tcp>`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
      expect((await phone.response()).status).toBe(200);
      const dn = await getJson<{ state: string; contacts: { flowId: string }[] }>(server.api, '/dns/1001', token);
      expect(dn.body.state).toBe('in-service');
      const flowId = dn.body.contacts[0]?.flowId;
      const conns = await getJson<{ id: string; transport: string; remote: string; origin: string }[]>(server.api, '/connections', token);
      expect(conns.body).toContainEqual(expect.objectContaining({ id: flowId, transport: 'TCP', origin: 'accepted', remote: `127.0.0.1:${phone.localPort}` }));
      const metrics = await (await fetch(`${server.api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      expect(metrics).toMatch(/^sip_registrations\{transport="TCP"\} 1$/m);
      expect(metrics).toMatch(/^sip_dns\{state="in-service"\} 1$/m);
      expect(metrics).toMatch(/^sip_connections\{transport="TCP",origin="accepted"\} 1$/m);
      expect(metrics).toMatch(/^sip_transactions_total\{kind="non-invite-server"\} [1-9]/m);
    } finally {
      phone.close();
    }
  });
});
