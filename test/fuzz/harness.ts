// The in-process fuzzer of the SIP parser, stream framer and header parsers (issue 12).
// Deterministic: input i of seed s is a pure function of (corpus, s, i), so any failure
// replays alone. The code under test is handed in (`targets`): the unit test passes src/,
// scripts/fuzz.mjs the compiled dist/.
//
// The contract checked on every call: it returns, or throws a SipParseError. Any other
// exception (TypeError, RangeError, a plain Error, ...) is a failure; so is a call that takes
// more than `limitMs` (measured with performance.now; a call over `retimeMs` is run three times
// more and the fastest run counts, so that a preempted or garbage-collecting process does not).
// And what the server would write back (a 400 built from the bytes, a parsed message serialised
// again) must frame as a message.
import type { errorResponseForUnparsable } from '../../src/sip/bad-request.js';
import type { parseCSeq } from '../../src/sip/cseq.js';
import type { parseDigestCredentials } from '../../src/sip/digest.js';
import type { FramerEvent, StreamFramer } from '../../src/sip/framer.js';
import type { SipMessage, splitHeaderList } from '../../src/sip/message.js';
import type { parseNameAddr } from '../../src/sip/name-addr.js';
import type { parseParams } from '../../src/sip/params.js';
import type { parseMessage, parseMessageHead } from '../../src/sip/parser.js';
import type { serializeMessage } from '../../src/sip/serializer.js';
import type { parseUri } from '../../src/sip/uri.js';
import type { parseVia } from '../../src/sip/via.js';
import type { SipParseError } from '../../src/util/errors.js';
import { corpusHeaderValues, corpusMessages, WELL_FORMED, type ValueKind } from './corpus.js';
import { mutate, mutateValue } from './mutate.js';
import { inputSeed, Rng } from './prng.js';

/** The code under test, all from one build (src/ or dist/). */
export interface FuzzTargets {
  SipParseError: typeof SipParseError;
  parseMessage: typeof parseMessage;
  parseMessageHead: typeof parseMessageHead;
  StreamFramer: typeof StreamFramer;
  errorResponseForUnparsable: typeof errorResponseForUnparsable;
  serializeMessage: typeof serializeMessage;
  splitHeaderList: typeof splitHeaderList;
  parseVia: typeof parseVia;
  parseNameAddr: typeof parseNameAddr;
  parseUri: typeof parseUri;
  parseCSeq: typeof parseCSeq;
  parseParams: typeof parseParams;
  parseDigestCredentials: typeof parseDigestCredentials;
}

export type FuzzInput =
  | { kind: 'header'; seed: number; index: number; valueKind: ValueKind; value: string }
  | { kind: 'message'; seed: number; index: number; bytes: Buffer; stream: Buffer; chunks: number[] };

export interface FuzzFailure {
  /** untyped: an exception other than SipParseError; slow: over limitMs; bad-output: a message the server would write does not parse. */
  kind: 'untyped' | 'slow' | 'bad-output';
  target: string;
  seed: number;
  index: number;
  /** Untyped: the exception's name and message, and its stack. */
  error?: string;
  stack?: string;
  /** Slow: the fastest of four runs, and the first run. */
  ms?: number;
  firstRunMs?: number;
  /** Bad output: what would have been written (latin1, cut at 2000 characters). */
  output?: string;
  /** The input: hex of the bytes (of a header value: its UTF-8), a header value also as JSON. */
  input: { hex: string; length: number; text?: string; valueKind?: string; streamHex?: string; chunks?: number[] };
}

export interface TargetStats {
  calls: number;
  /** Returned. */
  ok: number;
  /** Threw SipParseError. */
  typed: number;
  /** The slowest call, re-timed. */
  maxMs: number;
}

export interface FuzzStats {
  inputs: number;
  calls: number;
  failures: number;
  untyped: number;
  slow: number;
  badOutput: number;
  perTarget: Record<string, TargetStats>;
  /** The slowest call, re-timed (fastest of four runs when over retimeMs). */
  slowest?: { target: string; ms: number; firstRunMs: number; seed: number; index: number; length: number; chunks?: number };
  /** The slowest single run, pauses of the process included. */
  maxRawMs: number;
}

