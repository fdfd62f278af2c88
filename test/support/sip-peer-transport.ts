import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { StreamFramer } from '../../src/sip/framer.js';
import type { SipMessage } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';

export type PeerTransportName = 'UDP' | 'TCP' | 'TLS';

/** Certificate material for a TLS peer: it serves with cert/key and trusts `ca` when connecting. */
export interface PeerTlsOptions {
  cert: Buffer | string;
  key: Buffer | string;
  ca?: Buffer | string;
  /** SNI / name checked on the server's certificate when the peer connects; default "localhost". */
  servername?: string;
  /** Check the server's certificate when connecting (default true). */
  verifyServer?: boolean;
}

/** A remote end, and the connection used to reach it (streams only). */
export interface Remote {
  transport: PeerTransportName;
  address: string;
  port: number;
  flowId?: string;
}

/** One TCP/TLS connection of the peer: accepted from the server, or opened to it. */
export interface PeerFlow {
  id: string;
  transport: 'TCP' | 'TLS';
  direction: 'accepted' | 'opened';
  remoteAddress: string;
  remotePort: number;
  localPort: number;
  open: boolean;
}

export interface PeerTransportHandlers {
  message(msg: SipMessage, from: Remote): void;
  /** Bytes that did not parse (or a stream that could not be framed). */
  garbage(reason: string, from: Remote): void;
  flowChanged(flow: PeerFlow): void;
}

interface StreamFlow extends PeerFlow {
  socket: Socket;
}

const MAX_MESSAGE = 1 << 20;

/**
 * The peer's sockets. UDP: one socket, bound to `address` (127.0.0.1) on a free port. TCP/TLS: a listener
 * on a free port (the peer's Contact, where the server can open connections to it) plus
 * connections the peer opens itself; messages from every connection are handled alike.
 * A stream send goes on the named flow while it is open, else on an open connection the peer
 * opened to that address, else on a new one (concurrent sends share the connect).
 */
export class PeerTransport {
  private readonly streams = new Map<string, StreamFlow>();
  private readonly connecting = new Map<string, Promise<StreamFlow>>();
  private nextFlow = 1;

  private constructor(
    readonly transport: PeerTransportName,
    readonly port: number,
    private readonly handlers: PeerTransportHandlers,
    private readonly udp: UdpSocket | undefined,
    private readonly listener: Server | undefined,
    private readonly tls: PeerTlsOptions | undefined,
  ) {}

