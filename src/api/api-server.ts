import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { SipServerError } from '../util/errors.js';
import type { ApiContext } from './api-context.js';
import { BearerAuth, UNAUTHORIZED_MESSAGE } from './bearer-auth.js';
import { DEFAULT_MAX_BACKLOG_BYTES, EventHub } from './event-hub.js';
import { HttpError } from './http-error.js';
import { errorReply, writeRawError, writeReply } from './http-reply.js';
import { decodePath, Router, type Reply } from './router.js';
import { addCallRoutes } from './call-routes.js';
import { addRoutes } from './routes.js';
import { DashboardPage } from './dashboard-page.js';

/** Longer request targets get 414 (Node itself refuses heads over 16 KiB). */
const MAX_URL_LENGTH = 4096;
/** How long a WebSocket client gets to answer our close frame at shutdown. */
const WS_CLOSE_GRACE_MS = 1000;
const AUTH_HEADERS = { 'WWW-Authenticate': 'Bearer' };

type Target = { ok: true; url: URL; segments: string[] } | { ok: false; status: number; message: string };

/**
 * The control API (SPEC §7): JSON over HTTP plus the GET /events WebSocket. Every answer,
 * errors included, is JSON (`{"error": …}`) except /metrics. With `options.token` set, every
 * request, the WebSocket upgrade included, needs `Authorization: Bearer <token>`.
 *
 * `events` is the hub behind /events: start() forwards the directory's and registrar's
 * events to it; other modules add theirs with `events.forward(...)` or `events.publish(...)`.
 */
export class ApiServer {
  readonly events: EventHub<WebSocket>;
  private readonly router = new Router();
  private readonly auth: BearerAuth;
  private readonly dashboard: DashboardPage;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly unsubscribe: (() => void)[] = [];
  private boundPort = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(private readonly ctx: ApiContext) {
    this.auth = new BearerAuth(ctx.options.token);
    this.events = new EventHub<WebSocket>(ctx.clock, ctx.log, ctx.options.maxEventBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES, ctx.options.defer);
    this.dashboard = new DashboardPage(this.auth);
    addRoutes(this.router, ctx, this.events);
    if (ctx.calls) addCallRoutes(this.router, ctx.calls, ctx.makeCall, ctx.control);
    this.wss = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: 4096 });
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
  }

  /** The port bound by start() (the configured one, or the one picked for port 0). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new SipServerError('API_STATE', `the control API cannot start: it is ${this.state}`);
    const { address, port } = this.ctx.options;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (err) => this.ctx.log.error({ err }, 'control API server error'));
    const bound = this.server.address();
    this.boundPort = typeof bound === 'object' && bound ? bound.port : port;
    this.state = 'running';
    this.unsubscribe.push(
      this.events.forward(this.ctx.directory.events, ['EventDNOutOfService', 'EventDNBackInService']),
      this.events.forward(this.ctx.registrar.events, ['EventRegistered', 'EventUnregistered']),
    );
    this.ctx.log.info({ address, port: this.boundPort, auth: this.auth.enabled }, 'control API up');
  }

  /** Stops listening, closes every WebSocket client (1001) and every HTTP connection. */
  async stop(): Promise<void> {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    for (const off of this.unsubscribe.splice(0)) off();
    this.events.flush();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(this.events.all().map((ws) => this.closeClient(ws)));
    this.server.closeAllConnections();
    await closed;
  }

  private closeClient(ws: WebSocket): Promise<void> {
    this.events.remove(ws);
    if (ws.readyState === ws.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.ctx.clock.setTimer(WS_CLOSE_GRACE_MS, () => ws.terminate());
      ws.once('close', () => {
        timer.cancel();
        resolve();
      });
      ws.close(1001, 'server stopping');
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.answer(req)
      .then((reply) => {
        writeReply(res, reply);
        this.ctx.log.debug({ method: req.method, url: req.url, status: reply.status }, 'control API request');
      })
      .catch((err: unknown) => {
        this.ctx.log.error({ err, method: req.method, url: req.url }, 'control API could not answer');
        res.destroy();
      });
  }

  /**
   * Never rejects for a handler's fault: HttpError → its status, anything else → 500. The
   * dashboard's paths check the token themselves; a GET may also carry the dashboard's cookie.
   */
  private async answer(req: IncomingMessage): Promise<Reply> {
    const target = parseTarget(req.url);
    if (!target.ok) {
      if (!this.auth.allows(req.headers)) return errorReply(401, UNAUTHORIZED_MESSAGE, AUTH_HEADERS);
      return errorReply(target.status, target.message);
    }
    if (DashboardPage.owns(target.segments)) return this.guarded(() => this.dashboard.answer(req, target.url, target.segments), req);
    if (!this.auth.allows(req.headers) && !(req.method === 'GET' && this.auth.allowsCookie(req.headers))) {
      return errorReply(401, UNAUTHORIZED_MESSAGE, AUTH_HEADERS);
    }
    const match = this.router.match(req.method ?? '', target.segments);
    if (match.kind === 'not-found') return errorReply(404, 'not found');
    if (match.kind === 'method-not-allowed') {
      return errorReply(405, `method ${req.method ?? ''} not allowed`, { Allow: match.allow.join(', ') });
    }
    const handler = match.handler;
    return this.guarded(() => handler({ params: match.params, url: target.url, req }), req);
  }

  private async guarded(handle: () => Reply | Promise<Reply>, req: IncomingMessage): Promise<Reply> {
    try {
      return await handle();
    } catch (err) {
      if (err instanceof HttpError) return errorReply(err.status, err.message, { ...err.headers });
      this.ctx.log.error({ err, method: req.method, url: req.url }, 'control API handler failed');
      return errorReply(500, 'internal error');
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.ctx.log.debug({ err }, 'control API upgrade socket error'));
    if (!this.auth.allows(req.headers) && !this.auth.allowsCookie(req.headers)) return writeRawError(socket, 401, UNAUTHORIZED_MESSAGE, AUTH_HEADERS);
    const target = parseTarget(req.url);
    if (!target.ok) return writeRawError(socket, target.status, target.message);
    if (target.segments.join('/') !== 'events') return writeRawError(socket, 404, 'not found');
    if (req.method !== 'GET') return writeRawError(socket, 405, `method ${req.method ?? ''} not allowed`, { Allow: 'GET' });
    if (this.state !== 'running') return writeRawError(socket, 503, 'control API is stopping');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    if (this.state !== 'running') {
      ws.terminate();
      return;
    }
    this.events.add(ws);
    ws.on('close', () => this.events.remove(ws));
    ws.on('error', (err) => this.ctx.log.debug({ err }, 'event client error'));
    this.ctx.log.debug({ clients: this.events.size }, 'event client connected');
  }

  /** A request Node could not parse (bad head, too large, timeout): JSON error, then close. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    this.ctx.log.debug({ err }, 'control API client error');
    if (err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    writeRawError(socket, status, status === 431 ? 'request head too large' : status === 408 ? 'request timeout' : 'bad request');
  }
}

function parseTarget(raw: string | undefined): Target {
  if (raw === undefined || raw === '') return { ok: false, status: 400, message: 'missing request target' };
  if (raw.length > MAX_URL_LENGTH) return { ok: false, status: 414, message: 'request target too long' };
  let url: URL;
  try {
    url = new URL(raw, 'http://control-api.invalid');
  } catch (err) {
    if (err instanceof TypeError) return { ok: false, status: 400, message: 'bad request target' };
    throw err;
  }
  const segments = decodePath(url.pathname);
  if (!segments) return { ok: false, status: 400, message: 'bad percent-encoding in path' };
  return { ok: true, url, segments };
}
