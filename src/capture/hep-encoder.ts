/**
 * HEP version 3 (the Homer Encapsulation Protocol, also called EEP): the packet a capture agent
 * sends a collector (Homer's heplify-server, sngrep -L) for each message it saw. Pure: bytes
 * in, bytes out, one Buffer allocated per packet.
 *
 * A packet is the 4 octets "HEP3", its total length (uint16), then chunks, each
 * vendor id (uint16) · type id (uint16) · length (uint16, the 6-octet chunk header included) ·
 * value; everything big-endian. The chunks written, all of vendor 0 (generic):
 *
 *   1 IP family (uint8: 2 IPv4, 10 IPv6)    2 IP protocol id (uint8: 17 UDP, 6 TCP)
 *   3/4 IPv4 source/destination (4 octets)  5/6 IPv6 source/destination (16 octets)
 *   7/8 source/destination port (uint16)    9/10 timestamp seconds / microseconds (uint32)
 *   11 protocol type (uint8: 1 SIP)         12 capture agent id (uint32)
 *   14 auth key (octets, when set)          17 correlation id (octets: the Call-ID, when known)
 *   15 payload (the message's bytes)
 *
 * Source and destination are written IPv4 when both are IPv4 addresses, else IPv6 (an IPv4
 * address then as ::ffff:a.b.c.d); an address that is neither is written as all zeros.
 */

export const HEP_FAMILY_IPV4 = 2;
export const HEP_FAMILY_IPV6 = 10;
export const HEP_PROTO_UDP = 17;
export const HEP_PROTO_TCP = 6;
export const HEP_TYPE_SIP = 1;
/** The total length is a uint16. */
export const HEP_MAX_LENGTH = 0xffff;

/** Chunk type ids (vendor 0). */
export const HepChunk = {
  ipFamily: 1,
  ipProtocol: 2,
  ipv4Source: 3,
  ipv4Destination: 4,
  ipv6Source: 5,
  ipv6Destination: 6,
  sourcePort: 7,
  destinationPort: 8,
  timeSeconds: 9,
  timeMicroseconds: 10,
  protocolType: 11,
  captureId: 12,
  authKey: 14,
  payload: 15,
  correlationId: 17,
} as const;

/** What one captured message is, as the packet describes it. */
export interface HepMessage {
  /** HEP_PROTO_UDP or HEP_PROTO_TCP (TLS is TCP; the payload is the decrypted text). */
  ipProtocol: number;
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  /** When it was seen, in milliseconds since the epoch (fractions are kept to the microsecond). */
  timestampMs: number;
  payload: Buffer;
  /** The Call-ID (chunk 17); none: no chunk. */
  correlationId?: string | undefined;
}

export interface HepEncoderOptions {
  /** Capture agent id (chunk 12), 0–4294967295. */
  captureId: number;
  /** Auth key (chunk 14); none: no chunk. */
  password?: string | undefined;
}

const HEADER = 6;
const CHUNK = 6;

export class HepEncoder {
  private readonly captureId: number;
  private readonly authKey: Buffer | undefined;
  /** The groups of the IPv6 address being parsed: scratch space of this encoder, so parsing allocates nothing. */
  private readonly groups = new Uint16Array(8);

  constructor(opts: HepEncoderOptions) {
    this.captureId = opts.captureId >>> 0;
    this.authKey = opts.password !== undefined && opts.password !== '' ? Buffer.from(opts.password, 'utf8') : undefined;
  }

