import { getHeader } from '../sip/message.js';
import type { WireMessage, WireTap } from '../transport/wire-tap.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { HEP_PROTO_TCP, HEP_PROTO_UDP, HepEncoder } from './hep-encoder.js';
import { maxDatagram, SendFailureReport, UdpHepSender, type HepSender, type HepSendStats } from './udp-hep-sender.js';

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
  /**
   * What sends the packets: by default a UDP socket in this thread; the server gives a
   * ThreadedHepSender (hep-thread.ts), which sends from a thread of its own.
   */
  sender?: HepSender;
}

/** What the exporter did so far (sip_hep_* metrics). */
export interface HepStats extends HepSendStats {
  /** Messages not exported because their packet would not fit in one UDP datagram. */
  tooLarge: number;
}

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
  private readonly sender: HepSender;
  private unsubscribe: (() => void) | undefined;
  private tooLarge = 0;

  constructor(
    private readonly opts: HepExporterOptions,
    private readonly deps: HepExporterDeps,
  ) {
    this.encoder = new HepEncoder({ captureId: opts.captureId, password: opts.password });
    this.maxDatagram = maxDatagram(opts.address);
    const report = new SendFailureReport(opts, deps.clock, deps.log);
    this.sender = deps.sender ?? new UdpHepSender(opts, (err, total) => report.failed(err, 1, total));
  }

  /** Opens the sender and subscribes to the wire tap. Never rejects: a sender that cannot open counts every packet as failed. */
  async start(): Promise<void> {
    if (this.unsubscribe) return;
    await this.sender.start();
    this.unsubscribe = this.deps.wire.on((m) => this.export(m));
    const { address, port } = this.opts;
    this.deps.log.info({ collector: `${address}:${port}`, captureId: this.opts.captureId }, 'HEP export on');
  }

  /** Unsubscribes, then lets the sender send what it holds and close. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.sender.stop();
  }

  stats(): HepStats {
    return { ...this.sender.stats(), tooLarge: this.tooLarge };
  }

  private export(m: WireMessage): void {
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
      this.tooLarge++;
      return;
    }
    this.sender.send(packet);
  }
}
