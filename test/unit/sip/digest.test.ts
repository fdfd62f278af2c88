import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  authScheme,
  buildChallenge,
  buildChallenges,
  computeDigestResponse,
  credentialsForRealm,
  NonceManager,
  parseDigestCredentials,
  verifyDigest,
  type DigestCredentials,
} from '../../../src/sip/digest.js';
import { SipParseError } from '../../../src/util/errors.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** RFC 2617 §3.5 (HTTP, MD5, qop=auth). */
const RFC2617 = {
  header:
    'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", ' +
    'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", ' +
    'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
  password: 'Circle Of Life',
};

/** RFC 7616 §3.9.1 (HTTP, SHA-256 and MD5, qop=auth). */
const RFC7616 = {
  username: 'Mufasa',
  realm: 'http-auth@example.org',
  password: 'Circle of Life',
  method: 'GET',
  uri: '/dir/index.html',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  qop: 'auth',
  nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
};

function reason(value: string): string {
  try {
    parseDigestCredentials(value);
  } catch (err) {
    if (err instanceof SipParseError) return err.reason;
    throw err;
  }
  throw new Error('parsed');
}

describe('computeDigestResponse: published vectors', () => {
  it('RFC 2617 §3.5 MD5 example gives 6629fae4…', () => {
    const c = parseDigestCredentials(RFC2617.header);
    expect(computeDigestResponse({ ...c, algorithm: 'MD5', password: RFC2617.password, method: 'GET' })).toBe(
      '6629fae49393a05397450978507c4ef1',
    );
  });

  it('RFC 7616 §3.9.1 SHA-256 example gives 753927fa…', () => {
    expect(computeDigestResponse({ ...RFC7616, algorithm: 'SHA-256' })).toBe(
      '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    );
  });

  it('RFC 7616 §3.9.1 MD5 example gives 8ca523f5…', () => {
    expect(computeDigestResponse({ ...RFC7616, algorithm: 'MD5' })).toBe('8ca523f5e9506fed4657c9700eebdbec');
  });

  it('without qop the response is H(HA1:nonce:HA2) (RFC 2069 style, still common in SIP)', () => {
    const ha1 = md5('1001:sip.example:secret');
    const ha2 = md5('REGISTER:sip:sip.example');
    const got = computeDigestResponse({
      algorithm: 'MD5', username: '1001', realm: 'sip.example', password: 'secret', method: 'REGISTER',
      uri: 'sip:sip.example', nonce: 'abc',
    });
    expect(got).toBe(md5(`${ha1}:abc:${ha2}`));
  });

  it('MD5-sess folds nonce and cnonce into HA1', () => {
    const ha1 = md5(`${md5('u:r:p')}:n:c`);
    const got = computeDigestResponse({
      algorithm: 'MD5-sess', username: 'u', realm: 'r', password: 'p', method: 'INVITE', uri: 'sip:x', nonce: 'n',
      qop: 'auth', nc: '00000001', cnonce: 'c',
    });
    expect(got).toBe(md5(`${ha1}:n:00000001:c:auth:${md5('INVITE:sip:x')}`));
  });
});

describe('parseDigestCredentials', () => {
  it('reads every directive of RFC 2617 §3.5, algorithm defaulting to MD5', () => {
    expect(parseDigestCredentials(RFC2617.header)).toMatchObject({
      username: 'Mufasa', realm: 'testrealm@host.com', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', uri: '/dir/index.html',
      qop: 'auth', nc: '00000001', cnonce: '0a4f113b', opaque: '5ccc069c403ebaf9f0171e9517f40e41', algorithm: 'MD5',
    });
  });

  it('accepts any order, any case of names and scheme, extra whitespace and empty list elements', () => {
    const c = parseDigestCredentials(
      '  dIGEST  RESPONSE = "abc" ,, Nonce="n1",\tURI="sip:bob@b.example" , Realm = "b.example",UserName="bob",algorithm=sha-256 ',
    );
    expect(c).toMatchObject({ username: 'bob', realm: 'b.example', nonce: 'n1', uri: 'sip:bob@b.example', response: 'abc', algorithm: 'SHA-256' });
  });

  it('unescapes quoted strings and keeps commas and = inside them', () => {
    const c = parseDigestCredentials('Digest username="a\\"b\\\\c", realm="x, y=z", nonce="n", uri="sip:a;x=1,2", response="r"');
    expect(c.username).toBe('a"b\\c');
    expect(c.realm).toBe('x, y=z');
    expect(c.uri).toBe('sip:a;x=1,2');
  });

  it('ignores unknown directives but keeps them in params; accepts quoted qop and algorithm', () => {
    const c = parseDigestCredentials('Digest username="u", realm="r", nonce="n", uri="sip:r", response="x", foo=bar, qop="auth", algorithm="MD5", userhash=false');
    expect(c.params.get('foo')).toBe('bar');
    expect(c.qop).toBe('auth');
    expect(c.algorithm).toBe('MD5');
  });

  it('keeps an unknown algorithm as written', () => {
    const c = parseDigestCredentials('Digest username="u", realm="r", nonce="n", uri="sip:r", response="x", algorithm=SHA-512-256');
    expect(c.algorithm).toBe('SHA-512-256');
  });

  it.each([
    ['Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', 'Bad Authorization header: scheme is not Digest'],
    ['', 'Bad Authorization header: no scheme'],
    ['Digest realm="r", nonce="n", uri="u", response="x"', 'Bad Authorization header: missing username'],
    ['Digest username="u", realm="r", nonce="n", uri="u"', 'Bad Authorization header: missing response'],
    ['Digest realm="r", username="u', 'Bad Authorization header: unterminated quoted username'],
    ['Digest username="u, realm="r"', 'Bad Authorization header: missing comma after username'],
    ['Digest username="u" realm="r"', 'Bad Authorization header: missing comma after username'],
    ['Digest username', 'Bad Authorization header: username without a value'],
    ['Digest username=, realm="r"', 'Bad Authorization header: empty username'],
    ['Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x"', 'Bad Authorization header: username appears twice'],
    ['Digest ="a"', 'Bad Authorization header: unexpected "="'],
  ])('refuses %j', (value, why) => {
    expect(reason(value)).toBe(why);
  });

  it('authScheme names the scheme in lower case', () => {
    expect(authScheme('  Digest x=1')).toBe('digest');
    expect(authScheme('Basic abc')).toBe('basic');
    expect(authScheme('')).toBe('');
  });

  it('credentialsForRealm picks the header for our realm and skips other schemes and compact names', () => {
    const msg = {
      headers: [
        { name: 'Authorization', value: 'Basic abc' },
        { name: 'authorization', value: 'Digest username="u", realm="other", nonce="n", uri="sip:x", response="r1"' },
        { name: 'AUTHORIZATION', value: 'Digest username="u", realm="ours", nonce="n", uri="sip:x", response="r2"' },
        { name: 'Proxy-Authorization', value: 'Digest username="p", realm="ours", nonce="n", uri="sip:x", response="r3"' },
      ],
    };
    expect(credentialsForRealm(msg, 'ours')?.response).toBe('r2');
    expect(credentialsForRealm(msg, 'ours', 'Proxy-Authorization')?.response).toBe('r3');
    expect(credentialsForRealm(msg, 'none')).toBeUndefined();
  });
});

describe('buildChallenge', () => {
  it('builds a SHA-256 challenge with qop="auth"', () => {
    expect(buildChallenge({ realm: 'sip.example', nonce: 'N', algorithm: 'SHA-256' })).toBe(
      'Digest realm="sip.example", nonce="N", algorithm=SHA-256, qop="auth"',
    );
  });

  it('adds opaque and stale=true when asked and escapes quotes in the realm', () => {
    expect(buildChallenge({ realm: 'a"b', nonce: 'N', algorithm: 'MD5', stale: true, opaque: 'O' })).toBe(
      'Digest realm="a\\"b", nonce="N", opaque="O", algorithm=MD5, qop="auth", stale=true',
    );
  });

  it('refuses a realm with CR or LF (header injection)', () => {
    expect(() => buildChallenge({ realm: 'a\r\nX: y', nonce: 'N', algorithm: 'MD5' })).toThrow(SipParseError);
  });

  it('offers one challenge per algorithm, SHA-256 first then MD5 (RFC 8760 §2.4)', () => {
    const list = buildChallenges({ realm: 'r', nonce: 'N', stale: true });
    expect(list).toEqual([
      'Digest realm="r", nonce="N", algorithm=SHA-256, qop="auth", stale=true',
      'Digest realm="r", nonce="N", algorithm=MD5, qop="auth", stale=true',
    ]);
  });

  it('a challenge parses back with the same realm and nonce', () => {
    const ch = buildChallenge({ realm: 'x, "y"', nonce: 'N', algorithm: 'SHA-256' });
    const back = parseDigestCredentials(`${ch}, username="u", uri="sip:x", response="r"`);
    expect(back).toMatchObject({ realm: 'x, "y"', nonce: 'N', algorithm: 'SHA-256' });
  });
});

describe('verifyDigest', () => {
  function signed(over: Partial<DigestCredentials> & { algorithm?: 'MD5' | 'SHA-256' } = {}): DigestCredentials {
    const base = {
      username: '1001', realm: 'sip.example', nonce: 'NONCE', uri: 'sip:sip.example', qop: 'auth', nc: '00000001', cnonce: 'cn',
      algorithm: 'SHA-256' as const, ...over,
    };
    const response = computeDigestResponse({ ...base, password: 'pw', method: 'REGISTER' });
    return { ...base, response, params: new Map() };
  }
  const verify = (credentials: DigestCredentials, extra: { password?: string; requestUri?: string } = {}): string =>
    verifyDigest({ credentials, method: 'REGISTER', password: extra.password ?? 'pw', realm: 'sip.example', ...(extra.requestUri === undefined ? {} : { requestUri: extra.requestUri }) });

  it('accepts the right password with SHA-256 and with MD5', () => {
    expect(verify(signed())).toBe('ok');
    expect(verify(signed({ algorithm: 'MD5' }))).toBe('ok');
  });

  it('accepts the RFC 7616 SHA-256 example credentials', () => {
    const c = parseDigestCredentials(
      `Digest username="Mufasa", realm="${RFC7616.realm}", uri="${RFC7616.uri}", algorithm=SHA-256, nonce="${RFC7616.nonce}", ` +
        `nc=00000001, cnonce="${RFC7616.cnonce}", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"`,
    );
    expect(verifyDigest({ credentials: c, method: 'GET', password: RFC7616.password, realm: RFC7616.realm })).toBe('ok');
  });

  it('accepts an upper-case hex response', () => {
    const c = signed();
    expect(verify({ ...c, response: c.response.toUpperCase() })).toBe('ok');
  });

  it('refuses a wrong password, a truncated response and a different method', () => {
    const c = signed();
    expect(verify(c, { password: 'nope' })).toBe('wrong-response');
    expect(verify({ ...c, response: c.response.slice(0, 32) })).toBe('wrong-response');
    expect(verifyDigest({ credentials: c, method: 'INVITE', password: 'pw', realm: 'sip.example' })).toBe('wrong-response');
  });

  it('names what else is wrong', () => {
    expect(verify({ ...signed(), realm: 'other' })).toBe('realm-mismatch');
    expect(verify({ ...signed(), algorithm: 'SHA-512-256' })).toBe('unsupported-algorithm');
    expect(verify({ ...signed(), qop: 'auth-int' })).toBe('unsupported-qop');
    expect(verify({ ...signed(), nc: '1' })).toBe('bad-nc');
    const { cnonce: _drop, ...noCnonce } = signed();
    expect(verify(noCnonce)).toBe('missing-cnonce');
  });

  it('checks the digest uri against the Request-URI by SIP URI equality when asked', () => {
    const c = signed({ uri: 'sip:SIP.example;transport=tcp' });
    expect(verify(c, { requestUri: 'sip:sip.example;transport=TCP' })).toBe('ok');
    expect(verify(c, { requestUri: 'sip:other.example' })).toBe('uri-mismatch');
  });

  it('accepts credentials without qop', () => {
    const { qop: _q, nc: _n, cnonce: _c, ...rest } = signed();
    const response = computeDigestResponse({ ...rest, algorithm: 'SHA-256', password: 'pw', method: 'REGISTER' });
    expect(verify({ ...rest, response })).toBe('ok');
  });
});

describe('NonceManager', () => {
  const LIFETIME = 300_000;
  function setup(maxTracked?: number): { nm: NonceManager; clock: { t: number } } {
    const clock = { t: 1_700_000_000_000 };
    const nm = new NonceManager({
      secret: Buffer.alloc(32, 7), now: () => clock.t, random: randomBytes, lifetimeMs: LIFETIME,
      ...(maxTracked === undefined ? {} : { maxTracked }),
    });
    return { nm, clock };
  }

  it('issues distinct 48-character base64url nonces that check valid', () => {
    const { nm } = setup();
    const a = nm.issue();
    const b = nm.issue();
    expect(a).toMatch(/^[A-Za-z0-9_-]{48}$/);
    expect(a).not.toBe(b);
    expect(nm.check(a)).toBe('valid');
  });

  it('turns stale after its lifetime, on the injected clock', () => {
    const { nm, clock } = setup();
    const n = nm.issue();
    clock.t += LIFETIME;
    expect(nm.check(n)).toBe('valid');
    clock.t += 1;
    expect(nm.check(n)).toBe('stale');
    expect(nm.consume(n, '00000001')).toBe('stale');
  });

  it('calls a tampered, truncated, re-spelt or foreign nonce invalid', () => {
    const { nm } = setup();
    const n = nm.issue();
    const raw = Buffer.from(n, 'base64url');
    raw[3] = (raw[3] ?? 0) ^ 1; // timestamp byte
    expect(nm.check(raw.toString('base64url'))).toBe('invalid');
    expect(nm.check(n.slice(0, -1))).toBe('invalid');
    expect(nm.check(`${n.slice(0, -1)}=`)).toBe('invalid');
    expect(nm.check('not a nonce')).toBe('invalid');
    const other = new NonceManager({ secret: Buffer.alloc(32, 8), now: () => 1_700_000_000_000, random: randomBytes, lifetimeMs: LIFETIME });
    expect(nm.check(other.issue())).toBe('invalid');
  });

  it('accepts each nc once and only increasing', () => {
    const { nm } = setup();
    const n = nm.issue();
    expect(nm.consume(n, '00000001')).toBe('valid');
    expect(nm.consume(n, '00000001')).toBe('replay');
    expect(nm.consume(n, '00000003')).toBe('valid');
    expect(nm.consume(n, '00000002')).toBe('replay');
    expect(nm.consume(n, '0000000A')).toBe('valid');
    expect(nm.consume(n, '00000000')).toBe('replay');
    expect(nm.consume(n, 'zz')).toBe('replay');
  });

  it('a nonce used without qop cannot be used again, with or without qop', () => {
    const { nm } = setup();
    const n = nm.issue();
    expect(nm.consume(n, undefined)).toBe('valid');
    expect(nm.consume(n, undefined)).toBe('replay');
    expect(nm.consume(n, '00000005')).toBe('replay');
    const m = nm.issue();
    expect(nm.consume(m, '00000001')).toBe('valid');
    expect(nm.consume(m, undefined)).toBe('replay');
  });

  it('purges the uses of expired nonces', () => {
    const { nm, clock } = setup();
    nm.consume(nm.issue(), '00000001');
    clock.t += 1000;
    const fresh = nm.issue();
    nm.consume(fresh, '00000001');
    expect(nm.tracked).toBe(2);
    clock.t += LIFETIME;
    nm.purge();
    expect(nm.tracked).toBe(1);
    expect(nm.consume(fresh, '00000001')).toBe('replay');
  });

  it('stays bounded, and a nonce whose use was forgotten is stale, never replayable', () => {
    const { nm, clock } = setup(2);
    const first = nm.issue();
    expect(nm.consume(first, '00000001')).toBe('valid');
    clock.t += 1;
    const second = nm.issue();
    nm.consume(second, '00000001');
    clock.t += 1;
    const third = nm.issue();
    nm.consume(third, '00000001');
    expect(nm.tracked).toBe(2);
    expect(nm.check(first)).toBe('stale');
    expect(nm.consume(first, '00000001')).toBe('stale');
    expect(nm.consume(third, '00000001')).toBe('replay');
    expect(nm.consume(nm.issue(), '00000001')).toBe('valid');
  });

  it('treats nonces from before it was created as stale (a restart re-challenges, never replays)', () => {
    const clock = { t: 1_700_000_000_000 };
    const secret = Buffer.alloc(32, 9);
    const before = new NonceManager({ secret, now: () => clock.t, random: randomBytes, lifetimeMs: LIFETIME });
    const n = before.issue();
    before.consume(n, '00000001');
    clock.t += 10;
    const after = new NonceManager({ secret, now: () => clock.t, random: randomBytes, lifetimeMs: LIFETIME });
    expect(after.check(n)).toBe('stale');
    expect(after.consume(n, '00000001')).toBe('stale');
  });

  it('uses only the randomness it is given', () => {
    const clock = { t: 1_700_000_000_000 };
    const make = (): NonceManager =>
      new NonceManager({ secret: Buffer.alloc(32, 1), now: () => clock.t, random: (n) => Buffer.alloc(n, 0xab), lifetimeMs: LIFETIME });
    expect(make().issue()).toBe(make().issue());
  });

  it('refuses a short secret', () => {
    expect(() => new NonceManager({ secret: Buffer.alloc(8), now: () => 0, random: randomBytes, lifetimeMs: 1 })).toThrow(RangeError);
  });
});
