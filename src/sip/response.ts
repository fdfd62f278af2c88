import { getHeader, getHeaderValues, SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from './message.js';
import { tagOf } from './name-addr.js';

/** Default reason phrases for the responses this server generates. */
export const REASON_PHRASES: Record<number, string> = {
  100: 'Trying', 180: 'Ringing', 181: 'Call Is Being Forwarded', 182: 'Queued', 183: 'Session Progress',
  200: 'OK', 202: 'Accepted',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 407: 'Proxy Authentication Required', 408: 'Request Timeout', 413: 'Request Entity Too Large',
  415: 'Unsupported Media Type', 416: 'Unsupported URI Scheme', 420: 'Bad Extension', 423: 'Interval Too Brief',
  480: 'Temporarily Unavailable', 481: 'Call/Transaction Does Not Exist', 482: 'Loop Detected',
  483: 'Too Many Hops', 484: 'Address Incomplete', 486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here',
  491: 'Request Pending', 500: 'Server Internal Error', 501: 'Not Implemented', 503: 'Service Unavailable',
  504: 'Server Time-out', 505: 'Version Not Supported', 513: 'Message Too Large', 603: 'Decline',
};

/**
 * Builds a response to a request per RFC 3261 §8.2.6.2: Via (all values, in order), From,
 * Call-ID, CSeq copied; To copied with `toTag` added when it has no tag and status > 100.
 * Content-Length is left to the serializer.
 */
export function createResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  opts: { toTag?: string; headers?: SipHeader[]; body?: Buffer } = {},
): SipResponse {
  const headers: SipHeader[] = [];
  for (const v of getHeaderValues(req, 'via')) headers.push({ name: 'Via', value: v });
  const from = getHeader(req, 'from');
  if (from !== undefined) headers.push({ name: 'From', value: from });
  let to = getHeader(req, 'to');
  if (to !== undefined && status > 100 && opts.toTag !== undefined && tagOfSafe(to) === undefined) {
    to = `${to};tag=${opts.toTag}`;
  }
  if (to !== undefined) headers.push({ name: 'To', value: to });
  const callId = getHeader(req, 'call-id');
  if (callId !== undefined) headers.push({ name: 'Call-ID', value: callId });
  const cseq = getHeader(req, 'cseq');
  if (cseq !== undefined) headers.push({ name: 'CSeq', value: cseq });
  if (status === 100) {
    const ts = getHeaderValues(req, 'timestamp')[0];
    if (ts !== undefined) headers.push({ name: 'Timestamp', value: ts });
  }
  headers.push(...(opts.headers ?? []));
  return {
    kind: 'response',
    version: SIP_VERSION,
    status,
    // A phrase may carry what the request said (a dialled number): printable, and short.
    reason: reason === undefined ? (REASON_PHRASES[status] ?? 'Unknown') : sanitizeReason(reason, REASON_PHRASES[status] ?? 'Unknown'),
    headers,
    body: opts.body ?? Buffer.alloc(0),
  };
}

function tagOfSafe(value: string): string | undefined {
  try {
    return tagOf(value);
  } catch {
    return undefined;
  }
}

/**
 * A reason phrase as it may go on the wire: printable text without CR/LF (RFC 3261 §25.1),
 * at most 120 characters (it may quote what a request said: a 60 KB Request-URI user is not
 * echoed back), `fallback` when nothing is left.
 */
export function sanitizeReason(reason: string, fallback = 'Bad Request'): string {
  let clean = '';
  for (const ch of reason.length > 480 ? reason.slice(0, 480) : reason) clean += ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? ' ' : ch;
  clean = clean.replace(/ +/g, ' ').trim();
  if (clean === '') return fallback;
  return clean.length > 120 ? `${clean.slice(0, 117)}...` : clean;
}
