import type { SocketKeepAlive } from './keep-alive.js';
import type { StreamSocket } from './stream-socket.js';
import type { ToWorker } from './worker-protocol.js';

interface Peer {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}

/** How a RemoteSocket reaches its worker: posts a message; write callbacks are kept per worker. */
export interface WorkerLink {
  post(m: ToWorker): void;
  /** Keeps `callback` until the worker reports write `n` of socket `id` done; returns n (> 0). */
  expectWrite(id: string, callback: (err?: Error | null) => void): number;
}

type Listeners = {
  data?: (chunk: Buffer) => void;
  error?: (err: NodeJS.ErrnoException) => void;
  end?: () => void;
  close?: () => void;
};

/**
 * Stands in the server process for a socket that a socket worker holds: writes go to the
 * worker and complete when the worker's socket has taken the bytes; the worker's reports
 * come back as the usual socket events (`data`, `end`, `error`, `close`), one listener each —
 * a Connection is the only listener — with no emitter or map of its own, since there may be
 * 100,000 of these.
 */
export class RemoteSocket implements StreamSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  keepAliveReadBack?: SocketKeepAlive;
  private closed = false;
  private ended = false;
  private readonly listeners: Listeners = {};

  constructor(
    readonly id: string,
    peer: Peer,
    private readonly link: WorkerLink,
  ) {
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.localAddress = peer.localAddress;
    this.localPort = peer.localPort;
  }

  get destroyed(): boolean {
    return this.closed || this.ended;
  }

  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: keyof Listeners, listener: (arg: never) => void): this {
    (this.listeners as Record<string, unknown>)[event] = listener;
    return this;
  }

  write(bytes: Buffer | string, callback?: (err?: Error | null) => void): boolean {
    if (this.destroyed) {
      const err = new Error('socket is closed');
      if (callback) queueMicrotask(() => callback(err));
      return false;
    }
    const n = callback ? this.link.expectWrite(this.id, callback) : 0;
    this.link.post({ t: 'write', id: this.id, n, bytes });
    return true;
  }

  end(): void {
    if (this.destroyed) return;
    this.ended = true;
    this.link.post({ t: 'end', id: this.id });
  }

  destroy(): void {
    if (this.closed) return;
    this.ended = true;
    this.link.post({ t: 'destroy', id: this.id });
  }

  /** What the worker's socket did. */
  received(bytes: Buffer): void {
    this.listeners.data?.(bytes);
  }

  endedByPeer(): void {
    this.listeners.end?.();
  }

  failed(err: NodeJS.ErrnoException): void {
    this.listeners.error?.(err);
  }

  /** The worker's socket closed, or the worker itself is gone (its pending writes fail with it). */
  closedByWorker(): void {
    if (this.closed) return;
    this.closed = true;
    this.listeners.close?.();
  }
}
