import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { getHeader, type SipRequest } from '../../src/sip/message.js';
import { newBranch } from '../../src/util/ids.js';
import { silentLogger } from '../../src/util/logger.js';
import { SystemClock } from '../../src/util/clock.js';
import { TransportLayer, type TransportOptions } from '../../src/transport/transport-layer.js';
import type { TransportEvents } from '../../src/transport/transport-events.js';
import type { TransportError } from '../../src/util/errors.js';
import { optionsRequest, RawPeer } from '../support/raw-peer.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait-for.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startTransport(opts: Partial<TransportOptions> = {}): Promise<{ t: TransportLayer; port: number; events: { name: string; e: unknown }[] }> {
  const port = await freePort();
  const t = new TransportLayer(
    { address: '127.0.0.1', port, tlsPort: 0, connectTimeoutMs: 1000, maxMessageSize: 4096, maxConnections: 100, ...opts },
    new SystemClock(),
    silentLogger,
  );
  const events: { name: string; e: unknown }[] = [];
  for (const name of ['connectionOpened', 'connectionClosed', 'connectionFailed', 'connectionRefused', 'messageDropped'] as const) {
    t.events.on(name, (e: TransportEvents[typeof name]) => events.push({ name, e }));
  }
  await t.start();
  cleanups.push(() => t.stop());
  return { t, port, events };
}

