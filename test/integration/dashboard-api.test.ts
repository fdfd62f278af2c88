import { afterEach, describe, expect, it } from 'vitest';
import { RECENT_EVENTS } from '../../src/api/event-hub.js';
import { cleanUp, eventsClient, getJson, openSocket, refusedUpgradeStatus, startApi } from '../support/api-harness.js';
import { waitFor } from '../support/wait-for.js';

afterEach(cleanUp);

const TOKEN = 'dashboard-test-token';

/** The cookie a browser would keep from a Set-Cookie answer ("name=value"). */
function cookieOf(res: Response): string {
  const set = res.headers.get('set-cookie') ?? '';
  return set.split(';')[0] ?? '';
}

async function signIn(base: string): Promise<string> {
  const res = await fetch(`${base}/dashboard?token=${TOKEN}`, { redirect: 'manual' });
  expect(res.status).toBe(303);
  return cookieOf(res);
}

describe('the dashboard page and its token', () => {
  it('without the token: 401 and a sign-in form, on / and /dashboard alike; a wrong token says so', async () => {
    const { base } = await startApi({ token: TOKEN });
    for (const path of ['/', '/dashboard']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await res.text()).toContain('<form method="post" action="/dashboard">');
    }
    const wrong = await fetch(`${base}/dashboard?token=guess`, { redirect: 'manual' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('That token is not the server\'s http-token.');
    expect(wrong.headers.get('set-cookie')).toBeNull();
  });

  it('?token= once: a redirect to the bare address with an HttpOnly SameSite=Strict cookie that is not the token, which then opens the page', async () => {
    const { base } = await startApi({ token: TOKEN });
    const res = await fetch(`${base}/dashboard?token=${TOKEN}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/dashboard');
    const set = res.headers.get('set-cookie') ?? '';
    expect(set).toMatch(/^sip_server_dashboard=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/);
    expect(set).not.toContain(TOKEN);
    const page = await fetch(`${base}/dashboard`, { headers: { cookie: cookieOf(res) } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/dashboard/app.js"></script>');
  });

  it('the sign-in form (POST) gives the same cookie; a wrong one in the form gets the form again', async () => {
    const { base } = await startApi({ token: TOKEN });
    const form = (token: string): RequestInit => ({ method: 'POST', body: new URLSearchParams({ token }), redirect: 'manual' });
    const ok = await fetch(`${base}/dashboard`, form(TOKEN));
    expect(ok.status).toBe(303);
    expect(cookieOf(ok)).toBe(await signIn(base));
    expect((await fetch(`${base}/dashboard`, form('nope'))).status).toBe(401);
  });

  it('the cookie reads (GET routes, /events) only from the server\'s own origin, and never changes anything', async () => {
    const { base, api, directory } = await startApi({ token: TOKEN });
    const cookie = await signIn(base);
    expect((await getJson(`${base}/dns`, { headers: { cookie } })).status).toBe(200);
    expect((await getJson(`${base}/dns`, { headers: { cookie, origin: 'http://attacker.example' } })).status).toBe(401);
    // Not a way to act: DELETE /calls/{id} with the cookie alone is refused before routing.
    expect(await getJson(`${base}/calls/any`, { method: 'DELETE', headers: { cookie } })).toMatchObject({ status: 401, body: { error: 'missing or wrong bearer token' } });
    // A cookie made for another token opens nothing.
    expect((await getJson(`${base}/dns`, { headers: { cookie: 'sip_server_dashboard=' + '0'.repeat(64) } })).status).toBe(401);
    expect(await refusedUpgradeStatus(api.port, '/events', { cookie, origin: 'http://attacker.example' })).toBe(401);
    const { frames } = await eventsClient(api.port, { cookie, origin: `http://127.0.0.1:${api.port}` });
    directory.setState('gw1', 'out-of-service', 'OPTIONS timeout');
    await waitFor(() => frames.length === 1, 'the event over the cookie-opened WebSocket');
  });

  it('with no token configured the page opens as it is; its script and style sheet are served to anyone, other paths under it are 404', async () => {
    const { base } = await startApi();
    expect((await fetch(`${base}/`)).status).toBe(200);
    const js = await fetch(`${base}/dashboard/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toContain("new WebSocket(`${scheme}//${window.location.host}/events`)");
    expect((await fetch(`${base}/dashboard/style.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(await getJson(`${base}/dashboard/secrets`)).toMatchObject({ status: 404, body: { error: 'not found' } });
  });
});

describe('what the dashboard reads', () => {
  it('GET /connections?offset=&limit= gives one page and the total in X-Total-Count; a malformed number is a 400', async () => {
    const { base, sipPort, transport } = await startApi();
    for (let i = 0; i < 3; i++) await openSocket(sipPort);
    await waitFor(() => transport.connections.size === 3, 'three accepted connections');
    const all = await getJson(`${base}/connections`);
    const ids = (all.body as { id: string }[]).map((c) => c.id);
    const first = await getJson(`${base}/connections?offset=0&limit=2`);
    expect(first.headers.get('x-total-count')).toBe('3');
    expect((first.body as { id: string }[]).map((c) => c.id)).toEqual(ids.slice(0, 2));
    const second = await getJson(`${base}/connections?offset=2&limit=2`);
    expect((second.body as { id: string }[]).map((c) => c.id)).toEqual(ids.slice(2));
    expect(await getJson(`${base}/connections?limit=two`)).toMatchObject({ status: 400, body: { error: 'limit must be a whole number, got "two"' } });
  });

  it('GET /event-log gives the latest events as /events framed them, oldest first, with or without a client; at most RECENT_EVENTS', async () => {
    const { base, api, directory } = await startApi();
    directory.setState('gw1', 'out-of-service', 'OPTIONS timeout');
    directory.setState('gw1', 'in-service', 'OPTIONS answered');
    const log = await getJson(`${base}/event-log`);
    expect(log.body).toEqual([
      expect.objectContaining({ event: 'EventDNOutOfService', dn: 'gw1', reason: 'OPTIONS timeout' }),
      expect.objectContaining({ event: 'EventDNBackInService', dn: 'gw1' }),
    ]);
    expect(await getJson(`${base}/event-log?limit=1`)).toMatchObject({ body: [{ event: 'EventDNBackInService' }] });
    for (let i = 0; i < RECENT_EVENTS + 10; i++) api.events.publish('Tick', { n: i });
    const kept = (await getJson(`${base}/event-log`)).body as { n: number }[];
    expect(kept).toHaveLength(RECENT_EVENTS);
    expect([kept[0]?.n, kept.at(-1)?.n]).toEqual([10, RECENT_EVENTS + 9]);
  });
});
