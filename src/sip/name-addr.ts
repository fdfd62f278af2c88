import { SipParseError } from '../util/errors.js';
import { formatParams, parseParams, type Params } from './params.js';
import { Memo, type Writable } from '../util/memo.js';

/**
 * From, To, Contact, Route, Record-Route, Refer-To values (RFC 3261 §20.10, §25.1):
 * `"Display" <uri>;params`, `Display <uri>;params` or the addr-spec form `uri;params`, where
 * the parameters after an addr-spec belong to the header, not to the URI.
 */
export interface NameAddr {
  readonly displayName?: string;
  readonly uri: string;
  readonly params: Params;
  /** True when the URI was written in angle brackets. */
  readonly angle: boolean;
}

const NAME_ADDRS = new Memo<NameAddr>();

/** Parses one value; the view is shared by every reader of the same text (Memo). */
export function parseNameAddr(value: string, headerName = 'address'): NameAddr {
  return NAME_ADDRS.get(value, (text) => readNameAddr(text, headerName));
}

function readNameAddr(value: string, headerName: string): NameAddr {
  const text = value.trim();
  const bad = (what: string): SipParseError => new SipParseError(`Bad ${headerName} header: ${what}`);
  let i = 0;
  let displayName: string | undefined;
  if (text.startsWith('"')) {
    i = 1;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) throw bad('unterminated quoted display name');
    displayName = text.slice(0, i + 1);
    i++;
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (text[i] !== '<') throw bad('quoted display name without <URI>');
  }
  const lt = text.indexOf('<', i);
  if (lt >= 0) {
    if (displayName === undefined) {
      const dn = text.slice(0, lt).trim();
      if (dn !== '') {
        if (!/^[A-Za-z0-9.!%*_+`'~\- \t]+$/.test(dn)) throw bad('display name must be quoted');
        displayName = dn;
      }
    }
    const gt = text.indexOf('>', lt);
    if (gt < 0) throw bad('missing >');
    const uri = text.slice(lt + 1, gt);
    if (uri === '' || /\s/.test(uri)) throw bad('bad URI in <>');
    const rest = text.slice(gt + 1).trim();
    if (rest !== '' && !rest.startsWith(';')) throw bad('junk after >');
    const out: Writable<NameAddr> = { uri, params: params(rest.slice(1), bad), angle: true };
    if (displayName !== undefined) out.displayName = displayName;
    return out;
  }
  if (displayName !== undefined) throw bad('missing <');
  const semi = text.indexOf(';');
  // "sip:a@b ;tag=1": LWS may precede the ";" of a header parameter (RFC 3261 §25.1 SEMI).
  const uri = semi < 0 ? text : text.slice(0, semi).trimEnd();
  if (uri === '' || /[\s<>"]/.test(uri) || !uri.includes(':')) throw bad('bad URI');
  if (uri.includes('?') || uri.includes(',')) throw bad('URI with headers must be in <>');
  return { uri, params: params(semi < 0 ? '' : text.slice(semi + 1), bad), angle: false };
}

function params(text: string, bad: (what: string) => SipParseError): Params {
  if (text.trim() === '') return new Map();
  try {
    return parseParams(text);
  } catch {
    throw bad('bad parameter');
  }
}

export function formatNameAddr(na: NameAddr): string {
  const dn = na.displayName === undefined ? '' : `${na.displayName} `;
  return `${dn}<${na.uri}>${formatParams(na.params)}`;
}

/** The tag parameter of a From or To value, or undefined. */
export function tagOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return parseNameAddr(value).params.get('tag') ?? undefined;
}
