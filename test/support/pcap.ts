import { readFileSync } from 'node:fs';

/** One UDP/IPv4 datagram from a pcap file. */
export interface PcapUdp {
  /** The record's time, ms since the epoch. */
  atMs: number;
  source: string;
  sourcePort: number;
  destination: string;
  destinationPort: number;
  payload: Buffer;
}

/**
 * Reads a classic pcap file (libpcap format: a 24-octet global header, then per packet a
 * 16-octet record header and the frame) of Ethernet (link type 1) frames, and returns the
 * IPv4/UDP ones. Either byte order; microsecond or nanosecond timestamps. A record cut short
 * at the end (a file still being written) is left out.
 */
export function readPcapUdp(file: string): PcapUdp[] {
  const buf = readFileSync(file);
  if (buf.length < 24) return [];
  const magicLE = buf.readUInt32LE(0);
  const le = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const magic = le ? magicLE : buf.readUInt32BE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`${file}: not a pcap file (magic ${buf.toString('hex', 0, 4)})`);
  const nanos = magic === 0xa1b23c4d;
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  if (linkType !== 1) throw new Error(`${file}: link type ${linkType}, expected 1 (Ethernet)`);
  const out: PcapUdp[] = [];
  let o = 24;
  while (o + 16 <= buf.length) {
    const sec = u32(o);
    const frac = u32(o + 4);
    const caplen = u32(o + 8);
    const frame = buf.subarray(o + 16, o + 16 + caplen);
    o += 16 + caplen;
    if (frame.length < caplen) break;
    if (frame.length < 14 + 20 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    const ihl = (ip.readUInt8(0) & 0x0f) * 4;
    if (ip.readUInt8(9) !== 17 || ip.length < ihl + 8) continue;
    const udp = ip.subarray(ihl);
    const udpLength = udp.readUInt16BE(4);
    out.push({
      atMs: sec * 1000 + (nanos ? frac / 1e6 : frac / 1000),
      source: [...ip.subarray(12, 16)].join('.'),
      destination: [...ip.subarray(16, 20)].join('.'),
      sourcePort: udp.readUInt16BE(0),
      destinationPort: udp.readUInt16BE(2),
      payload: udp.subarray(8, Math.min(udp.length, udpLength)),
    });
  }
  return out;
}
