import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Clock, TimerHandle } from '../util/clock.js';
import { SipParseError, TransportError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { TypedEvents } from '../util/typed-events.js';
import { Connection, stripV4Mapped, type ConnectionHandler } from './connection.js';
import { ConnectionTable } from './connection-table.js';
import type { Connector } from './connector.js';
import type { FlowOrigin, StreamTransport as StreamName } from './flow.js';
import type { Incoming } from './incoming.js';
import type { SocketWorkers } from './socket-workers.js';
import type { SourceGuard } from './source-guard.js';
import type { StreamSocket } from './stream-socket.js';
import type { TransportEvents } from './transport-events.js';
import type { Destination, Source } from './types.js';

/** What TCP and TLS need of the transport options (transport-layer.ts adds the ports). */
export interface StreamOptions {
  address: string;
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; verifyPeer: boolean };
  connectTimeoutMs: number;
  maxMessageSize: number;
  maxConnections: number;
  /** Called for every TCP/TLS socket this process holds, accepted or opened, before it carries SIP. */
  configureSocket?: (socket: Socket) => void;
  /**
   * Socket workers (`sip-tcp-workers`): when given, accepted TCP/TLS sockets are handed to
   * them (they apply keep-alive and terminate TLS); connections the server opens stay here.
   */
  workers?: SocketWorkers;
  /**
   * Per-source limits and bans: what a banned source sends is dropped unread (no event, no
   * log line per message: a flood must not become a log flood; the ban counts it).
   */
  guard?: SourceGuard;
  /** An accepted connection that has sent no complete message this long after it opened is closed (slowloris); 0 = never. */
  firstMessageTimeoutMs?: number;
  /** A connection holding part of a message this long without the rest is closed; 0 = never. Idle flows between messages stay. */
  stalledMessageTimeoutMs?: number;
}

export type StreamDestination = Destination & { transport: StreamName };

/**
 * TCP and TLS: the listeners, the connections (accepted, handed to socket workers, or opened
 * to a destination, one connect per destination at a time), the limits on accepted ones, and
 * the sweep that closes connections that never send a message or stall in one.
 */
export class StreamTransports {
  private readonly servers: Server[] = [];
  private readonly pendingConnects = new Map<string, Promise<Connection>>();
  private nextId = 1;
  private sweeper: TimerHandle | undefined;

  constructor(
    private readonly opts: StreamOptions,
    readonly connections: ConnectionTable,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly events: TypedEvents<TransportEvents>,
    private readonly incoming: Incoming,
    private readonly connector: Connector,
  ) {}

  /** Listens for TCP on `port` and, when `tlsPort` > 0, TLS; returns the ports bound. */
  async start(port: number, tlsPort: number): Promise<{ tcp: number; tls: number }> {
    const workers = this.opts.workers;
    if (workers) await workers.start();
    // Sockets for the workers are accepted paused: not a byte is read before the hand-over.
    const handOver = (transport: StreamName) => createTcpServer({ pauseOnConnect: true }, (s) => this.onAccept(s, transport));
    const tcp = await this.listen(workers ? handOver('TCP') : createTcpServer({ noDelay: true }, (s) => this.onAccept(s, 'TCP')), port);
    let tls = 0;
    if (tlsPort > 0) {
      const cfg = this.opts.tls;
      if (!cfg) throw new TransportError('TLS_CONFIG', 'sip-port-tls is set but no certificate and key were given');
      tls = await this.listen(workers ? handOver('TLS') : this.tlsServer(cfg), tlsPort);
    }
    this.sweepStalled();
    return { tcp, tls };
  }

  async stop(): Promise<void> {
    this.sweeper?.cancel();
    this.sweeper = undefined;
    for (const c of this.connections.all()) c.destroy('stopping', 'server stopping');
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
    await this.opts.workers?.stop();
  }

  /** An open connection for dest: dest.flow while open, else one to that address, else a new one. */
  async connectionFor(dest: StreamDestination): Promise<Connection> {
    const named = dest.flow && this.connections.open(dest.flow);
    const existing = named || this.connections.find(dest.transport, dest.address, dest.port);
    if (existing) return existing;
    const key = ConnectionTable.key(dest.transport, dest.address, dest.port);
    const pending = this.pendingConnects.get(key);
    if (pending) return pending;
    const p = this.open(dest).finally(() => this.pendingConnects.delete(key));
    this.pendingConnects.set(key, p);
    return p;
  }

  /**
   * Once a second: accepted connections that never sent a message, or hold part of one for too
   * long, are closed — a slowloris peer holding thousands of them costs a file descriptor and
   * up to a message's worth of memory each. One sweep, not a timer per connection (100,000 of
   * them); a registered flow idle between messages is left alone (the keep-alive feature needs it).
   */
  private sweepStalled(): void {
    const first = this.opts.firstMessageTimeoutMs ?? 0;
    const stalled = this.opts.stalledMessageTimeoutMs ?? 0;
    if (first <= 0 && stalled <= 0) return;
    this.sweeper = this.clock.setTimer(1000, () => {
      const now = this.clock.now();
      for (const c of this.connections.all()) {
        if (c.origin !== 'accepted' || c.state !== 'open') continue;
        if (first > 0 && c.messages === 0 && now - c.createdAt >= first) c.destroy('local', 'no SIP message since it opened');
        else if (stalled > 0 && c.partialSince !== undefined && now - c.partialSince >= stalled) c.destroy('local', 'message stalled');
      }
      this.sweepStalled();
    });
  }

