/**
 * A HEPv3 decoder written from the protocol's specification (HEP3, the Homer Encapsulation
 * Protocol, as sipcapture publishes it), independent of the server's encoder: the tests
 * decode what the server sends with it. Strict: a packet that breaks a rule of the spec
 * throws, naming the rule.
 *
 *   header   "HEP3" (4 octets) · total length (uint16, the header included)
 *   chunk    vendor id (uint16) · type id (uint16) · length (uint16, the 6-octet chunk header
 *            included) · value (length − 6 octets); every integer big-endian
 *
 * Generic chunks (vendor 0) and the value types the spec gives them.
 */
const GENERIC: Record<number, { name: string; size?: number }> = {
  1: { name: 'ip family', size: 1 },
  2: { name: 'ip protocol id', size: 1 },
  3: { name: 'ipv4 source', size: 4 },
  4: { name: 'ipv4 destination', size: 4 },
  5: { name: 'ipv6 source', size: 16 },
  6: { name: 'ipv6 destination', size: 16 },
  7: { name: 'source port', size: 2 },
  8: { name: 'destination port', size: 2 },
  9: { name: 'timestamp seconds', size: 4 },
  10: { name: 'timestamp microseconds', size: 4 },
  11: { name: 'protocol type', size: 1 },
  12: { name: 'capture agent id', size: 4 },
  13: { name: 'keep alive timer', size: 2 },
  14: { name: 'authenticate key' },
  15: { name: 'captured packet payload' },
  16: { name: 'compressed payload' },
  17: { name: 'correlation id' },
  18: { name: 'vlan id', size: 2 },
  19: { name: 'group id' },
};

export interface HepRawChunk {
  vendor: number;
  type: number;
  value: Buffer;
}

export interface HepPacket {
  /** Every chunk in the order it came. */
  chunks: HepRawChunk[];
  family: number;
  protocol: number;
  /** Addresses as text: dotted IPv4, or the eight IPv6 groups in lower-case hex, not compressed. */
  source: string;
  destination: string;
  sourcePort: number;
  destinationPort: number;
  seconds: number;
  microseconds: number;
  protocolType: number;
  captureId: number;
  authKey: string | undefined;
  payload: Buffer;
  correlationId: string | undefined;
}

function formatAddress(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

export function decodeHep(packet: Buffer): HepPacket {
  if (packet.length < 6) throw new Error('shorter than the 6-octet header');
  if (packet.toString('latin1', 0, 4) !== 'HEP3') throw new Error(`bad magic ${packet.toString('hex', 0, 4)}`);
  const total = packet.readUInt16BE(4);
  if (total !== packet.length) throw new Error(`total length ${total} ≠ datagram length ${packet.length}`);
  const chunks: HepRawChunk[] = [];
  const seen = new Map<number, Buffer>();
  let o = 6;
  while (o < total) {
    if (o + 6 > total) throw new Error(`chunk header at ${o} runs past the end`);
    const vendor = packet.readUInt16BE(o);
    const type = packet.readUInt16BE(o + 2);
    const length = packet.readUInt16BE(o + 4);
    if (length < 6) throw new Error(`chunk ${vendor}/${type} has length ${length} < 6`);
    if (o + length > total) throw new Error(`chunk ${vendor}/${type} runs past the end`);
    const value = packet.subarray(o + 6, o + length);
    chunks.push({ vendor, type, value });
    if (vendor === 0) {
      const spec = GENERIC[type];
      if (!spec) throw new Error(`unknown generic chunk type ${type}`);
      if (spec.size !== undefined && value.length !== spec.size) throw new Error(`${spec.name}: ${value.length} octets, the spec says ${spec.size}`);
      if (seen.has(type)) throw new Error(`${spec.name} twice`);
      seen.set(type, value);
    }
    o += length;
  }
  const need = (type: number): Buffer => {
    const v = seen.get(type);
    if (!v) throw new Error(`no ${GENERIC[type]?.name ?? type} chunk`);
    return v;
  };
  const family = need(1).readUInt8(0);
  if (family !== 2 && family !== 10) throw new Error(`ip family ${family} is neither 2 (IPv4) nor 10 (IPv6)`);
  const [srcType, dstType] = family === 2 ? [3, 4] : [5, 6];
  for (const wrong of family === 2 ? [5, 6] : [3, 4]) if (seen.has(wrong)) throw new Error(`${GENERIC[wrong]?.name} in a family ${family} packet`);
  const micros = need(10).readUInt32BE(0);
  if (micros > 999_999) throw new Error(`timestamp microseconds ${micros} > 999999`);
  return {
    chunks,
    family,
    protocol: need(2).readUInt8(0),
    source: formatAddress(need(srcType)),
    destination: formatAddress(need(dstType)),
    sourcePort: need(7).readUInt16BE(0),
    destinationPort: need(8).readUInt16BE(0),
    seconds: need(9).readUInt32BE(0),
    microseconds: micros,
    protocolType: need(11).readUInt8(0),
    captureId: need(12).readUInt32BE(0),
    authKey: seen.get(14)?.toString('utf8'),
    payload: need(15),
    correlationId: seen.get(17)?.toString('utf8'),
  };
}
