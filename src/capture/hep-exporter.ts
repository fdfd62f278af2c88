import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { getHeader } from '../sip/message.js';
import type { WireMessage, WireTap } from '../transport/wire-tap.js';
import type { Clock } from '../util/clock.js';
import { CaptureError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { HEP_PROTO_TCP, HEP_PROTO_UDP, HepEncoder } from './hep-encoder.js';

export interface HepExporterOptions {
  /** The collector's IPv4 or IPv6 address (hep-address). */
  address: string;
  /** The collector's UDP port (hep-port). */
  port: number;
  /** Capture agent id (hep-capture-id). */
  captureId: number;
  /** Auth key (hep-password). */
  password?: string | undefined;
}

export interface HepExporterDeps {
  /** The transport's hook for every SIP message in and out. */
  wire: Pick<WireTap, 'on'>;
  clock: Clock;
  log: Logger;
}

/** What the exporter did so far (sip_hep_* metrics). */
export interface HepStats {
  /** Packets the socket sent. */
  sent: number;
  /** Packets the socket refused or reported failed (collector unreachable, send buffer full, …). */
  sendFailures: number;
  /** Messages not exported because their packet would not fit in one UDP datagram. */
  tooLarge: number;
}

/** At most one warning per this many ms about failed sends; the ones in between are counted in it. */
const WARN_EVERY_MS = 10_000;

/**
 * Sends a HEPv3 copy of every SIP message the transport receives and sends, one UDP packet
 * each, to the collector (hep-address:hep-port). It subscribes to the transport's wire tap
 * on start and unsubscribes on stop; nothing it does can fail a SIP send or receive: a packet
 * that cannot be sent is counted and logged (rate-limited), never retried.
 */
export class HepExporter {
  private readonly encoder: HepEncoder;
  /** The largest datagram the collector's address family carries. */
  private readonly maxDatagram: number;
  private socket: Socket | undefined;
  private connected = false;
  private unsubscribe: (() => void) | undefined;
  private readonly counts: HepStats = { sent: 0, sendFailures: 0, tooLarge: 0 };
  private lastWarnAt = Number.NEGATIVE_INFINITY;
  private failuresSinceWarn = 0;
  /** The send callback: one function for every packet, no closure per send. */
  private readonly onSent = (err: Error | null): void => {
    if (err) this.failed(err);
    else this.counts.sent++;
  };

  constructor(
    private readonly opts: HepExporterOptions,
    private readonly deps: HepExporterDeps,
  ) {
    this.encoder = new HepEncoder({ captureId: opts.captureId, password: opts.password });
    this.maxDatagram = isIP(opts.address) === 6 ? 65_527 : 65_507;
  }

  /**
   * Opens the UDP socket (connected to the collector, so each send names no address and a
   * collector that is not listening shows as failed sends) and subscribes to the wire tap.
   * Never rejects: a socket that cannot be opened is logged, and every message then counts
   * as a failed send.
   */
  async start(): Promise<void> {
    if (this.socket) return;
    const { address, port } = this.opts;
    const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
    this.socket = socket;
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(port, address, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      this.connected = true;
    } catch (err) {
      this.deps.log.warn({ err: new CaptureError('HEP_SOCKET', `cannot open a UDP socket to the HEP collector ${address}:${port}`, { cause: err }) }, 'HEP export not working');
    }
    socket.on('error', (err) => this.failed(err));
    this.unsubscribe = this.deps.wire.on((m) => this.export(m));
    this.deps.log.info({ collector: `${address}:${port}`, captureId: this.opts.captureId }, 'HEP export on');
  }

  /** Unsubscribes and closes the socket. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const socket = this.socket;
    this.socket = undefined;
    this.connected = false;
    if (socket) await new Promise<void>((r) => socket.close(() => r()));
  }

  stats(): HepStats {
    return { ...this.counts };
  }

  private export(m: WireMessage): void {
    const socket = this.socket;
    if (!socket || !this.connected) {
      this.failed(new CaptureError('HEP_SOCKET', 'the UDP socket to the HEP collector is not open'));
      return;
    }
    const inbound = m.direction === 'in';
    const packet = this.encoder.encode(
      {
        ipProtocol: m.transport === 'UDP' ? HEP_PROTO_UDP : HEP_PROTO_TCP,
        sourceAddress: inbound ? m.remoteAddress : m.localAddress,
        sourcePort: inbound ? m.remotePort : m.localPort,
        destinationAddress: inbound ? m.localAddress : m.remoteAddress,
        destinationPort: inbound ? m.localPort : m.remotePort,
        timestampMs: this.deps.clock.now(),
        payload: m.bytes,
        correlationId: m.message ? getHeader(m.message, 'call-id') : undefined,
      },
      this.maxDatagram,
    );
    if (!packet) {
      this.counts.tooLarge++;
      return;
    }
    try {
      socket.send(packet, this.onSent);
    } catch (err) {
      this.failed(err);
    }
  }

  /** Counts a failure; warns at most once per WARN_EVERY_MS with how many failed since the last warning. */
  private failed(err: unknown): void {
    this.counts.sendFailures++;
    this.failuresSinceWarn++;
    const now = this.deps.clock.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.deps.log.warn(
      { err, collector: `${this.opts.address}:${this.opts.port}`, failed: this.failuresSinceWarn, failedTotal: this.counts.sendFailures },
      `HEP packets could not be sent (at most one warning per ${WARN_EVERY_MS / 1000} s)`,
    );
    this.lastWarnAt = now;
    this.failuresSinceWarn = 0;
  }
}
