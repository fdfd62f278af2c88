import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SipParseError } from '../../../src/util/errors.js';
import { StreamFramer } from '../../../src/sip/framer.js';
import { getHeader, getHeaderValues, type SipMessage } from '../../../src/sip/message.js';
import { parseNameAddr } from '../../../src/sip/name-addr.js';
import { parseMessage } from '../../../src/sip/parser.js';
import { parseUri } from '../../../src/sip/uri.js';
import { parseVia } from '../../../src/sip/via.js';
import { RFC4475_DIR, rfc4475, rfc4475Bytes, type Rfc4475Entry } from '../../support/rfc4475.js';

type Entry = Rfc4475Entry;

const bytes = rfc4475Bytes;
const parse = (name: string): SipMessage => parseMessage(bytes(name));

const byExpect = (e: Entry['expect']): Entry[] => rfc4475.filter((m) => m.expect === e);

describe('RFC 4475 manifest', () => {
  it('lists all 49 messages of sections 3.1 to 3.4, each with its .sip file', () => {
    const files = readdirSync(RFC4475_DIR)
      .filter((f) => f.endsWith('.sip'))
      .map((f) => f.slice(0, -4))
      .sort();
    expect(rfc4475).toHaveLength(49);
    expect(rfc4475.map((m) => m.name).sort()).toEqual(files);
    expect(byExpect('valid').length + byExpect('invalid').length + byExpect('semantic').length).toBe(49);
  });

  it('gives every invalid message a reason and a status or discard action, every semantic one a status', () => {
    for (const m of byExpect('invalid')) expect(m.reason && (m.status !== undefined || m.action === 'discard'), m.name).toBeTruthy();
    for (const m of byExpect('semantic')) expect(typeof m.status, m.name).toBe('number');
  });
});

describe('RFC 4475 messages through parseMessage', () => {
  it.each([...byExpect('valid'), ...byExpect('semantic')].map((m) => [m.name, m] as const))('%s parses', (name) => {
    const msg = parse(name);
    expect(getHeader(msg, 'call-id')).toMatch(new RegExp(`^${name === 'mpart01' ? '3d9485ad' : name}`));
  });

  it.each(byExpect('invalid').map((m) => [m.name, m] as const))('%s is rejected', (name, entry) => {
    let error: unknown;
    try {
      parse(name);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SipParseError);
    const e = error as SipParseError;
    expect(e.reason).toContain(entry.reason);
    expect(e.status).toBe(entry.status ?? 400);
  });
});

describe('RFC 4475 messages on a stream', () => {
  const framed = rfc4475.filter((m) => !m.datagramOnly && !m.streamError);

  it('frames every message that does not depend on datagram framing, all in one stream', () => {
    const stream = Buffer.concat(framed.map((m) => bytes(m.name)));
    const events = new StreamFramer(65535).push(stream);
    expect(events.map((e) => e.type)).toEqual(framed.map(() => 'message'));
    events.forEach((e, i) => {
      const name = framed[i]?.name ?? '';
      expect(e.type === 'message' && e.data.equals(bytes(name)), name).toBe(true);
    });
  });

  it.each(rfc4475.filter((m) => m.streamError).map((m) => [m.name, m] as const))('%s makes the stream unframeable', (name, entry) => {
    const events = new StreamFramer(65535).push(bytes(name));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'error', reason: entry.streamError });
  });
});

