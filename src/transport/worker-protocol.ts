import type { KeepAliveSettings, SocketKeepAlive } from './keep-alive.js';

/**
 * Messages between the server process and its socket workers (socket-workers.ts,
 * socket-worker.ts). A worker only holds sockets: it relays bytes both ways and reports what
 * the socket did; framing, parsing and every SIP decision stay in the server process.
 */

/** What a worker needs to know before it takes sockets. */
export interface WorkerSetup {
  t: 'setup';
  keepAlive: KeepAliveSettings;
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
}

/** Server → worker. `adopt` comes with the accepted socket's handle. */
export type ToWorker =
  | WorkerSetup
  | { t: 'adopt'; id: string; tls: boolean }
  | { t: 'write'; id: string; n: number; bytes: Uint8Array | string }
  | { t: 'end'; id: string }
  | { t: 'destroy'; id: string };

/** Worker → server. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'adopted'; id: string; keepAlive: SocketKeepAlive }
  | { t: 'keepAliveFailed'; id: string; message: string }
  | { t: 'data'; id: string; bytes: Uint8Array }
  | { t: 'written'; id: string; n: number; error?: string }
  | { t: 'end'; id: string }
  | { t: 'error'; id: string; code?: string; message: string }
  | { t: 'close'; id: string };
