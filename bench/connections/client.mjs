// One endpoint process of bench/connections: opens `count` TCP connections from `sources` (a
// comma-separated list of local addresses, used in turn) to the
// server, one per endpoint, and registers DN `first + i` over connection i (Contact = that
// connection's own address), at most `window` REGISTERs outstanding. Keeps every connection
// open afterwards (a REGISTER unanswered after 15 s counts as failed) and answers nothing (the kernel answers keep-alive probes). Started with
// fork(); reports {t:'progress', registered, failed} and {t:'done', …} to its parent and
// closes everything on {t:'close'}. One process holds at most ~19.9k sockets here (NOTES.md).
import { connect } from 'node:net';

const [server, port, sourceList, first, count, window] = process.argv.slice(2);
// Few connections per source address: connect() has to search for a free ephemeral port, and
// that search gets slow as an address's port range fills up.
const sources = sourceList.split(',');
const total = Number(count);
const inFlight = Number(window);
const sockets = [];
let next = 0;
let registered = 0;
let failed = 0;
let outstanding = 0;
let firstSentAt = 0;
let lastOkAt = 0;
const failures = new Map();

const fail = (reason) => {
  failed++;
  failures.set(reason, (failures.get(reason) ?? 0) + 1);
  outstanding--;
  pump();
};

function register(i) {
  const dn = String(Number(first) + i);
  const source = sources[i % sources.length];
  const socket = connect({ host: server, port: Number(port), localAddress: source, noDelay: true });
  sockets.push(socket);
  let answered = false;
  let buffer = '';
  const timer = setTimeout(() => {
    if (!answered) {
      answered = true;
      fail('timeout');
    }
  }, 15_000);
  socket.on('connect', () => {
    const local = `${socket.localAddress}:${socket.localPort}`;
    const branch = `z9hG4bK-${dn}-${socket.localPort}`;
    socket.write(
      `REGISTER sip:${server} SIP/2.0\r\n` +
        `Via: SIP/2.0/TCP ${local};branch=${branch};rport\r\n` +
        `Max-Forwards: 70\r\n` +
        `From: <sip:${dn}@${server}>;tag=${dn}\r\n` +
        `To: <sip:${dn}@${server}>\r\n` +
        `Call-ID: reg-${dn}@${source}\r\n` +
        `CSeq: 1 REGISTER\r\n` +
        `Contact: <sip:${dn}@${local};transport=tcp>\r\n` +
        `Expires: 3600\r\n` +
        `Content-Length: 0\r\n\r\n`,
    );
  });
  socket.on('data', (chunk) => {
    if (answered) return;
    buffer += chunk.toString('latin1');
    const end = buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    answered = true;
    clearTimeout(timer);
    const status = Number(buffer.slice(8, 11));
    if (status === 200) {
      registered++;
      lastOkAt = Date.now();
      outstanding--;
      pump();
    } else fail(`status ${status}`);
  });
  socket.on('error', (err) => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    fail(err.code ?? err.message);
  });
}

let reported = false;
function report() {
  if (reported) return;
  reported = true;
  process.send({ t: 'done', registered, failed, failures: Object.fromEntries(failures), firstSentAt, lastOkAt });
}

function pump() {
  while (outstanding < inFlight && next < total) {
    outstanding++;
    register(next++);
  }
  if (registered + failed === total) report();
}

const progress = setInterval(() => process.send({ t: 'progress', registered, failed }), 1000);

process.on('message', (m) => {
  if (m.t === 'start') {
    firstSentAt = Date.now();
    pump();
    // A target that stops accepting (out of file descriptors) must not hold the bench up:
    // after 3 minutes what is left counts as failed.
    setTimeout(() => {
      const left = total - registered - failed;
      if (left > 0) failures.set('unfinished after 180 s', left);
      failed += left;
      report();
    }, 180_000).unref();
  } else if (m.t === 'close') {
    clearInterval(progress);
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ t: 'ready' });
