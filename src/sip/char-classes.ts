/**
 * Character classes of the RFC 3261 §25.1 grammar as 128-entry lookup tables, so that the
 * parser checks a character with one array read instead of a regular expression.
 */
function table(chars: string, ranges: Array<[number, number]> = []): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [from, to] of ranges) for (let c = from; c <= to; c++) t[c] = 1;
  return t;
}

const ALNUM: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
];

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = table("-.!%*_+`'~", ALNUM);

/** unreserved = alphanum / mark; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")" */
const UNRESERVED_CHARS = "-_.!~*'()";

/** user = 1*( unreserved / escaped / user-unreserved ) */
export const USER = table(`${UNRESERVED_CHARS}&=+$,;?/`, ALNUM);

/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
export const PASSWORD = table(`${UNRESERVED_CHARS}&=+$,`, ALNUM);

/** paramchar = param-unreserved / unreserved / escaped */
export const PARAM = table(`${UNRESERVED_CHARS}[]/:&+$`, ALNUM);

/** hname / hvalue = *( hnv-unreserved / unreserved / escaped ) */
export const HEADER = table(`${UNRESERVED_CHARS}[]/?:+$`, ALNUM);

/** Characters of a host name or IPv4 address ("_" tolerated: seen in the wild). */
export const HOST = table('-._', ALNUM);

/** uric = reserved / unreserved / escaped (RFC 2396), for absoluteURI of other schemes. */
export const URIC = table(`${UNRESERVED_CHARS};/?:@&=+$,`, ALNUM);

/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
export const SCHEME = table('+-.', ALNUM);

/** Characters of a tel: number or its parameters (RFC 3966, leniently). */
export const TEL = table(`${UNRESERVED_CHARS}[]/:&+$=%#`, ALNUM);

/** True when every character of s[from, to) is in the table; "%" must start "%HH". */
export function allIn(s: string, t: Uint8Array, from = 0, to = s.length, escapes = true): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 128 && t[c] === 1) continue;
    if (escapes && c === 0x25 && i + 2 < to && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

export function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** token check for header names, methods, Via protocol parts. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TOKEN[c] !== 1) return false;
  }
  return true;
}

export function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
