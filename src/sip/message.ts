/**
 * The SIP message model (RFC 3261 §7). Plain data: a start line, an ordered list of headers
 * exactly as received (name spelling kept, folded lines joined), and a body.
 * Structured views of single headers (Via, CSeq, name-addr, URI) live in their own modules
 * and are parsed on demand, so serialize(parse(x)) keeps every header as it was.
 */
export interface SipHeader {
  /** Name as it appeared on the wire (may be a compact form such as "v" or "i"). */
  name: string;
  /** Value with surrounding whitespace trimmed and folded lines joined by a single space. */
  value: string;
}

interface MessageBase {
  /** "SIP/2.0" */
  version: string;
  headers: SipHeader[];
  body: Buffer;
}

export interface SipRequest extends MessageBase {
  kind: 'request';
  method: string;
  /** Request-URI as text; parse with parseUri() when its parts are needed. */
  uri: string;
}

export interface SipResponse extends MessageBase {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

export const SIP_VERSION = 'SIP/2.0';

/** RFC 3261 §7.3.3 and RFC 3841/3515/4028 compact forms, keyed by the compact letter. */
const COMPACT: Record<string, string> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** The usual spellings of frequent headers, so that the common case skips toLowerCase(). */
const KNOWN = new Map<string, string>();
for (const name of [
  'Via', 'To', 'From', 'Call-ID', 'Call-Id', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Type', 'Content-Length',
  'Route', 'Record-Route', 'Allow', 'Supported', 'Require', 'User-Agent', 'Server', 'Expires', 'Allow-Events',
  'Accept', 'Event', 'Subscription-State', 'Authorization', 'WWW-Authenticate', 'Proxy-Authorization',
  'Proxy-Authenticate', 'Session-Expires', 'Min-SE', 'Reason', 'Date', 'Min-Expires', 'Refer-To', 'Referred-By',
]) {
  KNOWN.set(name, name.toLowerCase());
}
for (const [short, long] of Object.entries(COMPACT)) {
  KNOWN.set(short, long);
  KNOWN.set(short.toUpperCase(), long);
}

/** Lower-case long form of a header name, expanding compact forms. */
export function canonicalHeaderName(name: string): string {
  const known = KNOWN.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  return COMPACT[lower] ?? lower;
}

/**
 * Whether a header name, as written, is `want` (a canonical name). Only a name as long as
 * `want`, or a one-letter compact form, can be: the lengths rule out most headers of a
 * message before any lookup (every reader of a header walks them all).
 */
export function isNamed(name: string, want: string): boolean {
  const n = name.length;
  return (n === want.length || n === 1) && canonicalHeaderName(name) === want;
}

/**
 * Headers whose values may be comma-separated lists (RFC 3261 §7.3.1). Others (e.g.
 * WWW-Authenticate, Date, Call-ID) may contain commas that are not separators.
 */
const LIST_HEADERS = new Set([
  'via', 'contact', 'route', 'record-route', 'allow', 'supported', 'require', 'proxy-require',
  'unsupported', 'accept', 'accept-encoding', 'accept-language', 'content-encoding',
  'content-language', 'allow-events', 'in-reply-to', 'alert-info', 'call-info', 'error-info',
  'warning', 'path', 'service-route', 'reason',
]);

export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(canonicalHeaderName(name));
}

/**
 * Splits a header value at top-level commas: commas inside double quotes (with backslash
 * escapes) or inside <...> do not separate values.
 */
export function splitHeaderList(value: string): string[] {
  if (!value.includes(',')) {
    const only = value.trim();
    return only === '' ? [] : [only];
  }
  const out: string[] = [];
  let start = 0;
  let inQuotes = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuotes) {
      if (c === 0x5c) i++; // backslash escape
      else if (c === 0x22) inQuotes = false;
    } else if (c === 0x22) inQuotes = true;
    else if (c === 0x3c) inAngle = true;
    else if (c === 0x3e) inAngle = false;
    else if (c === 0x2c && !inAngle) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out.filter((v) => v.length > 0);
}

/** First value of a header (compact forms match long ones), or undefined. */
export function getHeader(msg: { headers: SipHeader[] }, name: string): string | undefined {
  const want = canonicalHeaderName(name);
  for (const h of msg.headers) {
    if (isNamed(h.name, want)) {
      return isListHeader(want) ? splitHeaderList(h.value)[0] : h.value;
    }
  }
  return undefined;
}

/** Every value of a header, in order, list headers split at top-level commas. */
export function getHeaderValues(msg: { headers: SipHeader[] }, name: string): string[] {
  const want = canonicalHeaderName(name);
  const out: string[] = [];
  for (const h of msg.headers) {
    if (!isNamed(h.name, want)) continue;
    if (isListHeader(want)) out.push(...splitHeaderList(h.value));
    else out.push(h.value);
  }
  return out;
}

export function hasHeader(msg: { headers: SipHeader[] }, name: string): boolean {
  const want = canonicalHeaderName(name);
  return msg.headers.some((h) => isNamed(h.name, want));
}

/** Replaces every occurrence of a header with one value (appended at the end if absent). */
export function setHeader(msg: { headers: SipHeader[] }, name: string, value: string): void {
  const want = canonicalHeaderName(name);
  const idx = msg.headers.findIndex((h) => isNamed(h.name, want));
  if (idx < 0) {
    msg.headers.push({ name, value });
    return;
  }
  msg.headers[idx] = { name, value };
  msg.headers = msg.headers.filter((h, i) => i === idx || !isNamed(h.name, want));
}

export function removeHeader(msg: { headers: SipHeader[] }, name: string): void {
  const want = canonicalHeaderName(name);
  msg.headers = msg.headers.filter((h) => !isNamed(h.name, want));
}

/** Adds a header value before every existing one of that name (e.g. a new top Via). */
export function prependHeader(msg: { headers: SipHeader[] }, name: string, value: string): void {
  const want = canonicalHeaderName(name);
  const idx = msg.headers.findIndex((h) => isNamed(h.name, want));
  msg.headers.splice(idx >= 0 ? idx : 0, 0, { name, value });
}

export function appendHeader(msg: { headers: SipHeader[] }, name: string, value: string): void {
  msg.headers.push({ name, value });
}

/** Deep copy, so a transaction can keep the exact request it sent. */
export function cloneMessage<T extends SipMessage>(msg: T): T {
  return { ...msg, headers: msg.headers.map((h) => ({ ...h })), body: Buffer.from(msg.body) };
}
