import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const UNAUTHORIZED_MESSAGE = 'missing or wrong bearer token';

/**
 * Checks `Authorization: Bearer <token>` against the configured token in constant time:
 * both sides are hashed first, so neither the token's length nor its prefix leaks through
 * timing. With no configured token every request passes.
 */
export class BearerAuth {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token === undefined ? undefined : digest(token);
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  allows(headers: IncomingHttpHeaders): boolean {
    if (!this.expected) return true;
    const m = /^Bearer +(\S+) *$/i.exec(headers.authorization ?? '');
    const given = m?.[1];
    if (given === undefined) return false;
    return timingSafeEqual(digest(given), this.expected);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
