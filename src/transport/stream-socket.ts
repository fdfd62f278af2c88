import type { SocketKeepAlive } from './keep-alive.js';

/**
 * What a Connection needs of its socket: a `net.Socket`/`tls.TLSSocket` of this process, or a
 * RemoteSocket standing for one held by a socket worker. Events: `data` (Buffer), `error`
 * (NodeJS.ErrnoException), `end`, `close`.
 */
export interface StreamSocket {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly destroyed: boolean;
  /** Keep-alive as read back from the socket when it was taken over (sockets held by a worker). */
  readonly keepAliveReadBack?: SocketKeepAlive;
  write(bytes: Buffer | string, callback?: (err?: Error | null) => void): boolean;
  end(): unknown;
  /** Hold writes until uncork (net.Socket; a worker's socket has none). */
  cork?(): void;
  uncork?(): void;
  destroy(): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'error', listener: (err: NodeJS.ErrnoException) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
}