  /** The packet for `m`, or undefined when it would be longer than `maxLength` octets (at most HEP_MAX_LENGTH). */
  encode(m: HepMessage, maxLength: number = HEP_MAX_LENGTH): Buffer | undefined {
    const src4 = parseIPv4(m.sourceAddress, 0, m.sourceAddress.length);
    const dst4 = parseIPv4(m.destinationAddress, 0, m.destinationAddress.length);
    const v4 = src4 >= 0 && dst4 >= 0;
    const addressLength = v4 ? 4 : 16;
    const cid = m.correlationId;
    const cidLength = cid ? Buffer.byteLength(cid, 'utf8') : 0;
    const auth = this.authKey;
    const total =
      HEADER +
      2 * (CHUNK + 1) + // family, protocol
      2 * (CHUNK + addressLength) +
      2 * (CHUNK + 2) + // ports
      2 * (CHUNK + 4) + // timestamp
      (CHUNK + 1) + // protocol type
      (CHUNK + 4) + // capture id
      (auth ? CHUNK + auth.length : 0) +
      (cidLength > 0 ? CHUNK + cidLength : 0) +
      CHUNK +
      m.payload.length;
    if (total > Math.min(maxLength, HEP_MAX_LENGTH)) return undefined;

    const buf = Buffer.allocUnsafe(total);
    buf.write('HEP3', 0, 'latin1');
    buf.writeUInt16BE(total, 4);
    let o = HEADER;
    o = chunk(buf, o, HepChunk.ipFamily, 1);
    buf.writeUInt8(v4 ? HEP_FAMILY_IPV4 : HEP_FAMILY_IPV6, o++);
    o = chunk(buf, o, HepChunk.ipProtocol, 1);
    buf.writeUInt8(m.ipProtocol & 0xff, o++);
    if (v4) {
      o = chunk(buf, o, HepChunk.ipv4Source, 4);
      o = buf.writeUInt32BE(src4, o);
      o = chunk(buf, o, HepChunk.ipv4Destination, 4);
      o = buf.writeUInt32BE(dst4, o);
    } else {
      o = chunk(buf, o, HepChunk.ipv6Source, 16);
      o = this.writeAddress6(buf, o, m.sourceAddress, src4);
      o = chunk(buf, o, HepChunk.ipv6Destination, 16);
      o = this.writeAddress6(buf, o, m.destinationAddress, dst4);
    }
    o = chunk(buf, o, HepChunk.sourcePort, 2);
    o = buf.writeUInt16BE(m.sourcePort & 0xffff, o);
    o = chunk(buf, o, HepChunk.destinationPort, 2);
    o = buf.writeUInt16BE(m.destinationPort & 0xffff, o);
    const seconds = Math.floor(m.timestampMs / 1000);
    const micros = Math.min(999_999, Math.floor((m.timestampMs - seconds * 1000) * 1000));
    o = chunk(buf, o, HepChunk.timeSeconds, 4);
    o = buf.writeUInt32BE(seconds >>> 0, o);
    o = chunk(buf, o, HepChunk.timeMicroseconds, 4);
    o = buf.writeUInt32BE(micros, o);
    o = chunk(buf, o, HepChunk.protocolType, 1);
    buf.writeUInt8(HEP_TYPE_SIP, o++);
    o = chunk(buf, o, HepChunk.captureId, 4);
    o = buf.writeUInt32BE(this.captureId, o);
    if (auth) {
      o = chunk(buf, o, HepChunk.authKey, auth.length);
      o += auth.copy(buf, o);
    }
    if (cid && cidLength > 0) {
      o = chunk(buf, o, HepChunk.correlationId, cidLength);
      o += buf.write(cid, o, cidLength, 'utf8');
    }
    o = chunk(buf, o, HepChunk.payload, m.payload.length);
    m.payload.copy(buf, o);
    return buf;
  }

  /** 16 octets at buf[o]: the IPv6 address, an IPv4 one (`v4` ≥ 0) mapped, or zeros. Returns the offset after them. */
  private writeAddress6(buf: Buffer, o: number, address: string, v4: number): number {
    if (v4 >= 0) {
      buf.fill(0, o, o + 10);
      buf.writeUInt16BE(0xffff, o + 10);
      buf.writeUInt32BE(v4, o + 12);
      return o + 16;
    }
    const g = this.groups;
    if (!parseIPv6(address, g)) g.fill(0);
    for (let i = 0; i < 8; i++) buf.writeUInt16BE(g[i] ?? 0, o + 2 * i);
    return o + 16;
  }
}

/** A chunk header of vendor 0 at buf[o] for a value of `valueLength` octets; returns where the value goes. */
function chunk(buf: Buffer, o: number, type: number, valueLength: number): number {
  buf.writeUInt16BE(0, o);
  buf.writeUInt16BE(type, o + 2);
  buf.writeUInt16BE(CHUNK + valueLength, o + 4);
  return o + CHUNK;
}

/** The dotted-quad IPv4 address in s[from, end) as a uint32, or -1. */
export function parseIPv4(s: string, from: number, end: number): number {
  let value = 0;
  let parts = 0;
  let i = from;
  while (parts < 4) {
    let part = 0;
    let digits = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      part = part * 10 + (c - 0x30);
      digits++;
      i++;
    }
    if (digits === 0 || digits > 3 || part > 255) return -1;
    value = value * 256 + part;
    parts++;
    if (parts < 4) {
      if (s.charCodeAt(i) !== 0x2e) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/**
 * Parses the IPv6 address `s` (RFC 4291 §2.2 text forms: "::" once, a trailing dotted IPv4
 * part, an optional "%zone" ignored) into its eight groups; false when it is not one.
 */
export function parseIPv6(s: string, groups: Uint16Array): boolean {
  const zone = s.indexOf('%');
  const end = zone < 0 ? s.length : zone;
  const g = groups;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 0x3a && s.charCodeAt(1) === 0x3a) {
    gap = 0;
    i = 2;
  }
  while (i < end) {
    let j = i;
    let v = 0;
    while (j < end && j - i < 4) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    if (j < end && s.charCodeAt(j) === 0x2e) {
      // The last 32 bits as a dotted IPv4 address.
      const v4 = parseIPv4(s, i, end);
      if (v4 < 0 || n > 6) return false;
      g[n++] = v4 >>> 16;
      g[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (j === i || n >= 8) return false;
    g[n++] = v;
    if (j === end) {
      i = end;
      break;
    }
    if (s.charCodeAt(j) !== 0x3a) return false;
    if (s.charCodeAt(j + 1) === 0x3a) {
      if (gap >= 0) return false;
      gap = n;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === end) return false;
    }
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  if (gap >= 0) {
    // Move the groups after "::" to the end and zero the gap.
    const after = n - gap;
    for (let k = 0; k < after; k++) g[7 - k] = g[n - 1 - k] ?? 0;
    for (let k = gap; k < 8 - after; k++) g[k] = 0;
  }
  return true;
}
