import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Clock } from '../util/clock.js';
import { CaptureError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/** Where the packets go (hep-address, hep-port). */
export interface HepCollector {
  address: string;
  port: number;
}

/** What a sender did so far (sip_hep_* metrics). */
export interface HepSendStats {
  /** Packets the socket sent. */
  sent: number;
  /** Packets the socket refused or reported failed (collector unreachable, send buffer full, a sender that fell behind, …). */
  sendFailures: number;
}

/** Sends finished HEP packets to the collector; never throws into the SIP path. */
export interface HepSender {
  start(): Promise<void>;
  send(packet: Buffer): void;
  /** Sends what is still held back (if anything), then closes. */
  stop(): Promise<void>;
  stats(): HepSendStats;
}

/** At most one warning per this many ms about failed sends; the ones in between are counted in it. */
const WARN_EVERY_MS = 10_000;

/** The largest datagram an address family carries. */
export function maxDatagram(address: string): number {
  return isIP(address) === 6 ? 65_527 : 65_507;
}

/**
 * Counts failed sends and warns about them at most once per WARN_EVERY_MS, with how many
 * failed since the last warning (a collector that is down must not flood the log).
 */
export class SendFailureReport {
  private lastWarnAt = Number.NEGATIVE_INFINITY;
  private failuresSinceWarn = 0;

  constructor(
    private readonly collector: HepCollector,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  failed(err: unknown, count = 1, total?: number): void {
    this.failuresSinceWarn += count;
    const now = this.clock.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.log.warn(
      { err, collector: `${this.collector.address}:${this.collector.port}`, failed: this.failuresSinceWarn, ...(total === undefined ? {} : { failedTotal: total }) },
      `HEP packets could not be sent (at most one warning per ${WARN_EVERY_MS / 1000} s)`,
    );
    this.lastWarnAt = now;
    this.failuresSinceWarn = 0;
  }
}

/**
 * One UDP socket connected to the collector (so each send names no address, and a collector
 * that is not listening shows as failed sends), in the thread that calls it. A packet that
 * cannot be sent is counted and reported to `onFailure`, never retried.
 */
export class UdpHepSender implements HepSender {
  private socket: Socket | undefined;
  private connected = false;
  private readonly counts: HepSendStats = { sent: 0, sendFailures: 0 };
  /** The send callback: one function for every packet, no closure per send. */
  private readonly onSent = (err: Error | null): void => {
    if (err) return this.failed(err);
    this.counts.sent++;
    this.onCount?.(this.counts);
  };

  /** `onCount` is told of every change of the counts (the sender thread shares them with the server's). */
  constructor(
    private readonly collector: HepCollector,
    private readonly onFailure: (err: unknown, failedTotal: number) => void,
    private readonly onCount?: (counts: Readonly<HepSendStats>) => void,
  ) {}

  /** Never rejects: a socket that cannot be opened is reported, and every packet then counts as failed. */
  async start(): Promise<void> {
    if (this.socket) return;
    const { address, port } = this.collector;
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
      this.onFailure(new CaptureError('HEP_SOCKET', `cannot open a UDP socket to the HEP collector ${address}:${port}`, { cause: err }), this.counts.sendFailures);
    }
    socket.on('error', (err) => this.failed(err));
  }

  send(packet: Buffer): void {
    const socket = this.socket;
    if (!socket || !this.connected) {
      this.failed(new CaptureError('HEP_SOCKET', 'the UDP socket to the HEP collector is not open'));
      return;
    }
    try {
      socket.send(packet, this.onSent);
    } catch (err) {
      this.failed(err);
    }
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    this.connected = false;
    if (socket) await new Promise<void>((r) => socket.close(() => r()));
  }

  stats(): HepSendStats {
    return { ...this.counts };
  }

  private failed(err: unknown): void {
    this.counts.sendFailures++;
    this.onCount?.(this.counts);
    this.onFailure(err, this.counts.sendFailures);
  }
}
