import { describe, expect, it } from 'vitest';
import { SipParseError } from '../../../src/util/errors.js';
import { getHeader, getHeaderValues, type SipRequest, type SipResponse } from '../../../src/sip/message.js';
import { parseNameAddr } from '../../../src/sip/name-addr.js';
import { parseMessage, parseMessageHead } from '../../../src/sip/parser.js';
import { parseVia } from '../../../src/sip/via.js';
import { invite, SDP, sip } from './sip-text.js';

const BASE = [
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds',
  'To: <sip:bob@example.com>',
  'From: "Alice" <sip:alice@example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.example.com',
  'CSeq: 314159 OPTIONS',
  'Max-Forwards: 70',
];

function options(extra: string[] = [], body = ''): Buffer {
  return sip(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, ...extra], body);
}

function request(buf: Buffer): SipRequest {
  const m = parseMessage(buf);
  if (m.kind !== 'request') throw new Error('expected a request');
  return m;
}

function parseError(buf: Buffer, opts: { datagram?: boolean } = {}): SipParseError {
  try {
    parseMessage(buf, opts);
  } catch (err) {
    if (err instanceof SipParseError) return err;
    throw err;
  }
  throw new Error('expected parseMessage to throw');
}

describe('parseMessage: start lines', () => {
  it('reads method, Request-URI and version of a request', () => {
    const m = request(invite());
    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:1002@192.0.2.10:5060;transport=tcp');
    expect(m.version).toBe('SIP/2.0');
  });

  it('reads status and a multi-word reason phrase of a response', () => {
    const m = parseMessage(sip(['SIP/2.0 486 Busy Here', ...BASE.map((l) => l.replace('OPTIONS', 'INVITE'))])) as SipResponse;
    expect(m.kind).toBe('response');
    expect(m.status).toBe(486);
    expect(m.reason).toBe('Busy Here');
  });

  it('decodes a UTF-8 reason phrase', () => {
    const m = parseMessage(sip(['SIP/2.0 200 Très bien ✓', ...BASE])) as SipResponse;
    expect(m.reason).toBe('Très bien ✓');
  });

  it('skips CRLFs before the start line (RFC 3261 §7.5)', () => {
    const m = request(Buffer.concat([Buffer.from('\r\n\r\n\r\n'), options()]));
    expect(m.method).toBe('OPTIONS');
  });

  it('answers 505 for another SIP version, distinguishable by status', () => {
    const err = parseError(sip(['OPTIONS sip:bob@example.com SIP/3.0', ...BASE]));
    expect(err.reason).toBe('Unsupported SIP version');
    expect(err.status).toBe(505);
  });

  it('answers 400 for a version that is not SIP/x.y', () => {
    const err = parseError(sip(['OPTIONS sip:bob@example.com HTTP/1.1', ...BASE]));
    expect(err.reason).toBe('Bad Request-Line');
    expect(err.status).toBe(400);
  });

  it.each([
    ['SIP/2.0 99 Too Small', 'Bad status code'],
    ['SIP/2.0 700 Too Big', 'Bad status code'],
    ['SIP/2.0 2000 Four Digits', 'Bad status code'],
    ['SIP/2.0 20x Letters', 'Bad status code'],
  ])('rejects the status line %j', (line, reason) => {
    expect(parseError(sip([line, ...BASE])).reason).toBe(reason);
  });

  it('accepts an empty reason phrase', () => {
    const m = parseMessage(sip(['SIP/2.0 180 ', ...BASE])) as SipResponse;
    expect(m.status).toBe(180);
    expect(m.reason).toBe('');
  });

  it.each([
    ['OPTIONS  sip:bob@example.com SIP/2.0', 'Bad Request-Line'],
    ['OPTIONS sip:bob@example.com SIP/2.0 ', 'Bad Request-Line'],
    ['OPTIONS sip:bob@example.com', 'Bad Request-Line'],
    ['OPT(IONS sip:bob@example.com SIP/2.0', 'Bad method'],
    ['OPTIONS <sip:bob@example.com> SIP/2.0', 'Bad Request-URI'],
    ['OPTIONS sip:bob@ex ample.com SIP/2.0', 'Bad Request-URI'],
    ['OPTIONS sip:bob@example.com?Subject=x SIP/2.0', 'Bad Request-URI'],
    ['OPTIONS sip: SIP/2.0', 'Bad Request-URI'],
  ])('rejects the request line %j', (line, reason) => {
    expect(parseError(sip([line, ...BASE])).reason).toBe(reason);
  });

  it('accepts an absoluteURI of an unknown scheme as Request-URI (the core answers 416)', () => {
    expect(request(sip(['OPTIONS mailto:bob@example.com SIP/2.0', ...BASE])).uri).toBe('mailto:bob@example.com');
  });
});

