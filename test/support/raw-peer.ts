import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { StreamFramer } from '../../src/sip/framer.js';
import type { SipResponse } from '../../src/sip/message.js';
import { parseMessageHead } from '../../src/sip/parser.js';

/**
 * A scriptable SIP peer for tests: writes raw bytes to the server over UDP, TCP or TLS and
 * collects what comes back, parsed. `raw` keeps every byte received on streams (for pongs).
 */
export class RawPeer {
  readonly received: SipResponse[] = [];
  /** Every message received, as its bytes (a datagram, or one framed from the stream). */
  readonly frames: Buffer[] = [];
  raw = Buffer.alloc(0);
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly transport: 'UDP' | 'TCP' | 'TLS',
    private readonly udp?: UdpSocket,
    private readonly stream?: Socket,
    private readonly port = 0,
  ) {}

  static async udp(port: number): Promise<RawPeer> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const peer = new RawPeer('UDP', sock, undefined, port);
    sock.on('message', (buf) => peer.onMessage(buf));
    return peer;
  }

  static async tcp(port: number): Promise<RawPeer> {
    const sock = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return RawPeer.onStream('TCP', sock);
  }

  static async tls(port: number, ca: Buffer): Promise<RawPeer> {
    const sock = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', resolve);
      sock.once('error', reject);
    });
    return RawPeer.onStream('TLS', sock);
  }

  private static onStream(transport: 'TCP' | 'TLS', sock: Socket): RawPeer {
    const peer = new RawPeer(transport, undefined, sock);
    const framer = new StreamFramer(1 << 20);
    sock.on('data', (chunk: Buffer) => {
      peer.raw = Buffer.concat([peer.raw, chunk]);
      for (const ev of framer.push(chunk)) if (ev.type === 'message') peer.onMessage(ev.data);
      peer.wake();
    });
    sock.on('error', () => {
      peer.closed = true;
      peer.wake();
    });
    sock.on('close', () => {
      peer.closed = true;
      peer.wake();
    });
    return peer;
  }

  get localPort(): number {
    return this.udp ? this.udp.address().port : (this.stream?.localPort ?? 0);
  }

  send(data: string | Buffer): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.udp) this.udp.send(bytes, this.port, '127.0.0.1');
    else this.stream?.write(bytes);
  }

  /** Waits until `pred` holds, or rejects after `ms`. */
  async until(pred: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** The next response beyond the first `after` received ones. */
  async response(after = 0, ms = 3000): Promise<SipResponse> {
    await this.until(() => this.received.length > after, ms, 'a response');
    return this.received[after] as SipResponse;
  }

  close(): void {
    this.udp?.close();
    this.stream?.destroy();
  }

  /** Reads what arrived without judging it: a reply to a malformed request copies its faults. */
  private onMessage(buf: Buffer): void {
    this.frames.push(buf);
    const { message: msg } = parseMessageHead(buf);
    if (msg.kind === 'response') this.received.push(msg);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** An OPTIONS request as the peer would write it. */
export function optionsRequest(opts: { transport: 'UDP' | 'TCP' | 'TLS'; localPort: number; port: number; callId?: string; branch?: string }): string {
  const branch = opts.branch ?? `z9hG4bK${Math.random().toString(16).slice(2)}`;
  return [
    `OPTIONS sip:127.0.0.1:${opts.port} SIP/2.0`,
    `Via: SIP/2.0/${opts.transport} 127.0.0.1:${opts.localPort};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:probe@127.0.0.1>;tag=${Math.random().toString(16).slice(2, 10)}`,
    `To: <sip:127.0.0.1:${opts.port}>`,
    `Call-ID: ${opts.callId ?? Math.random().toString(16).slice(2)}@test`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}
