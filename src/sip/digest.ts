import { createHash, timingSafeEqual } from 'node:crypto';
import { SipParseError } from '../util/errors.js';
import { canonicalHeaderName, type SipHeader } from './message.js';
import { uriEquals } from './uri-equals.js';
import { parseUri } from './uri.js';

/**
 * HTTP Digest authentication as used by SIP: RFC 3261 §22.4, with the SHA-256 algorithm of
 * RFC 8760 and the parameter rules of RFC 7616. Pure: hashing only, no I/O, no clock; nonces
 * (which need time and randomness) are made and checked by NonceManager in digest-nonce.ts.
 *
 * A server that authenticates a request:
 *  1. finds the credentials for its realm (credentialsForRealm), parse errors → 400;
 *  2. checks the nonce (NonceManager.check): 'invalid' → 401 with a fresh challenge;
 *  3. verifies the response (verifyDigest) with the DN's password;
 *  4. for a correct response on a 'stale' nonce → 401 with stale=true; on a valid nonce it
 *     records the use (NonceManager.consume) and a 'replay' gets 401 with a fresh nonce;
 *  5. challenges with buildChallenges(): one WWW-Authenticate per algorithm, SHA-256 first.
 */
export { NonceManager, type NonceManagerOptions, type NonceStatus, type NonceUse } from './digest-nonce.js';

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

/** The algorithms this server offers, preferred first (RFC 8760 §2.4). */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

const KNOWN_ALGORITHMS: ReadonlyMap<string, DigestAlgorithm> = new Map([
  ['md5', 'MD5'],
  ['md5-sess', 'MD5-sess'],
  ['sha-256', 'SHA-256'],
  ['sha-256-sess', 'SHA-256-sess'],
]);

/** The directives of an Authorization or Proxy-Authorization header using the Digest scheme. */
export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  /** A DigestAlgorithm in canonical spelling when known ('MD5' when absent), else as received. */
  algorithm: string;
  cnonce?: string;
  /** As received, e.g. 'auth'; absent for RFC 2069-style credentials. */
  qop?: string;
  /** Nonce count: 8 hex digits when qop is present. */
  nc?: string;
  opaque?: string;
  /** Every directive, names lower-case, values unquoted and unescaped (unknown ones too). */
  params: ReadonlyMap<string, string>;
}

const REQUIRED = ['username', 'realm', 'nonce', 'uri', 'response'] as const;

/** The scheme of an Authorization-style value, lower-case ('digest', 'basic', …). */
export function authScheme(value: string): string {
  const m = /^\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)/.exec(value);
  return (m?.[1] ?? '').toLowerCase();
}

/**
 * Parses `Digest username="…", realm="…", …`. Directive names are case-insensitive and may
 * come in any order; values may be tokens or quoted strings with backslash escapes; unknown
 * directives are kept in `params` and otherwise ignored. Throws SipParseError (→ 400) for a
 * scheme other than Digest, bad syntax, a repeated directive or a missing required one.
 */
export function parseDigestCredentials(value: string, headerName = 'Authorization'): DigestCredentials {
  const bad = (what: string): SipParseError => new SipParseError(`Bad ${headerName} header: ${what}`);
  const text = value.trim();
  const scheme = authScheme(text);
  if (scheme !== 'digest') throw bad(scheme === '' ? 'no scheme' : 'scheme is not Digest');
  const params = parseAuthParams(text, 'digest'.length, bad);
  for (const name of REQUIRED) if (!params.has(name)) throw bad(`missing ${name}`);
  const algo = params.get('algorithm') ?? 'MD5';
  const creds: DigestCredentials = {
    username: params.get('username') ?? '',
    realm: params.get('realm') ?? '',
    nonce: params.get('nonce') ?? '',
    uri: params.get('uri') ?? '',
    response: params.get('response') ?? '',
    algorithm: KNOWN_ALGORITHMS.get(algo.toLowerCase()) ?? algo,
    params,
  };
  for (const key of ['cnonce', 'qop', 'nc', 'opaque'] as const) {
    const v = params.get(key);
    if (v !== undefined) creds[key] = v;
  }
  return creds;
}

