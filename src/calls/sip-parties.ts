import { getHeader, getHeaderValues, type SipMessage, type SipRequest } from '../sip/message.js';
import { parseNameAddr } from '../sip/name-addr.js';
import { isSipUri, parseUri } from '../sip/uri.js';
import type { Call } from './call.js';

/** What the caller's INVITE offers the callee: its body, the caller's display name, Max-Forwards. */
export function offerOf(req: SipRequest): Call['offer'] {
  const type = getHeader(req, 'content-type');
  const display = parseNameAddr(getHeader(req, 'from') ?? '', 'From').displayName;
  const mf = Number(getHeader(req, 'max-forwards') ?? '70');
  return {
    body: req.body,
    ...(type !== undefined ? { contentType: type } : {}),
    ...(display !== undefined ? { displayName: display } : {}),
    maxForwards: Number.isFinite(mf) ? mf : 70,
  };
}

/** The message's Allow header lists REFER. */
export function allowsRefer(msg: SipMessage): boolean {
  return getHeaderValues(msg, 'allow').some((v) => v.split(',').some((m) => m.trim().toUpperCase() === 'REFER'));
}

/** The user part of a sip:/sips: URI (percent-decoded) or the number of a tel: URI. */
export function userOf(uri: string): string | undefined {
  try {
    const u = parseUri(uri);
    if (isSipUri(u)) return u.user === undefined ? undefined : decodeURIComponent(u.user);
    if (u.kind === 'tel') return u.number;
  } catch {
    return undefined;
  }
  return undefined;
}

/** sip:USER@host:port, on the host and port of the server's `contact`. */
export function fromUri(user: string, contact: string): string {
  return `sip:${encodeURIComponent(user)}@${hostOf(contact)}`;
}

/** "host:port" of a sip: URI. */
export function hostOf(uri: string): string {
  const u = parseUri(uri);
  return isSipUri(u) ? `${u.host}${u.port !== undefined ? `:${u.port}` : ''}` : 'invalid';
}
