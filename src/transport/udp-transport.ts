import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { TransportError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { stripV4Mapped } from './connection.js';

export interface UdpDatagram {
  bytes: Buffer;
  address: string;
  port: number;
}

/** The UDP socket: bound once, large kernel buffers, a datagram in is handed on as it is. */
export class UdpTransport {
  private socket: UdpSocket | undefined;
  private boundPort = 0;

  constructor(
    private readonly address: string,
    private readonly log: Logger,
    private readonly onDatagram: (d: UdpDatagram) => void,
  ) {}

  get port(): number {
    return this.boundPort;
  }

  async start(port: number): Promise<void> {
    const udp = createSocket({ type: isIP(this.address) === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    udp.on('message', (bytes: Buffer, rinfo: RemoteInfo) => this.onDatagram({ bytes, address: stripV4Mapped(rinfo.address), port: rinfo.port }));
    udp.on('error', (err) => this.log.error({ err }, 'UDP socket error'));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, this.address, () => {
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
    this.socket = udp;
    this.boundPort = udp.address().port;
  }

  async stop(): Promise<void> {
    const udp = this.socket;
    this.socket = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
  }

  send(bytes: Buffer, address: string, port: number): Promise<void> {
    const udp = this.socket;
    if (!udp) return Promise.reject(new TransportError('TRANSPORT_STOPPED', 'UDP transport is not running'));
    return new Promise<void>((resolve, reject) => {
      udp.send(bytes, port, address, (err) =>
        err ? reject(new TransportError('SEND_FAILED', `UDP send to ${address}:${port} failed: ${err.message}`, { cause: err })) : resolve(),
      );
    });
  }
}
