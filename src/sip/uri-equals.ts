import type { Params } from './params.js';
import type { SipUri, Uri } from './uri.js';

/** URI parameters that, present in either URI, must be present and equal in both. */
const MUST_MATCH = ['user', 'ttl', 'method', 'maddr', 'transport'];

/**
 * URI comparison per RFC 3261 §19.1.4: escapes are decoded before comparing; user and
 * password are case-sensitive, host, scheme and parameter values are not; a port that is
 * absent does not equal an explicit default port; `user`, `ttl`, `method`, `maddr`,
 * `transport` must agree when either URI has them, other parameters only when both do;
 * header components must all be present in both.
 */
export function uriEquals(a: Uri, b: Uri): boolean {
  if (a.kind === 'sip' && b.kind === 'sip') return sipEquals(a, b);
  if (a.kind === 'tel' && b.kind === 'tel') {
    return stripVisual(a.number) === stripVisual(b.number) && paramsEqual(a.params, b.params, []);
  }
  if (a.kind === 'other' && b.kind === 'other') return a.scheme === b.scheme && a.opaque === b.opaque;
  return false;
}

function sipEquals(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme) return false;
  if (unescape(a.user) !== unescape(b.user) || unescape(a.password) !== unescape(b.password)) return false;
  if (a.host.toLowerCase() !== b.host.toLowerCase() || a.port !== b.port) return false;
  if (!paramsEqual(a.params, b.params, MUST_MATCH)) return false;
  if (a.headers.length !== b.headers.length) return false;
  const bh = new Map(b.headers.map(([k, v]) => [unescape(k)?.toLowerCase(), unescape(v)]));
  return a.headers.every(([k, v]) => bh.get(unescape(k)?.toLowerCase()) === unescape(v));
}

function paramsEqual(a: Params, b: Params, mustMatch: string[]): boolean {
  for (const name of mustMatch) if (a.has(name) !== b.has(name)) return false;
  for (const [name, value] of a) {
    if (!b.has(name)) continue;
    const other = b.get(name) ?? null;
    if ((value === null) !== (other === null)) return false;
    if (value !== null && other !== null && unescape(value)?.toLowerCase() !== unescape(other)?.toLowerCase()) return false;
  }
  return true;
}

function unescape(s: string | undefined): string | undefined {
  if (s === undefined || !s.includes('%')) return s;
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function stripVisual(n: string): string {
  return n.replace(/[-.()]/g, '').toLowerCase();
}