/** auth-param *(COMMA auth-param) from `start`; empty list elements are skipped. */
function parseAuthParams(text: string, start: number, bad: (what: string) => Error): Map<string, string> {
  const params = new Map<string, string>();
  let i = start;
  const skipWs = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\r' || text[i] === '\n')) i++;
  };
  if (i < text.length && !/\s/.test(text[i] ?? '')) throw bad('no space after scheme');
  for (;;) {
    skipWs();
    while (text[i] === ',') {
      i++;
      skipWs();
    }
    if (i >= text.length) break;
    const nameStart = i;
    while (i < text.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(text[i] ?? '')) i++;
    const name = text.slice(nameStart, i).toLowerCase();
    if (name === '') throw bad(`unexpected "${text[i] ?? ''}"`);
    skipWs();
    if (text[i] !== '=') throw bad(`${name} without a value`);
    i++;
    skipWs();
    let val: string;
    if (text[i] === '"') {
      i++;
      val = '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\') i++;
        if (i >= text.length) break;
        val += text[i];
        i++;
      }
      if (i >= text.length) throw bad(`unterminated quoted ${name}`);
      i++;
    } else {
      const valStart = i;
      while (i < text.length && text[i] !== ',' && !/\s/.test(text[i] ?? '')) i++;
      val = text.slice(valStart, i);
      if (val === '') throw bad(`empty ${name}`);
    }
    if (params.has(name)) throw bad(`${name} appears twice`);
    params.set(name, val);
    skipWs();
    if (i < text.length && text[i] !== ',') throw bad(`missing comma after ${name}`);
  }
  return params;
}

/**
 * The Authorization (or Proxy-Authorization) header of `msg` whose realm is `realm`, parsed;
 * undefined when there is none. Values with another scheme are skipped; a malformed Digest
 * value throws SipParseError.
 */
export function credentialsForRealm(
  msg: { headers: SipHeader[] },
  realm: string,
  headerName: 'Authorization' | 'Proxy-Authorization' = 'Authorization',
): DigestCredentials | undefined {
  const want = canonicalHeaderName(headerName);
  for (const h of msg.headers) {
    if (canonicalHeaderName(h.name) !== want || authScheme(h.value) !== 'digest') continue;
    const creds = parseDigestCredentials(h.value, headerName);
    if (creds.realm === realm) return creds;
  }
  return undefined;
}

export interface ChallengeOptions {
  realm: string;
  nonce: string;
  algorithm: DigestAlgorithm;
  /** The client's credentials were right but the nonce had expired (RFC 7616 §3.3). */
  stale?: boolean;
  opaque?: string;
  /** Offer qop="auth" (default true). */
  qop?: boolean;
}

/** One WWW-Authenticate / Proxy-Authenticate value: `Digest realm="…", nonce="…", …`. */
export function buildChallenge(opts: ChallengeOptions): string {
  let out = `Digest realm=${quote(opts.realm)}, nonce=${quote(opts.nonce)}`;
  if (opts.opaque !== undefined) out += `, opaque=${quote(opts.opaque)}`;
  out += `, algorithm=${opts.algorithm}`;
  if (opts.qop !== false) out += ', qop="auth"';
  if (opts.stale === true) out += ', stale=true';
  return out;
}

/**
 * One challenge per algorithm, preferred first (RFC 8760 §2.4), all with the same nonce:
 * add each as its own WWW-Authenticate header, in order.
 */
export function buildChallenges(
  opts: Omit<ChallengeOptions, 'algorithm'> & { algorithms?: readonly DigestAlgorithm[] },
): string[] {
  return (opts.algorithms ?? DIGEST_ALGORITHMS).map((algorithm) => buildChallenge({ ...opts, algorithm }));
}

/** A quoted-string with `"` and `\` escaped; CR, LF and other controls are refused. */
function quote(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(s)) throw new SipParseError('control character in a digest parameter');
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

export interface DigestInput {
  algorithm: DigestAlgorithm;
  username: string;
  realm: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  /** 'auth' or absent; with it, nc and cnonce are required. */
  qop?: string;
  nc?: string;
  cnonce?: string;
}

