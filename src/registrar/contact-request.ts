import { getHeaderValues, type SipHeader, type SipRequest } from '../sip/message.js';
import { parseNameAddr, type NameAddr } from '../sip/name-addr.js';
import { parseUri } from '../sip/uri.js';
import { SipParseError, SipServerError } from '../util/errors.js';

/** A REGISTER that cannot be accepted, with the response it gets. */
export class Refusal extends SipServerError {
  constructor(
    readonly status: number,
    readonly reason?: string,
    readonly headers: SipHeader[] = [],
  ) {
    super('REGISTER_REFUSED', `${status} ${reason ?? ''}`.trim());
  }
}

/** One Contact of a REGISTER, with the expiry it asks for. */
export interface ContactRequest {
  contact: string;
  expiresS: number;
  na: NameAddr;
  /** RFC 5626 +sip.instance, as written (quotes included). */
  instanceId?: string;
  /** RFC 5626 reg-id: only with an instance (one without is ignored, §6). */
  regId?: number;
}

export interface ExpiryLimits {
  defaultExpiresS: number;
  minExpiresS: number;
}

/** The Contact values of a REGISTER with their expiry, or '*' (RFC 3261 §10.3 step 6). */
export function requestedContacts(req: SipRequest, limits: ExpiryLimits): ContactRequest[] | '*' {
  const values = getHeaderValues(req, 'contact');
  const expiresHeader = getHeaderValues(req, 'expires')[0];
  const headerExpires = expiresHeader === undefined ? undefined : parseSeconds(expiresHeader, 'Expires');
  if (values.some((v) => v.trim() === '*')) {
    if (values.length !== 1 || headerExpires !== 0) throw new Refusal(400, 'Contact * Needs Expires: 0 Alone');
    return '*';
  }
  const out: ContactRequest[] = [];
  for (const v of values) {
    const na = parseNameAddr(v, 'Contact');
    const param = na.params.get('expires');
    const asked = param !== undefined && param !== null ? parseSeconds(param, 'Contact expires') : headerExpires;
    const expiresS = asked ?? limits.defaultExpiresS;
    if (expiresS > 0 && expiresS < limits.minExpiresS) {
      throw new Refusal(423, undefined, [{ name: 'Min-Expires', value: String(limits.minExpiresS) }]);
    }
    const c: ContactRequest = { contact: na.uri, expiresS, na };
    const instance = na.params.get('+sip.instance');
    if (instance) {
      c.instanceId = instance;
      const regId = na.params.get('reg-id');
      if (regId !== undefined && regId !== null) {
        if (!/^\s*\d{1,10}\s*$/.test(regId) || Number(regId) < 1 || Number(regId) > 2 ** 31 - 1) throw new SipParseError('Bad reg-id Value');
        c.regId = Number(regId);
      }
    }
    out.push(c);
  }
  return out;
}

/** The option tags of a header (Supported, Require), lower-cased. */
export function optionTags(req: SipRequest, header: string): string[] {
  return getHeaderValues(req, header).map((t) => t.trim().toLowerCase());
}

/** The URI of a name-addr header value such as a Path entry. */
export function uriOf(value: string, header: string): ReturnType<typeof parseUri> {
  return parseUri(parseNameAddr(value, header).uri);
}

function parseSeconds(text: string, what: string): number {
  if (!/^\s*\d{1,10}\s*$/.test(text)) throw new SipParseError(`Bad ${what} Value`);
  return Math.min(Number(text), 2 ** 32 - 1);
}