describe('parseMessage: header lines', () => {
  it('keeps headers in order with the name spelling received and the value trimmed', () => {
    const m = request(options(['X-Custom  :   some value  ', 'x-custom:second']));
    expect(m.headers.map((h) => h.name)).toEqual(['Via', 'To', 'From', 'Call-ID', 'CSeq', 'Max-Forwards', 'X-Custom', 'x-custom']);
    expect(m.headers[6]).toEqual({ name: 'X-Custom', value: 'some value' });
    expect(m.headers[7]).toEqual({ name: 'x-custom', value: 'second' });
  });

  it('reads compact forms as their long names', () => {
    const m = request(
      sip([
        'INVITE sip:bob@example.com SIP/2.0',
        'v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa',
        't: <sip:bob@example.com>',
        'f: <sip:alice@example.com>;tag=1',
        'i: abc@host',
        'CSeq: 1 INVITE',
        'm: <sip:alice@192.0.2.1>',
        'c: application/sdp',
        'k: timer',
        'l: 0',
      ]),
    );
    expect(getHeader(m, 'Call-ID')).toBe('abc@host');
    expect(getHeader(m, 'Content-Type')).toBe('application/sdp');
    expect(getHeader(m, 'supported')).toBe('timer');
    expect(m.headers[4]?.name).toBe('CSeq');
    expect(m.headers[1]?.name).toBe('t');
  });

  it('joins folded continuation lines with one space', () => {
    const m = request(options(['Subject: I know you are there,', '  pick up the phone', '\tand talk to me!']));
    expect(getHeader(m, 'subject')).toBe('I know you are there, pick up the phone and talk to me!');
  });

  it('keeps an empty header value', () => {
    expect(getHeader(request(options(['Subject:'])), 'subject')).toBe('');
  });

  it('splits comma lists but not commas inside quotes or <>', () => {
    const m = request(
      options([
        'Contact: "Doe, John" <sip:john,doe@example.com;x=a>, <sip:jd@192.0.2.4>;q=0.5',
        'Contact: sip:third@example.com',
        'Allow: INVITE,ACK ,  BYE',
      ]),
    );
    expect(getHeaderValues(m, 'contact')).toEqual(['"Doe, John" <sip:john,doe@example.com;x=a>', '<sip:jd@192.0.2.4>;q=0.5', 'sip:third@example.com']);
    expect(getHeaderValues(m, 'allow')).toEqual(['INVITE', 'ACK', 'BYE']);
  });

  it('keeps quoted strings with escapes in display names', () => {
    const m = request(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE.filter((l) => !l.startsWith('From')), 'From: "Al \\"the pal\\" \\\\ A" <sip:al@example.com>;tag=5']));
    const from = parseNameAddr(getHeader(m, 'from') ?? '');
    expect(from.displayName).toBe('"Al \\"the pal\\" \\\\ A"');
    expect(from.uri).toBe('sip:al@example.com');
  });

  it('decodes UTF-8 in header values, including an unquoted-safe display name', () => {
    const m = request(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE.filter((l) => !l.startsWith('From')), 'From: "Zoë Ångström" <sip:zoe@example.com>;tag=9']));
    expect(parseNameAddr(getHeader(m, 'from') ?? '').displayName).toBe('"Zoë Ångström"');
  });

  it('tolerates bare LF line ends', () => {
    const text = ['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, 'Content-Length: 5', '', 'hello'].join('\n');
    const m = request(Buffer.from(text));
    expect(m.headers).toHaveLength(7);
    expect(m.body.toString()).toBe('hello');
  });

  it.each([
    [['Bad Header Line Without Colon'], 'Bad header line'],
    [['Bad Name: x'], 'Bad header name'],
    [['(x): y'], 'Bad header name'],
  ])('rejects the header line %j', (extra, reason) => {
    expect(parseError(options(extra)).reason).toBe(reason);
  });

  it('rejects a bare CR inside a header line or the start line', () => {
    expect(parseError(options(['Subject: a\rInjected: b'])).reason).toBe('Bad header line');
    expect(parseError(sip(['SIP/2.0 200 OK\rX: y', ...BASE])).reason).toBe('Bad start line');
  });

  it('rejects a continuation line right after the start line', () => {
    expect(parseError(sip(['OPTIONS sip:bob@example.com SIP/2.0', ' folded', ...BASE])).reason).toBe('Bad header folding');
  });

  it('rejects a header section without its blank line', () => {
    const text = `OPTIONS sip:bob@example.com SIP/2.0\r\n${BASE.join('\r\n')}\r\n`;
    expect(parseError(Buffer.from(text)).reason).toBe('Incomplete header section');
  });
});

