import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const UNAUTHORIZED_MESSAGE = 'missing or wrong bearer token';
/** The dashboard's cookie: it stands for the token, for reading only (see `allowsCookie`). */
export const DASHBOARD_COOKIE = 'sip_server_dashboard';

/**
 * Checks `Authorization: Bearer <token>` against the configured token in constant time:
 * both sides are hashed first, so neither the token's length nor its prefix leaks through
 * timing. With no configured token every request passes.
 *
 * A browser cannot put a header on a WebSocket, and a page should not keep the token where
 * its scripts can read it: the dashboard trades the token once (`?token=` or its form) for
 * an HttpOnly, SameSite=Strict cookie. The cookie's value is a hash of the token, not the
 * token, and it only reads — the API server accepts it for GET and the /events upgrade, and
 * only from its own origin (a cross-site page cannot open /events with it).
 */
export class BearerAuth {
  private readonly expected: Buffer | undefined;
  private readonly cookieValue: string | undefined;

  constructor(token: string | undefined) {
    this.expected = token === undefined ? undefined : digest(token);
    this.cookieValue = token === undefined ? undefined : digest(`dashboard:${token}`).toString('hex');
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  allows(headers: IncomingHttpHeaders): boolean {
    if (!this.expected) return true;
    const m = /^Bearer +(\S+) *$/i.exec(headers.authorization ?? '');
    const given = m?.[1];
    if (given === undefined) return false;
    return this.matches(given);
  }

  /** Whether `token` is the configured one (the dashboard's sign-in). */
  matches(token: string): boolean {
    return this.expected !== undefined && timingSafeEqual(digest(token), this.expected);
  }

  /** The Set-Cookie value that lets a browser read through the dashboard; undefined without a token. */
  cookie(): string | undefined {
    return this.cookieValue === undefined ? undefined : `${DASHBOARD_COOKIE}=${this.cookieValue}; HttpOnly; SameSite=Strict; Path=/`;
  }

  /** A request of the dashboard's: its cookie, from the server's own origin (or none given). */
  allowsCookie(headers: IncomingHttpHeaders): boolean {
    if (!this.cookieValue) return true;
    if (!sameOrigin(headers)) return false;
    const given = cookieOf(headers.cookie, DASHBOARD_COOKIE);
    return given !== undefined && timingSafeEqual(digest(given), digest(this.cookieValue));
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function cookieOf(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** No Origin (a same-origin GET, a tool), or one whose host is the Host asked for. */
function sameOrigin(headers: IncomingHttpHeaders): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false;
  }
}
