import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader, getHeaderValues } from '../../src/sip/message.js';
import { optionsRequest, RawPeer } from '../support/raw-peer.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { runSipp } from '../support/sipp.js';

/**
 * Every method the server accepts: REGISTER and INVITE out of a dialog, and inside a call's
 * dialogs BYE, re-INVITE, UPDATE, INFO, OPTIONS, a phone's REFER (blind transfer) and the
 * NOTIFYs that follow the server's own REFER.
 */
const SERVED_METHODS = ['ACK', 'BYE', 'CANCEL', 'INFO', 'INVITE', 'NOTIFY', 'OPTIONS', 'REFER', 'REGISTER', 'UPDATE'];

function allowOf(res: Parameters<typeof getHeaderValues>[0]): string[] {
  return getHeaderValues(res, 'allow').flatMap((v) => v.split(',')).map((m) => m.trim()).sort();
}

/** A self-signed certificate for "localhost" / 127.0.0.1, made fresh for this test run. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'server.crt');
  const key = join(dir, 'server.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { cert, key };
}

describe('OPTIONS to the running server', () => {
  let server: RunningServer;
  let ca: Buffer;

  beforeAll(async () => {
    const dir = execFileSync('mktemp', ['-d']).toString().trim();
    const { cert, key } = makeCertificate(dir);
    ca = readFileSync(cert);
    server = await startServer({ tls: true, tserver: { 'sip-tls-cert': cert, 'sip-tls-key': key } });
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('SIPp gets 200 OK with Allow, Accept and Supported over UDP', async () => {
    const r = await runSipp({ scenario: 'options-uac.xml', port: server.port, transport: 'u1', calls: 5 });
    expect(r.code, r.output).toBe(0);
  });

  it('SIPp gets 200 OK with Allow, Accept and Supported over TCP', async () => {
    const r = await runSipp({ scenario: 'options-uac.xml', port: server.port, transport: 't1', calls: 5 });
    expect(r.code, r.output).toBe(0);
  });

  it('a TLS client gets 200 OK over TLS, verifying the server certificate', async () => {
    const peer = await RawPeer.tls(server.tlsPort, ca);
    try {
      peer.send(optionsRequest({ transport: 'TLS', localPort: peer.localPort, port: server.tlsPort, callId: 'tls-1' }));
      const res = await peer.response();
      expect(res.status).toBe(200);
      expect(getHeader(res, 'call-id')).toBe('tls-1@test');
      expect(getHeaderValues(res, 'allow')).toContain('OPTIONS');
      expect(getHeader(res, 'cseq')).toBe('1 OPTIONS');
    } finally {
      peer.close();
    }
  });

  it('answers a CRLFCRLF ping with CRLF at once on TCP and TLS, and keeps the connection', async () => {
    const tcp = await RawPeer.tcp(server.port);
    const tls = await RawPeer.tls(server.tlsPort, ca);
    try {
      for (const peer of [tcp, tls]) {
        peer.send('\r\n\r\n');
        await peer.until(() => peer.raw.toString() === '\r\n', 2000, 'a CRLF pong');
        peer.send(optionsRequest({ transport: peer.transport, localPort: peer.localPort, port: server.port }));
        expect((await peer.response()).status).toBe(200);
      }
    } finally {
      tcp.close();
      tls.close();
    }
  });

  it('Allow lists every method the server accepts, those inside a dialog included (BYE, UPDATE, INFO, NOTIFY, REFER)', async () => {
    const peer = await RawPeer.udp(server.port);
    try {
      peer.send(optionsRequest({ transport: 'UDP', localPort: peer.localPort, port: server.port }));
      const ok = await peer.response(0);
      expect(ok.status).toBe(200);
      expect(allowOf(ok)).toEqual(SERVED_METHODS);
      peer.send(optionsRequest({ transport: 'UDP', localPort: peer.localPort, port: server.port }).replace(/OPTIONS/g, 'SUBSCRIBE'));
      const notAllowed = await peer.response(1);
      expect(notAllowed.status).toBe(405);
      expect(allowOf(notAllowed)).toEqual(SERVED_METHODS);
    } finally {
      peer.close();
    }
  });

  it('unknown methods get 501 and known but unserved ones 405 with Allow', async () => {
    const peer = await RawPeer.udp(server.port);
    try {
      peer.send(optionsRequest({ transport: 'UDP', localPort: peer.localPort, port: server.port }).replace(/OPTIONS/g, 'FOOBAR'));
      expect((await peer.response(0)).status).toBe(501);
      peer.send(optionsRequest({ transport: 'UDP', localPort: peer.localPort, port: server.port }).replace(/OPTIONS/g, 'SUBSCRIBE'));
      const res = await peer.response(1);
      expect(res.status).toBe(405);
      expect(getHeaderValues(res, 'allow')).toContain('OPTIONS');
    } finally {
      peer.close();
    }
  });

  it('stops on SIGTERM with exit status 0', async () => {
    const other = await startServer();
    expect(await other.stop()).toBe(0);
    expect(other.output()).toContain('stopped');
  });
});