describe('parseMessage: Via', () => {
  it('parses branch, received and rport with and without value', () => {
    const via = 'Via: SIP/2.0/TCP [2001:db8::9]:5070;rport;received=192.0.2.7;branch=z9hG4bKx, SIP/2.0/UDP h2.example.com;rport=5062';
    const m = request(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE.slice(1), via]));
    const vias = getHeaderValues(m, 'via').map(parseVia);
    expect(vias).toHaveLength(2);
    expect(vias[0]).toMatchObject({ protocol: 'SIP/2.0', transport: 'TCP', host: '[2001:db8::9]', port: 5070 });
    expect(vias[0]?.params.get('rport')).toBeNull();
    expect(vias[0]?.params.get('received')).toBe('192.0.2.7');
    expect(vias[0]?.params.get('branch')).toBe('z9hG4bKx');
    expect(vias[1]?.params.get('rport')).toBe('5062');
    expect(vias[1]?.port).toBeUndefined();
  });

  it('accepts LWS around the slashes, colon and semicolons', () => {
    const via = parseVia('SIP / 2.0 / udp  host.example.com : 5060 ; branch = z9hG4bKq');
    expect(via).toMatchObject({ protocol: 'SIP/2.0', transport: 'UDP', host: 'host.example.com', port: 5060 });
    expect(via.params.get('branch')).toBe('z9hG4bKq');
  });

  it.each([
    ['SIP/2.0/UDP', 'Bad Via header'],
    ['SIP/2.0 192.0.2.1', 'Bad Via header'],
    ['SIP/2.0/UDP 192.0.2.1:0', 'Bad Via port'],
    ['SIP/2.0/UDP 192.0.2.1:99999', 'Bad Via port'],
    ['SIP/2.0/UDP [::1;branch=x', 'Bad Via header'],
    ['SIP/2.0/UDP 192.0.2.1;;branch=x', 'Bad Via parameter'],
  ])('rejects the top Via %j', (value, reason) => {
    const err = parseError(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE.slice(1), `Via: ${value}`]));
    expect(err.reason).toBe(reason);
  });

  it('rejects a Via of slashes in linear time (no regex backtracking)', () => {
    const value = `${'a/'.repeat(20000)}a`;
    const started = performance.now();
    expect(() => parseVia(value)).toThrow('Bad Via header');
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe('parseMessage: validation', () => {
  it.each(['To', 'From', 'Call-ID', 'CSeq', 'Via'])('rejects a request without %s', (name) => {
    const lines = BASE.filter((l) => !l.startsWith(`${name}:`));
    expect(parseError(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...lines])).reason).toBe(`Missing ${name} header`);
  });

  it('names every missing header', () => {
    expect(parseError(sip(['OPTIONS sip:bob@example.com SIP/2.0', 'Max-Forwards: 70'])).reason).toBe('Missing To, From, Call-ID, CSeq, Via headers');
  });

  it('rejects a response without Via', () => {
    expect(parseError(sip(['SIP/2.0 200 OK', ...BASE.slice(1)])).reason).toBe('Missing Via header');
  });

  it('tolerates a request without Max-Forwards', () => {
    expect(request(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE.slice(0, 5)])).method).toBe('OPTIONS');
  });

  it.each(['To: <sip:x@example.com>', 'f: <sip:y@example.com>;tag=2', 'i: other', 'CSeq: 2 OPTIONS', 'l: 0', 'Max-Forwards: 69', 'c: text/plain', 'Expires: 60'])(
    'rejects a second single-valued header: %s',
    (extra) => {
      expect(parseError(options(['Content-Length: 0', 'Content-Type: application/sdp', 'Expires: 30', extra])).reason).toMatch(/^Multiple [A-Za-z-]+ headers$/);
    },
  );

  it('names the repeated header', () => {
    expect(parseError(options(['i: again'])).reason).toBe('Multiple Call-ID headers');
  });

  it('parses CSeq with leading zeros and LWS', () => {
    const m = request(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE.filter((l) => !l.startsWith('CSeq')), 'CSeq:   0009', '   OPTIONS']));
    expect(getHeader(m, 'cseq')).toBe('0009 OPTIONS');
  });

  it.each([
    ['CSeq: 1 INVITE', 'CSeq method does not match request method'],
    ['CSeq: 1 options', 'CSeq method does not match request method'],
    ['CSeq: INVITE', 'Bad CSeq header'],
    ['CSeq: 2147483648 OPTIONS', 'CSeq number too large'],
    ['CSeq: 99999999999999999999 OPTIONS', 'CSeq number too large'],
  ])('rejects %j', (cseq, reason) => {
    const lines = BASE.filter((l) => !l.startsWith('CSeq'));
    expect(parseError(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...lines, cseq])).reason).toBe(reason);
  });

  it.each([
    ['Max-Forwards: seventy', 'Bad Max-Forwards header'],
    ['Max-Forwards: 256', 'Bad Max-Forwards header'],
    ['Expires: -1', 'Bad Expires header'],
    ['Expires: 4294967296', 'Bad Expires header'],
    ['Date: Sat, 13 Nov 2010 23:29:00 PST', 'Bad Date header'],
    ['Call-ID: two words', 'Bad Call-ID header'],
  ])('rejects %j', (line, reason) => {
    const name = line.slice(0, line.indexOf(':'));
    const lines = BASE.filter((l) => !l.startsWith(`${name}:`));
    expect(parseError(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...lines, line])).reason).toBe(reason);
  });

  it('accepts Max-Forwards 0, Expires 0 and a GMT Date', () => {
    const lines = BASE.filter((l) => !l.startsWith('Max-Forwards'));
    const m = request(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...lines, 'Max-Forwards: 0', 'Expires: 0', 'Date: Sat, 13 Nov 2010 23:29:00 GMT']));
    expect(getHeader(m, 'max-forwards')).toBe('0');
  });

  it.each([
    ['To: Bob Smith, Jr <sip:bob@example.com>', 'Bad To header: display name must be quoted'],
    ['To: "Bob <sip:bob@example.com>', 'Bad To header: unterminated quoted display name'],
    ['To: < sip:bob@example.com >', 'Bad To header: bad URI in <>'],
    ['To: <sip:bob@[::1>', 'Bad To header: bad URI: unbalanced brackets'],
    ['To: <sip:bob@example.com:port>', 'Bad To header: bad URI port'],
  ])('rejects the address %j', (to, reason) => {
    const lines = BASE.filter((l) => !l.startsWith('To:'));
    expect(parseError(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...lines, to])).reason).toBe(reason);
  });

  it('accepts name-addr and addr-spec forms, with header parameters after LWS', () => {
    const lines = BASE.filter((l) => !l.startsWith('To:') && !l.startsWith('From:'));
    const m = request(sip(['OPTIONS sip:bob@example.com SIP/2.0', ...lines, 'To: sip:bob@example.com ;tag=a', 'From: Alice<sip:alice@example.com>;tag=b']));
    const to = parseNameAddr(getHeader(m, 'to') ?? '');
    expect(to).toMatchObject({ uri: 'sip:bob@example.com', angle: false });
    expect(to.params.get('tag')).toBe('a');
    expect(parseNameAddr(getHeader(m, 'from') ?? '').displayName).toBe('Alice');
  });

  it('validates Contact: star, lists, and URIs with headers outside <>', () => {
    expect(request(sip(['REGISTER sip:example.com SIP/2.0', ...BASE.map((l) => l.replace('OPTIONS', 'REGISTER')), 'Contact: *', 'Expires: 0'])).method).toBe('REGISTER');
    expect(parseError(options(['Contact: sip:a@example.com?Route=x'])).reason).toBe('Bad Contact header: URI with headers must be in <>');
    expect(parseError(options(['Contact: <sip:a@example.com>;;'])).reason).toBe('Bad Contact header: bad parameter');
  });
});

