import { StreamFramer } from '../sip/framer.js';
import type { Clock } from '../util/clock.js';
import { addListener, causeOfError, notifyClosed, removeListener, type CloseCause, type Flow, type FlowListener, type FlowListeners, type FlowOrigin, type FlowState, type StreamTransport } from './flow.js';
import type { StreamSocket } from './stream-socket.js';


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
  /**
   * Exactly once, when the connection is gone, after its close listeners ran. A CRLFCRLF
   * ping is answered here and not reported.
   */
  closed(conn: Connection, error: NodeJS.ErrnoException | undefined): void;
  /** A close listener threw (it is logged; the others still ran). */
  listenerFailed(conn: Connection, err: unknown): void;
}

/**
 * One TCP or TLS connection carrying SIP: the transport's side of a `Flow` (flow.ts says
 * what the layers above see and the order things happen in when it ends). Explicit states;
 * the connection table skips connections that are not `open`. Close vs destroy are one
 * lifecycle: `close()` ends gracefully (FIN), `destroy()` tears down at once; both end in
 * `closed` exactly once, and the first cause given is the one kept.
 */
export class Connection implements Flow {
  state: FlowState = 'open';
  closedBy: CloseCause | undefined;
  closeReason: string | undefined;
  readonly createdAt: number;
  lastActivity: number;
  /** Complete SIP messages received (CRLF pings not counted). */
  messages = 0;
  /** Since when part of a message has been held without the rest arriving; undefined between messages. */
  partialSince: number | undefined;
  private readonly framer: StreamFramer;
  private heldBytes = 0;
  private corked = false;
  private listeners: FlowListeners;

  constructor(
    readonly id: string,
    readonly transport: StreamTransport,
    readonly origin: FlowOrigin,
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
      this.noteCause(causeOfError(err.code), `error: ${err.code ?? err.message}`);
      this.finish(err);
    });
    socket.on('end', () => {
      this.noteCause('peer-closed', 'remote closed');
      // Half-close from the peer: we have nothing more to say either.
      socket.end();
    });
    socket.on('close', () => this.finish());
  }

  onClose(listener: FlowListener): void {
    this.listeners = addListener(this.listeners, listener);
  }

  offClose(listener: FlowListener): void {
    this.listeners = removeListener(this.listeners, listener);
  }

  /** The first cause is the one kept: a teardown the server started stays the server's. */
  private noteCause(by: CloseCause, reason: string): void {
    if (this.closedBy !== undefined) return;
    this.closedBy = by;
    this.closeReason = reason;
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
  close(by: CloseCause, reason: string): void {
    if (this.state !== 'open') return;
    this.noteCause(by, reason);
    this.state = 'closing';
    this.socket.end();
  }

  /** Immediate teardown. */
  destroy(by: CloseCause, reason: string): void {
    if (this.state === 'closed') return;
    this.noteCause(by, reason);
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
        this.close('unframeable', `unframeable: ${ev.reason}`);
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

  /** The end, in the order flow.ts gives: closed, then the listeners, then the transport's report. */
  private finish(error?: NodeJS.ErrnoException): void {
    if (this.state === 'closed') return;
    this.noteCause('peer-closed', 'closed');
    this.state = 'closed';
    const listeners = this.listeners;
    this.listeners = undefined;
    notifyClosed(listeners, this, (err) => this.handler.listenerFailed(this, err));
    this.handler.closed(this, error);
  }
}

export function stripV4Mapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
