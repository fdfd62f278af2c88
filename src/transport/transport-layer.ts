import { isIP } from 'node:net';
import type { SipMessage, SipRequest, SipResponse } from '../sip/message.js';
import { serializeMessage } from '../sip/serializer.js';
import { topVia, unbracket } from '../sip/via.js';
import type { Clock } from '../util/clock.js';
import { SipParseError, TransportError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { TypedEvents } from '../util/typed-events.js';
import type { Connection } from './connection.js';
import { ConnectionTable } from './connection-table.js';
import { createConnector, type Connector } from './connector.js';
import type { Flow } from './flow.js';
import { Incoming } from './incoming.js';
import { StreamTransports, type StreamDestination, type StreamOptions } from './stream-transport.js';
import type { TransportEvents } from './transport-events.js';
import type { Destination, SendResult, SipTransport, Source, TransportName } from './types.js';
import { UdpTransport, type UdpDatagram } from './udp-transport.js';
import { WireTap } from './wire-tap.js';

export interface TransportOptions extends StreamOptions {
  /** UDP and TCP port (one number for both); 0 binds any free port (read boundPorts()). */
  port: number;
  /** TLS port; 0: no TLS listener. */
  tlsPort: number;
}

/**
 * The transport layer as the layers above see it (SipTransport): UDP (udp-transport.ts),
 * TCP and TLS (stream-transport.ts) and what is done with every message in (incoming.ts),
 * behind one send path: requests go where they are sent, responses where RFC 3261 §18.2.2
 * says. The only code that touches sockets; every flow change is a typed event.
 */
export class TransportLayer implements SipTransport {
  readonly events: TypedEvents<TransportEvents>;
  /** Every TCP/TLS connection this process holds. */
  readonly connections = new ConnectionTable();
  /**
   * Every SIP message received and sent, with its bytes as on the wire (wire-tap.ts), for
   * observers such as HEP capture; nothing is built per message while nobody listens.
   */
  readonly wire: WireTap;
  private readonly udp: UdpTransport;
  private readonly streams: StreamTransports;
  private readonly incoming: Incoming;
  private bound: { udp: number; tcp: number; tls: number } | undefined;
  private readonly viaHost: string;

  constructor(
    private readonly opts: TransportOptions,
    clock: Clock,
    private readonly log: Logger,
    connector?: Connector,
  ) {
    this.events = new TypedEvents<TransportEvents>((err, name) => log.error({ err, event: name }, 'transport listener failed'));
    this.wire = new WireTap((err) => log.error({ err }, 'wire tap listener failed'));
    const tls = opts.tls;
    const connect =
      connector ?? createConnector(clock, { verifyPeer: tls?.verifyPeer ?? false, ...(tls ? { cert: tls.cert, key: tls.key } : {}), ...(tls?.ca ? { ca: tls.ca } : {}) });
    this.viaHost = opts.address.includes(':') ? `[${opts.address}]` : opts.address;
    this.udp = new UdpTransport(opts.address, log, (d) => this.onDatagram(d));
    this.incoming = new Incoming({ events: this.events, connections: this.connections, guard: opts.guard, log, wire: this.wire, answer: (res, source) => this.answer(res, source) });
    this.streams = new StreamTransports(opts, this.connections, clock, log, this.events, this.incoming, connect);
  }

  async start(): Promise<void> {
    const { address, port, tlsPort } = this.opts;
    await this.udp.start(port);
    const streams = await this.streams.start(port, tlsPort);
    this.bound = { udp: this.udp.port, ...streams };
    this.log.info({ address, udp: port, tcp: port, tls: tlsPort || undefined, workers: this.opts.workers ? 'on' : 'off' }, 'SIP listeners up');
  }

  async stop(): Promise<void> {
    this.bound = undefined;
    await this.streams.stop();
    await this.udp.stop();
  }

  /**
   * The address and ports actually bound (port 0 in options means "any free port"), kept
   * from start: every request sent needs them for its Via, and each read of a socket's
   * address is a getsockname(2) (~6 % of the CPU at 1,500 calls/s).
   */
  boundPorts(): { udp: number; tcp: number; tls: number } {
    return this.bound ?? { udp: 0, tcp: 0, tls: 0 };
  }

  sentBy(transport: TransportName): { host: string; port: number } {
    const bound = this.boundPorts();
    const port = transport === 'TLS' ? bound.tls || this.opts.tlsPort : (transport === 'UDP' ? bound.udp : bound.tcp) || this.opts.port;
    return { host: this.viaHost, port };
  }

  sendRequest(req: SipRequest, dest: Destination): Promise<SendResult> {
    return this.sendTo(req, dest);
  }

  openFlow(dest: Destination): Promise<Flow> {
    if (dest.transport === 'UDP') return Promise.reject(new TransportError('NOT_A_STREAM', 'UDP has no flows to open'));
    const { flow: _dead, ...address } = dest;
    return this.streams.connectionFor(address as StreamDestination);
  }

  /**
   * RFC 3261 §18.2.2 with RFC 3581: the request's connection if still open; else to the
   * address the request came from — never a host its Via names (a third party's, or a name to
   * look up: reflection) — at, over UDP, the port it came from when the Via asks for rport or
   * cannot be read, else the sent-by port; on a stream, a new connection to that address at the
   * sent-by port (not rport, the port of the dead connection: RFC 3581 §4 is for UDP).
   */
  async sendResponse(res: SipResponse, source: Source): Promise<SendResult> {
    const conn = source.flow && this.connections.open(source.flow);
    if (conn) return this.writeTo(conn, res);
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
      const bytes = serializeMessage(msg);
      const sent = this.udp.send(bytes, dest.address, dest.port);
      if (this.wire.active && this.bound) this.tapOut('UDP', bytes, msg, this.opts.address, this.udp.port, dest.address, dest.port);
      await sent;
      return { transport: 'UDP', address: dest.address, port: dest.port };
    }
    const conn = await this.streams.connectionFor(dest as StreamDestination);
    return this.writeTo(conn, msg);
  }

  private async writeTo(conn: Connection, msg: SipMessage): Promise<SendResult> {
    try {
      const bytes = serializeMessage(msg);
      const tap = this.wire.active && conn.state === 'open';
      const written = conn.write(bytes);
      if (tap) this.tapOut(conn.transport, bytes, msg, conn.localAddress, conn.localPort, conn.remoteAddress, conn.remotePort);
      await written;
    } catch (err) {
      throw new TransportError('SEND_FAILED', `send on ${conn.transport} connection ${conn.id} failed: ${(err as Error).message}`, { cause: err });
    }
    return { transport: conn.transport, address: conn.remoteAddress, port: conn.remotePort, flow: conn };
  }

  /** Tells the wire tap's listeners of a message handed to a socket (they never throw here: WireTap catches). */
  private tapOut(transport: TransportName, bytes: Buffer, message: SipMessage, localAddress: string, localPort: number, remoteAddress: string, remotePort: number): void {
    this.wire.emit({ direction: 'out', transport, bytes, message, localAddress, localPort, remoteAddress, remotePort });
  }

  /** An answer to bytes that did not parse: on their connection if still open, else to the datagram's source. */
  private answer(res: SipResponse, source: Source): Promise<SendResult> {
    const conn = source.flow && this.connections.open(source.flow);
    return conn ? this.writeTo(conn, res) : this.sendTo(res, { transport: 'UDP', address: source.address, port: source.port });
  }

  private onDatagram({ bytes, address, port }: UdpDatagram): void {
    // A lone CRLF or CRLFCRLF datagram is a keep-alive (RFC 5626 §4.4.2 uses STUN on UDP; CRLF is tolerated).
    if (bytes.every((b) => b === 0x0d || b === 0x0a)) return;
    const source: Source = { transport: 'UDP', address, port, localAddress: this.opts.address, localPort: this.udp.port };
    if (this.opts.guard && !this.opts.guard.message(address)) return;
    if (bytes.length > this.opts.maxMessageSize) {
      this.incoming.unparsable(bytes, new SipParseError('Message Too Large', { status: 413 }), source);
      return;
    }
    this.incoming.bytes(bytes, source);
  }
}
