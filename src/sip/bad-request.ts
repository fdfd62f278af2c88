import { SIP_VERSION, type SipHeader, type SipResponse } from './message.js';

/**
 * Builds the error response for a request that failed to parse (RFC 3261 §8.2, §21.4.1),
 * from a lenient line-by-line read of its header section (parseMessageHead would refuse the
 * very faults being reported). Possible only when the bytes start with something shaped like
 * a request line other than ACK and carry a Via header; Via, From, To, Call-ID and CSeq are
 * copied as written. Returns undefined when the message cannot be answered (a response, an
 * ACK, no Via, garbage). The caller sends it back where the bytes came from.
 */
export function errorResponseForUnparsable(raw: Buffer, status: number, reason: string): SipResponse | undefined {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const lines = (end >= 0 ? text.slice(0, end) : text).replace(/^(\r?\n)+/, '').split(/\r?\n/);
  const start = lines.shift() ?? '';
  const m = /^([A-Za-z0-9.!%*_+`'~-]+)\s+\S.*\s+SIP\/\d+\.\d+\s*$/.exec(start);
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
    headers.push({ name, value: line.slice(colon + 1).trim() });
  }
  if (!hasVia) return undefined;
  return { kind: 'response', version: SIP_VERSION, status, reason: sanitizeReason(reason), headers, body: Buffer.alloc(0) };
}

/** A reason phrase must be printable text without CR/LF (RFC 3261 §25.1). */
export function sanitizeReason(reason: string): string {
  let clean = '';
  for (const ch of reason) clean += ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? ' ' : ch;
  clean = clean.replace(/ +/g, ' ').trim();
  return clean === '' ? 'Bad Request' : clean.slice(0, 120);
}