describe('RFC 4475 valid messages: what the parser reads', () => {
  it('wsinv: folding, compact forms, LWS everywhere, three Via values, empty Subject', () => {
    const m = parse('wsinv');
    expect(m.headers).toHaveLength(14);
    expect(getHeader(m, 'subject')).toBe('');
    expect(getHeader(m, 'NewFangledHeader')).toBe('newfangled value continued newfangled value');
    expect(getHeader(m, 'UnknownHeaderWithUnusualValue')).toBe(';;,,;;,;');
    expect(getHeader(m, 'cseq')).toBe('0009 INVITE');
    const vias = getHeaderValues(m, 'via').map(parseVia);
    expect(vias.map((v) => [v.transport, v.host, v.params.get('branch')])).toEqual([
      ['UDP', '192.0.2.2', '390skdjuw'],
      ['TCP', 'spindle.example.com', 'z9hG4bK9ikj8'],
      ['UDP', '192.168.255.111', 'z9hG4bK30239'],
    ]);
    const from = parseNameAddr(getHeader(m, 'from') ?? '');
    expect(from.displayName).toBe('"J Rosenberg \\\\\\""');
    expect(from.params.get('tag')).toBe('98asjd8');
    expect(parseNameAddr(getHeader(m, 'to') ?? '').params.get('tag')).toBe('1918181833n');
    const contact = parseNameAddr(getHeader(m, 'contact') ?? '');
    expect([...contact.params]).toEqual([
      ['newparam', 'newvalue'],
      ['secondparam', null],
      ['q', '0.33'],
    ]);
    expect(m.body).toHaveLength(150);
  });

  it('intmeth: odd method, NUL inside a quoted pair, UTF-8 header value', () => {
    const m = parse('intmeth');
    expect(m.kind === 'request' && m.method).toBe("!interesting-Method0123456789_*+`.%indeed'~");
    expect(getHeader(m, 'to')).toContain('NUL:\\\u0000 DEL:\\\u007f"');
    expect(getHeader(m, "extensionHeader-!.%*+_`'~")).toBe('\ufeff大停電');
    expect(parseNameAddr(getHeader(m, 'from') ?? '').params.get("fromparam''~+*_!.-%")).toBe('"работающий"');
  });

  it('mpart01: the 553-byte body with its binary part arrives intact', () => {
    const m = parse('mpart01');
    expect(m.body).toHaveLength(553);
    const der = m.body.subarray(m.body.indexOf('\r\n\r\n0') + 4, m.body.lastIndexOf('\r\n--7a9cbec02ceef655--'));
    expect(der).toHaveLength(342);
    expect(der.subarray(0, 4).toString('hex')).toBe('30820152');
  });

  it('unreason and noreason: UTF-8 and empty reason phrases', () => {
    const u = parse('unreason');
    expect(u.kind === 'response' && u.reason).toBe('= 2**3 * 5**2 но сто девяносто девять - простое');
    const n = parse('noreason');
    expect(n.kind === 'response' && [n.status, n.reason]).toEqual([100, '']);
  });

  it('dblreq: only the REGISTER counts, the INVITE after it is dropped', () => {
    const m = parse('dblreq');
    expect(m.kind === 'request' && m.method).toBe('REGISTER');
    expect(m.body).toHaveLength(0);
  });

  it('longreq: 34 Via values and long parameters', () => {
    const m = parse('longreq');
    expect(getHeaderValues(m, 'via')).toHaveLength(34);
    expect(parseVia(getHeaderValues(m, 'via')[33] ?? '').params.get('branch')).toBe(`very${'long'.repeat(50)}branchvalue`);
  });

  it('semiuri, esc01, escnull: user parts with ; and escapes', () => {
    const semi = parse('semiuri');
    expect(semi.kind === 'request' && parseUri(semi.uri)).toMatchObject({ user: 'user;par=u%40example.net', host: 'example.com' });
    const esc = parse('esc01');
    expect(esc.kind === 'request' && parseUri(esc.uri)).toMatchObject({ user: 'sips%3Auser%40example.com', host: 'example.net' });
    expect(getHeaderValues(parse('escnull'), 'contact')).toEqual(['<sip:%00@host5.example.com>', '<sip:%00%00@host5.example.com>']);
  });

  it('transports: five Via transports including an unknown one', () => {
    expect(getHeaderValues(parse('transports'), 'via').map((v) => parseVia(v).transport)).toEqual(['UDP', 'SCTP', 'TLS', 'UNKNOWN', 'TCP']);
  });

  it('inv2543: no Content-Length, so the datagram rest is the body', () => {
    const m = parse('inv2543');
    expect(m.body.toString()).toMatch(/^v=0\r\n[\s\S]*m=audio 49217 RTP\/AVP 0\r\n$/);
  });

  it('unkscm, novelsc, unksm2: unknown schemes parse as opaque URIs', () => {
    const unk = parse('unkscm');
    expect(unk.kind === 'request' && parseUri(unk.uri)).toEqual({ kind: 'other', scheme: 'nobodyknowsthisscheme', opaque: 'totallyopaquecontent' });
    const novel = parse('novelsc');
    expect(novel.kind === 'request' && parseUri(novel.uri).scheme).toBe('soap.beep');
    expect(parseUri(parseNameAddr(getHeader(parse('unksm2'), 'to') ?? '').uri).scheme).toBe('isbn');
  });
});
