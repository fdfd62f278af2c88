import { EventEmitter } from 'node:events';
import type { SocketKeepAlive } from './keep-alive.js';
import type { StreamSocket } from './stream-socket.js';
import type { ToWorker } from './worker-protocol.js';

interface Peer {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
}

/**
 * Stands in the server process for a socket that a socket worker holds: writes go to the
 * worker and complete when the worker's socket has taken the bytes; the worker's reports
 * come back as the usual socket events (`data`, `end`, `error`, `close`).
 */
export class RemoteSocket extends EventEmitter implements StreamSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  keepAliveReadBack?: SocketKeepAlive;
  private closed = false;
  private ended = false;
  private nextWrite = 1;
  private readonly pendingWrites = new Map<number, (err?: Error | null) => void>();

  constructor(
    readonly id: string,
    peer: Peer,
    private readonly post: (m: ToWorker) => void,
  ) {
    super();
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.localAddress = peer.localAddress;
    this.localPort = peer.localPort;
  }

  get destroyed(): boolean {
    return this.closed || this.ended;
  }

  write(bytes: Buffer | string, callback?: (err?: Error | null) => void): boolean {
    if (this.destroyed) {
      const err = new Error('socket is closed');
      if (callback) queueMicrotask(() => callback(err));
      return false;
    }
    const n = this.nextWrite++;
    if (callback) this.pendingWrites.set(n, callback);
    this.post({ t: 'write', id: this.id, n, bytes });
    return true;
  }

  end(): void {
    if (this.destroyed) return;
    this.ended = true;
    this.post({ t: 'end', id: this.id });
  }

  destroy(): void {
    if (this.closed) return;
    this.ended = true;
    this.post({ t: 'destroy', id: this.id });
  }

  /** The worker's socket took (or refused) write number n. */
  written(n: number, error?: string): void {
    const cb = this.pendingWrites.get(n);
    this.pendingWrites.delete(n);
    cb?.(error ? new Error(error) : null);
  }

  /** The worker's socket closed, or the worker itself is gone. */
  closedByWorker(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.pendingWrites.values()) cb(new Error('socket closed'));
    this.pendingWrites.clear();
    this.emit('close');
  }
}
