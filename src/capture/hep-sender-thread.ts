// The HEP sender thread (started by ThreadedHepSender, hep-thread.ts): receives batches of
// finished HEP packets from the server's thread, one ArrayBuffer per event-loop turn there,
// and sends each packet (its length is in its own header) on a UDP socket connected to the
// collector. Counts go back through shared memory; failures as a message, at most one a second.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { UdpHepSender, type HepCollector } from './udp-hep-sender.js';
import { BATCHES_DONE, FAILED, SENT, type ThreadMessage, type ToThread } from './hep-thread-protocol.js';

const FAILURE_REPORT_EVERY_MS = 1000;
const port = parentPort;
if (!port) throw new Error('hep-sender-thread runs as a worker thread of the server');
const { collector, counters: shared } = workerData as { collector: HepCollector; counters: SharedArrayBuffer };
const counters = new Int32Array(shared);
let lastReport = Number.NEGATIVE_INFINITY;
let unreported = 0;

const post = (m: ThreadMessage): void => port.postMessage(m);
const sender = new UdpHepSender(
  collector,
  (err, total) => {
    unreported++;
    const now = performance.now();
    if (now - lastReport < FAILURE_REPORT_EVERY_MS) return;
    post({ t: 'failed', message: err instanceof Error ? err.message : String(err), count: unreported, total });
    lastReport = now;
    unreported = 0;
  },
  (counts) => {
    Atomics.store(counters, SENT, counts.sent);
    Atomics.store(counters, FAILED, counts.sendFailures);
  },
);

port.on('message', (m: ToThread) => {
  if (m instanceof ArrayBuffer) {
    const batch = Buffer.from(m);
    for (let o = 0; o + 6 <= batch.length; ) {
      const length = batch.readUInt16BE(o + 4);
      if (length < 6) break;
      sender.send(batch.subarray(o, o + length));
      o += length;
    }
    Atomics.add(counters, BATCHES_DONE, 1);
    return;
  }
  void sender.stop().then(() => port.close());
});

void sender.start().then(() => post({ t: 'ready' }));
