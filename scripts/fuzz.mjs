#!/usr/bin/env node
// The in-process fuzzer on the compiled code (issue 12): mutated SIP messages and header
// values through parseMessage (datagram and stream), StreamFramer, errorResponseForUnparsable
// and the header parsers. Usage:
//   npm run fuzz -- [--inputs N] [--seed S] [--index I] [--out DIR]
// --inputs (default 1,000,000) inputs of seed S (default 1); --index I replays input I alone
// (with --seed). Prints inputs/s, the failures (untyped exceptions, calls over 50 ms) with
// seed, index and input in hex, and the slowest call. Full failing inputs go to DIR
// (default: a temporary directory). Exit 1 when anything failed.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import { errorResponseForUnparsable } from '../dist/sip/bad-request.js';
import { parseCSeq } from '../dist/sip/cseq.js';
import { parseDigestCredentials } from '../dist/sip/digest.js';
import { StreamFramer } from '../dist/sip/framer.js';
import { splitHeaderList } from '../dist/sip/message.js';
import { parseNameAddr } from '../dist/sip/name-addr.js';
import { parseParams } from '../dist/sip/params.js';
import { parseMessage, parseMessageHead } from '../dist/sip/parser.js';
import { serializeMessage } from '../dist/sip/serializer.js';
import { parseUri } from '../dist/sip/uri.js';
import { parseVia } from '../dist/sip/via.js';
import { SipParseError } from '../dist/util/errors.js';

const { values: args } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    index: { type: 'string' },
    out: { type: 'string' },
  },
});
const inputs = Number(args.inputs);
const seed = Number(args.seed);
if (!Number.isInteger(inputs) || inputs < 1 || !Number.isInteger(seed) || (args.index !== undefined && !(Number.isInteger(Number(args.index)) && Number(args.index) >= 0))) {
  console.error('usage: node scripts/fuzz.mjs [--inputs N] [--seed S] [--index I] [--out DIR]');
  process.exit(2);
}

// The fuzzer itself is TypeScript (test/fuzz, shared with the unit test): its files import
// only each other and types, so each is transpiled alone (no type check, no tsx) into a
// temporary ES module directory. The code under test is dist/, handed in.
const FUZZ_DIR = new URL('../test/fuzz/', import.meta.url);
const compiled = mkdtempSync(join(tmpdir(), 'sip-fuzz-js-'));
writeFileSync(join(compiled, 'package.json'), '{"type":"module"}\n');
for (const file of readdirSync(FUZZ_DIR).filter((f) => f.endsWith('.ts'))) {
  const source = readFileSync(new URL(file, FUZZ_DIR), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true }, fileName: file });
  writeFileSync(join(compiled, file.replace(/\.ts$/, '.js')), outputText);
}
const { Fuzzer } = await import(pathToFileURL(join(compiled, 'harness.js')).href);
rmSync(compiled, { recursive: true, force: true });

const targets = { SipParseError, parseMessage, parseMessageHead, StreamFramer, errorResponseForUnparsable, serializeMessage, splitHeaderList, parseVia, parseNameAddr, parseUri, parseCSeq, parseParams, parseDigestCredentials };
const fuzzer = new Fuzzer(targets, { fixtures: new URL('../test/fixtures/', import.meta.url) });
const from = args.index === undefined ? 0 : Number(args.index);
const count = args.index === undefined ? inputs : 1;

console.log(`fuzz: seed ${seed}, inputs ${from}..${from + count - 1}, corpus ${fuzzer.corpus.length} messages, node ${process.version}`);
const t0 = performance.now();
const BATCH = 10_000;
let lastReport = t0;
for (let i = from; i < from + count; i += BATCH) {
  fuzzer.run(seed, Math.min(BATCH, from + count - i), i);
  const now = performance.now();
  if (now - lastReport > 10_000) {
    const s = fuzzer.stats;
    console.log(`  ${s.inputs} inputs, ${Math.round(s.inputs / ((now - t0) / 1000))}/s, ${s.failures} failures, slowest ${s.slowest?.ms.toFixed(2)} ms`);
    lastReport = now;
  }
}
const seconds = (performance.now() - t0) / 1000;
const s = fuzzer.stats;

console.log('\ntarget                         calls      returned   SipParseError  max ms (re-timed)');
for (const [name, p] of Object.entries(s.perTarget)) {
  console.log(`${name.padEnd(30)} ${String(p.calls).padStart(9)} ${String(p.ok).padStart(10)} ${String(p.typed).padStart(14)}  ${p.maxMs.toFixed(2).padStart(6)}`);
}
console.log(`\ninputs: ${s.inputs}   calls: ${s.calls}   time: ${seconds.toFixed(1)} s   inputs/s: ${Math.round(s.inputs / seconds)}`);
console.log(`failures: ${s.failures} (untyped exceptions ${s.untyped}, over ${fuzzer.limitMs} ms ${s.slow}, output that does not parse ${s.badOutput})`);
if (s.slowest) {
  const w = s.slowest;
  console.log(`slowest input: ${w.ms.toFixed(2)} ms in ${w.target} (seed ${w.seed}, index ${w.index}, ${w.length} bytes${w.chunks ? ` in ${w.chunks} chunks` : ''}; fastest of ${w.ms === w.firstRunMs ? 1 : 4} runs)`);
  console.log(`slowest single run, pauses included: ${s.maxRawMs.toFixed(2)} ms`);
}

if (fuzzer.failures.length > 0) {
  const dir = args.out ?? mkdtempSync(join(tmpdir(), `sip-fuzz-${seed}-`));
  mkdirSync(dir, { recursive: true });
  console.log('\ndistinct failures:');
  for (const line of fuzzer.summary()) console.log(`  ${line}`);
  for (const f of fuzzer.failures) {
    const file = join(dir, `${f.kind}-${f.target.replace(/[^A-Za-z]/g, '')}-seed${f.seed}-index${f.index}.json`);
    writeFileSync(file, JSON.stringify(f, null, 2));
    const hex = f.input.hex;
    console.log(`\n${f.kind} in ${f.target}: ${f.error ?? `${f.ms} ms (first run ${f.firstRunMs} ms)`}`);
    if (f.output) console.log(`  output: ${JSON.stringify(f.output.slice(0, 300))}`);
    console.log(`  replay: node scripts/fuzz.mjs --seed ${f.seed} --index ${f.index}`);
    console.log(`  input (${hex.length / 2} bytes): ${hex.length > 512 ? `${hex.slice(0, 512)}…` : hex}`);
    console.log(`  full input: ${file}`);
  }
}
process.exit(s.failures > 0 ? 1 : 0);
