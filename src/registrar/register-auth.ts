import { buildChallenges, credentialsForRealm, NonceManager, verifyDigest } from '../sip/digest.js';
import type { SipHeader, SipRequest } from '../sip/message.js';

export interface AuthChallenge {
  status: 401 | 403;
  reason: string;
  headers: SipHeader[];
}

/**
 * Digest authentication of requests from DNs that have a `password` (RFC 3261 §22, RFC 8760):
 * SHA-256 and MD5 challenges, nonces that expire (answered stale=true) and cannot be
 * replayed. `check` returns undefined when the request is authenticated as `dn`, else the
 * response to send.
 */
export class RegisterAuth {
  constructor(
    private readonly realm: string,
    private readonly nonces: NonceManager,
  ) {}

  check(req: SipRequest, dn: string, password: string): AuthChallenge | undefined {
    const creds = credentialsForRealm(req, this.realm);
    if (!creds) return this.challenge('Unauthorized');
    if (creds.username !== dn) return { status: 403, reason: 'Credentials Do Not Match the DN', headers: [] };
    const nonce = this.nonces.check(creds.nonce);
    if (nonce === 'invalid') return this.challenge('Unknown Nonce');
    const verdict = verifyDigest({ credentials: creds, method: req.method, password, realm: this.realm, requestUri: req.uri });
    if (verdict !== 'ok') return { status: 403, reason: `Authentication Failed (${verdict})`, headers: [] };
    if (nonce === 'stale') return this.challenge('Stale Nonce', true);
    // Only a request whose response checked out may use up its nonce count.
    const use = this.nonces.consume(creds.nonce, creds.nc);
    if (use === 'replay') return this.challenge('Nonce Replayed');
    if (use !== 'valid') return this.challenge('Stale Nonce', use === 'stale');
    return undefined;
  }

  private challenge(reason: string, stale = false): AuthChallenge {
    const nonce = this.nonces.issue();
    return {
      status: 401,
      reason,
      headers: buildChallenges({ realm: this.realm, nonce, stale }).map((value) => ({ name: 'WWW-Authenticate', value })),
    };
  }
}
