import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeepAliveInfo } from '../../src/api/api-context.js';
import type { Binding } from '../../src/registrar/binding.js';
import { newBranch } from '../../src/util/ids.js';
import { cleanUp, cleanups, eventsClient, getJson, openSocket, rawHttp, refusedUpgradeStatus, startApi } from '../support/api-harness.js';
import { request } from '../support/sip-builders.js';
import { waitFor } from '../support/wait-for.js';

afterEach(cleanUp);
const tcpBinding = (port: number): Binding => ({
  aor: '1001',
  contact: 'sip:1001@127.0.0.1:5070;transport=tcp',
  expiresAt: Date.now() + 3_600_000,
  callId: 'reg-1',
  cseq: 1,
  transport: 'TCP',
  source: { address: '127.0.0.1', port },
  flowId: 'tcp-1',
  flowState: 'live',
  registeredAt: Date.now(),
});

describe('control API over HTTP', () => {
  it('answers GET /health with status ok', async () => {
    const { base } = await startApi();
    expect(await getJson(`${base}/health`)).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('lists every DN with its state, configured options and registered contacts', async () => {
    const { base, registrar } = await startApi();
    registrar.bindings.push(tcpBinding(40000));
    const { status, body } = await getJson(`${base}/dns`);
    expect(status).toBe(200);
    expect(body).toEqual([
      expect.objectContaining({ number: '1001', type: 'extension', state: 'out-of-service', reason: 'not registered', contact: '*' }),
      expect.objectContaining({ number: 'gw1', type: 'trunk', state: 'in-service', contacts: [], options: { 'oos-check': 0, 'oos-force': 0, prefix: '9', priority: 1, 'service-type': null } }),
    ]);
    const one = (body as { contacts: unknown[] }[])[0];
    expect(one?.contacts).toEqual([
      expect.objectContaining({ contact: 'sip:1001@127.0.0.1:5070;transport=tcp', transport: 'TCP', source: '127.0.0.1:40000', flowId: 'tcp-1', flowState: 'live', expires: 3600 }),
    ]);
  });

  it('answers GET /dns/{dn} with that DN, and 404 naming an unknown DN', async () => {
    const { base, directory } = await startApi();
    directory.setState('gw1', 'out-of-service', 'OPTIONS timeout');
    const { body } = await getJson(`${base}/dns/gw1`);
    expect(body).toMatchObject({ number: 'gw1', state: 'out-of-service', reason: 'OPTIONS timeout', contact: 'sip:192.0.2.10:5060;transport=tcp' });
    expect(typeof (body as { since: unknown }).since).toBe('string');
    expect(await getJson(`${base}/dns/1234`)).toMatchObject({ status: 404, body: { error: 'unknown DN 1234' } });
  });

  it('answers an unknown path 404 and a wrong method 405 with Allow, both as JSON', async () => {
    const { base } = await startApi();
    expect(await getJson(`${base}/nope`)).toMatchObject({ status: 404, body: { error: 'not found' } });
    const r = await getJson(`${base}/dns`, { method: 'POST', body: '{}' });
    expect(r).toMatchObject({ status: 405, body: { error: 'method POST not allowed' } });
    expect(r.headers.get('allow')).toBe('GET');
  });

  it('answers bad percent-encoding 400 and an overlong target 414 instead of failing', async () => {
    const { base } = await startApi();
    expect(await getJson(`${base}/dns/%E0%A4%A`)).toMatchObject({ status: 400, body: { error: 'bad percent-encoding in path' } });
    expect(await getJson(`${base}/dns/${'9'.repeat(5000)}`)).toMatchObject({ status: 414 });
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('answers requests Node cannot parse with a JSON error and keeps serving', async () => {
    const { api, base } = await startApi();
    const garbage = await rawHttp(api.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toContain('{"error":"bad request"}');
    const huge = await rawHttp(api.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('answers a handler exception 500 as JSON and logs it', async () => {
    const { base, registrar, log } = await startApi();
    registrar.failWith = new Error('store is gone');
    expect(await getJson(`${base}/dns`)).toMatchObject({ status: 500, body: { error: 'internal error' } });
    expect(log.errors).toContain('control API handler failed');
  });

  it('shows a TCP connection a peer opened, with addresses, keep-alive off, age and no active transaction', async () => {
    const { base, sipPort, transport } = await startApi();
    const peer = await openSocket(sipPort);
    await waitFor(() => transport.connections.size === 1, 'the accepted connection');
    const { body } = await getJson(`${base}/connections`);
    expect(body).toEqual([
      {
        id: expect.stringMatching(/^tcp-/) as unknown,
        transport: 'TCP',
        origin: 'accepted',
        state: 'open',
        local: `127.0.0.1:${sipPort}`,
        remote: `127.0.0.1:${peer.localPort ?? 0}`,
        keepAlive: { enabled: false },
        ageS: 0,
        idleS: 0,
        activeTransactions: 0,
      },
    ]);
  });

  it('counts the client transactions waiting on a connection and shows its keep-alive settings', async () => {
    const keepAlive: KeepAliveInfo = { enabled: true, idleS: 30, intervalS: 5, count: 3, userTimeoutMs: 20_000 };
    const { base, transactions, transport } = await startApi({ keepAliveOf: () => keepAlive });
    const silent: Server = createServer((s) => cleanups.push(() => s.destroy()));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => silent.close(() => r())));
    const addr = silent.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    transactions.sendRequest(request({ method: 'OPTIONS', transport: 'TCP', branch: newBranch(), uri: `sip:peer@127.0.0.1:${port}` }), { transport: 'TCP', address: '127.0.0.1', port }, { onFinal: () => {} });
    await waitFor(() => transport.connections.size === 1, 'the outbound connection');
    await waitFor(() => transactions.activeByFlow().size === 1, 'the transaction on the flow');
    const { body } = await getJson(`${base}/connections`);
    expect(body).toEqual([expect.objectContaining({ origin: 'outbound', remote: `127.0.0.1:${port}`, keepAlive, activeTransactions: 1 })]);
  });

  it('serves Prometheus text on GET /metrics, counting a real accepted connection', async () => {
    const { base, sipPort, transport } = await startApi();
    await openSocket(sipPort);
    await waitFor(() => transport.connections.size === 1, 'the accepted connection');
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('sip_connections{transport="TCP",origin="accepted"} 1');
    expect(text).toContain('sip_connections_opened_total{transport="TCP",origin="accepted"} 1');
    expect(text).toContain('sip_dns{state="out-of-service"} 1');
  });
});

describe('control API bearer token', () => {
  it('refuses every route without the right token with 401 and WWW-Authenticate', async () => {
    const { base } = await startApi({ token: 's3cret' });
    for (const path of ['/health', '/dns', '/metrics', '/connections', '/nope']) {
      const r = await getJson(`${base}${path}`);
      expect(r).toMatchObject({ status: 401, body: { error: 'missing or wrong bearer token' } });
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
    const wrong = await getJson(`${base}/health`, { headers: { Authorization: 'Bearer s3cre' } });
    expect(wrong.status).toBe(401);
  });

  it('serves requests that carry the right token', async () => {
    const { base } = await startApi({ token: 's3cret' });
    const auth = { headers: { Authorization: 'Bearer s3cret' } };
    expect(await getJson(`${base}/health`, auth)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect((await fetch(`${base}/metrics`, auth)).status).toBe(200);
  });

  it('refuses the /events upgrade without the right token and accepts it with it', async () => {
    const { api, directory } = await startApi({ token: 's3cret' });
    expect(await refusedUpgradeStatus(api.port, '/events')).toBe(401);
    expect(await refusedUpgradeStatus(api.port, '/events', { Authorization: 'Bearer nope' })).toBe(401);
    const { frames } = await eventsClient(api.port, { Authorization: 'Bearer s3cret' });
    directory.setState('gw1', 'out-of-service', 'OPTIONS timeout');
    await waitFor(() => frames.length === 1, 'the event frame');
  });
});

describe('control API /events WebSocket', () => {
  it('delivers EventDNOutOfService and EventDNBackInService as JSON frames', async () => {
    const { api, directory } = await startApi();
    const { frames } = await eventsClient(api.port);
    directory.setState('gw1', 'out-of-service', 'OPTIONS timeout');
    directory.setState('gw1', 'in-service', 'OPTIONS answered');
    await waitFor(() => frames.length === 2, 'two event frames');
    expect(frames[0]).toEqual({ event: 'EventDNOutOfService', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown, dn: 'gw1', type: 'trunk', reason: 'OPTIONS timeout' });
    expect(frames[1]).toMatchObject({ event: 'EventDNBackInService', dn: 'gw1' });
  });

  it('delivers the registrar\'s EventRegistered and EventUnregistered', async () => {
    const { api, registrar } = await startApi();
    const { frames } = await eventsClient(api.port);
    const time = Date.UTC(2024, 5, 1);
    registrar.events.emit('EventRegistered', { dn: '1001', contact: 'sip:1001@127.0.0.1:5070', expires: 3600, transport: 'TCP', source: '127.0.0.1:40000', flowId: 'tcp-1', refresh: false, time });
    registrar.events.emit('EventUnregistered', { dn: '1001', contact: 'sip:1001@127.0.0.1:5070', reason: 'removed', time });
    await waitFor(() => frames.length === 2, 'two event frames');
    expect(frames[0]).toEqual({
      event: 'EventRegistered',
      time: '2024-06-01T00:00:00.000Z',
      dn: '1001',
      contact: 'sip:1001@127.0.0.1:5070',
      expires: 3600,
      transport: 'TCP',
      source: '127.0.0.1:40000',
      flowId: 'tcp-1',
      refresh: false,
    });
    expect(frames[1]).toMatchObject({ event: 'EventUnregistered', reason: 'removed' });
  });

  it('delivers events other modules publish on the hub', async () => {
    const { api } = await startApi();
    const { frames } = await eventsClient(api.port);
    api.events.publish('ConnectionStale', { remote: '127.0.0.1:5070', transport: 'TCP' });
    await waitFor(() => frames.length === 1, 'the event frame');
    expect(frames[0]).toMatchObject({ event: 'ConnectionStale', remote: '127.0.0.1:5070' });
  });

  it('answers a plain GET /events 426 and an upgrade to another path 404', async () => {
    const { api, base } = await startApi();
    const r = await getJson(`${base}/events`);
    expect(r.status).toBe(426);
    expect(r.headers.get('upgrade')).toBe('websocket');
    expect(await refusedUpgradeStatus(api.port, '/dns')).toBe(404);
  });

  it('closes WebSocket clients with 1001 when the API stops', async () => {
    const { api } = await startApi();
    const { ws } = await eventsClient(api.port);
    const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
    await api.stop();
    expect(await closed).toBe(1001);
  });
});
