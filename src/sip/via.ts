import { SipParseError } from '../util/errors.js';
import { getHeader, getHeaderValues, type SipMessage } from './message.js';
import { formatParams, parseParams, type Params } from './params.js';

/** One Via header value (RFC 3261 §20.42, RFC 3581 rport). */
export interface Via {
  /** "SIP/2.0" */
  protocol: string;
  /** Upper-case transport: UDP, TCP, TLS, SCTP, WS, ... */
  transport: string;
  host: string;
  port?: number;
  params: Params;
}

const VIA_RE = /^([!-~]+?)\s*\/\s*([!-~]+?)\s*\/\s*([!-~]+?)\s+(\[[0-9A-Fa-f:.]+\]|[^\s;:]+)(?:\s*:\s*(\d+))?\s*(?:;(.*))?$/s;

export function parseVia(value: string): Via {
  const m = VIA_RE.exec(value.trim());
  if (!m) throw new SipParseError('Bad Via header');
  const [, name, version, transport, host, port, rest] = m;
  if (!name || !version || !transport || !host) throw new SipParseError('Bad Via header');
  let params: Params;
  try {
    params = rest === undefined ? new Map() : parseParams(rest);
  } catch {
    throw new SipParseError('Bad Via parameter');
  }
  const via: Via = { protocol: `${name}/${version}`, transport: transport.toUpperCase(), host, params };
  if (port !== undefined) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new SipParseError('Bad Via port');
    via.port = n;
  }
  return via;
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

export function allVias(msg: SipMessage): Via[] {
  return getHeaderValues(msg, 'via').map(parseVia);
}

/** The branch of the top Via, or undefined (RFC 2543 peers may send none). */
export function topBranch(msg: SipMessage): string | undefined {
  const b = topVia(msg).params.get('branch');
  return b ?? undefined;
}