export interface FuzzerOptions {
  /** The time bound of one call (50 ms). */
  limitMs?: number;
  /** Calls slower than this are timed again, the fastest run counts (limitMs / 10). */
  retimeMs?: number;
  /** Distinct failures kept in full (20); all are counted. */
  maxFailures?: number;
  /** test/fixtures (default: found from this file). */
  fixtures?: URL;
}

type Result<T> = { ok: true; value: T } | { ok: false; typed: boolean; error: unknown };

const MAX_MESSAGE_SIZE = 65535;
const HEADER_KINDS: readonly ValueKind[] = ['via', 'addr', 'uri', 'cseq', 'params', 'digest'];
const ADDRESS_HEADERS = new Set(['from', 'f', 'to', 't', 'contact', 'm', 'route', 'record-route', 'refer-to', 'r', 'referred-by', 'b']);
const LIST_ADDRESS_HEADERS = new Set(['contact', 'm', 'route', 'record-route']);

function describeInput(input: FuzzInput): FuzzFailure['input'] {
  if (input.kind === 'header') {
    return { valueKind: input.valueKind, text: JSON.stringify(input.value), hex: Buffer.from(input.value, 'utf8').toString('hex'), length: input.value.length };
  }
  return { length: input.bytes.length, hex: input.bytes.toString('hex'), streamHex: input.stream.toString('hex'), chunks: input.chunks };
}

function errorText(err: unknown): { error: string; stack?: string } {
  if (err instanceof Error) return err.stack === undefined ? { error: `${err.name}: ${err.message}` } : { error: `${err.name}: ${err.message}`, stack: err.stack };
  return { error: `non-Error thrown: ${String(err)}` };
}

export class Fuzzer {
  readonly limitMs: number;
  readonly retimeMs: number;
  readonly maxFailures: number;
  readonly corpus: Buffer[];
  readonly values: Record<ValueKind, string[]>;
  stats!: FuzzStats;
  failures!: FuzzFailure[];
  private signatures!: Map<string, number>;

  constructor(
    private readonly t: FuzzTargets,
    opts: FuzzerOptions = {},
  ) {
    this.limitMs = opts.limitMs ?? 50;
    this.retimeMs = opts.retimeMs ?? this.limitMs / 10;
    this.maxFailures = opts.maxFailures ?? 20;
    this.corpus = corpusMessages(opts.fixtures);
    this.values = corpusHeaderValues(this.corpus);
    this.reset();
  }

  reset(): void {
    this.stats = { inputs: 0, calls: 0, failures: 0, untyped: 0, slow: 0, badOutput: 0, perTarget: {}, maxRawMs: 0 };
    this.failures = [];
    this.signatures = new Map();
  }

  /** Input `index` of run `seed`: a mutated message (with a stream and chunking for the framer) or a mutated header value. */
  input(seed: number, index: number): FuzzInput {
    const rng = new Rng(inputSeed(seed, index));
    if (rng.chance(0.3)) {
      const valueKind = rng.pick(HEADER_KINDS);
      const pool = this.values[valueKind];
      return { kind: 'header', seed, index, valueKind, value: mutateValue(rng, rng.pick(pool), pool) };
    }
    const bytes = mutate(rng, rng.pick(this.corpus), this.corpus, MAX_MESSAGE_SIZE);
    // The stream: keep-alive CRLFs now and then, the mutated message, sometimes a second
    // mutated one, sometimes a well-formed message after (a framer that goes on must frame it).
    const parts: Buffer[] = [];
    if (rng.chance(0.1)) parts.push(Buffer.from('\r\n'.repeat(rng.range(1, 4))));
    parts.push(bytes);
    if (rng.chance(0.2)) parts.push(mutate(rng, rng.pick(this.corpus), this.corpus, MAX_MESSAGE_SIZE));
    if (rng.chance(0.3)) parts.push(WELL_FORMED);
    const stream = Buffer.concat(parts);
    const chunks: number[] = [];
    const mode = rng.float();
    if (mode < 0.3) chunks.push(stream.length);
    else {
      // Byte by byte (small streams only), or random segment sizes up to a few KB.
      const max = mode < 0.4 && stream.length <= 8192 ? 1 : rng.logInt(4096);
      for (let left = stream.length; left > 0; ) {
        const c = Math.min(left, rng.range(1, max));
        chunks.push(c);
        left -= c;
      }
    }
    return { kind: 'message', seed, index, bytes, stream, chunks };
  }

