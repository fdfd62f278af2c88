import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SIP_VERSION, type SipMessage } from '../../../src/sip/message.js';
import { parseMessage } from '../../../src/sip/parser.js';
import { serializeMessage } from '../../../src/sip/serializer.js';
import { invite, SDP, sip } from './sip-text.js';

const FIXTURES = new URL('../../fixtures/rfc4475/', import.meta.url);

describe('serializeMessage', () => {
  it('writes start line, headers in order as stored, blank line and body', () => {
    const msg: SipMessage = {
      kind: 'request',
      method: 'MESSAGE',
      uri: 'sip:bob@example.com',
      version: SIP_VERSION,
      headers: [
        { name: 'v', value: 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1' },
        { name: 'To', value: '<sip:bob@example.com>' },
        { name: 'X-Odd-Case', value: 'kept' },
      ],
      body: Buffer.from('hi'),
    };
    expect(serializeMessage(msg).toString()).toBe(
      'MESSAGE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nTo: <sip:bob@example.com>\r\nX-Odd-Case: kept\r\nContent-Length: 2\r\n\r\nhi',
    );
  });

  it('writes a status line', () => {
    const msg: SipMessage = { kind: 'response', status: 180, reason: 'Ringing', version: SIP_VERSION, headers: [], body: Buffer.alloc(0) };
    expect(serializeMessage(msg).toString()).toBe('SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n');
  });

  it('replaces a wrong Content-Length in place, keeping its spelling, and drops repeats', () => {
    const msg: SipMessage = {
      kind: 'request',
      method: 'INFO',
      uri: 'sip:a@b',
      version: SIP_VERSION,
      headers: [
        { name: 'l', value: '99' },
        { name: 'To', value: '<sip:a@b>' },
        { name: 'Content-Length', value: '7' },
      ],
      body: Buffer.from('12345'),
    };
    expect(serializeMessage(msg).toString()).toBe('INFO sip:a@b SIP/2.0\r\nl: 5\r\nTo: <sip:a@b>\r\n\r\n12345');
  });

  it('encodes UTF-8 text and copies a binary body exactly', () => {
    const body = Buffer.from([0, 255, 13, 10, 128]);
    const msg: SipMessage = { kind: 'response', status: 200, reason: 'Très bien', version: SIP_VERSION, headers: [{ name: 'Subject', value: 'Zoë' }], body };
    const out = serializeMessage(msg);
    expect(out.subarray(0, out.length - body.length).toString('utf8')).toBe('SIP/2.0 200 Très bien\r\nSubject: Zoë\r\nContent-Length: 5\r\n\r\n');
    expect(Buffer.compare(out.subarray(out.length - body.length), body)).toBe(0);
  });
});

describe('serialize(parse(x))', () => {
  it('keeps every header of an INVITE byte for byte when nothing needs normalising', () => {
    const raw = invite();
    expect(serializeMessage(parseMessage(raw)).toString()).toBe(raw.toString());
  });

  it('normalises only folding and whitespace around the colon', () => {
    const raw = sip(
      [
        'OPTIONS sip:bob@example.com SIP/2.0',
        'Via  :  SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa',
        'To:<sip:bob@example.com>',
        'From: <sip:alice@example.com>',
        '  ;tag=1',
        'Call-ID: x@y',
        'CSeq: 1 OPTIONS',
        'l: 0',
      ],
      '',
    );
    expect(serializeMessage(parseMessage(raw)).toString()).toBe(
      [
        'OPTIONS sip:bob@example.com SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa',
        'To: <sip:bob@example.com>',
        'From: <sip:alice@example.com> ;tag=1',
        'Call-ID: x@y',
        'CSeq: 1 OPTIONS',
        'l: 0',
        '',
        '',
      ].join('\r\n'),
    );
  });

  it('adds Content-Length when the datagram had none', () => {
    const raw = sip(['OPTIONS sip:bob@example.com SIP/2.0', 'Via: SIP/2.0/UDP h;branch=z9hG4bKa', 'To: <sip:b@h>', 'From: <sip:a@h>;tag=1', 'Call-ID: c', 'CSeq: 1 OPTIONS'], SDP);
    const out = serializeMessage(parseMessage(raw)).toString();
    expect(out.endsWith(`CSeq: 1 OPTIONS\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`)).toBe(true);
  });

  const valid = ['wsinv', 'intmeth', 'esc01', 'escnull', 'esc02', 'lwsdisp', 'longreq', 'dblreq', 'semiuri', 'transports', 'mpart01', 'unreason', 'noreason', 'inv2543', 'unksm2', 'regescrt'];
  it.each(valid)('RFC 4475 %s: same headers, same body, and parses again to the same message', (name) => {
    const first = parseMessage(readFileSync(new URL(`${name}.sip`, FIXTURES)));
    const again = parseMessage(serializeMessage(first));
    const isLength = (name: string): boolean => /^(l|content-length)$/i.test(name);
    const lengthFree = (m: SipMessage): SipMessage['headers'] => m.headers.filter((h) => !isLength(h.name));
    expect(lengthFree(again)).toEqual(lengthFree(first));
    expect(again.headers.filter((h) => isLength(h.name))).toHaveLength(1);
    expect(Buffer.compare(again.body, first.body)).toBe(0);
    expect({ ...again, headers: [], body: null }).toEqual({ ...first, headers: [], body: null });
    if (first.headers.some((h) => isLength(h.name))) expect(again.headers).toEqual(first.headers);
  });
});
