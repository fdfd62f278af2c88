import type { ApiContext, KeepAliveInfo } from './api-context.js';
import { HttpError } from './http-error.js';
import type { Router } from './router.js';
import { connectionView, dnView, isoTime } from './views.js';

const KEEP_ALIVE_OFF: KeepAliveInfo = { enabled: false };

/** The read-only routes of SPEC §7 (GET /events is the WebSocket upgrade, see ApiServer). */
export function addRoutes(router: Router, ctx: ApiContext): void {
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
    .add('GET', '/connections', () => {
      const now = clock.now();
      const active = transactions.activeByFlow();
      const json = transport.connections
        .all()
        .map((c) => connectionView(c, keepAliveOf(c), active.get(c) ?? 0, now));
      return { status: 200, json };
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
