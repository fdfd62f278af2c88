import { SipParseError } from '../util/errors.js';
import { isDigits } from './char-classes.js';
import { parseCSeq } from './cseq.js';
import { canonicalHeaderName, splitHeaderList, type SipMessage } from './message.js';
import { parseNameAddr } from './name-addr.js';
import { parseUri } from './uri.js';
import { parseVia } from './via.js';

/** Headers that may appear once only (RFC 3261 §7.3.1), with the spelling used in reasons. */
const SINGLE: Record<string, string> = {
  to: 'To',
  from: 'From',
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'content-length': 'Content-Length',
  'max-forwards': 'Max-Forwards',
  'content-type': 'Content-Type',
  expires: 'Expires',
  'min-expires': 'Min-Expires',
  date: 'Date',
};

const MANDATORY = ['To', 'From', 'Call-ID', 'CSeq', 'Via'] as const;

/** Name lengths of the headers checked here (compact forms, via, to, from, contact, ...). */
const CHECKED_LENGTHS: boolean[] = [];
for (const name of [...Object.keys(SINGLE), 'via', 'contact', 'v', 'm']) CHECKED_LENGTHS[name.length] = true;
CHECKED_LENGTHS[1] = true;

/** rfc1123-date with the only time zone RFC 3261 §20.17 allows. */
const DATE_RE = /^[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d{1,2}:\d{2}:\d{2} GMT$/;

/**
 * Checks what a message must have to be processed (RFC 3261 §8.1.1, §8.2, §20): To, From,
 * Call-ID, CSeq and Via present, single-valued headers not repeated, a CSeq whose method is
 * the request's, a parsable top Via, From, To and Contact, numeric Content-Length,
 * Max-Forwards and Expires, a GMT Date. Throws SipParseError with a reason that names the
 * fault; returns the Content-Length when there is one.
 */
export function validateMessage(msg: SipMessage): number | undefined {
  const seen: Partial<Record<string, string>> = {};
  let via: string | undefined;
  let contacts: string[] | undefined;
  for (const h of msg.headers) {
    if (!CHECKED_LENGTHS[h.name.length]) continue;
    const canon = canonicalHeaderName(h.name);
    if (canon === 'via') via ??= h.value;
    else if (canon === 'contact') (contacts ??= []).push(h.value);
    else if (SINGLE[canon] !== undefined) {
      if (seen[canon] !== undefined) throw new SipParseError(`Multiple ${SINGLE[canon]} headers`);
      seen[canon] = h.value;
    }
  }
  const { to, from, cseq } = seen;
  const callId = seen['call-id'];
  if (to === undefined || from === undefined || callId === undefined || cseq === undefined || via === undefined) {
    const present: Record<string, boolean> = { To: !!to, From: !!from, 'Call-ID': !!callId, CSeq: !!cseq, Via: !!via };
    const missing = MANDATORY.filter((name) => !present[name]);
    throw new SipParseError(`Missing ${missing.join(', ')} header${missing.length > 1 ? 's' : ''}`);
  }

  const { method } = parseCSeq(cseq);
  if (msg.kind === 'request' && method !== msg.method) throw new SipParseError('CSeq method does not match request method');
  parseVia(firstOfList(via));
  checkAddress(from, 'From');
  checkAddress(to, 'To');
  if (callId === '' || callId.includes(' ') || callId.includes('\t')) throw new SipParseError('Bad Call-ID header');

  let contentLength: number | undefined;
  const length = seen['content-length'];
  if (length !== undefined) {
    if (!isDigits(length) || length.length > 10) throw new SipParseError('Bad Content-Length');
    contentLength = Number(length);
  }
  checkNumber(seen['max-forwards'], 255, 'Bad Max-Forwards header');
  checkNumber(seen.expires, 2 ** 32 - 1, 'Bad Expires header');
  if (seen.date !== undefined && !DATE_RE.test(seen.date)) throw new SipParseError('Bad Date header');
  if (contacts !== undefined) for (const value of contacts) checkContacts(value);
  return contentLength;
}

/** The first element of a comma-separated header value (commas in quotes or <> do not count). */
function firstOfList(value: string): string {
  return value.includes(',') ? (splitHeaderList(value)[0] ?? '') : value;
}

function checkNumber(value: string | undefined, max: number, reason: string): void {
  if (value === undefined) return;
  if (!isDigits(value) || value.length > 12 || Number(value) > max) throw new SipParseError(reason);
}

/** A From, To or Contact value: name-addr or addr-spec around a URI that parses. */
function checkAddress(value: string, header: string): void {
  const na = parseNameAddr(value, header);
  try {
    parseUri(na.uri);
  } catch (err) {
    const why = err instanceof SipParseError ? `: ${err.reason.replace(/^Bad /, 'bad ')}` : '';
    throw new SipParseError(`Bad ${header} header${why}`, { cause: err });
  }
}

function checkContacts(value: string): void {
  if (value === '*') return;
  const parts = splitHeaderList(value);
  if (parts.length === 0) throw new SipParseError('Bad Contact header');
  for (const part of parts) checkAddress(part, 'Contact');
}
