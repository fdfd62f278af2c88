import { describe, expect, it, vi } from 'vitest';
import { HEP_MAX_LENGTH, HEP_PROTO_TCP, HEP_PROTO_UDP, HepEncoder, parseIPv6, type HepMessage } from '../../../src/capture/hep-encoder.js';
import { decodeHep } from '../../support/hep-decoder.js';

const INVITE = Buffer.from(
  [
    'INVITE sip:1002@192.0.2.1 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-1',
    'Call-ID: a84b4c76e66710@pc33.example.com',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
  'latin1',
);

function message(over: Partial<HepMessage> = {}): HepMessage {
  return {
    ipProtocol: HEP_PROTO_UDP,
    sourceAddress: '192.0.2.7',
    sourcePort: 5062,
    destinationAddress: '192.0.2.1',
    destinationPort: 5060,
    timestampMs: 1_700_000_000_123,
    payload: INVITE,
    correlationId: 'a84b4c76e66710@pc33.example.com',
    ...over,
  };
}

/** [vendor, type, value length] of every chunk, in order. */
const layout = (packet: Buffer): [number, number, number][] => decodeHep(packet).chunks.map((c) => [c.vendor, c.type, c.value.length]);

describe('HEPv3 encoder, checked by a decoder written from the spec', () => {
  it('IPv4 over UDP without a password: every chunk, its type, length and value', () => {
    const packet = new HepEncoder({ captureId: 2001 }).encode(message());
    if (!packet) throw new Error('not encoded');
    expect(packet.toString('latin1', 0, 4)).toBe('HEP3');
    expect(packet.readUInt16BE(4)).toBe(packet.length);
    expect(layout(packet)).toEqual([
      [0, 1, 1],
      [0, 2, 1],
      [0, 3, 4],
      [0, 4, 4],
      [0, 7, 2],
      [0, 8, 2],
      [0, 9, 4],
      [0, 10, 4],
      [0, 11, 1],
      [0, 12, 4],
      [0, 17, 'a84b4c76e66710@pc33.example.com'.length],
      [0, 15, INVITE.length],
    ]);
    const d = decodeHep(packet);
    expect(d).toMatchObject({
      family: 2,
      protocol: 17,
      source: '192.0.2.7',
      destination: '192.0.2.1',
      sourcePort: 5062,
      destinationPort: 5060,
      seconds: 1_700_000_000,
      microseconds: 123_000,
      protocolType: 1,
      captureId: 2001,
      authKey: undefined,
      correlationId: 'a84b4c76e66710@pc33.example.com',
    });
    expect(d.payload.equals(INVITE)).toBe(true);
  });

  it('IPv6 over TCP with a password: chunks 5 and 6, the auth key before the payload', () => {
    const packet = new HepEncoder({ captureId: 4_294_967_295, password: 'h0mer-s3cret' }).encode(
      message({ ipProtocol: HEP_PROTO_TCP, sourceAddress: '2001:db8::7', destinationAddress: 'fe80::1%eth0', sourcePort: 40_000, destinationPort: 5061 }),
    );
    if (!packet) throw new Error('not encoded');
    expect(layout(packet)).toEqual([
      [0, 1, 1],
      [0, 2, 1],
      [0, 5, 16],
      [0, 6, 16],
      [0, 7, 2],
      [0, 8, 2],
      [0, 9, 4],
      [0, 10, 4],
      [0, 11, 1],
      [0, 12, 4],
      [0, 14, 'h0mer-s3cret'.length],
      [0, 17, 'a84b4c76e66710@pc33.example.com'.length],
      [0, 15, INVITE.length],
    ]);
    expect(decodeHep(packet)).toMatchObject({
      family: 10,
      protocol: 6,
      source: '2001:db8:0:0:0:0:0:7',
      destination: 'fe80:0:0:0:0:0:0:1',
      sourcePort: 40_000,
      destinationPort: 5061,
      captureId: 4_294_967_295,
      authKey: 'h0mer-s3cret',
      protocolType: 1,
    });
  });

  it('IPv4 with a password and IPv6 without one', () => {
    const v4 = decodeHep(new HepEncoder({ captureId: 7, password: 'pw' }).encode(message()) ?? Buffer.alloc(0));
    expect(v4.family).toBe(2);
    expect(v4.authKey).toBe('pw');
    const v6 = decodeHep(new HepEncoder({ captureId: 7 }).encode(message({ sourceAddress: '::1', destinationAddress: '::1' })) ?? Buffer.alloc(0));
    expect(v6).toMatchObject({ family: 10, source: '0:0:0:0:0:0:0:1', destination: '0:0:0:0:0:0:0:1', authKey: undefined });
    expect(v6.chunks.some((c) => c.type === 14)).toBe(false);
  });

  it('one IPv4 and one IPv6 address: family 10, the IPv4 one mapped (::ffff:a.b.c.d)', () => {
    const d = decodeHep(new HepEncoder({ captureId: 1 }).encode(message({ sourceAddress: '192.0.2.7', destinationAddress: '2001:db8::1' })) ?? Buffer.alloc(0));
    expect(d).toMatchObject({ family: 10, source: '0:0:0:0:0:ffff:c000:207', destination: '2001:db8:0:0:0:0:0:1' });
  });

  it('no correlation id chunk without a Call-ID (bytes that did not parse)', () => {
    for (const correlationId of [undefined, '']) {
      const d = decodeHep(new HepEncoder({ captureId: 1 }).encode(message({ correlationId })) ?? Buffer.alloc(0));
      expect(d.correlationId).toBeUndefined();
      expect(d.chunks.map((c) => c.type)).not.toContain(17);
    }
  });

  it('the payload is the bytes exactly, whatever they are (UTF-8, NUL, high bytes)', () => {
    const payload = Buffer.concat([Buffer.from('MESSAGE sip:x SIP/2.0\r\nSubject: Grüße\r\n\r\n', 'utf8'), Buffer.from([0, 0xff, 0x80, 0x0d, 0x0a])]);
    const d = decodeHep(new HepEncoder({ captureId: 1 }).encode(message({ payload, correlationId: 'ünïcode@host' })) ?? Buffer.alloc(0));
    expect(d.payload.equals(payload)).toBe(true);
    expect(d.correlationId).toBe('ünïcode@host');
  });

  it('splits the timestamp into seconds and microseconds', () => {
    const at = (timestampMs: number) => decodeHep(new HepEncoder({ captureId: 1 }).encode(message({ timestampMs })) ?? Buffer.alloc(0));
    expect(at(1_700_000_000_000)).toMatchObject({ seconds: 1_700_000_000, microseconds: 0 });
    expect(at(1_700_000_000_999)).toMatchObject({ seconds: 1_700_000_000, microseconds: 999_000 });
    expect(at(1_700_000_000_123.456)).toMatchObject({ seconds: 1_700_000_000, microseconds: 123_456 });
  });

  it('an address that is none is written as zeros, not refused', () => {
    const d = decodeHep(new HepEncoder({ captureId: 1 }).encode(message({ sourceAddress: '', destinationAddress: 'not-an-address' })) ?? Buffer.alloc(0));
    expect(d).toMatchObject({ family: 10, source: '0:0:0:0:0:0:0:0', destination: '0:0:0:0:0:0:0:0' });
  });

  it('refuses a packet longer than the limit (the uint16 total length, or the one given)', () => {
    const enc = new HepEncoder({ captureId: 1 });
    const overhead = (enc.encode(message({ payload: Buffer.alloc(0) })) ?? Buffer.alloc(0)).length;
    expect(enc.encode(message({ payload: Buffer.alloc(HEP_MAX_LENGTH - overhead) }))?.length).toBe(HEP_MAX_LENGTH);
    expect(enc.encode(message({ payload: Buffer.alloc(HEP_MAX_LENGTH - overhead + 1) }))).toBeUndefined();
    expect(enc.encode(message({ payload: Buffer.alloc(1000) }), overhead + 999)).toBeUndefined();
    expect(enc.encode(message({ payload: Buffer.alloc(1000) }), overhead + 1000)?.length).toBe(overhead + 1000);
  });

  it('allocates one Buffer per packet', () => {
    const enc = new HepEncoder({ captureId: 1, password: 'pw' });
    const m = message({ sourceAddress: '2001:db8::7' });
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    const alloc = vi.spyOn(Buffer, 'alloc');
    const from = vi.spyOn(Buffer, 'from');
    try {
      enc.encode(m);
      expect(allocUnsafe).toHaveBeenCalledTimes(1);
      expect(alloc).not.toHaveBeenCalled();
      expect(from).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('IPv6 text forms (RFC 4291 §2.2)', () => {
  const groups = (s: string): number[] | false => {
    const g = new Uint16Array(8);
    return parseIPv6(s, g) ? [...g] : false;
  };

  it('reads the full, compressed, mixed and zoned forms', () => {
    expect(groups('2001:db8:0:0:1:0:0:1')).toEqual([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]);
    expect(groups('2001:DB8::1')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(groups('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(groups('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(groups('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(groups('1:2:3::6:7:8')).toEqual([1, 2, 3, 0, 0, 6, 7, 8]);
    expect(groups('::ffff:192.0.2.1')).toEqual([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]);
    expect(groups('fe80::1%eth0')).toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('refuses what is not an IPv6 address', () => {
    for (const bad of ['', ':', ':1', '1:', '1:::2', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::1.2.3', '::256.1.1.1', '192.0.2.1']) {
      expect(groups(bad), bad).toBe(false);
    }
  });
});
