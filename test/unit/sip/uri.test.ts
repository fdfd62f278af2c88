import { describe, expect, it } from 'vitest';
import { SipParseError } from '../../../src/util/errors.js';
import { uriEquals } from '../../../src/sip/uri-equals.js';
import { formatUri, isSipUri, parseUri, type SipUri } from '../../../src/sip/uri.js';

function sipUri(text: string): SipUri {
  const uri = parseUri(text);
  if (!isSipUri(uri)) throw new Error(`${text} is not a SIP URI`);
  return uri;
}

function reason(text: string): string {
  try {
    parseUri(text);
  } catch (err) {
    if (err instanceof SipParseError) return err.reason;
    throw err;
  }
  throw new Error(`${text} parsed`);
}

describe('parseUri: sip and sips', () => {
  it('splits user, password, host, port, parameters and headers', () => {
    const uri = sipUri('sips:alice:secret@Atlanta.example.com:5061;transport=TCP;lr;Maddr=239.255.255.1?subject=project%20x&priority=urgent');
    expect(uri).toMatchObject({ kind: 'sip', scheme: 'sips', user: 'alice', password: 'secret', host: 'Atlanta.example.com', port: 5061 });
    expect([...uri.params]).toEqual([
      ['transport', 'TCP'],
      ['lr', null],
      ['maddr', '239.255.255.1'],
    ]);
    expect(uri.headers).toEqual([
      ['subject', 'project%20x'],
      ['priority', 'urgent'],
    ]);
  });

  it('lower-cases the scheme', () => {
    expect(sipUri('SIP:bob@example.com').scheme).toBe('sip');
  });

  it('accepts a URI without user part', () => {
    const uri = sipUri('sip:192.0.2.4');
    expect(uri.user).toBeUndefined();
    expect(uri.host).toBe('192.0.2.4');
    expect(uri.port).toBeUndefined();
  });

  it('reads an IPv6 reference with and without port', () => {
    expect(sipUri('sip:bob@[2001:db8::10]:5070').host).toBe('[2001:db8::10]');
    expect(sipUri('sip:bob@[2001:db8::10]:5070').port).toBe(5070);
    expect(sipUri('sip:[::ffff:192.0.2.1];transport=udp').host).toBe('[::ffff:192.0.2.1]');
  });

  it('keeps percent-escapes as written', () => {
    const uri = sipUri('sip:%61lice@example.com;n%61me=v%61lue');
    expect(uri.user).toBe('%61lice');
    expect(uri.params.get('n%61me')).toBe('v%61lue');
  });

  it('allows ; ? / , in the user part (RFC 4475 semiuri, intmeth)', () => {
    expect(sipUri('sip:user;par=u%40example.net@example.com').user).toBe('user;par=u%40example.net');
    const uri = sipUri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
    expect(uri.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    expect(uri.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    expect(uri.host).toBe('example.com');
  });

  it.each([
    ['sip:bob@exa mple.com', 'Bad URI: contains whitespace'],
    ['sip:bob@example.com\t', 'Bad URI: contains whitespace'],
    ['s ip:bob@example.com', 'Bad URI scheme'],
    ['1sip:bob@example.com', 'Bad URI scheme'],
    ['<sip:bob@example.com>', 'Bad URI scheme'],
    ['sip:bob@example.com:', 'Bad URI port'],
    ['sip:bob@example.com:65536', 'Bad URI port'],
    ['sip:bob@example.com:50x', 'Bad URI port'],
    ['sip:bob@', 'Bad URI: empty host'],
    ['sip:', 'Bad URI: empty host'],
    ['sip:bob@;lr', 'Bad URI: empty host'],
    ['sip:bob@[2001:db8::1', 'Bad URI: unbalanced brackets'],
    ['sip:bob@2001:db8::1]', 'Bad URI port'],
    ['sip:bob@host]', 'Bad URI: unbalanced brackets'],
    ['sip:bob@[zz::1]', 'Bad URI IPv6 reference'],
    ['sip:a@b@example.com', 'Bad URI user part'],
    ['sip:@example.com', 'Bad URI user part'],
    ['sip:bob%zz@example.com', 'Bad URI user part'],
    ['sip:bob@exa<mple.com', 'Bad URI host'],
    ['sip:bob@example.com;;lr', 'Bad URI parameter'],
    ['sip:bob@example.com;x=', 'Bad URI parameter'],
    ['sip:bob@example.com?subject', 'Bad URI header'],
    ['sip:bob@example.comé', 'Bad URI character'],
  ])('rejects %j', (text, why) => {
    expect(reason(text)).toBe(why);
  });
});

describe('parseUri: tel and other schemes', () => {
  it('parses a global tel URI with parameters', () => {
    expect(parseUri('tel:+1-201-555-0123;ext=1234;Phone-Context=example.com')).toEqual({
      kind: 'tel',
      scheme: 'tel',
      number: '+1-201-555-0123',
      params: new Map([
        ['ext', '1234'],
        ['phone-context', 'example.com'],
      ]),
    });
  });

  it('rejects an empty tel number', () => {
    expect(reason('tel:;ext=1')).toBe('Bad URI tel number');
  });

  it.each(['http://www.example.com/a?b=c', 'mailto:bob@example.com', 'isbn:2983792873', 'soap.beep://192.0.2.103:3002', 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6'])(
    'reads %s as an opaque absoluteURI',
    (text) => {
      const uri = parseUri(text);
      expect(uri.kind).toBe('other');
      expect(formatUri(uri)).toBe(text);
    },
  );

  it('lower-cases an unknown scheme and keeps the rest', () => {
    expect(parseUri('NobodyKnowsThisScheme:totallyOpaque')).toEqual({ kind: 'other', scheme: 'nobodyknowsthisscheme', opaque: 'totallyOpaque' });
  });

  it.each([
    ['http:', 'Bad URI: not an absoluteURI'],
    ['http://a"b', 'Bad URI: not an absoluteURI'],
    ['noscheme', 'Bad URI scheme'],
  ])('rejects %j', (text, why) => {
    expect(reason(text)).toBe(why);
  });
});

describe('formatUri', () => {
  it.each([
    'sip:alice@example.com',
    'sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=x&h=',
    'sip:192.0.2.1:5060;maddr=239.255.255.1',
    'tel:+12015550123;ext=12',
  ])('round-trips %s', (text) => {
    expect(formatUri(parseUri(text))).toBe(text);
  });
});

describe('uriEquals (RFC 3261 §19.1.4)', () => {
  const eq = (a: string, b: string): boolean => uriEquals(parseUri(a), parseUri(b));

  it.each([
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;newparam=5'],
    ['sip:alice@atlanta.com?subject=project%20x&priority=urgent', 'sip:alice@atlanta.com?priority=urgent&subject=project%20x'],
    ['tel:+1-201-555-0123', 'tel:+12015550123'],
  ])('%s equals %s', (a, b) => {
    expect(eq(a, b)).toBe(true);
  });

  it.each([
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'],
    ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'],
    ['sip:alice@atlanta.com', 'sips:alice@atlanta.com'],
    ['sip:alice@atlanta.com', 'tel:+1'],
  ])('%s differs from %s', (a, b) => {
    expect(eq(a, b)).toBe(false);
  });
});