  /** The TLS listener when this process holds its connections itself. */
  private tlsServer(tls: NonNullable<StreamOptions['tls']>): Server {
    // A handshake that does not finish is bounded like a connect (Node's default is 120 s).
    const server = createTlsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: this.opts.connectTimeoutMs, ...(tls.ca ? { ca: tls.ca } : {}) }, (s: TLSSocket) => this.onAccept(s, 'TLS'));
    server.on('tlsClientError', (err, s) => {
      this.log.debug({ err, remote: `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}` }, 'TLS handshake failed');
      this.events.emit('connectionFailed', { transport: 'TLS', address: stripV4Mapped(s.remoteAddress ?? ''), port: s.remotePort ?? 0, code: 'TLS_FAILED', reason: err.message });
    });
    return server;
  }

  private async open(dest: StreamDestination): Promise<Connection> {
    let socket: Socket;
    try {
      socket = await this.connector({
        transport: dest.transport,
        address: dest.address,
        port: dest.port,
        timeoutMs: this.opts.connectTimeoutMs,
        ...(dest.serverName ? { serverName: dest.serverName } : {}),
      });
    } catch (err) {
      const e = err instanceof TransportError ? err : new TransportError('CONNECT_FAILED', String(err), { cause: err });
      this.events.emit('connectionFailed', { transport: dest.transport, address: dest.address, port: dest.port, code: e.code, reason: e.message });
      throw e;
    }
    return this.adopt(socket, dest.transport, 'outbound');
  }

  private onAccept(socket: Socket, transport: StreamName): void {
    const refuse = (reason: string): void => {
      this.events.emit('connectionRefused', { transport, address: stripV4Mapped(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0, reason });
      socket.destroy();
    };
    if (this.connections.countAccepted() >= this.opts.maxConnections) return refuse('sip-max-connections reached');
    const guard = this.opts.guard;
    if (guard && !guard.connectionOpened(stripV4Mapped(socket.remoteAddress ?? ''))) {
      socket.destroy();
      return;
    }
    const workers = this.opts.workers;
    if (!workers) {
      this.adopt(socket, transport, 'accepted');
      return;
    }
    const id = this.newConnectionId(transport);
    let remote;
    try {
      remote = workers.adopt(socket, id, transport === 'TLS');
    } catch (err) {
      this.opts.guard?.connectionClosed(stripV4Mapped(socket.remoteAddress ?? ''));
      return refuse((err as Error).message);
    }
    this.track(remote, transport, 'accepted', id);
  }

  private newConnectionId(transport: StreamName): string {
    return `${transport.toLowerCase()}-${this.nextId++}`;
  }

  /** A socket of this process: TCP_NODELAY and keep-alive, then tracked. */
  private adopt(socket: Socket, transport: StreamName, origin: FlowOrigin): Connection {
    socket.setNoDelay(true);
    this.opts.configureSocket?.(socket);
    return this.track(socket, transport, origin, this.newConnectionId(transport));
  }

  private track(socket: StreamSocket, transport: StreamName, origin: FlowOrigin, id: string): Connection {
    const conn = new Connection(id, transport, origin, socket, this.clock, this.opts.maxMessageSize, this.connectionHandler);
    this.connections.add(conn);
    this.events.emit('connectionOpened', { flow: conn, id: conn.id, transport, origin, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort, localAddress: conn.localAddress, localPort: conn.localPort });
    return conn;
  }

  /** What every connection reports to (one object for all of them). */
  private readonly connectionHandler: ConnectionHandler = {
    data: (conn, bytes) => {
      if (this.opts.guard && !this.opts.guard.message(conn.remoteAddress)) {
        conn.destroy('local', 'source banned');
        return;
      }
      this.incoming.bytes(bytes, sourceOf(conn));
    },
    unframeable: (conn, { reason, headBytes }) => {
      if (headBytes) this.incoming.unparsable(headBytes, new SipParseError(reason), sourceOf(conn));
      else this.events.emit('messageDropped', { source: sourceOf(conn), reason });
    },
    held: (conn, delta) => {
      if (conn.origin === 'accepted' && this.opts.guard && !this.opts.guard.pending(conn.remoteAddress, delta)) conn.destroy('local', 'source holds too many bytes of incomplete messages');
    },
    listenerFailed: (conn, err) => this.log.error({ err, connection: conn.id }, 'a flow close listener failed'),
    closed: (conn, error) => {
      this.connections.remove(conn);
      if (conn.origin === 'accepted') {
        this.opts.guard?.connectionClosed(conn.remoteAddress);
        if (conn.heldNow > 0) this.opts.guard?.pending(conn.remoteAddress, -conn.heldNow);
      }
      this.events.emit('connectionClosed', {
        flow: conn,
        id: conn.id,
        transport: conn.transport,
        origin: conn.origin,
        remoteAddress: conn.remoteAddress,
        remotePort: conn.remotePort,
        closedBy: conn.closedBy ?? 'peer-closed',
        cause: conn.closeReason ?? 'closed',
        ...(error?.code ? { errorCode: error.code } : {}),
      });
    },
  };

  private listen(server: Server, port: number): Promise<number> {
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.opts.address, () => {
        server.off('error', reject);
        this.servers.push(server);
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }
}

function sourceOf(conn: Connection): Source {
  return { transport: conn.transport, address: conn.remoteAddress, port: conn.remotePort, flow: conn, localAddress: conn.localAddress, localPort: conn.localPort };
}
