import { SipParseError } from '../util/errors.js';

/**
 * Generic `;name=value` parameter lists as used by Via, Contact, From/To, URIs.
 * Names are matched case-insensitively and stored lower-case; a parameter without a value
 * maps to null. Values keep their quotes if they had them.
 */
export type Params = ReadonlyMap<string, string | null>;

/**
 * Parses "a=1;b;c=\"x;y\"" (no leading ';'). Throws SipParseError on an empty parameter or
 * parameter name (callers name the header in their own reason).
 */
export function parseParams(text: string): Map<string, string | null> {
  const params = new Map<string, string | null>();
  for (const part of splitOutsideQuotes(text, ';')) {
    const p = part.trim();
    if (p === '') throw new SipParseError('Empty parameter');
    const eq = p.indexOf('=');
    if (eq < 0) params.set(p.toLowerCase(), null);
    else {
      const name = p.slice(0, eq).trim();
      if (name === '') throw new SipParseError('Parameter without a name');
      params.set(name.toLowerCase(), p.slice(eq + 1).trim());
    }
  }
  return params;
}

export function formatParams(params: Params): string {
  let out = '';
  for (const [k, v] of params) out += v === null ? `;${k}` : `;${k}=${v}`;
  return out;
}

/** Splits at sep, ignoring separators inside double quotes (backslash escapes honoured). */
export function splitOutsideQuotes(text: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inQuotes = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '\\') i++;
      else if (c === '"') inQuotes = false;
    } else if (c === '"') inQuotes = true;
    else if (c === sep) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}
