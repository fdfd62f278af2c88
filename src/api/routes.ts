import type { ApiContext, KeepAliveInfo } from './api-context.js';
import { HttpError } from './http-error.js';
import type { Router } from './router.js';
import { RECENT_EVENTS, type EventHub } from './event-hub.js';
import { connectionView, dnView, isoTime } from './views.js';

/** A non-negative whole number from the query, `fallback` when absent; 400 when malformed. */
function count(url: URL, name: string, fallback: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw new HttpError(400, `${name} must be a whole number, got "${raw}"`);
  return Number(raw);
}

const KEEP_ALIVE_OFF: KeepAliveInfo = { enabled: false };

/**
 * The read-only routes of SPEC §7 (GET /events is the WebSocket upgrade, see ApiServer), and
 * GET /event-log: the latest events, as /events sent them (what the dashboard starts from).
 */
export function addRoutes(router: Router, ctx: ApiContext, events: Pick<EventHub, 'recent'>): void {
  const { directory, registrar, transport, transactions, clock, metrics } = ctx;
  const keepAliveOf = ctx.keepAliveOf ?? (() => KEEP_ALIVE_OFF);

  router
    .add('GET', '/health', () => ({ status: 200, json: { status: 'ok' } }))
    .add('GET', '/dns', () => {
      const now = clock.now();
      return { status: 200, json: directory.all().map((dn) => dnView(dn, registrar.bindingsOf(dn.number), now)) };
    })
    .add('GET', '/dns/{dn}', ({ params }) => {
      const number = params.dn ?? '';
      const dn = directory.get(number);
      if (!dn) throw new HttpError(404, `unknown DN ${number}`);
      return { status: 200, json: dnView(dn, registrar.bindingsOf(number), clock.now()) };
    })
    // ?offset=&limit= gives one page (the dashboard's, with 10,000 connections), its total
    // in X-Total-Count; without them, every connection.
    .add('GET', '/connections', ({ url }) => {
      const now = clock.now();
      const active = transactions.activeByFlow();
      const all = transport.connections.all();
      const offset = count(url, 'offset', 0);
      const limit = count(url, 'limit', all.length);
      const json = all.slice(offset, offset + limit).map((c) => connectionView(c, keepAliveOf(c), active.get(c) ?? 0, now));
      return { status: 200, json, headers: { 'X-Total-Count': String(all.length) } };
    })
    .add('GET', '/event-log', ({ url }) => {
      const frames = events.recent(count(url, 'limit', RECENT_EVENTS));
      return { status: 200, text: `[${frames.join(',')}]`, contentType: 'application/json; charset=utf-8' };
    })
    .add('GET', '/bans', () => ({ status: 200, json: (ctx.guard?.bans() ?? []).map((b) => ({ ...b, since: isoTime(b.since), until: isoTime(b.until) })) }))
    .add('DELETE', '/bans/{source}', ({ params }) => {
      const source = params.source ?? '';
      if (!ctx.guard?.lift(source)) throw new HttpError(404, `${source} is not banned`);
      return { status: 200, json: { source, lifted: true } };
    })
    .add('GET', '/metrics', async () => ({ status: 200, text: await metrics.text(), contentType: metrics.contentType }))
    // Reached only without an Upgrade header: the upgrade itself never gets to the router.
    .add('GET', '/events', () => {
      throw new HttpError(426, 'GET /events is a WebSocket: send Upgrade: websocket', { Upgrade: 'websocket' });
    });
}
