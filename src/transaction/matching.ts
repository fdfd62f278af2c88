/**
 * Matching keys (RFC 3261 §17.1.3, §17.2.3, §9.2). Pure functions of a message; they throw
 * SipParseError when the headers they need are missing or malformed.
 */
import { cseqOf } from '../sip/cseq.js';
import { getHeader, type SipMessage, type SipRequest, type SipResponse } from '../sip/message.js';
import { tagOf } from '../sip/name-addr.js';
import { formatVia, topVia, type Via } from '../sip/via.js';
import { BRANCH_COOKIE } from '../util/ids.js';

/** True for an RFC 3261 branch (starts with the magic cookie "z9hG4bK"). */
export function isRfc3261Branch(branch: string | undefined): branch is string {
  return branch !== undefined && branch.startsWith(BRANCH_COOKIE) && branch.length > BRANCH_COOKIE.length;
}

/** A client transaction's key: the branch it put in its Via and the request method. */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

/**
 * §17.1.3: the key a response matches a client transaction with: the branch of its top Via
 * and the method of its CSeq (so a CANCEL's 200 never matches the INVITE). Undefined when
 * the top Via has no branch.
 */
export function responseKey(res: SipResponse): string | undefined {
  const branch = topVia(res).params.get('branch');
  if (branch === undefined || branch === null) return undefined;
  return clientKey(branch, cseqOf(res).method);
}

/** sent-by with the host lower-cased and the transport's default port filled in. */
function sentBy(via: Via): string {
  const port = via.port ?? (via.transport === 'TLS' ? 5061 : 5060);
  return `${via.host.toLowerCase()}:${port}`;
}

function normalizedVia(via: Via): string {
  return formatVia({ ...via, host: via.host.toLowerCase() });
}

function tag(msg: SipMessage, header: 'from' | 'to'): string {
  return tagOf(getHeader(msg, header)) ?? '';
}

/**
 * §17.2.3: the key a request matches a server transaction with. ACK matches the INVITE;
 * `asMethod` looks up another method's transaction with this request's fields (§9.2: a
 * CANCEL's INVITE). With an RFC 3261 branch: branch, sent-by and method. Without (RFC 2543
 * peers): Request-URI, To tag, From tag, Call-ID, CSeq and the top Via.
 * Legacy ACKs do not match by this key (their To tag differs): see legacyAckKey().
 */
export function serverKey(req: SipRequest, asMethod?: string): string {
  const via = topVia(req);
  const method = asMethod ?? (req.method === 'ACK' ? 'INVITE' : req.method);
  const branch = via.params.get('branch') ?? undefined;
  if (isRfc3261Branch(branch)) return `${branch}|${sentBy(via)}|${method}`;
  const cseq = cseqOf(req);
  return ['2543', req.uri, tag(req, 'to'), tag(req, 'from'), getHeader(req, 'call-id') ?? '', cseq.seq, method, normalizedVia(via)].join('|');
}

/**
 * §17.2.3 for RFC 2543 ACKs: Request-URI, From tag, Call-ID, CSeq number and top Via match
 * those of the INVITE; the To tag is then compared with the one of the response the server
 * transaction sent. Undefined for requests with an RFC 3261 branch.
 */
export function legacyAckKey(req: SipRequest): string | undefined {
  const via = topVia(req);
  if (isRfc3261Branch(via.params.get('branch') ?? undefined)) return undefined;
  const cseq = cseqOf(req);
  return ['2543-ack', req.uri, tag(req, 'from'), getHeader(req, 'call-id') ?? '', cseq.seq, normalizedVia(via)].join('|');
}

/** The To tag of a message, '' when it has none. */
export function toTag(msg: SipMessage): string {
  return tag(msg, 'to');
}
