import { SipParseError } from '../util/errors.js';
import { HOST, isDigits, TOKEN } from './char-classes.js';
import { getHeader, getHeaderValues, isNamed, splitHeaderList, type SipMessage } from './message.js';
import { formatParams, parseParams, type Params } from './params.js';
import { Memo, type Writable } from '../util/memo.js';

/** One Via header value (RFC 3261 §20.42, RFC 3581 rport). */
export interface Via {
  /** "SIP/2.0" */
  readonly protocol: string;
  /** Upper-case transport: UDP, TCP, TLS, SCTP, WS, ... */
  readonly transport: string;
  readonly host: string;
  readonly port?: number;
  readonly params: Params;
}

const VIAS = new Memo<Via>();

/**
 * Parses one via-parm: `sent-protocol LWS sent-by *( SEMI via-params )` where sent-protocol is
 * `name SLASH version SLASH transport` and LWS may surround the slashes, the colon and the
 * semicolons (RFC 3261 §20.42, §25.1). A hand-written scanner: no backtracking on hostile input.
 * The view is shared by every reader of the same text (Memo): build a new one to change it.
 */
export function parseVia(value: string): Via {
  return VIAS.get(value, readVia);
}

function readVia(value: string): Via {
  const s = value.trim();
  const n = s.length;
  let i = 0;
  const bad = (): SipParseError => new SipParseError('Bad Via header');
  const lws = (): void => {
    while (i < n && (s.charCodeAt(i) === 0x20 || s.charCodeAt(i) === 0x09)) i++;
  };
  const token = (): string => {
    const from = i;
    while (i < n && s.charCodeAt(i) < 128 && TOKEN[s.charCodeAt(i)] === 1) i++;
    if (i === from) throw bad();
    return s.slice(from, i);
  };
  const slash = (): void => {
    lws();
    if (s.charCodeAt(i) !== 0x2f) throw bad();
    i++;
    lws();
  };
  const name = token();
  slash();
  const version = token();
  slash();
  const transport = token();
  const beforeHost = i;
  lws();
  if (i === beforeHost) throw bad();
  const host = sentByHost(s, i);
  i += host.length;
  lws();
  let port: number | undefined;
  if (s.charCodeAt(i) === 0x3a) {
    i++;
    lws();
    const from = i;
    while (i < n && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
    const digits = s.slice(from, i);
    if (!isDigits(digits) || digits.length > 5 || Number(digits) < 1 || Number(digits) > 65535) {
      throw new SipParseError('Bad Via port');
    }
    port = Number(digits);
    lws();
  }
  let params: Params = new Map();
  if (i < n) {
    if (s.charCodeAt(i) !== 0x3b) throw bad();
    try {
      params = parseParams(s.slice(i + 1));
    } catch {
      throw new SipParseError('Bad Via parameter');
    }
  }
  const via: Writable<Via> = { protocol: `${name}/${version}`, transport: transport.toUpperCase(), host, params };
  if (port !== undefined) via.port = port;
  return via;
}

/** The host of a sent-by starting at i: an IPv6 reference in brackets, or a host name / IPv4. */
function sentByHost(s: string, i: number): string {
  if (s.charCodeAt(i) === 0x5b) {
    const close = s.indexOf(']', i);
    if (close < 0 || !/^\[[0-9A-Fa-f:.]+\]$/.test(s.slice(i, close + 1))) throw new SipParseError('Bad Via header');
    return s.slice(i, close + 1);
  }
  let j = i;
  while (j < s.length) {
    const c = s.charCodeAt(j);
    if (c === 0x20 || c === 0x09 || c === 0x3a || c === 0x3b) break;
    if (c >= 128 || HOST[c] !== 1) throw new SipParseError('Bad Via header');
    j++;
  }
  if (j === i) throw new SipParseError('Bad Via header');
  return s.slice(i, j);
}

export function formatVia(via: Via): string {
  const port = via.port === undefined ? '' : `:${via.port}`;
  return `${via.protocol}/${via.transport} ${via.host}${port}${formatParams(via.params)}`;
}

/** The top Via of a message, parsed; throws SipParseError when missing or malformed. */
export function topVia(msg: SipMessage): Via {
  const v = getHeader(msg, 'via');
  if (v === undefined) throw new SipParseError('Missing Via header');
  return parseVia(v);
}

/** The top Via, parsed; undefined when there is none, SipParseError when it is malformed. */
export function parseTopVia(msg: SipMessage): Via | undefined {
  const v = getHeader(msg, 'via');
  return v === undefined ? undefined : parseVia(v);
}

/**
 * Puts `via` in place of the top Via (the first value of the first Via line, keeping any
 * further values on that line), or in front of all headers when the message has none.
 */
export function replaceTopVia(msg: SipMessage, via: Via): void {
  const value = formatVia(via);
  const idx = msg.headers.findIndex((h) => isNamed(h.name, 'via'));
  const h = msg.headers[idx];
  if (!h) {
    msg.headers.unshift({ name: 'Via', value });
    return;
  }
  const values = splitHeaderList(h.value);
  values[0] = value;
  msg.headers[idx] = { name: h.name, value: values.join(', ') };
}

/** A sent-by host without the brackets of an IPv6 reference. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function allVias(msg: SipMessage): Via[] {
  return getHeaderValues(msg, 'via').map(parseVia);
}

/** The branch of the top Via, or undefined (RFC 2543 peers may send none). */
export function topBranch(msg: SipMessage): string | undefined {
  const b = topVia(msg).params.get('branch');
  return b ?? undefined;
}