  static async listen(transport: PeerTransportName, handlers: PeerTransportHandlers, tls?: PeerTlsOptions, address = '127.0.0.1'): Promise<PeerTransport> {
    if (transport === 'UDP') {
      const sock = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(0, address, () => resolve());
      });
      const t = new PeerTransport('UDP', sock.address().port, handlers, sock, undefined, undefined);
      sock.on('message', (buf, rinfo) => t.onBytes(buf, { transport: 'UDP', address: rinfo.address, port: rinfo.port }, true));
      return t;
    }
    if (transport === 'TLS' && !tls) throw new Error('a TLS peer needs cert and key');
    // The listener exists before the transport object that adopts its connections.
    const ref: { transport?: PeerTransport } = {};
    const onSocket = (sock: Socket): void => {
      if (ref.transport) ref.transport.adopt(sock, 'accepted');
      else sock.destroy();
    };
    const server =
      transport === 'TLS' && tls ? createTlsServer({ cert: tls.cert, key: tls.key }, onSocket) : createServer(onSocket);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    });
    const addr = server.address();
    ref.transport = new PeerTransport(transport, typeof addr === 'object' && addr ? addr.port : 0, handlers, undefined, server, tls);
    return ref.transport;
  }

  /** Every stream connection the peer has had, open or closed, oldest first. */
  flows(): PeerFlow[] {
    return [...this.streams.values()].map(({ socket: _s, ...flow }) => flow);
  }

  async send(bytes: Buffer, to: Remote): Promise<Remote> {
    if (this.udp) {
      const udp = this.udp;
      await new Promise<void>((resolve, reject) => udp.send(bytes, to.port, to.address, (err) => (err ? reject(err) : resolve())));
      return { transport: 'UDP', address: to.address, port: to.port };
    }
    const flow = await this.streamFor(to);
    flow.socket.write(bytes);
    return { transport: flow.transport, address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id };
  }

  /** A new connection to `to`, whatever is open already; the Remote names it (flowId). */
  async connect(to: Remote): Promise<Remote> {
    const flow = await this.open(to.address, to.port);
    return { transport: flow.transport, address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id };
  }

  /** Destroys one connection at once (no FIN handshake wait), as a crashed phone would. */
  dropFlow(id: string): void {
    this.streams.get(id)?.socket.destroy();
  }

  async close(): Promise<void> {
    for (const f of this.streams.values()) f.socket.destroy();
    if (this.udp) {
      const udp = this.udp;
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    }
    if (this.listener) {
      const listener = this.listener;
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
  }

  private streamFor(to: Remote): Promise<StreamFlow> {
    const named = to.flowId === undefined ? undefined : this.streams.get(to.flowId);
    if (named?.open) return Promise.resolve(named);
    for (const f of this.streams.values()) {
      if (f.open && f.direction === 'opened' && f.remoteAddress === to.address && f.remotePort === to.port) return Promise.resolve(f);
    }
    const key = `${to.address}:${to.port}`;
    const pending = this.connecting.get(key);
    if (pending) return pending;
    const opening = this.open(to.address, to.port).finally(() => this.connecting.delete(key));
    this.connecting.set(key, opening);
    return opening;
  }

  private async open(address: string, port: number): Promise<StreamFlow> {
    const tls = this.tls;
    const sock: Socket =
      this.transport === 'TLS' && tls
        ? tlsConnect({
            host: address,
            port,
            servername: tls.servername ?? 'localhost',
            rejectUnauthorized: tls.verifyServer ?? true,
            ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
            cert: tls.cert,
            key: tls.key,
          })
        : connect({ host: address, port });
    await new Promise<void>((resolve, reject) => {
      sock.once(this.transport === 'TLS' ? 'secureConnect' : 'connect', () => resolve());
      sock.once('error', reject);
    });
    return this.adopt(sock, 'opened');
  }

  private adopt(sock: Socket | TLSSocket, direction: 'accepted' | 'opened'): StreamFlow {
    const transport = this.transport === 'TLS' ? 'TLS' : 'TCP';
    const flow: StreamFlow = {
      id: `${transport.toLowerCase()}-${direction === 'accepted' ? 'in' : 'out'}-${this.nextFlow++}`,
      transport,
      direction,
      remoteAddress: sock.remoteAddress ?? '',
      remotePort: sock.remotePort ?? 0,
      localPort: sock.localPort ?? 0,
      open: true,
      socket: sock,
    };
    this.streams.set(flow.id, flow);
    sock.setNoDelay(true);
    const from: Remote = { transport, address: flow.remoteAddress, port: flow.remotePort, flowId: flow.id };
    const framer = new StreamFramer(MAX_MESSAGE);
    sock.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.type === 'message') this.onBytes(ev.data, from, false);
        else if (ev.type === 'ping') sock.write('\r\n');
        else {
          this.handlers.garbage(`unframeable stream: ${ev.reason}`, from);
          sock.destroy();
        }
      }
    });
    // Errors end in 'close'; the flow's state says what happened.
    sock.on('error', () => undefined);
    sock.on('close', () => {
      flow.open = false;
      this.handlers.flowChanged(flow);
    });
    this.handlers.flowChanged(flow);
    return flow;
  }

  private onBytes(buf: Buffer, from: Remote, datagram: boolean): void {
    let msg: SipMessage;
    try {
      msg = parseMessage(Buffer.from(buf), { datagram });
    } catch (err) {
      this.handlers.garbage(err instanceof Error ? err.message : String(err), from);
      return;
    }
    this.handlers.message(msg, from);
  }
}
