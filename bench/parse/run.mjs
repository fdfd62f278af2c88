// Parse/serialize throughput of a typical INVITE with SDP (about 900 bytes), on one core.
// Usage: npm run bench:parse   (builds dist/ first; or run `node bench/parse/run.mjs` after a build)
// Prints the median of 7 runs of about 1 s each and writes bench/results/<date>-parse.json.
import { Buffer } from 'node:buffer';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseMessage } from '../../dist/sip/parser.js';
import { serializeMessage } from '../../dist/sip/serializer.js';
import { median } from '../report/report.mjs';

const RUNS = 7;
const RUN_NS = 1_000_000_000n;

// The same message as the parser tests (test/unit/sip/sip-text.ts).
const typical = JSON.parse(readFileSync(new URL('../../test/fixtures/typical-invite.json', import.meta.url), 'utf8'));
const sdp = typical.sdp.join('\r\n');
const head = [...typical.head, `Content-Length: ${Buffer.byteLength(sdp)}`].join('\r\n');

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