  /** Runs inputs [from, from + count) of `seed`; returns the stats so far. */
  run(seed: number, count: number, from = 0): FuzzStats {
    for (let i = from; i < from + count; i++) this.runInput(this.input(seed, i));
    return this.stats;
  }

  runInput(input: FuzzInput): void {
    this.stats.inputs++;
    if (input.kind === 'header') this.headerTargets(input, input.value);
    else this.messageTargets(input);
  }

  /** One line per distinct failure with its count, for a test's message or the script's output. */
  summary(): string[] {
    return [...this.signatures].map(([sig, n]) => `${n}× ${sig}`);
  }

  private messageTargets(input: FuzzInput & { kind: 'message' }): void {
    const { bytes } = input;
    const dgram = this.call('parseMessage(datagram)', input, () => this.t.parseMessage(bytes, { datagram: true }));
    if (dgram.ok) this.afterParse(input, dgram.value);
    else if (dgram.typed) this.answerUnparsable(input, bytes, dgram.error as SipParseError);
    const str = this.call('parseMessage(stream)', input, () => this.t.parseMessage(bytes, { datagram: false }));
    if (str.ok) this.afterParse(input, str.value);
    // The framer, fed in the input's chunk sizes; what it frames is parsed as the transport does.
    const framed = this.call('StreamFramer', input, () => {
      const framer = new this.t.StreamFramer(MAX_MESSAGE_SIZE);
      const events: FramerEvent[] = [];
      let at = 0;
      for (const c of input.chunks) {
        for (const ev of framer.push(input.stream.subarray(at, at + c))) events.push(ev);
        at += c;
      }
      return events;
    });
    if (framed.ok) {
      for (const ev of framed.value) {
        if (ev.type === 'message') {
          const r = this.call('parseMessage(framed)', input, () => this.t.parseMessage(ev.data, { datagram: false }));
          if (!r.ok && r.typed) this.answerUnparsable(input, ev.data, r.error as SipParseError);
        } else if (ev.type === 'error' && ev.headBytes) {
          const head = ev.headBytes;
          this.call('errorResponseForUnparsable', input, () => this.t.errorResponseForUnparsable(head, 400, ev.reason));
        }
      }
    }
    // Whatever the parse said, the lenient reader must cope with the bytes too.
    this.call('errorResponseForUnparsable', input, () => this.t.errorResponseForUnparsable(bytes, 400, 'Bad Request'));
  }

  private answerUnparsable(input: FuzzInput, bytes: Buffer, err: SipParseError): void {
    const res = this.call('errorResponseForUnparsable', input, () => this.t.errorResponseForUnparsable(bytes, err.status, err.reason));
    if (res.ok && res.value) {
      const response = res.value;
      const out = this.call('serializeMessage', input, () => this.t.serializeMessage(response));
      if (out.ok) this.checkOutput('errorResponseForUnparsable', input, out.value);
    }
  }

  /**
   * What the server writes must be readable as a message: its values may be copied faults (a
   * bad Via in, the same bad Via out), but its start line and header lines must frame — a
   * bare CR in a value is a line break to some peers.
   */
  private checkOutput(target: string, input: FuzzInput, bytes: Buffer): void {
    try {
      this.t.parseMessageHead(bytes);
    } catch (err) {
      this.fail('bad-output', target, input, { error: err instanceof this.t.SipParseError ? err.reason : errorText(err).error, output: bytes.toString('latin1').slice(0, 2000) });
    }
  }

