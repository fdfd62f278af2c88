// Parse/serialize throughput of a typical INVITE with SDP (about 900 bytes), on one core.
// Usage: npm run bench:parse   (builds dist/ first; or run `node bench/parse/run.mjs` after a build)
// Prints the median of 7 runs of about 1 s each and writes bench/results/<date>-parse.json.
import { Buffer } from 'node:buffer';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseMessage } from '../../dist/sip/parser.js';
import { serializeMessage } from '../../dist/sip/serializer.js';

const RUNS = 7;
const RUN_NS = 1_000_000_000n;

const sdp = [
  'v=0',
  'o=- 13760799956958020 13760799956958020 IN IP4 192.0.2.21',
  's=example',
  'c=IN IP4 192.0.2.21',
  't=0 0',
  'm=audio 51372 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-15',
  'a=sendrecv',
  '',
].join('\r\n');

const head = [
  'INVITE sip:1002@192.0.2.10:5060;transport=tcp SIP/2.0',
  'Via: SIP/2.0/TCP 192.0.2.21:5060;branch=z9hG4bK-524287-1---3c1ec5f8a5e1;rport',
  'Max-Forwards: 70',
  'Contact: <sip:1001@192.0.2.21:5060;transport=tcp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"',
  'To: <sip:1002@192.0.2.10>',
  'From: "Alice Example" <sip:1001@192.0.2.10>;tag=9fxced76sl',
  'Call-ID: 3848276298220188511@192.0.2.21',
  'CSeq: 1 INVITE',
  'Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE',
  'Content-Type: application/sdp',
  'Supported: replaces, norefersub, extended-refer, timer, X-cisco-serviceuri',
  'User-Agent: Example Softphone 5.4.12 release 100411',
  'Allow-Events: presence, kpml, talk',
  `Content-Length: ${Buffer.byteLength(sdp)}`,
].join('\r\n');

const bytes = Buffer.from(`${head}\r\n\r\n${sdp}`);
const parsed = parseMessage(bytes);

/** Runs fn in batches for about RUN_NS; returns operations per second. */
function measure(fn) {
  let ops = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < RUN_NS) {
    for (let i = 0; i < 1000; i++) sink += fn();
    ops += 1000;
    elapsed = process.hrtime.bigint() - start;
  }
  if (sink === -1) console.log('unreachable');
  return Math.round((ops * 1e9) / Number(elapsed));
}

const cases = {
  parse: () => parseMessage(bytes).headers.length,
  serialize: () => serializeMessage(parsed).length,
  parseSerialize: () => serializeMessage(parseMessage(bytes)).length,
};

// Warm-up so that the first run is not the JIT's.
for (const fn of Object.values(cases)) for (let i = 0; i < 20000; i++) fn();

const samples = {};
for (const [name, fn] of Object.entries(cases)) {
  samples[name] = [];
  for (let r = 0; r < RUNS; r++) samples[name].push(measure(fn));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  messageBytes: bytes.length,
  runs: RUNS,
  runSeconds: Number(RUN_NS) / 1e9,
  medianOpsPerSecond: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])),
  samples,
};

for (const [name, value] of Object.entries(result.medianOpsPerSecond)) {
  console.log(`${name.padEnd(15)} ${value.toLocaleString('en-US').padStart(12)} msgs/s  (median of ${RUNS}, ${bytes.length}-byte INVITE)`);
}
const dir = new URL('../results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const file = new URL(`${result.date.slice(0, 10)}-parse.json`, dir);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(`wrote ${file.pathname}`);
