import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { resolve } from 'node:path';
import type { BearerAuth } from './bearer-auth.js';
import { HttpError } from './http-error.js';
import { readBody } from './read-body.js';
import type { Reply } from './router.js';

/** The page's files: plain HTML, CSS and one JavaScript module, served as they are (no build). */
const ASSETS: Record<string, { file: string; type: string }> = {
  'app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  'style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";
const SECURITY = { 'Content-Security-Policy': PAGE_CSP, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer' };
const HTML = 'text/html; charset=utf-8';

/** Where the page's files are: `dashboard/` at the package's root (from src/api or dist/api). */
export const DASHBOARD_DIR = resolve(import.meta.dirname, '../../dashboard');

/**
 * GET / and GET /dashboard: the live dashboard (SPEC §7), under the API's token rules. With a
 * token configured, the page is given for the token once — `?token=` in the address, or the
 * sign-in form (POST) — which it trades for the read-only cookie and a redirect to the bare
 * address (so the token stays out of the history); after that the cookie opens the page, its
 * JSON reads and its /events WebSocket. Without the token or cookie: the sign-in form, 401.
 * The page's script and style sheet hold no data and are served to anyone.
 */
export class DashboardPage {
  private readonly files = new Map<string, string>();

  constructor(
    private readonly auth: BearerAuth,
    private readonly dir = DASHBOARD_DIR,
  ) {}

  /** Whether the path is the page's (then `answer` replies to it, auth included). */
  static owns(segments: readonly string[]): boolean {
    return segments.length === 0 || segments[0] === 'dashboard';
  }

  async answer(req: IncomingMessage, url: URL, segments: readonly string[]): Promise<Reply> {
    const method = req.method ?? '';
    if (segments.length === 2 && segments[0] === 'dashboard') {
      const asset = ASSETS[segments[1] ?? ''];
      if (!asset) throw new HttpError(404, 'not found');
      if (method !== 'GET') throw new HttpError(405, `method ${method} not allowed`, { Allow: 'GET' });
      return { status: 200, text: this.read(asset.file), contentType: asset.type, headers: SECURITY };
    }
    if (segments.length > 1) throw new HttpError(404, 'not found');
    if (method !== 'GET' && method !== 'POST') throw new HttpError(405, `method ${method} not allowed`, { Allow: 'GET, POST' });
    const given = method === 'POST' ? await formToken(req) : url.searchParams.get('token');
    if (given !== null && this.auth.enabled) {
      if (!this.auth.matches(given)) return this.signIn('That token is not the server\'s http-token.');
      const cookie = this.auth.cookie();
      return { status: 303, text: '', contentType: HTML, headers: { Location: '/dashboard', ...(cookie ? { 'Set-Cookie': cookie } : {}) } };
    }
    if (method === 'POST') return { status: 303, text: '', contentType: HTML, headers: { Location: '/dashboard' } };
    if (!this.auth.allows(req.headers) && !this.auth.allowsCookie(req.headers)) return this.signIn();
    return { status: 200, text: this.read('index.html'), contentType: HTML, headers: SECURITY };
  }

  private signIn(problem?: string): Reply {
    const note = problem ? `<p class="problem" id="sign-in-problem">${problem}</p>` : '';
    const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SIP Server — sign in</title>
<link rel="stylesheet" href="/dashboard/style.css"></head><body class="sign-in"><main>
<h1>SIP Server</h1><p>This server's control API needs its <code>http-token</code>.</p>${note}
<form method="post" action="/dashboard"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Open the dashboard</button></form></main></body></html>`;
    return { status: 401, text: body, contentType: HTML, headers: { ...SECURITY, 'WWW-Authenticate': 'Bearer' } };
  }

  /** Read once, then from memory: the files ship with the package and do not change under it. */
  private read(name: string): string {
    let text = this.files.get(name);
    if (text === undefined) {
      text = readFileSync(resolve(this.dir, name), 'utf8');
      this.files.set(name, text);
    }
    return text;
  }
}

/** The `token` field of an application/x-www-form-urlencoded body (4 KiB at most). */
async function formToken(req: IncomingMessage): Promise<string | null> {
  const body = await readBody(req, 4096);
  return new URLSearchParams(body.toString('utf8')).get('token');
}
