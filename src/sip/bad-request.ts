import { SIP_VERSION, type SipHeader, type SipResponse } from './message.js';
import { sanitizeReason } from './response.js';

export { sanitizeReason };

/**
 * Builds the error response for a request that failed to parse (RFC 3261 §8.2, §21.4.1),
 * from a lenient line-by-line read of its header section (parseMessageHead would refuse the
 * very faults being reported). Possible only when the bytes start with something shaped like
 * a request line other than ACK and carry a Via header; Via, From, To, Call-ID and CSeq are
 * copied as written, except that a bare CR becomes a space (a line break to some peers: the
 * sender could write headers of its own into the answer). Returns undefined when the message
 * cannot be answered (a response, an ACK, no Via, garbage). The caller sends it back where the
 * bytes came from.
 */
export function errorResponseForUnparsable(raw: Buffer, status: number, reason: string): SipResponse | undefined {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const lines = (end >= 0 ? text.slice(0, end) : text).replace(/^(\r?\n)+/, '').split(/\r?\n/);
  const start = lines.shift() ?? '';
  // One \s before the version, not \s+ after `.*`: both can take a run of whitespace, and over a
  // long run (a datagram of spaces) that backtracking is quadratic — seconds for 60 KB.
  const m = /^([A-Za-z0-9.!%*_+`'~-]+)\s+\S[\s\S]*\sSIP\/\d+\.\d+\s*$/.exec(start);
  if (!m || m[1] === 'ACK') return undefined;

  const headers: SipHeader[] = [];
  const unfolded: string[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && unfolded.length > 0) unfolded[unfolded.length - 1] += ` ${line.trim()}`;
    else unfolded.push(line);
  }
  const wanted = new Map([['via', 'Via'], ['v', 'Via'], ['from', 'From'], ['f', 'From'], ['to', 'To'], ['t', 'To'], ['call-id', 'Call-ID'], ['i', 'Call-ID'], ['cseq', 'CSeq']]);
  let hasVia = false;
  for (const line of unfolded) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = wanted.get(line.slice(0, colon).trim().toLowerCase());
    if (!name) continue;
    if (name === 'Via') hasVia = true;
    headers.push({ name, value: line.slice(colon + 1).trim().replaceAll('\r', ' ') });
  }
  if (!hasVia) return undefined;
  return { kind: 'response', version: SIP_VERSION, status, reason: sanitizeReason(reason), headers, body: Buffer.alloc(0) };
}
