import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { optionsRequest, RawPeer } from '../support/raw-peer.js';
import { rfc4475, rfc4475Bytes, type Rfc4475Entry } from '../support/rfc4475.js';
import { startServer, type RunningServer } from '../support/server-process.js';

/**
 * The RFC 4475 torture messages sent to a running server. Invalid requests must get their
 * error response (400 with a reason naming the fault, or 505) back where they came from;
 * what cannot be answered (responses) is dropped; the server answers OPTIONS afterwards.
 */
type Entry = Rfc4475Entry;

const bytes = rfc4475Bytes;
const invalid = rfc4475.filter((m) => m.expect === 'invalid');
const answerable = invalid.filter((m) => m.status !== undefined);
const discarded = invalid.filter((m) => m.action === 'discard');
/** Well-formed requests the UAS core or the registrar (unksm2) must refuse with a given status. */
const semantic = rfc4475.filter((m) => m.expect === 'semantic');

/** Reasons the stream framer gives before the parser sees the message. */
function streamReason(m: Entry): string | undefined {
  if (m.streamError) return m.streamError;
  return /^(content-length|l)\s*:/im.test(bytes(m.name).toString('latin1')) ? undefined : 'Missing Content-Length';
}

describe('RFC 4475 torture messages against the running server', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('has fixtures for every class', () => {
    expect(rfc4475.length).toBeGreaterThanOrEqual(49);
    expect(answerable.length).toBeGreaterThanOrEqual(15);
    expect(discarded.length).toBeGreaterThanOrEqual(2);
  });

  it.each(answerable)('UDP: $name gets $status with the fault as reason', async (m) => {
    const peer = await RawPeer.udp(server.port);
    try {
      peer.send(bytes(m.name));
      const res = await peer.response();
      expect(res.status).toBe(m.status);
      expect(res.reason).toContain(m.reason);
    } finally {
      peer.close();
    }
  });

  it.each(answerable.filter((m) => !m.datagramOnly))('TCP: $name gets $status, or 400 and a close when unframeable', async (m) => {
    const peer = await RawPeer.tcp(server.port);
    try {
      peer.send(bytes(m.name));
      const res = await peer.response();
      const framing = streamReason(m);
      if (framing) {
        expect(res.status).toBe(400);
        expect(res.reason).toBe(framing);
        await peer.until(() => peer.closed, 3000, 'the unframeable connection to close');
      } else {
        expect(res.status).toBe(m.status);
        expect(res.reason).toContain(m.reason);
      }
    } finally {
      peer.close();
    }
  });

  it.each(discarded)('UDP and TCP: $name cannot be answered and is dropped', async (m) => {
    const udp = await RawPeer.udp(server.port);
    const tcp = await RawPeer.tcp(server.port);
    try {
      udp.send(bytes(m.name));
      tcp.send(bytes(m.name));
      // Proof of silence: an OPTIONS sent after it is the first thing answered.
      udp.send(optionsRequest({ transport: 'UDP', localPort: udp.localPort, port: server.port, callId: 'after-udp' }));
      tcp.send(optionsRequest({ transport: 'TCP', localPort: tcp.localPort, port: server.port, callId: 'after-tcp' }));
      const [u, t] = await Promise.all([udp.response(), tcp.response()]);
      expect(u.status).toBe(200);
      expect(t.status).toBe(200);
      expect(udp.received).toHaveLength(1);
      expect(tcp.received).toHaveLength(1);
    } finally {
      udp.close();
      tcp.close();
    }
  });

  it.each(semantic)('TCP: $name is well-formed but gets $status', async (m) => {
    const peer = await RawPeer.tcp(server.port);
    try {
      peer.send(bytes(m.name));
      expect((await peer.response()).status).toBe(m.status);
    } finally {
      peer.close();
    }
  });

  it('still answers OPTIONS over UDP and TCP after all of them', async () => {
    for (const open of [(p: number) => RawPeer.udp(p), (p: number) => RawPeer.tcp(p)]) {
      const peer = await open(server.port);
      try {
        peer.send(optionsRequest({ transport: peer.transport, localPort: peer.localPort, port: server.port }));
        expect((await peer.response()).status).toBe(200);
      } finally {
        peer.close();
      }
    }
    expect(server.proc.exitCode).toBeNull();
  });
});
