import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';
import WebSocket from 'ws';
import type { KeepAliveInfo, RegistrarView } from '../../src/api/api-context.js';
import { ApiServer } from '../../src/api/api-server.js';
import { dnSchema } from '../../src/config/schema.js';
import { Directory } from '../../src/directory/directory.js';
import { Metrics } from '../../src/metrics/metrics.js';
import type { Binding } from '../../src/registrar/binding.js';
import type { RegistrarEvents } from '../../src/registrar/registrar-events.js';
import { TransactionLayer } from '../../src/transaction/transaction-layer.js';
import type { Connection } from '../../src/transport/connection.js';
import { TransportLayer } from '../../src/transport/transport-layer.js';
import { SystemClock } from '../../src/util/clock.js';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import { TypedEvents } from '../../src/util/typed-events.js';
import { freePort } from './ports.js';

/*
 * A real ApiServer on a free loopback port over a real TransportLayer and TransactionLayer,
 * with a stand-in registrar (the API reads only its events and bindings), and HTTP/WebSocket
 * helpers for the control API's tests.
 */
/** What a test started, undone in reverse order by `cleanUp` (the tests' afterEach). */
export const cleanups: (() => unknown)[] = [];
export async function cleanUp(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

/** The registrar's read surface, standing in until the real Registrar is wired in server.ts. */
export class StandInRegistrar implements RegistrarView {
  readonly events = new TypedEvents<RegistrarEvents>();
  bindings: Binding[] = [];
  failWith: Error | undefined;
  bindingsOf(dn: string): Binding[] {
    if (this.failWith) throw this.failWith;
    return this.bindings.filter((b) => b.aor === dn);
  }
  allBindings(): Binding[] {
    return this.bindings;
  }
}

/** A logger that keeps error lines, so a test can see that a failure was logged. */
export function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const log: Logger & { errors: string[] } = { ...silentLogger, errors, error: (_obj, msg) => errors.push(msg ?? ''), child: () => log };
  return log;
}

export interface Harness {
  api: ApiServer;
  base: string;
  sipPort: number;
  directory: Directory;
  registrar: StandInRegistrar;
  transport: TransportLayer;
  transactions: TransactionLayer;
  log: ReturnType<typeof recordingLogger>;
}

export async function startApi(opts: { token?: string; keepAliveOf?: (c: Connection) => KeepAliveInfo } = {}): Promise<Harness> {
  const clock = new SystemClock();
  const log = recordingLogger();
  const directory = new Directory(
    {
      '1001': dnSchema.parse({ type: 'extension', contact: '*', 'oos-check': 30, 'oos-force': 5 }),
      gw1: dnSchema.parse({ type: 'trunk', contact: 'sip:192.0.2.10:5060;transport=tcp', prefix: '9', priority: 1 }),
    },
    clock,
    silentLogger,
  );
  const registrar = new StandInRegistrar();
  const sipPort = await freePort();
  const transport = new TransportLayer(
    { address: '127.0.0.1', port: sipPort, tlsPort: 0, connectTimeoutMs: 1000, maxMessageSize: 4096, maxConnections: 100 },
    clock,
    silentLogger,
  );
  await transport.start();
  cleanups.push(() => transport.stop());
  const transactions = new TransactionLayer({ clock, transport, onRequest: () => {} });
  transport.events.on('message', (m) => transactions.receive(m));
  cleanups.push(() => transactions.close());
  const metrics = new Metrics({ defaultMetrics: false });
  cleanups.push(metrics.attach({ directory, registrar, transport, transactions }));
  const api = new ApiServer({
    directory,
    registrar,
    transport,
    transactions,
    clock,
    log,
    metrics,
    ...(opts.keepAliveOf ? { keepAliveOf: opts.keepAliveOf } : {}),
    options: { address: '127.0.0.1', port: 0, ...(opts.token ? { token: opts.token } : {}) },
  });
  await api.start();
  cleanups.push(() => api.stop());
  return { api, base: `http://127.0.0.1:${api.port}`, sipPort, directory, registrar, transport, transactions, log };
}

export async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, init);
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** Sends raw bytes to the API and returns the whole answer (the server closes after errors). */
export function rawHttp(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(out));
    s.write(bytes);
  });
}

export async function openSocket(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((r) => s.once('connect', () => r()));
  cleanups.push(() => s.destroy());
  return s;
}


/** An /events client that records every frame. */
export async function eventsClient(port: number, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; frames: Record<string, unknown>[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/events`, { headers });
  const frames: Record<string, unknown>[] = [];
  ws.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  cleanups.push(() => ws.terminate());
  return { ws, frames };
}

/** Attempts an /events upgrade and returns the HTTP status the server refused it with. */
export function refusedUpgradeStatus(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('upgrade was accepted')));
    ws.on('error', (err) => reject(err));
  });
}
