import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnector } from '../../src/transport/connector.js';
import { SystemClock } from '../../src/util/clock.js';
import { makeCertificates, type Certificates } from '../support/certs.js';

/**
 * The server as a TLS client (SPEC §5.5: it re-opens TLS connections to endpoints), against a
 * real TLS listener whose certificate a test CA signed for 127.0.0.1.
 */
describe('TLS connections the server opens', () => {
  let certs: Certificates;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    certs = makeCertificates({ endpoint: ['IP:127.0.0.1'] });
    const files = certs.issued.endpoint;
    if (!files) throw new Error('no certificate');
    server = createServer({ cert: certs.read(files.cert), key: certs.read(files.key) }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    port = typeof addr === 'object' && addr ? addr.port : 0;
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  const connect = (opts: { verifyPeer: boolean; ca?: Buffer }) =>
    createConnector(new SystemClock(), opts)({ transport: 'TLS', address: '127.0.0.1', port, timeoutMs: 2000 });

  it('verifies the endpoint certificate against sip-tls-ca (IP subjectAltName) and connects', async () => {
    const socket = await connect({ verifyPeer: true, ca: certs.read(certs.ca) });
    expect(socket.remotePort).toBe(port);
    socket.destroy();
  });

  it('refuses an endpoint whose certificate no trusted CA signed: TLS_FAILED', async () => {
    await expect(connect({ verifyPeer: true })).rejects.toMatchObject({ code: 'TLS_FAILED' });
  });

  it('without sip-tls-verify-peer it connects to any certificate', async () => {
    const socket = await connect({ verifyPeer: false });
    socket.destroy();
  });
});
