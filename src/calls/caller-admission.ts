import { SipParseError } from '../util/errors.js';
import type { Directory } from '../directory/directory.js';
import type { DigestAuth } from '../registrar/digest-auth.js';
import type { SourceAccess } from '../registrar/registrar.js';
import { getHeader, type SipHeader, type SipRequest } from '../sip/message.js';
import { parseNameAddr } from '../sip/name-addr.js';
import type { Source } from '../transport/types.js';
import type { CallerIdentifier, CallerIdentity } from './caller-identity.js';
import { userOf } from './sip-parties.js';

export type Admission =
  | { ok: true; caller: CallerIdentity }
  | { ok: false; status: number; reason: string; headers: SipHeader[]; detail: string };

export interface CallerAdmissionDeps {
  directory: Directory;
  identifier: CallerIdentifier;
  /** Which sources are trusted (sip-trusted-peers, trunk / voip-service contacts), and where failed authentications are counted. */
  access: SourceAccess;
  auth: DigestAuth;
}

/**
 * Who may place a call ("authenticate or be trusted", SPEC §9). An INVITE that claims (From)
 * a DN with a password is challenged (407) unless that DN's `authenticate-requests` leaves
 * INVITE out, and its caller is then the authenticated DN. Otherwise a trusted source may
 * call, its caller DN being what the server knows of it (CallerIdentifier). From anywhere
 * else only a phone on a registration it authenticated for may call; the rest is refused —
 * 403 for an anonymous caller, and for a claimed name the same challenge-then-403 a real DN
 * with a wrong password gets, so an INVITE scan tells no DN from a made-up one.
 */
export class CallerAdmission {
  constructor(private readonly deps: CallerAdmissionDeps) {}

  admit(req: SipRequest, source: Source): Admission {
    const claimed = claimedUser(req);
    const entry = claimed === undefined ? undefined : this.deps.directory.get(claimed);
    const challenged = entry?.options['authenticate-requests'].includes('invite') ? entry.options.password : undefined;
    if (claimed !== undefined && challenged !== undefined) {
      const refused = this.deps.auth.check(req, claimed, challenged, 'proxy');
      if (refused?.status === 403) this.deps.access.authFailed(source.address);
      if (refused) return { ok: false, ...refused, detail: refused.detail ?? 'credentials asked for' };
      return { ok: true, caller: { dn: claimed, presented: claimed } };
    }
    const caller = this.deps.identifier.identify(claimed, source);
    if (this.deps.access.trusted(source.address)) return { ok: true, caller };
    if (caller.dn !== null && this.deps.directory.get(caller.dn)?.options.password !== undefined) return { ok: true, caller };
    if (claimed === undefined || claimed === 'anonymous') {
      return { ok: false, status: 403, reason: 'Forbidden', headers: [], detail: 'anonymous caller from an untrusted source' };
    }
    const decoy = this.deps.auth.decoy(req, claimed, 'proxy');
    if (decoy.status === 403) this.deps.access.authFailed(source.address);
    return { ok: false, ...decoy, detail: decoy.detail ?? 'untrusted source: credentials asked for' };
  }
}

function claimedUser(req: SipRequest): string | undefined {
  try {
    const user = userOf(parseNameAddr(getHeader(req, 'from') ?? '', 'From').uri);
    return user === '' ? undefined : user;
  } catch (err) {
    // A From that does not parse names nobody (the request is refused as anonymous if untrusted).
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}
