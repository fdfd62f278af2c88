import { SipParseError } from '../util/errors.js';
import { allIn, HEADER, HOST, isDigits, isHex, PARAM, PASSWORD, SCHEME, TEL, URIC, USER } from './char-classes.js';
import { formatParams, type Params } from './params.js';
import { Memo, type Writable } from '../util/memo.js';

/**
 * SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966) and, for every other scheme, an
 * opaque absoluteURI, so that the core can tell "unsupported scheme" (416) from "garbage"
 * (400). Percent-escapes are kept as written; compare URIs with uriEquals().
 */
export interface SipUri {
  readonly kind: 'sip';
  /** Lower-case: "sip" or "sips". */
  readonly scheme: 'sip' | 'sips';
  readonly user?: string;
  readonly password?: string;
  /** Host name, IPv4 address, or IPv6 reference in brackets ("[2001:db8::1]"). */
  readonly host: string;
  readonly port?: number;
  /** URI parameters, names lower-cased, null for a parameter without a value. */
  readonly params: Params;
  /** `?name=value&...` header components in order, as written. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

export interface TelUri {
  readonly kind: 'tel';
  readonly scheme: 'tel';
  /** The global ("+...") or local number, visual separators kept. */
  readonly number: string;
  readonly params: Params;
}

/** Any other absoluteURI: `http:`, `mailto:`, `urn:`, ... */
export interface OtherUri {
  readonly kind: 'other';
  /** Lower-case scheme. */
  readonly scheme: string;
  /** Everything after the first ":". */
  readonly opaque: string;
}

export type Uri = SipUri | TelUri | OtherUri;

/** "Bad URI host", or "Bad URI: empty host" for a what starting with ":". */
function bad(what: string): SipParseError {
  return new SipParseError(what.startsWith(':') ? `Bad URI${what}` : `Bad URI ${what}`);
}

const URIS = new Memo<Uri>();

/** Parses a URI; the view is shared by every reader of the same text (Memo). */
export function parseUri(text: string): Uri {
  return URIS.get(text, readUri);
}

function readUri(text: string): Uri {
  const colon = text.indexOf(':');
  if (colon <= 0 || !isAlpha(text.charCodeAt(0)) || !allIn(text, SCHEME, 0, colon, false)) throw bad('scheme');
  const scheme = text.slice(0, colon).toLowerCase();
  try {
    if (scheme === 'sip' || scheme === 'sips') return parseSip(scheme, text, colon + 1);
    if (scheme === 'tel') return parseTel(text, colon + 1);
    const opaque = text.slice(colon + 1);
    if (opaque === '' || !allIn(opaque, URIC)) throw bad(': not an absoluteURI');
    return { kind: 'other', scheme, opaque };
  } catch (err) {
    // Every character is checked against a table on the way; name the likely cause once it fails.
    throw strayCharacter(text, colon + 1) ?? err;
  }
}

function strayCharacter(text: string, from: number): SipParseError | undefined {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09) return bad(': contains whitespace');
    if (c < 0x20 || c >= 0x7f) return bad('character');
  }
  return undefined;
}

function parseSip(scheme: 'sip' | 'sips', s: string, start: number): SipUri {
  const params = new Map<string, string | null>();
  const headers: Array<[string, string]> = [];
  const uri: Writable<SipUri> = { kind: 'sip', scheme, host: '', params, headers };
  const n = s.length;
  let i = start;
  const at = s.indexOf('@', start);
  if (at >= 0) {
    if (s.indexOf('@', at + 1) >= 0) throw bad('user part');
    const pc = s.indexOf(':', start);
    const userEnd = pc >= 0 && pc < at ? pc : at;
    if (userEnd === start || !allIn(s, USER, start, userEnd)) throw bad('user part');
    uri.user = s.slice(start, userEnd);
    if (userEnd < at) {
      if (!allIn(s, PASSWORD, userEnd + 1, at)) throw bad('password');
      uri.password = s.slice(userEnd + 1, at);
    }
    i = at + 1;
  }
  i = parseHost(uri, s, i);
  if (i < n && s.charCodeAt(i) === 0x3a) i = parsePort(uri, s, i + 1);
  while (i < n && s.charCodeAt(i) === 0x3b) i = parseParam(params, s, i + 1, PARAM);
  if (i < n && s.charCodeAt(i) === 0x3f) i = parseHeaders(headers, s, i + 1);
  if (i < n) throw bad('host');
  return uri;
}