function hashOf(algorithm: DigestAlgorithm): (s: string) => string {
  const name = algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  return (s) => createHash(name).update(s, 'utf8').digest('hex');
}

/**
 * The request-digest in lower-case hex. HA1 = H(user:realm:password) (for -sess:
 * H(that:nonce:cnonce)), HA2 = H(method:uri); response = H(HA1:nonce:nc:cnonce:qop:HA2) with
 * qop, H(HA1:nonce:HA2) without. Throws on qop other than 'auth' (auth-int needs the body).
 */
export function computeDigestResponse(input: DigestInput): string {
  const H = hashOf(input.algorithm);
  const sess = input.algorithm.endsWith('-sess');
  if (input.qop !== undefined && input.qop.toLowerCase() !== 'auth') {
    throw new SipParseError(`unsupported digest qop ${input.qop}`);
  }
  if ((input.qop !== undefined || sess) && input.cnonce === undefined) {
    throw new SipParseError('digest cnonce missing');
  }
  let ha1 = H(`${input.username}:${input.realm}:${input.password}`);
  if (sess) ha1 = H(`${ha1}:${input.nonce}:${input.cnonce ?? ''}`);
  const ha2 = H(`${input.method}:${input.uri}`);
  if (input.qop === undefined) return H(`${ha1}:${input.nonce}:${ha2}`);
  if (input.nc === undefined) throw new SipParseError('digest nc missing');
  return H(`${ha1}:${input.nonce}:${input.nc}:${input.cnonce ?? ''}:${input.qop}:${ha2}`);
}

export type DigestVerdict =
  | 'ok'
  | 'realm-mismatch'
  | 'uri-mismatch'
  | 'unsupported-algorithm'
  | 'unsupported-qop'
  | 'bad-nc'
  | 'missing-cnonce'
  | 'wrong-response';

export interface VerifyOptions {
  credentials: DigestCredentials;
  method: string;
  password: string;
  realm: string;
  /** When given, the credentials' uri must equal it (RFC 3261 §19.1.4 comparison). */
  requestUri?: string;
  /** Algorithms accepted (default DIGEST_ALGORITHMS: SHA-256 and MD5). */
  algorithms?: readonly DigestAlgorithm[];
}

/**
 * Checks the credentials against the password, comparing the response in constant time.
 * Does not look at the nonce's age or reuse: that is NonceManager's job. The caller also
 * decides whether `credentials.username` may act for the DN in the request.
 */
export function verifyDigest(opts: VerifyOptions): DigestVerdict {
  const c = opts.credentials;
  if (c.realm !== opts.realm) return 'realm-mismatch';
  const algorithm = (opts.algorithms ?? DIGEST_ALGORITHMS).find((a) => a === c.algorithm);
  if (algorithm === undefined) return 'unsupported-algorithm';
  if (c.qop !== undefined && c.qop.toLowerCase() !== 'auth') return 'unsupported-qop';
  const qop = c.qop;
  if (qop !== undefined && (c.nc === undefined || !/^[0-9a-fA-F]{8}$/.test(c.nc))) return 'bad-nc';
  if ((qop !== undefined || algorithm.endsWith('-sess')) && c.cnonce === undefined) return 'missing-cnonce';
  if (opts.requestUri !== undefined && !sameUri(c.uri, opts.requestUri)) return 'uri-mismatch';
  const expected = computeDigestResponse({
    algorithm,
    username: c.username,
    realm: c.realm,
    password: opts.password,
    method: opts.method,
    uri: c.uri,
    nonce: c.nonce,
    qop,
    nc: c.nc,
    cnonce: c.cnonce,
  });
  return constantTimeEqual(expected, c.response.toLowerCase()) ? 'ok' : 'wrong-response';
}

/** Equal strings in time independent of where they differ (length is not secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function sameUri(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return uriEquals(parseUri(a), parseUri(b));
  } catch (err) {
    if (err instanceof SipParseError) return false; // an unparsable digest-uri matches only itself
    throw err;
  }
}
