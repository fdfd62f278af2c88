import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { HepExporter } from '../../../src/capture/hep-exporter.js';
import type { SipMessage } from '../../../src/sip/message.js';
import { WireTap, type WireMessage } from '../../../src/transport/wire-tap.js';
import { silentLogger, type Logger } from '../../../src/util/logger.js';
import { decodeHep, type HepPacket } from '../../support/hep-decoder.js';
import { ManualClock } from '../../support/manual-clock.js';
import { waitFor } from '../../support/wait-for.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A UDP collector on 127.0.0.1 that decodes what it receives. */
async function collector(): Promise<{ port: number; packets: HepPacket[]; socket: Socket }> {
  const socket = createSocket('udp4');
  const packets: HepPacket[] = [];
  socket.on('message', (m) => packets.push(decodeHep(m)));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
  return { port: socket.address().port, packets, socket };
}

const OPTIONS = 'OPTIONS sip:127.0.0.1 SIP/2.0\r\nCall-ID: cid-1@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';
const parsed: SipMessage = {
  kind: 'request',
  method: 'OPTIONS',
  uri: 'sip:127.0.0.1',
  version: 'SIP/2.0',
  headers: [
    { name: 'Call-ID', value: 'cid-1@test' },
    { name: 'CSeq', value: '1 OPTIONS' },
  ],
  body: Buffer.alloc(0),
};

function wireMessage(over: Partial<WireMessage> = {}): WireMessage {
  return {
    direction: 'in',
    transport: 'UDP',
    bytes: Buffer.from(OPTIONS, 'latin1'),
    message: parsed,
    localAddress: '127.0.0.1',
    localPort: 5060,
    remoteAddress: '127.0.0.2',
    remotePort: 40_000,
    ...over,
  };
}

function recordingLog(): { log: Logger; warnings: { obj: object; msg: string | undefined }[] } {
  const warnings: { obj: object; msg: string | undefined }[] = [];
  const log: Logger = { ...silentLogger, warn: (obj, msg) => warnings.push({ obj, msg }), child: () => log };
  return { log, warnings };
}

async function exporter(port: number, opts: { clock?: ManualClock; log?: Logger; password?: string } = {}): Promise<{ hep: HepExporter; wire: WireTap; clock: ManualClock }> {
  const wire = new WireTap((err) => {
    throw err;
  });
  const clock = opts.clock ?? new ManualClock(1_700_000_000_250);
  const hep = new HepExporter({ address: '127.0.0.1', port, captureId: 2001, password: opts.password }, { wire, clock, log: opts.log ?? silentLogger });
  await hep.start();
  cleanups.push(() => hep.stop());
  return { hep, wire, clock };
}

