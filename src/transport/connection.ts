import { StreamFramer } from '../sip/framer.js';
import type { Clock } from '../util/clock.js';
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

/**
 * What a connection reports, to one handler object shared by every connection (the transport
 * layer): no emitter, listener set or closures per connection, which at 100,000 connections
 * is memory that counts.
 */
export interface ConnectionHandler {
  /** One complete SIP message's bytes (still to be parsed). */
  data(conn: Connection, bytes: Buffer): void;
  /** The stream cannot be framed; the connection is being closed. */
  unframeable(conn: Connection, info: { reason: string; headBytes?: Buffer }): void;
  /** The bytes held of an incomplete message changed by `delta` (per-source memory limits count them). */
  held?(conn: Connection, delta: number): void;
  /** Exactly once, when the connection is gone. A CRLFCRLF ping is answered here and not reported. */
  closed(conn: Connection, info: { cause: string; error?: NodeJS.ErrnoException }): void;
}

export class Connection {
  state: ConnectionState = 'open';
  readonly createdAt: number;
  lastActivity: number;
  /** Complete SIP messages received (CRLF pings not counted). */
  messages = 0;
  /** Since when part of a message has been held without the rest arriving; undefined between messages. */
  partialSince: number | undefined;
  private readonly framer: StreamFramer;
  private heldBytes = 0;
  private closeCause: string | undefined;
  private corked = false;

  constructor(
    readonly id: string,
    readonly transport: Exclude<TransportName, 'UDP'>,
    readonly origin: ConnectionOrigin,
    readonly socket: StreamSocket,
    private readonly clock: Clock,
    maxMessageSize: number,
    private readonly handler: ConnectionHandler,
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
    this.corkUntilNextTick();
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Messages written to one connection in the same tick go out in one system call: a trunk or
   * a SIPp carrying many calls on one connection gets several per tick, and a write(2) each
   * was the largest single cost over TCP (14 % of the CPU at 2,500 calls/s).
   */
  private corkUntilNextTick(): void {
    const socket = this.socket;
    if (this.corked || !socket.cork || !socket.uncork) return;
    this.corked = true;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork?.();
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
      if (ev.type === 'message') {
        this.messages++;
        this.handler.data(this, ev.data);
      } else if (ev.type === 'ping') {
        // RFC 5626 §4.4.1: answer a CRLFCRLF ping with a CRLF pong at once.
        this.socket.write('\r\n');
      } else {
        const info: { reason: string; headBytes?: Buffer } = { reason: ev.reason };
        if (ev.headBytes) info.headBytes = ev.headBytes;
        this.handler.unframeable(this, info);
        this.close(`unframeable: ${ev.reason}`);
        return;
      }
    }
    const held = this.framer.buffered;
    this.partialSince = held > 0 ? (this.partialSince ?? this.lastActivity) : undefined;
    if (held !== this.heldBytes) {
      const delta = held - this.heldBytes;
      this.heldBytes = held;
      this.handler.held?.(this, delta);
    }
  }

  /** Bytes of an incomplete message held now (0 between messages). */
  get heldNow(): number {
    return this.heldBytes;
  }

  private finish(error?: NodeJS.ErrnoException): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    const info: { cause: string; error?: NodeJS.ErrnoException } = { cause: this.closeCause ?? 'closed' };
    if (error) info.error = error;
    this.handler.closed(this, info);
  }
}

export function stripV4Mapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
