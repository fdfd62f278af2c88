import { createSocket } from 'node:dgram';
import { decodeHep, type HepPacket } from './hep-decoder.js';

/** A HEP collector for tests: a UDP socket on 127.0.0.1 that decodes every packet it gets (hep-decoder.ts). */
export interface HepCollector {
  port: number;
  /** Every packet received so far, decoded, in arrival order. */
  packets: HepPacket[];
  /** Datagrams that did not decode, with why. */
  bad: string[];
  close(): Promise<void>;
}

export async function startHepCollector(): Promise<HepCollector> {
  const socket = createSocket('udp4');
  const packets: HepPacket[] = [];
  const bad: string[] = [];
  socket.on('message', (m) => {
    try {
      packets.push(decodeHep(m));
    } catch (err) {
      bad.push((err as Error).message);
    }
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { port: socket.address().port, packets, bad, close: () => new Promise<void>((r) => socket.close(() => r())) };
}
