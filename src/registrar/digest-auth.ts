import { buildChallenges, credentialsForRealm, DIGEST_ALGORITHMS, NonceManager, verifyDigest, type DigestAlgorithm } from '../sip/digest.js';
import type { SipHeader, SipRequest } from '../sip/message.js';
import { SipParseError } from '../util/errors.js';

export interface AuthChallenge {
  status: 401 | 403 | 407;
  reason: string;
  headers: SipHeader[];
  /** Why, for the log only: the response says no more than "Forbidden" (an outsider learns nothing). */
  detail?: string;
}

/** 'registrar': 401 with WWW-Authenticate, read from Authorization; 'proxy': 407 with Proxy-Authenticate, read from Proxy-Authorization (INVITE). */
export type AuthKind = 'registrar' | 'proxy';

/**
 * Digest authentication of requests from DNs that have a `password` (RFC 3261 §22, RFC 8760):
 * SHA-256 and MD5 challenges, nonces that expire (answered stale=true) and cannot be
 * replayed. `check` returns undefined when the request is authenticated as `dn`, else the
 * response to send. Every failure of the credentials themselves (wrong user, wrong password)
 * is the same 403 "Forbidden", and `decoy` gives a DN that does not exist (or may not be used
 * from there) the very same 401-then-403: from outside, a DN cannot be told from a bad password.
 */
export class DigestAuth {
  constructor(
    private readonly realm: string,
    private readonly nonces: NonceManager,
    /** The algorithms offered, preferred first (RFC 8760 §2.4); default SHA-256 then MD5. */
    private readonly algorithms: readonly DigestAlgorithm[] = DIGEST_ALGORITHMS,
  ) {}

  check(req: SipRequest, dn: string, password: string, kind: AuthKind = 'registrar'): AuthChallenge | undefined {
    let creds;
    try {
      creds = credentialsForRealm(req, this.realm, kind === 'proxy' ? 'Proxy-Authorization' : 'Authorization');
    } catch (err) {
      if (err instanceof SipParseError) return this.forbidden(`malformed credentials: ${err.message}`);
      throw err;
    }
    if (!creds) return this.challenge(kind, 'Unauthorized');
    // The nonce first: a 403 (which counts against the source) only for credentials on a nonce
    // this server issued, not for anything a sender can make up without asking.
    const nonce = this.nonces.check(creds.nonce);
    if (nonce === 'invalid') return this.challenge(kind, 'Unknown Nonce');
    if (creds.username !== dn) return this.forbidden('credentials do not match the DN');
    const verdict = verifyDigest({ credentials: creds, method: req.method, password, realm: this.realm, requestUri: req.uri, algorithms: this.algorithms });
    if (verdict !== 'ok') return this.forbidden(`authentication failed (${verdict})`);
    if (nonce === 'stale') return this.challenge(kind, 'Stale Nonce', true);
    // Only a request whose response checked out may use up its nonce count.
    const use = this.nonces.consume(creds.nonce, creds.nc);
    if (use === 'replay') return this.challenge(kind, 'Nonce Replayed');
    if (use !== 'valid') return this.challenge(kind, 'Stale Nonce', use === 'stale');
    return undefined;
  }

  /**
   * The answer for a request that claims `dn` but can never be authenticated as it (no such
   * DN, no password, not usable from this source): challenged like a real one, and any
   * credentials then refused with the same 403.
   */
  decoy(req: SipRequest, dn: string, kind: AuthKind = 'registrar'): AuthChallenge {
    const outcome = this.check(req, dn, `\u0000unusable\u0000${dn}`, kind);
    return outcome ?? this.forbidden('DN cannot be used from this source');
  }

  private forbidden(detail: string): AuthChallenge {
    return { status: 403, reason: 'Forbidden', headers: [], detail };
  }

  private challenge(kind: AuthKind, reason: string, stale = false): AuthChallenge {
    const nonce = this.nonces.issue();
    const name = kind === 'proxy' ? 'Proxy-Authenticate' : 'WWW-Authenticate';
    return {
      status: kind === 'proxy' ? 407 : 401,
      reason: kind === 'proxy' ? (reason === 'Unauthorized' ? 'Proxy Authentication Required' : reason) : reason,
      headers: buildChallenges({ realm: this.realm, nonce, stale, algorithms: this.algorithms }).map((value) => ({ name, value })),
    };
  }
}
