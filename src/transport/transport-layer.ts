import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createTcpServer, isIP, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { errorResponseForUnparsable } from '../sip/bad-request.js';
import type { SipMessage, SipRequest, SipResponse } from '../sip/message.js';
import { canonicalHeaderName, getHeader, setHeader, splitHeaderList } from '../sip/message.js';
import { parseMessage } from '../sip/parser.js';
import { serializeMessage } from '../sip/serializer.js';
import { formatVia, parseVia, topVia } from '../sip/via.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { SipParseError, TransportError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { TypedEvents } from '../util/typed-events.js';
import { Connection, stripV4Mapped, type ConnectionHandler, type ConnectionOrigin } from './connection.js';
import { ConnectionTable } from './connection-table.js';
import { createConnector, type Connector } from './connector.js';
import type { SocketWorkers } from './socket-workers.js';
import type { SourceGuard } from './source-guard.js';
import type { StreamSocket } from './stream-socket.js';
import type { TransportEvents } from './transport-events.js';
import type { Destination, ReceivedMessage, SendResult, SipTransport, Source, TransportName } from './types.js';

export interface TransportOptions {
  address: string;
  port: number;
  tlsPort: number;
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

type StreamName = Exclude<TransportName, 'UDP'>;

/**
 * UDP, TCP and TLS listeners plus the connection table: the only module that touches
 * sockets. Incoming messages are parsed, stamped with received/rport (RFC 3261 §18.2.1,
 * RFC 3581) and emitted as `message`; malformed requests are answered 400 here.
 */
export class TransportLayer implements SipTransport {
  readonly events: TypedEvents<TransportEvents>;
  readonly connections = new ConnectionTable();
  private udp: UdpSocket | undefined;
  private readonly servers: Server[] = [];
  private readonly connector: Connector;
  private readonly pendingConnects = new Map<string, Promise<Connection>>();
  private nextId = 1;
  private bound: { udp: number; tcp: number; tls: number } | undefined;
  private sweeper: TimerHandle | undefined;

  constructor(
    private readonly opts: TransportOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
    connector?: Connector,
  ) {
    this.events = new TypedEvents<TransportEvents>((err, name) => log.error({ err, event: name }, 'transport listener failed'));
    const tls = opts.tls;
    this.connector =
      connector ??
      createConnector(clock, { verifyPeer: tls?.verifyPeer ?? false, ...(tls ? { cert: tls.cert, key: tls.key } : {}), ...(tls?.ca ? { ca: tls.ca } : {}) });
  }