function parseHost(uri: Writable<SipUri>, s: string, i: number): number {
  const n = s.length;
  if (s.charCodeAt(i) === 0x5b) {
    const close = s.indexOf(']', i);
    if (close < 0) throw bad(': unbalanced brackets');
    if (!isIPv6(s, i + 1, close)) throw bad('IPv6 reference');
    uri.host = s.slice(i, close + 1);
    return close + 1;
  }
  let j = i;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === 0x3a || c === 0x3b || c === 0x3f) break;
    j++;
  }
  if (j === i) throw bad(': empty host');
  if (!allIn(s, HOST, i, j, false)) {
    for (let k = i; k < j; k++) if (s.charCodeAt(k) === 0x5d || s.charCodeAt(k) === 0x5b) throw bad(': unbalanced brackets');
    throw bad('host');
  }
  uri.host = s.slice(i, j);
  return j;
}

function parsePort(uri: Writable<SipUri>, s: string, i: number): number {
  let j = i;
  while (j < s.length && s.charCodeAt(j) !== 0x3b && s.charCodeAt(j) !== 0x3f) j++;
  const text = s.slice(i, j);
  if (!isDigits(text) || text.length > 5 || Number(text) > 65535) throw bad('port');
  uri.port = Number(text);
  return j;
}

/** One `name[=value]` after a ";" at i; returns the index of the next ";" or "?" or the end. */
function parseParam(params: Map<string, string | null>, s: string, i: number, chars: Uint8Array): number {
  let j = i;
  let eq = -1;
  while (j < s.length) {
    const c = s.charCodeAt(j);
    if (c === 0x3b || c === 0x3f) break;
    if (c === 0x3d && eq < 0) eq = j;
    j++;
  }
  const nameEnd = eq < 0 ? j : eq;
  if (nameEnd === i || !allIn(s, chars, i, nameEnd)) throw bad('parameter');
  if (eq >= 0 && (eq + 1 === j || !allIn(s, chars, eq + 1, j))) throw bad('parameter');
  params.set(s.slice(i, nameEnd).toLowerCase(), eq < 0 ? null : s.slice(eq + 1, j));
  return j;
}

function parseHeaders(headers: Array<[string, string]>, s: string, i: number): number {
  for (const part of s.slice(i).split('&')) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (name === '' || eq < 0 || !allIn(name, HEADER) || !allIn(value, HEADER)) throw bad('header');
    headers.push([name, value]);
  }
  return s.length;
}

function parseTel(s: string, start: number): TelUri {
  let i = start;
  while (i < s.length && s.charCodeAt(i) !== 0x3b) i++;
  if (i === start || !allIn(s, TEL, start, i, false)) throw bad('tel number');
  const params = new Map<string, string | null>();
  const uri: TelUri = { kind: 'tel', scheme: 'tel', number: s.slice(start, i), params };
  while (i < s.length) {
    if (s.charCodeAt(i) !== 0x3b) throw bad('parameter');
    i = parseParam(params, s, i + 1, TEL);
  }
  return uri;
}

function isIPv6(s: string, from: number, to: number): boolean {
  if (to - from < 2) return false;
  let colons = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3a) colons++;
    else if (c !== 0x2e && !isHex(c)) return false;
  }
  return colons >= 2;
}

function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

export function formatUri(uri: Uri): string {
  if (uri.kind === 'other') return `${uri.scheme}:${uri.opaque}`;
  if (uri.kind === 'tel') return `tel:${uri.number}${formatParams(uri.params)}`;
  let out = `${uri.scheme}:`;
  if (uri.user !== undefined) out += uri.password === undefined ? `${uri.user}@` : `${uri.user}:${uri.password}@`;
  out += uri.host;
  if (uri.port !== undefined) out += `:${uri.port}`;
  out += formatParams(uri.params);
  if (uri.headers.length > 0) out += `?${uri.headers.map(([k, v]) => `${k}=${v}`).join('&')}`;
  return out;
}

export function isSipUri(uri: Uri): uri is SipUri {
  return uri.kind === 'sip';
}

/**
 * An address of record on this server: sip:USER@HOST (RFC 3261 §10.2.1), the user escaped and
 * an IPv6 host bracketed. The request sent to a phone carries it in To; the phone's Contact
 * goes only in the Request-URI (a phone that follows a REFER reuses To as its From).
 */
export function aorUri(user: string, host: string): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `sip:${encodeURIComponent(user)}@${h}`;
}
