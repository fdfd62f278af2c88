import { SipParseError } from '../util/errors.js';
import { isToken } from './char-classes.js';
import type { SipHeader } from './message.js';

/**
 * Splits the header lines of a header section (RFC 3261 §7.3): `name LWS ":" LWS value`,
 * lines ending in CRLF (a bare LF is tolerated), a line starting with SP or HT continuing the
 * previous header (joined with a single space). Reading stops at the first empty line.
 *
 * `text` holds the section decoded as latin1 (one char per byte); `pos` is where the first
 * header line starts. Returns the headers and the offset just after the empty line's LF, or
 * -1 when the text ended without an empty line.
 */
export function parseHeaderLines(text: string, pos: number): { headers: SipHeader[]; end: number } {
  const headers: SipHeader[] = [];
  const n = text.length;
  let last: SipHeader | undefined;
  /** The first CR at or after pos (n when none): searched again only once passed, so that the scans stay linear. */
  let cr = -1;
  while (pos < n) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = n;
    let e = nl;
    if (e > pos && text.charCodeAt(e - 1) === 0x0d) e--;
    if (e === pos) return { headers, end: nl + 1 };
    // A CR inside a line would become a line break when the header is written out again.
    if (cr < pos) {
      cr = text.indexOf('\r', pos);
      if (cr < 0) cr = n;
    }
    if (cr < e) throw new SipParseError('Bad header line');
    const first = text.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) {
      if (last === undefined) throw new SipParseError('Bad header folding');
      const more = trimLws(text, pos, e);
      if (more !== '') last.value = last.value === '' ? more : `${last.value} ${more}`;
    } else {
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon >= e) throw new SipParseError('Bad header line');
      let nameEnd = colon;
      while (nameEnd > pos && isLws(text.charCodeAt(nameEnd - 1))) nameEnd--;
      const name = text.slice(pos, nameEnd);
      if (!isToken(name)) throw new SipParseError('Bad header name');
      last = { name, value: trimLws(text, colon + 1, e) };
      headers.push(last);
    }
    pos = nl + 1;
  }
  return { headers, end: -1 };
}

function isLws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** text[from, to) without leading and trailing SP/HT (String#trim would also eat U+00A0). */
export function trimLws(text: string, from: number, to: number): string {
  while (from < to && isLws(text.charCodeAt(from))) from++;
  while (to > from && isLws(text.charCodeAt(to - 1))) to--;
  return text.slice(from, to);
}
