// The fuzzer's seed corpus: real SIP messages to mutate. The RFC 4475 torture messages
// (test/fixtures/rfc4475), the typical INVITE of the parser tests and bench/parse
// (test/fixtures/typical-invite.json), and the requests and responses a B2BUA sees every day,
// written here. Also the header values the header parsers get, taken from those messages.
import { readFileSync } from 'node:fs';

/** test/fixtures; scripts/fuzz.mjs, which runs a compiled copy of these files elsewhere, names it. */
export const FIXTURES = new URL('../fixtures/', import.meta.url);

/** Header lines joined with CRLF, Content-Length added (unless `lines` has one), then the body. */
function msg(lines: string[], body = ''): Buffer {
  const head = lines.some((l) => /^(content-length|l)\s*:/i.test(l)) ? lines : [...lines, `Content-Length: ${Buffer.byteLength(body)}`];
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`, 'utf8');
}

const SDP = ['v=0', 'o=- 2890844526 2890844527 IN IP4 192.0.2.21', 's=-', 'c=IN IP4 192.0.2.21', 't=0 0', 'm=audio 49170 RTP/AVP 0 8 101', 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv', ''].join('\r\n');

const DIGEST =
  'Digest username="1001", realm="sip.example.com", nonce="ZTc2YjM0ZGQtMTcwMDAwMDAwMA==", uri="sip:sip.example.com", ' +
  'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"';

/** Typical traffic of a registrar and B2BUA, requests and responses. */
const TYPICAL_MESSAGES = [
  msg([
    'REGISTER sip:192.0.2.10 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.21:5060;rport;branch=z9hG4bK-d8754z-1a2b3c',
    'Max-Forwards: 70',
    'Contact: <sip:1001@192.0.2.21:5060;rinstance=8f7a6e5d;transport=udp>;expires=3600;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1',
    'To: <sip:1001@192.0.2.10>',
    'From: <sip:1001@192.0.2.10>;tag=a73kszlfl',
    'Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.21',
    'CSeq: 2 REGISTER',
    'Expires: 3600',
    `Authorization: ${DIGEST}`,
    'User-Agent: Example Phone 2.1',
    'Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, INFO',
    'Supported: path, outbound, gruu',
  ]),
  msg([
    'REGISTER sips:[2001:db8::10]:5061 SIP/2.0',
    'v: SIP/2.0/TLS [2001:db8::21]:50632;branch=z9hG4bK776asdhds;alias',
    'f: "Bob \\"the\\" Builder" <sips:1002@[2001:db8::10]>;tag=456248',
    't: <sips:1002@[2001:db8::10]>',
    'i: 843817637684230@998sdasdh09',
    'CSeq: 1826 REGISTER',
    'm: *',
    'Expires: 0',
    'Proxy-Authorization: Digest username="1002",realm="x",nonce="abc\\"def",uri="sips:[2001:db8::10]",response="0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",algorithm=SHA-256,qop=auth,nc=0000000a,cnonce="q\\\\z"',
  ]),
  msg([
    'OPTIONS sip:192.0.2.10:5060 SIP/2.0',
    'Via: SIP/2.0/TCP 192.0.2.30:41234;branch=z9hG4bK.options.1;rport',
    'Max-Forwards: 70',
    'To: <sip:192.0.2.10:5060>',
    'From: "Monitor" <sip:monitor@192.0.2.30>;tag=73ac9',
    'Call-ID: options-4f2a@192.0.2.30',
    'CSeq: 7 OPTIONS',
    'Accept: application/sdp',
  ]),
  msg([
    'INVITE sip:+15551234567@trunk.example.net;user=phone SIP/2.0',
    'Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-b2b-77',
    'Via: SIP/2.0/UDP 192.0.2.21:5060;received=198.51.100.7;rport=40000;branch=z9hG4bK-ph-1, SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK-old',
    'Record-Route: <sip:192.0.2.10;lr;transport=tcp>',
    'Route: <sip:trunk.example.net;lr>, <sip:192.0.2.99:5070;lr>',
    'Max-Forwards: 69',
    'To: "+1 555 123 4567" <tel:+1-555-123-4567;phone-context=example.net>',
    'From: Alice <sip:1001@192.0.2.10;user=phone>;tag=b2b-99',
    'Call-ID: b2b-1f00@192.0.2.10',
    'CSeq: 1 INVITE',
    'Contact: <sip:b2b@192.0.2.10:5060;transport=tcp>',
    'Session-Expires: 1800;refresher=uac',
    'Min-SE: 90',
    'P-Asserted-Identity: <sip:1001@192.0.2.10>',
    'Content-Type: application/sdp',
  ], SDP),
  msg([
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 192.0.2.21:5060;received=198.51.100.7;rport=40000;branch=z9hG4bK-ph-1',
    'Record-Route: <sip:192.0.2.10;lr>',
    'To: <sip:1002@192.0.2.10>;tag=callee-1',
    'From: "Alice Example" <sip:1001@192.0.2.10>;tag=9fxced76sl',
    'Call-ID: 3848276298220188511@192.0.2.21',
    'CSeq: 1 INVITE',
    'Contact: <sip:1002@192.0.2.22:5062;transport=udp>;+sip.instance="<urn:uuid:1>"',
    'Allow: INVITE, ACK, CANCEL, BYE, UPDATE, REFER',
    'Supported: replaces, timer',
    'Content-Type: application/sdp',
  ], SDP),
  msg(['SIP/2.0 100 Trying', 'Via: SIP/2.0/TCP 192.0.2.21:5060;branch=z9hG4bK-1', 'To: <sip:1002@192.0.2.10>', 'From: <sip:1001@192.0.2.10>;tag=1', 'Call-ID: c1@h', 'CSeq: 1 INVITE']),
  msg(['SIP/2.0 180 Ringing', 'v: SIP/2.0/UDP h:5060;branch=z9hG4bK-2', 't: <sip:1002@h>;tag=r', 'f: <sip:1001@h>;tag=1', 'i: c2@h', 'CSeq: 1 INVITE', 'm: <sip:1002@192.0.2.22>']),
  msg([
    'SIP/2.0 401 Unauthorized',
    'Via: SIP/2.0/UDP 192.0.2.21:5060;rport=5060;received=192.0.2.21;branch=z9hG4bK-d8754z-1a2b3c',
    'To: <sip:1001@192.0.2.10>;tag=srv-1',
    'From: <sip:1001@192.0.2.10>;tag=a73kszlfl',
    'Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.21',
    'CSeq: 1 REGISTER',
    'WWW-Authenticate: Digest realm="sip.example.com", nonce="bm9uY2U=", algorithm=SHA-256, qop="auth"',
    'WWW-Authenticate: Digest realm="sip.example.com", nonce="bm9uY2U=", algorithm=MD5, qop="auth", stale=true',
  ]),
  msg([
    'SIP/2.0 407 Proxy Authentication Required',
    'Via: SIP/2.0/TCP 192.0.2.21;branch=z9hG4bK-3',
    'To: <sip:2000@192.0.2.10>;tag=x',
    'From: <sip:1001@192.0.2.10>;tag=y',
    'Call-ID: c3',
    'CSeq: 1 INVITE',
    'Proxy-Authenticate: Digest realm="r", nonce="n", opaque="o", algorithm=MD5',
  ]),
  msg(['SIP/2.0 486 Busy Here', 'Via: SIP/2.0/UDP h;branch=z9hG4bK-4', 'To: <sip:b@h>;tag=t', 'From: <sip:a@h>;tag=f', 'Call-ID: c4', 'CSeq: 9 INVITE', 'Reason: SIP;cause=486;text="Busy Here"', 'Warning: 399 h "nothing \\"here\\""']),
  msg(['ACK sip:1002@192.0.2.22:5062 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK-ack-1', 'Route: <sip:192.0.2.10;lr>', 'Max-Forwards: 70', 'To: <sip:1002@192.0.2.10>;tag=callee-1', 'From: "Alice Example" <sip:1001@192.0.2.10>;tag=9fxced76sl', 'Call-ID: 3848276298220188511@192.0.2.21', 'CSeq: 1 ACK']),
  msg(['BYE sip:1002@192.0.2.22:5062;transport=tcp SIP/2.0', 'Via: SIP/2.0/TCP 192.0.2.21:5060;branch=z9hG4bK-bye-1;rport', 'Max-Forwards: 70', 'To: <sip:1002@192.0.2.10>;tag=callee-1', 'From: <sip:1001@192.0.2.10>;tag=9fxced76sl', 'Call-ID: 3848276298220188511@192.0.2.21', 'CSeq: 2 BYE', 'Reason: Q.850;cause=16;text="Normal call clearing"']),
  msg(['CANCEL sip:1002@192.0.2.10 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK-524287-1', 'Max-Forwards: 70', 'To: <sip:1002@192.0.2.10>', 'From: <sip:1001@192.0.2.10>;tag=9fxced76sl', 'Call-ID: 3848276298220188511@192.0.2.21', 'CSeq: 1 CANCEL']),
  msg([
    'REFER sip:1002@192.0.2.22 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bK-refer-1',
    'Max-Forwards: 70',
    'To: <sip:1002@192.0.2.10>;tag=callee-1',
    'From: <sip:1001@192.0.2.10>;tag=9fxced76sl',
    'Call-ID: 3848276298220188511@192.0.2.21',
    'CSeq: 3 REFER',
    'Refer-To: <sip:1003@192.0.2.10?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2&Require=replaces>',
    'Referred-By: <sip:1001@192.0.2.10>',
    'Contact: <sip:1001@192.0.2.21:5060>',
  ]),
  msg(['NOTIFY sip:1001@192.0.2.21:5060 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-n1', 'Max-Forwards: 70', 'To: <sip:1001@192.0.2.10>;tag=9fxced76sl', 'From: <sip:1002@192.0.2.10>;tag=callee-1', 'Call-ID: 3848276298220188511@192.0.2.21', 'CSeq: 4 NOTIFY', 'Event: refer;id=3', 'Subscription-State: terminated;reason=noresource', 'Content-Type: message/sipfrag;version=2.0'], 'SIP/2.0 200 OK\r\n'),
  msg(['MESSAGE sip:1002@192.0.2.10 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.21;branch=z9hG4bK-m1', 'Max-Forwards: 70', 'To: sip:1002@192.0.2.10', 'From: sip:1001@192.0.2.10;tag=m', 'Call-ID: m1', 'CSeq: 1 MESSAGE', 'Content-Type: text/plain;charset=utf-8', 'Date: Sat, 13 Nov 2010 23:29:00 GMT'], 'Grüße, 世界 \u{1F600}'),
  msg(['INFO sip:1002@192.0.2.22 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.21;branch=z9hG4bK-i1', 'To: <sip:1002@192.0.2.10>;tag=a', 'From: <sip:1001@192.0.2.10>;tag=b', 'Call-ID: i1', 'CSeq: 5 INFO', 'Content-Type: application/dtmf-relay'], 'Signal=5\r\nDuration=160\r\n'),
  msg(['SUBSCRIBE sip:1002@192.0.2.10 SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.21;branch=z9hG4bK-s1', 'Max-Forwards: 70', 'To: <sip:1002@192.0.2.10>', 'From: <sip:1001@192.0.2.10>;tag=s', 'Call-ID: s1', 'CSeq: 1 SUBSCRIBE', 'Event: presence', 'Expires: 600', 'Accept: application/pidf+xml', 'Contact: <sip:1001@192.0.2.21>']),
  // A folded header, LWS around ":" and compact forms.
  msg(['UPDATE sip:1002@192.0.2.22 SIP/2.0', 'Via : SIP/2.0/UDP 192.0.2.21 ; branch = z9hG4bK-u1', 'To:\t<sip:1002@192.0.2.10>;tag=a', 'From: <sip:1001@192.0.2.10>', '  ;tag=b', 'i: u1', 'CSeq: 6 UPDATE', 'k: timer', 'c: application/sdp', 'l: 0']),
];

function typicalInvite(fixtures: URL): Buffer {
  const t = JSON.parse(readFileSync(new URL('typical-invite.json', fixtures), 'utf8')) as { head: string[]; sdp: string[] };
  const sdp = t.sdp.join('\r\n');
  return msg(t.head, sdp);
}

function rfc4475Messages(fixtures: URL): Buffer[] {
  const dir = new URL('rfc4475/', fixtures);
  const manifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8')) as { messages: Array<{ name: string }> };
  return manifest.messages.map((m) => readFileSync(new URL(`${m.name}.sip`, dir)));
}

/** Every message of the corpus, as bytes. */
export function corpusMessages(fixtures: URL = FIXTURES): Buffer[] {
  return [...rfc4475Messages(fixtures), typicalInvite(fixtures), ...TYPICAL_MESSAGES];
}

/** A well-formed message of the corpus (the framer fuzz puts one after a mutated one). */
export const WELL_FORMED: Buffer = TYPICAL_MESSAGES[2] ?? Buffer.alloc(0);

export type ValueKind = 'via' | 'addr' | 'uri' | 'cseq' | 'params' | 'digest';

const KINDS: Partial<Record<ValueKind, string[]>> = {
  via: ['via', 'v'],
  addr: ['from', 'f', 'to', 't', 'contact', 'm', 'route', 'record-route', 'refer-to', 'r', 'referred-by', 'b', 'p-asserted-identity'],
  cseq: ['cseq'],
  digest: ['authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate'],
};

/**
 * Header values of the corpus by the parser they are meant for: `via`, `addr` (name-addr),
 * `uri` (Request-URIs and URIs in <>), `cseq`, `params` (what follows the first ";" of Via
 * and address values) and `digest`. Read with a naive line split, not the parser under test.
 */
export function corpusHeaderValues(messages: readonly Buffer[]): Record<ValueKind, string[]> {
  const out: Record<ValueKind, string[]> = { via: [], addr: [], uri: [], cseq: [], params: [], digest: [] };
  for (const m of messages) {
    const text = m.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    const lines = (end < 0 ? text : text.slice(0, end)).split(/\r?\n/);
    const start = lines[0] ?? '';
    const reqUri = /^\S+ (\S+) SIP\/2\.0$/.exec(start)?.[1];
    if (reqUri && !start.startsWith('SIP/')) out.uri.push(reqUri);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      for (const [kind, names] of Object.entries(KINDS) as Array<[ValueKind, string[]]>) {
        if (!names.includes(name)) continue;
        out[kind].push(value);
        if (kind === 'via' || kind === 'addr') {
          const semi = value.lastIndexOf('>') >= 0 ? value.indexOf(';', value.lastIndexOf('>')) : value.indexOf(';');
          if (semi >= 0) out.params.push(value.slice(semi + 1));
        }
      }
      for (const u of value.matchAll(/<([^<>]+)>/g)) if (u[1] !== undefined) out.uri.push(u[1]);
    }
  }
  for (const k of Object.keys(out) as ValueKind[]) out[k] = [...new Set(out[k])];
  return out;
}