  /** What the layers above do with a parsed message: its header values through the header parsers, and a re-serialisation. */
  private afterParse(input: FuzzInput, message: SipMessage): void {
    if (message.kind === 'request') this.call('parseUri', input, () => this.t.parseUri(message.uri));
    for (const h of message.headers) {
      const name = h.name.toLowerCase();
      if (name === 'via' || name === 'v') {
        const vias = this.call('splitHeaderList', input, () => this.t.splitHeaderList(h.value));
        if (vias.ok) for (const v of vias.value) this.call('parseVia', input, () => this.t.parseVia(v));
      } else if (ADDRESS_HEADERS.has(name)) {
        const parts: Result<string[]> = LIST_ADDRESS_HEADERS.has(name) ? this.call('splitHeaderList', input, () => this.t.splitHeaderList(h.value)) : { ok: true, value: [h.value] };
        if (!parts.ok) continue;
        for (const p of parts.value) {
          if (p === '*') continue;
          const na = this.call('parseNameAddr', input, () => this.t.parseNameAddr(p, h.name));
          if (na.ok) this.call('parseUri', input, () => this.t.parseUri(na.value.uri));
        }
      } else if (name === 'cseq') this.call('parseCSeq', input, () => this.t.parseCSeq(h.value));
      else if (name === 'authorization' || name === 'proxy-authorization') {
        this.call('parseDigestCredentials', input, () => this.t.parseDigestCredentials(h.value, h.name));
      }
    }
    const out = this.call('serializeMessage', input, () => this.t.serializeMessage(message));
    if (out.ok) this.checkOutput('serializeMessage', input, out.value);
  }

  private headerTargets(input: FuzzInput, v: string): void {
    this.call('parseVia', input, () => this.t.parseVia(v));
    this.call('parseNameAddr', input, () => this.t.parseNameAddr(v, 'To'));
    this.call('parseUri', input, () => this.t.parseUri(v));
    this.call('parseCSeq', input, () => this.t.parseCSeq(v));
    this.call('parseParams', input, () => this.t.parseParams(v));
    this.call('parseDigestCredentials', input, () => this.t.parseDigestCredentials(v, 'Authorization'));
    this.call('splitHeaderList', input, () => this.t.splitHeaderList(v));
  }

  /** One timed call under the contract. */
  private call<T>(target: string, input: FuzzInput, fn: () => T): Result<T> {
    const s = this.stats;
    s.calls++;
    const per = (s.perTarget[target] ??= { calls: 0, ok: 0, typed: 0, maxMs: 0 });
    per.calls++;
    let result: Result<T>;
    const t0 = performance.now();
    try {
      result = { ok: true, value: fn() };
    } catch (error) {
      result = { ok: false, typed: error instanceof this.t.SipParseError, error };
    }
    const ms = performance.now() - t0;
    if (result.ok) per.ok++;
    else if (result.typed) per.typed++;
    else this.fail('untyped', target, input, errorText(result.error));
    // A slow call is timed again: the fastest of the runs is its time. A pause of the process
    // (garbage collection, another process on the core) makes one run slow, not four.
    let best = ms;
    for (let k = 0; k < 3 && best > this.retimeMs; k++) {
      const r0 = performance.now();
      try {
        fn();
      } catch {
        // Judged on the first run.
      }
      best = Math.min(best, performance.now() - r0);
    }
    if (best > per.maxMs) per.maxMs = best;
    if (ms > s.maxRawMs) s.maxRawMs = ms;
    if (!s.slowest || best > s.slowest.ms) {
      const length = input.kind === 'header' ? input.value.length : target === 'StreamFramer' ? input.stream.length : input.bytes.length;
      s.slowest = { target, ms: best, firstRunMs: ms, seed: input.seed, index: input.index, length, ...(target === 'StreamFramer' && input.kind === 'message' ? { chunks: input.chunks.length } : {}) };
    }
    if (best > this.limitMs) this.fail('slow', target, input, { ms: Number(best.toFixed(2)), firstRunMs: Number(ms.toFixed(2)) });
    return result;
  }

  private fail(kind: FuzzFailure['kind'], target: string, input: FuzzInput, details: Partial<FuzzFailure>): void {
    const s = this.stats;
    s.failures++;
    if (kind === 'untyped') s.untyped++;
    else if (kind === 'slow') s.slow++;
    else s.badOutput++;
    const signature = `${kind} ${target}${details.error === undefined ? '' : ` ${details.error}`}`;
    const seen = this.signatures.get(signature) ?? 0;
    this.signatures.set(signature, seen + 1);
    if (seen === 0 && this.failures.length < this.maxFailures) {
      this.failures.push({ kind, target, seed: input.seed, index: input.index, ...details, input: describeInput(input) });
    }
  }
}