describe('parseMessage: Content-Length and body', () => {
  it('takes exactly Content-Length bytes of body', () => {
    const m = request(invite());
    expect(m.body.toString()).toBe(SDP);
  });

  it('keeps a binary body byte for byte', () => {
    const body = Buffer.from([0x00, 0x0d, 0x0a, 0x0d, 0x0a, 0xff, 0x80, 0x7f]);
    const m = request(Buffer.concat([options(['Content-Type: application/octet-stream', `Content-Length: ${body.length}`]), body]));
    expect(Buffer.compare(m.body, body)).toBe(0);
  });

  it('discards datagram bytes beyond Content-Length (RFC 3261 §18.3)', () => {
    expect(request(options(['Content-Length: 3'], 'abcdef')).body.toString()).toBe('abc');
  });

  it('takes the rest of a datagram as body when Content-Length is missing', () => {
    expect(request(options([], 'rest of it')).body.toString()).toBe('rest of it');
  });

  it('requires Content-Length for a message cut from a stream', () => {
    expect(parseError(options([], 'x'), { datagram: false }).reason).toBe('Missing Content-Length');
    expect(parseMessage(options(['l: 1'], 'x'), { datagram: false }).body.toString()).toBe('x');
  });

  it.each([
    ['Content-Length: 11', 'hello', 'Content-Length larger than body'],
    ['Content-Length: -1', '', 'Bad Content-Length'],
    ['Content-Length: 1e3', '', 'Bad Content-Length'],
    ['Content-Length: ', '', 'Bad Content-Length'],
  ])('rejects %j', (line, body, reason) => {
    expect(parseError(options([line], body)).reason).toBe(reason);
  });

  it('accepts Content-Length 0 with no body', () => {
    expect(request(options(['Content-Length: 0'])).body.length).toBe(0);
  });
});

describe('parseMessageHead', () => {
  it('reads start line and headers of a message that parseMessage rejects', () => {
    const buf = sip(['INVITE sip:bob@example.com SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa', 'CSeq: 1 INVITE', 'l: 4'], 'body');
    expect(() => parseMessage(buf)).toThrow('Missing To, From, Call-ID headers');
    const { message, bodyStart } = parseMessageHead(buf);
    expect(message).toMatchObject({ kind: 'request', method: 'INVITE' });
    expect(message.headers).toHaveLength(3);
    expect(buf.subarray(bodyStart).toString()).toBe('body');
  });

  it('rejects an empty buffer or one of only CRLFs', () => {
    expect(() => parseMessageHead(Buffer.from('\r\n\r\n'))).toThrow('Empty message');
  });
});
