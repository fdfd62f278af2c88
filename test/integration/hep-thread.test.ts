import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
// The compiled module: its sender thread is a separate script (dist/capture/hep-sender-thread.js).
import { ThreadedHepSender } from '../../dist/capture/hep-thread.js';
import { HepEncoder } from '../../src/capture/hep-encoder.js';
import { SystemClock } from '../../src/util/clock.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { decodeHep, type HepPacket } from '../support/hep-decoder.js';
import { waitFor } from '../support/wait-for.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A turn's work put off to its end, as the server does (setImmediate). */
const defer = (fn: () => void): void => void setImmediate(fn);

async function collector(): Promise<{ port: number; packets: HepPacket[]; close(): Promise<void> }> {
  const socket = createSocket('udp4');
  const packets: HepPacket[] = [];
  socket.on('message', (m) => packets.push(decodeHep(m)));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  let open = true;
  const close = (): Promise<void> => (open ? ((open = false), new Promise<void>((r) => socket.close(() => r()))) : Promise.resolve());
  cleanups.push(close);
  return { port: socket.address().port, packets, close };
}

function packet(n: number): Buffer {
  const encoder = new HepEncoder({ captureId: 7 });
  const payload = Buffer.from(`OPTIONS sip:x SIP/2.0\r\nCall-ID: c${n}\r\nContent-Length: 0\r\n\r\n`);
  const p = encoder.encode({ ipProtocol: 17, sourceAddress: '127.0.0.1', sourcePort: 5070, destinationAddress: '127.0.0.1', destinationPort: 5060, timestampMs: 1_700_000_000_000 + n, payload, correlationId: `c${n}` });
  if (!p) throw new Error('no packet');
  return p;
}

describe('HEP packets sent from their own thread (ThreadedHepSender)', () => {
  it('the packets of one turn go over as one batch and come out at the collector one datagram each, in order, counted', async () => {
    const c = await collector();
    const sender = new ThreadedHepSender({ address: '127.0.0.1', port: c.port }, { clock: new SystemClock(), log: silentLogger, defer });
    await sender.start();
    cleanups.push(() => sender.stop());
    for (let n = 0; n < 50; n++) sender.send(packet(n));
    await waitFor(() => c.packets.length === 50, 'the 50 packets');
    expect(c.packets.map((p) => p.correlationId)).toEqual(Array.from({ length: 50 }, (_, n) => `c${n}`));
    expect(c.packets[49]).toMatchObject({ captureId: 7, sourcePort: 5070, destinationPort: 5060 });
    await waitFor(() => sender.stats().sent === 50, 'the counts through shared memory');
    expect(sender.stats()).toEqual({ sent: 50, sendFailures: 0 });
  });

  it('stop sends what the turn still held, then the thread ends; later packets are counted as failed', async () => {
    const c = await collector();
    const sender = new ThreadedHepSender({ address: '127.0.0.1', port: c.port }, { clock: new SystemClock(), log: silentLogger, defer });
    await sender.start();
    sender.send(packet(1));
    await sender.stop();
    await waitFor(() => c.packets.length === 1, 'the packet held at stop');
    sender.send(packet(2));
    expect(sender.stats().sendFailures).toBe(1);
  });

  it('a collector that is not there: the failures are counted and warned about, the SIP side never sees them', async () => {
    const c = await collector();
    await c.close();
    const warnings: string[] = [];
    const log: Logger = { ...silentLogger, warn: (_obj, msg) => warnings.push(msg ?? ''), child: () => log };
    const sender = new ThreadedHepSender({ address: '127.0.0.1', port: c.port }, { clock: new SystemClock(), log, defer });
    await sender.start();
    cleanups.push(() => sender.stop());
    // The first send draws ICMP port unreachable; the next ones fail on the connected socket.
    for (let turn = 0; turn < 20 && sender.stats().sendFailures === 0; turn++) {
      expect(() => sender.send(packet(turn))).not.toThrow();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(sender.stats().sendFailures).toBeGreaterThan(0);
    await waitFor(() => warnings.length > 0, 'the warning');
    expect(warnings[0]).toMatch(/HEP packets could not be sent/);
  });
});
