import { StreamFramer } from '../sip/framer.js';
import type { Clock } from '../util/clock.js';
import { TypedEvents } from '../util/typed-events.js';
import type { StreamSocket } from './stream-socket.js';
import type { TransportName } from './types.js';

/**
 * One TCP or TLS connection carrying SIP. Explicit states; the connection table skips
 * connections that are not `open`. Close vs destroy are one lifecycle: `close()` ends
 * gracefully (FIN), `destroy(cause)` tears down at once; both end in `closed` exactly once.
 */
export type ConnectionState = 'open' | 'closing' | 'closed';

/** Who opened the connection: the peer (accepted) or the server (outbound). */
export type ConnectionOrigin = 'accepted' | 'outbound';

export interface ConnectionEvents extends Record<string, unknown> {
  /** One complete SIP message's bytes (still to be parsed). */
  data: Buffer;
  /** A CRLFCRLF keep-alive ping was received (and answered). */
  ping: undefined;
  /** The stream cannot be framed; the connection is being closed. */
  unframeable: { reason: string; headBytes?: Buffer };
  closed: { cause: string; error?: NodeJS.ErrnoException };
}

export class Connection {
  readonly events = new TypedEvents<ConnectionEvents>();
  state: ConnectionState = 'open';
  readonly createdAt: number;
  lastActivity: number;
  private readonly framer: StreamFramer;
  private closeCause: string | undefined;

  constructor(
    readonly id: string,
    readonly transport: Exclude<TransportName, 'UDP'>,
    readonly origin: ConnectionOrigin,
    readonly socket: StreamSocket,
    private readonly clock: Clock,
    maxMessageSize: number,
  ) {
    this.createdAt = clock.now();
    this.lastActivity = this.createdAt;
    this.framer = new StreamFramer(maxMessageSize);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.closeCause ??= `error: ${err.code ?? err.message}`;
      this.finish(err);
    });
    socket.on('end', () => {
      this.closeCause ??= 'remote closed';
      // Half-close from the peer: we have nothing more to say either.
      socket.end();
    });
    socket.on('close', () => this.finish());
  }

  get remoteAddress(): string {
    return stripV4Mapped(this.socket.remoteAddress ?? '');
  }

  get remotePort(): number {
    return this.socket.remotePort ?? 0;
  }

  get localAddress(): string {
    return stripV4Mapped(this.socket.localAddress ?? '');
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  /** Writes bytes; resolves once handed to the kernel, rejects if the connection is not open. */
  write(bytes: Buffer): Promise<void> {
    if (this.state !== 'open' || this.socket.destroyed) {
      return Promise.reject(new Error(`connection ${this.id} is ${this.state}`));
    }
    this.lastActivity = this.clock.now();
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Graceful close (FIN after pending writes). */
  close(cause: string): void {
    if (this.state !== 'open') return;
    this.closeCause ??= cause;
    this.state = 'closing';
    this.socket.end();
  }

  /** Immediate teardown. */
  destroy(cause: string): void {
    if (this.state === 'closed') return;
    this.closeCause ??= cause;
    this.state = 'closing';
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.lastActivity = this.clock.now();
    for (const ev of this.framer.push(chunk)) {
      if (this.state !== 'open') return;
      if (ev.type === 'message') this.events.emit('data', ev.data);
      else if (ev.type === 'ping') {
        // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong at once.
        this.socket.write('\r\n');
        this.events.emit('ping', undefined);
      } else {
        const info: { reason: string; headBytes?: Buffer } = { reason: ev.reason };
        if (ev.headBytes) info.headBytes = ev.headBytes;
        this.events.emit('unframeable', info);
        this.close(`unframeable: ${ev.reason}`);
        return;
      }
    }
  }

  private finish(error?: NodeJS.ErrnoException): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const ev: ConnectionEvents['closed'] = { cause: this.closeCause ?? 'closed' };
    if (error) ev.error = error;
    this.events.emit('closed', ev);
  }
}

export function stripV4Mapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
