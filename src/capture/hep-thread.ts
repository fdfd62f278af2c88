import { Worker } from 'node:worker_threads';
import type { Clock } from '../util/clock.js';
import { CaptureError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { BATCHES_DONE, COUNTER_SLOTS, FAILED, SENT, type ThreadMessage, type ToThread } from './hep-thread-protocol.js';
import { SendFailureReport, type HepCollector, type HepSender, type HepSendStats } from './udp-hep-sender.js';

export interface ThreadedHepSenderDeps {
  clock: Clock;
  log: Logger;
  /** How a flush is put off to the end of the event-loop turn (the server: setImmediate). */
  defer: (fn: () => void) => void;
}

/** Batches posted and not yet sent out beyond which new packets are dropped (counted as failed). */
const MAX_BATCHES_BEHIND = 256;
/** How long stop() waits for the thread to send what it has and close. */
const STOP_GRACE_MS = 2000;

/**
 * Sends HEP packets from a thread of its own (hep-sender-thread.ts), so that the server's
 * thread, which runs all of SIP, spends on a packet only its encoding and a copy: the packets
 * of one event-loop turn go to the thread together, as one transferred ArrayBuffer, after the
 * turn; the thread makes the UDP sends on the other core. The counts come back through shared
 * memory. If the thread falls behind (MAX_BATCHES_BEHIND), or is gone, packets are dropped and
 * counted as failed, so capture never holds memory for a collector that cannot keep up.
 */
export class ThreadedHepSender implements HepSender {
  private worker: Worker | undefined;
  private alive = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private posted = 0;
  /** Failures counted here (dropped before reaching the thread), beside the thread's own. */
  private dropped = 0;
  private readonly counters = new Int32Array(new SharedArrayBuffer(COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT));
  private readonly report: SendFailureReport;
  private readonly flush = (): void => this.post();

  constructor(
    private readonly collector: HepCollector,
    private readonly deps: ThreadedHepSenderDeps,
  ) {
    this.report = new SendFailureReport(collector, deps.clock, deps.log);
  }

  /** Starts the thread and waits until its socket is open (or failed: then every packet counts as failed). */
  async start(): Promise<void> {
    if (this.worker) return;
    const worker = new Worker(new URL('./hep-sender-thread.js', import.meta.url), { workerData: { collector: this.collector, counters: this.counters.buffer } });
    this.worker = worker;
    worker.unref();
    worker.on('message', (m: ThreadMessage) => {
      if (m.t === 'failed') this.report.failed(new CaptureError('HEP_SEND', m.message), m.count, m.total + this.dropped);
    });
    worker.on('error', (err) => {
      this.alive = false;
      this.deps.log.error({ err: new CaptureError('HEP_THREAD', 'the HEP sender thread failed: capture is off', { cause: err }) }, 'HEP sender thread failed');
    });
    worker.on('exit', () => (this.alive = false));
    await new Promise<void>((resolve) => {
      const ready = (m: ThreadMessage): void => {
        if (m.t !== 'ready') return;
        worker.off('message', ready);
        this.alive = true;
        resolve();
      };
      worker.on('message', ready);
      worker.once('exit', () => resolve());
    });
  }

  send(packet: Buffer): void {
    if (!this.alive || this.posted - Atomics.load(this.counters, BATCHES_DONE) > MAX_BATCHES_BEHIND) {
      this.dropped++;
      this.report.failed(new CaptureError('HEP_BEHIND', this.alive ? 'the HEP sender thread is behind: packet dropped' : 'the HEP sender thread is not running'), 1, this.stats().sendFailures);
      return;
    }
    if (this.held.length === 0) this.deps.defer(this.flush);
    this.held.push(packet);
    this.heldBytes += packet.length;
  }

  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.post();
    this.worker = undefined;
    if (!this.alive) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const timer = this.deps.clock.setTimer(STOP_GRACE_MS, () => void worker.terminate());
    worker.postMessage({ t: 'stop' } satisfies ToThread);
    await exited;
    timer.cancel();
    this.alive = false;
  }

  stats(): HepSendStats {
    return { sent: Atomics.load(this.counters, SENT), sendFailures: Atomics.load(this.counters, FAILED) + this.dropped };
  }

  /** The packets held this turn, back to back in one ArrayBuffer handed over to the thread. */
  private post(): void {
    const held = this.held;
    if (held.length === 0) return;
    const batch = new ArrayBuffer(this.heldBytes);
    const bytes = new Uint8Array(batch);
    let o = 0;
    for (const p of held) {
      bytes.set(p, o);
      o += p.length;
    }
    this.held = [];
    this.heldBytes = 0;
    if (!this.worker || !this.alive) {
      this.dropped += held.length;
      return;
    }
    this.posted++;
    this.worker.postMessage(batch satisfies ToThread, [batch]);
  }
}
