import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { makeCertificates, type Certificates } from '../support/certs.js';
import { startHepCollector, type HepCollector } from '../support/hep-collector.js';
import type { HepPacket } from '../support/hep-decoder.js';
import { RawPeer } from '../support/raw-peer.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer, type PeerTransportName } from '../support/sip-peer.js';
import { waitFor } from '../support/wait-for.js';

/*
 * HEP export (hep-address) from the running server to a collector the test holds: every SIP
 * message the server receives and sends, over UDP, TCP and TLS, is one HEPv3 packet, decoded
 * here by the spec-written decoder (test/support/hep-decoder.ts) and checked against what the
 * peers sent and received: direction, addresses and ports, protocol, the payload byte for
 * byte, the Call-ID as correlation id, the capture id and auth key.
 */

const CAPTURE_ID = 4242;
const PASSWORD = 'h3p-s3cret';

function sdp(owner: string, port: number): string {
  return ['v=0', `o=${owner} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

function register(transport: PeerTransportName, localPort: number, serverPort: number, callId: string): string {
  return [
    `REGISTER sip:127.0.0.1:${serverPort} SIP/2.0`,
    `Via: SIP/2.0/${transport} 127.0.0.1:${localPort};branch=z9hG4bK${callId};rport`,
    'Max-Forwards: 70',
    `From: <sip:1010@127.0.0.1>;tag=${callId}`,
    'To: <sip:1010@127.0.0.1>',
    `Call-ID: ${callId}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:1010@127.0.0.1:${localPort};transport=${transport.toLowerCase()}>`,
    'Expires: 60',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

const protocolOf = (transport: PeerTransportName): number => (transport === 'UDP' ? 17 : 6);
const callIdOf = (p: HepPacket): string | undefined => getHeader(parseMessage(p.payload), 'call-id');
/** What a packet's payload says, for failure messages: "INVITE" or "200". */
const what = (p: HepPacket): string => {
  const m = parseMessage(p.payload);
  return m.kind === 'request' ? m.method : String(m.status);
};

/** Waits until `count()` reaches `n`, then a little longer to see that nothing more comes. */
async function settle(count: () => number, n: number, what: string): Promise<void> {
  await waitFor(() => count() >= n, what, 5000);
  await new Promise((r) => setTimeout(r, 300));
}

describe.each([
  { mode: 'in the server process', workers: 0 },
  { mode: 'with socket workers holding TCP/TLS (sip-tcp-workers: 1)', workers: 1 },
])('HEP export $mode', ({ workers }) => {
  let certs: Certificates;
  let hep: HepCollector;
  let server: RunningServer;

  beforeAll(async () => {
    certs = makeCertificates({ server: ['DNS:localhost', 'IP:127.0.0.1'] });
    const files = certs.issued.server;
    if (!files) throw new Error('no certificate');
    hep = await startHepCollector();
    server = await startServer({
      tls: true,
      tserver: {
        'sip-tls-cert': files.cert,
        'sip-tls-key': files.key,
        'sip-tcp-workers': workers,
        'hep-address': '127.0.0.1',
        'hep-port': hep.port,
        'hep-capture-id': CAPTURE_ID,
        'hep-password': PASSWORD,
      },
      dns: { '1001': { type: 'extension', contact: '*' }, '1002': { type: 'extension', contact: '*' }, '1003': { type: 'extension', contact: '*' }, '1010': { type: 'extension', contact: '*' } },
    });
  });

  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    await hep?.close();
  });

  const serverPortFor = (transport: PeerTransportName): number => (transport === 'TLS' ? server.tlsPort : server.port);

  it.each(['UDP', 'TCP', 'TLS'] as PeerTransportName[])('a REGISTER over %s: one packet in, one out, the bytes as on the wire', async (transport) => {
    const peer = transport === 'UDP' ? await RawPeer.udp(server.port) : transport === 'TCP' ? await RawPeer.tcp(server.port) : await RawPeer.tls(server.tlsPort, certs.read(certs.ca));
    const callId = `hep-reg-${transport}-${workers}-${Date.now()}`;
    const sent = register(transport, peer.localPort, serverPortFor(transport), callId);
    try {
      peer.send(sent);
      expect((await peer.response()).status).toBe(200);
      const mine = (): HepPacket[] => hep.packets.filter((p) => p.correlationId === callId);
      await settle(() => mine().length, 2, 'the REGISTER and its 200 at the collector');
      const [request, response] = mine();
      expect(mine()).toHaveLength(2);
      if (!request || !response) throw new Error('missing packets');
      const serverPort = serverPortFor(transport);
      expect(request).toMatchObject({ family: 2, protocol: protocolOf(transport), source: '127.0.0.1', sourcePort: peer.localPort, destination: '127.0.0.1', destinationPort: serverPort });
      expect(response).toMatchObject({ family: 2, protocol: protocolOf(transport), source: '127.0.0.1', sourcePort: serverPort, destination: '127.0.0.1', destinationPort: peer.localPort });
      expect(request.payload.toString('latin1')).toBe(sent);
      expect(response.payload.equals(peer.frames[0] ?? Buffer.alloc(0))).toBe(true);
      for (const p of [request, response]) {
        expect(p).toMatchObject({ protocolType: 1, captureId: CAPTURE_ID, authKey: PASSWORD });
        expect(Math.abs(p.seconds * 1000 + p.microseconds / 1000 - Date.now())).toBeLessThan(10_000);
      }
      expect(hep.bad).toEqual([]);
    } finally {
      peer.close();
    }
  });

  it('two calls, UDP → TCP and TLS → UDP: one packet per message each way on both legs, payloads equal, Call-ID as correlation id', async () => {
    const files = certs.issued.server;
    if (!files) throw new Error('no certificate');
    const tls = { cert: certs.read(files.cert), key: certs.read(files.key), ca: certs.read(certs.ca) };
    const udp = await SipPeer.start({ user: '1001', transport: 'UDP' });
    const tcp = await SipPeer.start({ user: '1002', transport: 'TCP' });
    const tlsPeer = await SipPeer.start({ user: '1003', transport: 'TLS', tls });
    const peers = [udp, tcp, tlsPeer];
    try {
      const before = hep.packets.length;
      for (const p of peers) await p.register(serverPortFor(p.transport));
      for (const [caller, callee, number] of [
        [udp, tcp, '1002'],
        [tlsPeer, udp, '1001'],
      ] as const) {
        const call = caller.call(serverPortFor(caller.transport), number, { sdp: sdp('caller', 40_000) });
        const incoming = await callee.nextIncomingCall();
        incoming.ring();
        await call.waitStatus(180);
        const acked = incoming.answer(sdp('callee', 50_000));
        expect((await call.final()).status).toBe(200);
        await acked;
        expect((await call.bye()).status).toBe(200);
        await incoming.byeReceived();
      }
      const expected = peers.reduce((n, p) => n + p.messages.length, 0);
      await settle(() => hep.packets.length - before, expected, `${expected} packets`);
      const packets = hep.packets.slice(before);
      expect(packets).toHaveLength(expected);

      for (const peer of peers) {
        // The peer's side of each packet: its listening port, or the port of a connection it opened.
        const ports = new Set([peer.port, ...peer.flows().map((f) => f.localPort)]);
        const serverPort = serverPortFor(peer.transport);
        const toServer = packets.filter((p) => ports.has(p.sourcePort));
        const fromServer = packets.filter((p) => ports.has(p.destinationPort));
        const sentByPeer = peer.messages.filter((m) => m.dir === 'out');
        const receivedByPeer = peer.messages.filter((m) => m.dir === 'in');
        expect(toServer.map(what), `${peer.user} → server`).toEqual(sentByPeer.map((m) => (m.message.kind === 'request' ? m.message.method : String(m.message.status))));
        expect(fromServer.map(what), `server → ${peer.user}`).toEqual(receivedByPeer.map((m) => (m.message.kind === 'request' ? m.message.method : String(m.message.status))));
        toServer.forEach((p, i) => {
          expect(p).toMatchObject({ protocol: protocolOf(peer.transport), destinationPort: serverPort, destination: '127.0.0.1' });
          // What the peer wrote is what the server received, byte for byte.
          const written = sentByPeer[i];
          if (!written) throw new Error(`no message ${i} from ${peer.user}`);
          expect(p.payload.equals(serializeMessage(written.message))).toBe(true);
        });
        fromServer.forEach((p, i) => {
          expect(p).toMatchObject({ protocol: protocolOf(peer.transport), sourcePort: serverPort, source: '127.0.0.1' });
          expect(parseMessage(p.payload)).toEqual(receivedByPeer[i]?.message);
        });
      }
      for (const p of packets) {
        expect(p.correlationId).toBe(callIdOf(p));
        expect(p).toMatchObject({ captureId: CAPTURE_ID, authKey: PASSWORD, protocolType: 1 });
      }
      // The Call-IDs: three registrations, and two legs per call.
      expect(new Set(packets.map((p) => p.correlationId)).size).toBe(3 + 4);
      expect(hep.bad).toEqual([]);
    } finally {
      for (const p of peers) await p.close();
    }
  });
});