  async start(): Promise<void> {
    const { address, port, tlsPort } = this.opts;
    const udp = createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    udp.on('message', (buf, rinfo) => this.onDatagram(buf, rinfo));
    udp.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    // A burst of datagrams while the event loop is busy must wait in the kernel, not be lost:
    // ask for 4 MiB of receive buffer (the kernel caps it at net.core.rmem_max).
    try {
      udp.setRecvBufferSize(4 * 1024 * 1024);
      udp.setSendBufferSize(4 * 1024 * 1024);
    } catch (err) {
      this.log.warn({ err }, 'could not enlarge the UDP socket buffers');
    }
    this.udp = udp;
    const workers = this.opts.workers;
    if (workers) await workers.start();
    // Sockets for the workers are accepted paused: not a byte is read before the hand-over.
    const handOver = (transport: StreamName) => createTcpServer({ pauseOnConnect: true }, (s) => this.onAccept(s, transport));
    await this.listen(workers ? handOver('TCP') : createTcpServer({ noDelay: true }, (s) => this.onAccept(s, 'TCP')), port);
    if (tlsPort > 0) {
      const tls = this.opts.tls;
      if (!tls) throw new TransportError('TLS_CONFIG', 'sip-port-tls is set but no certificate and key were given');
      await this.listen(workers ? handOver('TLS') : this.tlsServer(tls), tlsPort);
    }
    this.bound = this.boundPorts();
    this.sweepStalled();
    this.log.info({ address, udp: port, tcp: port, tls: tlsPort || undefined, workers: workers ? 'on' : 'off' }, 'SIP listeners up');
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
        if (first > 0 && c.messages === 0 && now - c.createdAt >= first) c.destroy('no SIP message since it opened');
        else if (stalled > 0 && c.partialSince !== undefined && now - c.partialSince >= stalled) c.destroy('message stalled');
      }
      this.sweepStalled();
    });
  }

  /** The TLS listener when this process holds its connections itself. */
  private tlsServer(tls: NonNullable<TransportOptions['tls']>): Server {
    // A handshake that does not finish is bounded like a connect (Node's default is 120 s).
    const server = createTlsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: this.opts.connectTimeoutMs, ...(tls.ca ? { ca: tls.ca } : {}) }, (s: TLSSocket) => this.onAccept(s, 'TLS'));
    server.on('tlsClientError', (err, s) => {
      this.log.debug({ err, remote: `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}` }, 'TLS handshake failed');
      this.events.emit('connectionFailed', { transport: 'TLS', address: stripV4Mapped(s.remoteAddress ?? ''), port: s.remotePort ?? 0, code: 'TLS_FAILED', reason: err.message });
    });
    return server;
  }

  async stop(): Promise<void> {
    this.bound = undefined;
    this.sweeper?.cancel();
    this.sweeper = undefined;
    for (const c of this.connections.all()) c.destroy('server stopping');
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
    const udp = this.udp;
    this.udp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    await this.opts.workers?.stop();
  }

  /**
   * The address and ports actually bound (port 0 in options means "any free port"). Read from
   * the sockets once they are all bound and kept: every request sent needs them for its Via,
   * and each read is a getsockname(2) (~6 % of the CPU at 1,500 calls/s).
   */
  boundPorts(): { udp: number; tcp: number; tls: number } {
    if (this.bound) return this.bound;
    const tcp = this.servers[0]?.address();
    const tls = this.servers[1]?.address();
    return {
      udp: this.udp?.address().port ?? 0,
      tcp: typeof tcp === 'object' && tcp ? tcp.port : 0,
      tls: typeof tls === 'object' && tls ? tls.port : 0,
    };
  }

  async sendRequest(req: SipRequest, dest: Destination): Promise<SendResult> {
    const via = topVia(req);
    via.transport = dest.transport;
    via.host = this.opts.address.includes(':') ? `[${this.opts.address}]` : this.opts.address;
    via.port = this.listenPort(dest.transport);
    if (!via.params.has('rport')) via.params.set('rport', null);
    setHeader(req, 'Via', formatVia(via));
    return this.sendTo(req, dest);
  }

  /**
   * RFC 3261 §18.2.2 with RFC 3581: the request's connection if still open; else to the
   * address the request came from — never a host its Via names (a third party's, or a name to
   * look up: reflection) — at, over UDP, the port it came from when the Via asks for rport or
   * cannot be read, else the sent-by port; on a stream, a new connection to that address at the
   * sent-by port (not rport, the port of the dead connection: RFC 3581 §4 is for UDP).
   */
  async sendResponse(res: SipResponse, source: Source): Promise<SendResult> {
    if (source.transport !== 'UDP' && source.flowId) {
      const conn = this.connections.get(source.flowId);
      if (conn) return this.writeTo(conn, res);
    }
    let via: ReturnType<typeof topVia> | undefined;
    try {
      via = topVia(res);
    } catch (err) {
      // An unreadable Via: answer the source address and port (no rport needed to find it).
      if (!(err instanceof SipParseError)) throw err;
      via = undefined;
    }
    const defaultPort = source.transport === 'TLS' ? 5061 : 5060;
    const port = source.transport === 'UDP' ? (!via || via.params.has('rport') ? source.port : (via.port ?? defaultPort)) : (via?.port ?? defaultPort);
    // Over TLS the certificate is checked against the name the Via gives (the address is the source's).
    const host = via ? unbracket(via.host) : '';
    const serverName = source.transport === 'TLS' && host !== '' && isIP(host) === 0 ? { serverName: host } : {};
    return this.sendTo(res, { transport: source.transport, address: source.address, port, ...serverName });
  }

  private async sendTo(msg: SipMessage, dest: Destination): Promise<SendResult> {
    if (dest.transport === 'UDP') {
      const udp = this.udp;
      if (!udp) throw new TransportError('TRANSPORT_STOPPED', 'UDP transport is not running');
      const bytes = serializeMessage(msg);
      await new Promise<void>((resolve, reject) => {
        udp.send(bytes, dest.port, dest.address, (err) =>
          err ? reject(new TransportError('SEND_FAILED', `UDP send to ${dest.address}:${dest.port} failed: ${err.message}`, { cause: err })) : resolve(),
        );
      });
      return { transport: 'UDP', address: dest.address, port: dest.port };
    }
    const conn = await this.connectionFor(dest as Destination & { transport: StreamName });
    return this.writeTo(conn, msg);
  }

  private async writeTo(conn: Connection, msg: SipMessage): Promise<SendResult> {
    try {
      await conn.write(serializeMessage(msg));
    } catch (err) {
      throw new TransportError('SEND_FAILED', `send on ${conn.transport} connection ${conn.id} failed: ${(err as Error).message}`, { cause: err });
    }
    return { transport: conn.transport, address: conn.remoteAddress, port: conn.remotePort, flowId: conn.id };
  }

  /**
   * A connection to dest's address (never a named flow): an open one, else a new one
   * (bounded by sip-tcp-connect-timeout). The re-open of a dead connection (SPEC §5).
   */
  async openConnection(dest: Destination & { transport: StreamName }): Promise<Connection> {
    const { flowId: _dead, ...address } = dest;
    return this.connectionFor(address);
  }

  /** An open connection for dest: the named flow, else one to that address, else a new one. */
  private async connectionFor(dest: Destination & { transport: StreamName }): Promise<Connection> {
    const existing = (dest.flowId && this.connections.get(dest.flowId)) || this.connections.find(dest.transport, dest.address, dest.port);
    if (existing) return existing;
    const key = ConnectionTable.key(dest.transport, dest.address, dest.port);
    const pending = this.pendingConnects.get(key);
    if (pending) return pending;
    const p = this.open(dest).finally(() => this.pendingConnects.delete(key));
    this.pendingConnects.set(key, p);
    return p;
  }

  private async open(dest: Destination & { transport: StreamName }): Promise<Connection> {
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
  private adopt(socket: Socket, transport: StreamName, origin: ConnectionOrigin): Connection {
    socket.setNoDelay(true);
    this.opts.configureSocket?.(socket);
    return this.track(socket, transport, origin, this.newConnectionId(transport));
  }

  private track(socket: StreamSocket, transport: StreamName, origin: ConnectionOrigin, id: string): Connection {
    const conn = new Connection(id, transport, origin, socket, this.clock, this.opts.maxMessageSize, this.connectionHandler);
    this.connections.add(conn);
    this.events.emit('connectionOpened', { id: conn.id, transport, origin, remoteAddress: conn.remoteAddress, remotePort: conn.remotePort, localAddress: conn.localAddress, localPort: conn.localPort });
    return conn;
  }

  /** What every connection reports to (one object for all of them). */
  private readonly connectionHandler: ConnectionHandler = {
    data: (conn, bytes) => {
      if (this.opts.guard && !this.opts.guard.message(conn.remoteAddress)) {
        conn.destroy('source banned');
        return;
      }
      this.onBytes(bytes, this.sourceOf(conn));
    },
    unframeable: (conn, { reason, headBytes }) => {
      this.events.emit('messageDropped', { source: this.sourceOf(conn), reason });
      if (headBytes) this.answerUnparsable(headBytes, new SipParseError(reason), this.sourceOf(conn));
    },
    held: (conn, delta) => {
      if (conn.origin === 'accepted' && this.opts.guard && !this.opts.guard.pending(conn.remoteAddress, delta)) conn.destroy('source holds too many bytes of incomplete messages');
    },
    closed: (conn, { cause, error }) => {
      this.connections.remove(conn);
      if (conn.origin === 'accepted') {
        this.opts.guard?.connectionClosed(conn.remoteAddress);
        if (conn.heldNow > 0) this.opts.guard?.pending(conn.remoteAddress, -conn.heldNow);
      }
      this.events.emit('connectionClosed', {
        id: conn.id,
        transport: conn.transport,
        origin: conn.origin,
        remoteAddress: conn.remoteAddress,
        remotePort: conn.remotePort,
        cause,
        ...(error?.code ? { errorCode: error.code } : {}),
      });
    },
  };

  private sourceOf(conn: Connection): Source {
    return { transport: conn.transport, address: conn.remoteAddress, port: conn.remotePort, flowId: conn.id, localAddress: conn.localAddress, localPort: conn.localPort };
  }

  private onDatagram(buf: Buffer, rinfo: RemoteInfo): void {
    // A lone CRLF or CRLFCRLF datagram is a keep-alive (RFC 5626 §4.4.2 uses STUN on UDP; CRLF is tolerated).
    if (buf.every((b) => b === 0x0d || b === 0x0a)) return;
    const source: Source = { transport: 'UDP', address: stripV4Mapped(rinfo.address), port: rinfo.port, localAddress: this.opts.address, localPort: this.opts.port };
    if (this.opts.guard && !this.opts.guard.message(source.address)) return;
    if (buf.length > this.opts.maxMessageSize) {
      this.events.emit('messageDropped', { source, reason: 'message too large' });
      this.answerUnparsable(buf, new SipParseError('Message Too Large', { status: 413 }), source);
      return;
    }
    this.onBytes(buf, source);
  }

  private onBytes(bytes: Buffer, source: Source): void {
    let message: SipMessage;
    try {
      message = parseMessage(bytes, { datagram: source.transport === 'UDP' });
    } catch (err) {
      const e = err instanceof SipParseError ? err : new SipParseError('Malformed message', { cause: err });
      this.events.emit('messageDropped', { source, reason: e.reason });
      this.answerUnparsable(bytes, e, source);
      return;
    }
    if (message.kind === 'request') {
      // Known scanners (sipvicious' friendly-scanner, sipcli, …) get nothing, and are banned.
      if (this.opts.guard && !this.opts.guard.userAgent(source.address, getHeader(message, 'user-agent'), source.transport !== 'UDP')) return;
      this.stampReceived(message, source);
    }
    const received: ReceivedMessage = { message, source };
    this.events.emit('message', received);
  }

  /** RFC 3261 §18.2.1 and RFC 3581: record where the request really came from in its top Via. */
  private stampReceived(req: SipRequest, source: Source): void {
    const first = getHeader(req, 'via');
    if (first === undefined) return;
    const via = parseVia(first);
    const sentBy = unbracket(via.host);
    let changed = false;
    if (sentBy !== source.address) {
      via.params.set('received', source.address);
      changed = true;
    }
    if (via.params.has('rport') && via.params.get('rport') === null) {
      via.params.set('rport', String(source.port));
      changed = true;
    }
    if (changed) replaceTopVia(req, formatVia(via));
    if (source.flowId && isIP(sentBy) && via.port !== undefined) {
      const conn = this.connections.get(source.flowId);
      if (conn && conn.origin === 'accepted') this.connections.addAlias(conn, sentBy, via.port);
    }
  }

  /**
   * Answers a request that could not be parsed. Its Via may be the very fault, so the answer
   * goes back where the bytes came from: the connection, or the datagram's source address.
   */
  private answerUnparsable(bytes: Buffer, err: SipParseError, source: Source): void {
    const res = errorResponseForUnparsable(bytes, err.status, err.reason);
    if (!res) return;
    const conn = source.flowId ? this.connections.get(source.flowId) : undefined;
    const sent = conn ? this.writeTo(conn, res) : this.sendTo(res, { transport: 'UDP', address: source.address, port: source.port });
    sent.catch((e: unknown) => this.log.debug({ err: e }, 'could not answer a malformed request'));
  }

  private listenPort(transport: TransportName): number {
    const bound = this.boundPorts();
    if (transport === 'TLS') return bound.tls || this.opts.tlsPort;
    return (transport === 'UDP' ? bound.udp : bound.tcp) || this.opts.port;
  }

  private listen(server: Server, port: number): Promise<void> {
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.opts.address, () => {
        server.off('error', reject);
        this.servers.push(server);
        resolve();
      });
    });
  }
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Replaces the first value of the first Via header line, keeping any further values on it. */
function replaceTopVia(req: SipRequest, value: string): void {
  const idx = req.headers.findIndex((h) => canonicalHeaderName(h.name) === 'via');
  const h = req.headers[idx];
  if (!h) return;
  const values = splitHeaderList(h.value);
  values[0] = value;
  req.headers[idx] = { name: h.name, value: values.join(', ') };
}