describe('HEP exporter', () => {
  it('sends one packet per message: in from the peer to the server, out the other way, with the Call-ID', async () => {
    const c = await collector();
    const { hep, wire } = await exporter(c.port, { password: 'pw' });
    wire.emit(wireMessage());
    wire.emit(wireMessage({ direction: 'out', transport: 'TLS' }));
    await waitFor(() => c.packets.length === 2, 'two packets');
    const [inbound, outbound] = c.packets;
    expect(inbound).toMatchObject({ family: 2, protocol: 17, source: '127.0.0.2', sourcePort: 40_000, destination: '127.0.0.1', destinationPort: 5060 });
    expect(outbound).toMatchObject({ family: 2, protocol: 6, source: '127.0.0.1', sourcePort: 5060, destination: '127.0.0.2', destinationPort: 40_000 });
    for (const p of c.packets) {
      expect(p).toMatchObject({ seconds: 1_700_000_000, microseconds: 250_000, protocolType: 1, captureId: 2001, authKey: 'pw', correlationId: 'cid-1@test' });
      expect(p.payload.toString('latin1')).toBe(OPTIONS);
    }
    await waitFor(() => hep.stats().sent === 2, 'the sends to complete');
    expect(hep.stats()).toEqual({ sent: 2, sendFailures: 0, tooLarge: 0 });
  });

  it('to an IPv6 collector, with IPv6 addresses in the packets (chunks 5 and 6)', async () => {
    const socket = createSocket('udp6');
    const packets: HepPacket[] = [];
    socket.on('message', (m) => packets.push(decodeHep(m)));
    await new Promise<void>((r) => socket.bind(0, '::1', () => r()));
    cleanups.push(() => new Promise<void>((r) => socket.close(() => r())));
    const wire = new WireTap(() => {});
    const hep = new HepExporter({ address: '::1', port: socket.address().port, captureId: 9 }, { wire, clock: new ManualClock(), log: silentLogger });
    await hep.start();
    cleanups.push(() => hep.stop());
    wire.emit(wireMessage({ localAddress: '::1', remoteAddress: '2001:db8::10', remotePort: 5070 }));
    await waitFor(() => packets.length === 1, 'a packet over IPv6');
    expect(packets[0]).toMatchObject({ family: 10, source: '2001:db8:0:0:0:0:0:10', sourcePort: 5070, destination: '0:0:0:0:0:0:0:1', destinationPort: 5060, captureId: 9 });
  });

  it('bytes that did not parse go out without a correlation id', async () => {
    const c = await collector();
    const { wire } = await exporter(c.port);
    wire.emit(wireMessage({ message: undefined, bytes: Buffer.from('garbage\r\n\r\n') }));
    await waitFor(() => c.packets.length === 1, 'a packet');
    expect(c.packets[0]?.correlationId).toBeUndefined();
    expect(c.packets[0]?.payload.toString()).toBe('garbage\r\n\r\n');
  });

  it('subscribes on start and unsubscribes on stop: the transport builds nothing when off', async () => {
    const c = await collector();
    const wire = new WireTap(() => {});
    const hep = new HepExporter({ address: '127.0.0.1', port: c.port, captureId: 1 }, { wire, clock: new ManualClock(), log: silentLogger });
    expect(wire.active).toBe(false);
    await hep.start();
    expect(wire.active).toBe(true);
    await hep.stop();
    expect(wire.active).toBe(false);
  });

  it('counts a message too large for one datagram, and sends nothing for it', async () => {
    const c = await collector();
    const { hep, wire } = await exporter(c.port);
    wire.emit(wireMessage({ bytes: Buffer.alloc(65_500, 0x41) }));
    wire.emit(wireMessage());
    await waitFor(() => c.packets.length === 1, 'the small one');
    expect(hep.stats().tooLarge).toBe(1);
  });

  it('a collector that is not there: sends fail, are counted, warned about at most once per 10 s, and never throw', async () => {
    // A port nobody listens on: the connected socket gets ICMP port unreachable back (ECONNREFUSED on later sends).
    const gone = await collector();
    const port = gone.port;
    await new Promise<void>((r) => gone.socket.close(() => r()));
    cleanups.pop();
    const clock = new ManualClock();
    const { log, warnings } = recordingLog();
    const { hep, wire } = await exporter(port, { clock, log });
    for (let i = 0; i < 20 && hep.stats().sendFailures < 3; i++) {
      expect(() => wire.emit(wireMessage())).not.toThrow();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(hep.stats().sendFailures).toBeGreaterThanOrEqual(3);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.obj).toMatchObject({ collector: `127.0.0.1:${port}`, failed: 1 });
    clock.advance(10_000);
    const before = hep.stats().sendFailures;
    for (let i = 0; i < 20 && hep.stats().sendFailures === before; i++) {
      wire.emit(wireMessage());
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(warnings).toHaveLength(2);
    expect((warnings[1]?.obj as { failed: number }).failed).toBeGreaterThanOrEqual(1);
  });
});

describe('wire tap', () => {
  it('is active only while someone listens, and keeps a throwing listener from the others and from the caller', () => {
    const errors: unknown[] = [];
    const wire = new WireTap((err) => errors.push(err));
    expect(wire.active).toBe(false);
    const seen: string[] = [];
    const offA = wire.on(() => {
      throw new Error('listener bug');
    });
    const offB = wire.on((m) => seen.push(m.direction));
    expect(wire.active).toBe(true);
    expect(() => wire.emit(wireMessage())).not.toThrow();
    expect(seen).toEqual(['in']);
    expect(errors).toHaveLength(1);
    offA();
    expect(wire.active).toBe(true);
    offB();
    expect(wire.active).toBe(false);
  });
});