/** A TCP listener standing for a phone: records every connection and the bytes on it. */
async function tcpPeer(): Promise<{ server: Server; port: number; sockets: Socket[]; data: () => string }> {
  const sockets: Socket[] = [];
  let data = '';
  const server = createServer((s) => {
    sockets.push(s);
    s.on('data', (d: Buffer) => (data += d.toString()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  cleanups.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0, sockets, data: () => data };
}

function request(port: number): SipRequest {
  return {
    kind: 'request',
    method: 'OPTIONS',
    uri: `sip:peer@127.0.0.1:${port}`,
    version: 'SIP/2.0',
    headers: [
      { name: 'Via', value: `SIP/2.0/TCP placeholder;branch=${newBranch()}` },
      { name: 'From', value: '<sip:server@127.0.0.1>;tag=abc' },
      { name: 'To', value: `<sip:peer@127.0.0.1:${port}>` },
      { name: 'Call-ID', value: `${newBranch()}@test` },
      { name: 'CSeq', value: '1 OPTIONS' },
      { name: 'Max-Forwards', value: '70' },
    ],
    body: Buffer.alloc(0),
  };
}


describe('transport layer on real sockets', () => {
  it('reuses one outbound connection for requests to the same destination and names its sent-by for the Via', async () => {
    const { t, events } = await startTransport();
    const peer = await tcpPeer();
    const a = await t.sendRequest(request(peer.port), { transport: 'TCP', address: '127.0.0.1', port: peer.port });
    const b = await t.sendRequest(request(peer.port), { transport: 'TCP', address: '127.0.0.1', port: peer.port });
    expect(a.flow).toBeDefined();
    expect(b.flow).toBe(a.flow);
    await waitFor(() => (peer.data().match(/OPTIONS sip/g) ?? []).length === 2, 'two requests');
    expect(peer.sockets).toHaveLength(1);
    // The transaction layer writes the Via (top-via.ts) from this: the listening address and port.
    expect(t.sentBy('TCP')).toEqual({ host: '127.0.0.1', port: t.boundPorts().tcp });
    expect(t.sentBy('UDP')).toEqual({ host: '127.0.0.1', port: t.boundPorts().udp });
    expect(events.filter((e) => e.name === 'connectionOpened')).toHaveLength(1);
  });

  it('sends requests to a peer on the connection the peer opened (its Via sent-by)', async () => {
    const { t, port } = await startTransport();
    const phone = await RawPeer.tcp(port);
    cleanups.push(() => phone.close());
    const received: SipRequest[] = [];
    t.events.on('message', (m) => m.message.kind === 'request' && received.push(m.message));
    // The phone says it listens on 127.0.0.1:5099 but talks from an ephemeral port.
    phone.send(optionsRequest({ transport: 'TCP', localPort: 5099, port }));
    await waitFor(() => received.length === 1, 'the request');
    expect(getHeader(received[0] as SipRequest, 'via')).toMatch(/;rport=\d+/);
    const sent = await t.sendRequest(request(5099), { transport: 'TCP', address: '127.0.0.1', port: 5099 });
    expect(sent.port).toBe(phone.localPort);
    await waitFor(() => phone.raw.toString().includes('OPTIONS sip:peer@127.0.0.1:5099'), 'request on the phone connection');
  });

  it('reports a refused connect as a TransportError and a connectionFailed event', async () => {
    const { t, events } = await startTransport();
    const dead = await freePort();
    const err = await t.sendRequest(request(dead), { transport: 'TCP', address: '127.0.0.1', port: dead }).catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('CONNECT_REFUSED');
    expect(events.find((e) => e.name === 'connectionFailed')?.e).toMatchObject({ code: 'CONNECT_REFUSED', port: dead });
  });

  it('bounds a TLS connect that never completes its handshake by sip-tcp-connect-timeout', async () => {
    const { t } = await startTransport({ connectTimeoutMs: 300 });
    const silent = await tcpPeer(); // accepts TCP, never answers the ClientHello
    const started = Date.now();
    const err = await t.sendRequest(request(silent.port), { transport: 'TLS', address: '127.0.0.1', port: silent.port }).catch((e: unknown) => e);
    expect((err as TransportError).code).toBe('CONNECT_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('closes only the connection that sends an unframeable stream, after answering 400', async () => {
    const { t, port, events } = await startTransport();
    const good = await RawPeer.tcp(port);
    const bad = await RawPeer.tcp(port);
    cleanups.push(() => good.close(), () => bad.close());
    bad.send(optionsRequest({ transport: 'TCP', localPort: bad.localPort, port }).replace('Content-Length: 0\r\n', ''));
    await bad.until(() => bad.closed, 3000, 'the bad connection to close');
    expect(bad.received[0]?.status).toBe(400);
    expect(bad.received[0]?.reason).toMatch(/Content-Length/i);
    await waitFor(() => events.some((e) => e.name === 'connectionClosed'), 'close event');
    expect(events.find((e) => e.name === 'connectionClosed')?.e).toMatchObject({ cause: expect.stringMatching(/^unframeable/) as unknown });
    expect(good.closed).toBe(false);
    expect(t.connections.size).toBe(1);
  });

  it('closes a stream whose message exceeds sip-max-message-size; answers 413 on UDP', async () => {
    const { port } = await startTransport({ maxMessageSize: 1024 });
    const big = 'X-Padding: ' + 'a'.repeat(2000) + '\r\n';
    const tcp = await RawPeer.tcp(port);
    const udp = await RawPeer.udp(port);
    cleanups.push(() => tcp.close(), () => udp.close());
    tcp.send(optionsRequest({ transport: 'TCP', localPort: tcp.localPort, port }).replace('Max-Forwards', `${big}Max-Forwards`));
    await tcp.until(() => tcp.closed, 3000, 'the connection to close');
    udp.send(optionsRequest({ transport: 'UDP', localPort: udp.localPort, port }).replace('Max-Forwards', `${big}Max-Forwards`));
    expect((await udp.response()).status).toBe(413);
  });

  it('refuses accepted connections beyond sip-max-connections', async () => {
    const { t, port, events } = await startTransport({ maxConnections: 2 });
    const peers = [await RawPeer.tcp(port), await RawPeer.tcp(port), await RawPeer.tcp(port)];
    cleanups.push(() => peers.forEach((p) => p.close()));
    await peers[2]?.until(() => peers[2]?.closed === true, 3000, 'the third connection to be refused');
    expect(events.filter((e) => e.name === 'connectionRefused')).toHaveLength(1);
    expect(t.connections.size).toBe(2);
  });

  it('emits connectionClosed with the cause when the peer closes', async () => {
    const { port, events } = await startTransport();
    const peer = await RawPeer.tcp(port);
    await waitFor(() => events.some((e) => e.name === 'connectionOpened'), 'open event');
    peer.close();
    await waitFor(() => events.some((e) => e.name === 'connectionClosed'), 'close event');
    expect(events.find((e) => e.name === 'connectionClosed')?.e).toMatchObject({ origin: 'accepted', transport: 'TCP' });
  });
});
