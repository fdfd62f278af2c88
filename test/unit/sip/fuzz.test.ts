import { describe, expect, it } from 'vitest';
import { errorResponseForUnparsable } from '../../../src/sip/bad-request.js';
import { parseCSeq } from '../../../src/sip/cseq.js';
import { parseDigestCredentials } from '../../../src/sip/digest.js';
import { StreamFramer } from '../../../src/sip/framer.js';
import { splitHeaderList } from '../../../src/sip/message.js';
import { parseNameAddr } from '../../../src/sip/name-addr.js';
import { parseParams } from '../../../src/sip/params.js';
import { parseMessage, parseMessageHead } from '../../../src/sip/parser.js';
import { serializeMessage } from '../../../src/sip/serializer.js';
import { parseUri } from '../../../src/sip/uri.js';
import { parseVia } from '../../../src/sip/via.js';
import { SipParseError } from '../../../src/util/errors.js';
import { Fuzzer } from '../../fuzz/harness.js';

/*
 * A few seconds of the fuzzer (test/fuzz, issue 12): mutated SIP messages and header values
 * through the parser, the stream framer, the 400 builder and the header parsers. Each call must
 * return or throw SipParseError, and take under 50 ms; what the server would write back (the
 * 400, a parsed message serialised again) must frame as a message. `npm run fuzz` runs 10⁶ inputs; a failure
 * names its seed and index: `npm run fuzz -- --seed S --index I` replays it.
 */

const targets = { SipParseError, parseMessage, parseMessageHead, StreamFramer, errorResponseForUnparsable, serializeMessage, splitHeaderList, parseVia, parseNameAddr, parseUri, parseCSeq, parseParams, parseDigestCredentials };
const SEEDS = [1, 2, 3];
const PER_SEED = 8000;

describe('fuzz: parser, framer and header parsers', () => {
  const fuzzer = new Fuzzer(targets);

  it.each(SEEDS)(`seed %i: ${PER_SEED} inputs, no exception other than SipParseError, no call over 50 ms, every answer parses`, (seed) => {
    fuzzer.reset();
    const stats = fuzzer.run(seed, PER_SEED);
    const shown = fuzzer.failures.map((f) => `${f.kind} in ${f.target} (seed ${f.seed}, index ${f.index}): ${f.error ?? `${f.ms} ms`}\n  input ${f.input.hex.slice(0, 400)}${f.output ? `\n  output ${JSON.stringify(f.output.slice(0, 400))}` : ''}`);
    expect(fuzzer.summary().concat(shown), 'failures').toEqual([]);
    expect(stats.untyped).toBe(0);
    expect(stats.badOutput).toBe(0);
    expect(stats.slowest?.ms ?? 0).toBeLessThan(50);
    // The mutations reach both sides of the contract in every target that gets messages.
    for (const name of ['parseMessage(datagram)', 'parseMessage(stream)', 'parseMessage(framed)', 'parseVia', 'parseNameAddr', 'parseUri', 'parseCSeq', 'parseDigestCredentials']) {
      const per = stats.perTarget[name];
      expect(per?.ok, `${name} returned`).toBeGreaterThan(0);
      expect(per?.typed, `${name} threw SipParseError`).toBeGreaterThan(0);
    }
  });

  it('is deterministic: an input is the same whenever it is made', () => {
    const other = new Fuzzer(targets);
    for (const index of [0, 17, 4242]) {
      const a = fuzzer.input(9, index);
      const b = other.input(9, index);
      expect(a).toEqual(b);
    }
    expect(fuzzer.input(9, 1)).not.toEqual(fuzzer.input(9, 2));
  });
});

/** Fastest of three runs, in ms. */
function timed(fn: () => unknown): number {
  let best = Infinity;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    try {
      fn();
    } catch {
      /* only the time matters here */
    }
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const VIA_ETC = ['Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1', 'To: <sip:b@h>', 'From: <sip:a@h>;tag=1', 'Call-ID: c', 'CSeq: 1 INVITE'];

describe('fuzz findings', () => {
  it('errorResponseForUnparsable: a start line with a long run of whitespace takes linear time (took 2.8 s for a 60 KB datagram)', () => {
    const spaces = Buffer.from(`A x${' '.repeat(60_000)}y`);
    expect(errorResponseForUnparsable(spaces, 400, 'Bad Request-Line')).toBeUndefined();
    expect(timed(() => errorResponseForUnparsable(spaces, 400, 'Bad Request-Line'))).toBeLessThan(50);
    const tabs = Buffer.from(`INVITE sip:a@h${' \t'.repeat(30_000)}x\r\n${VIA_ETC.join('\r\n')}\r\n\r\n`);
    expect(timed(() => errorResponseForUnparsable(tabs, 400, 'Bad Request-Line'))).toBeLessThan(50);
  });

  it('errorResponseForUnparsable: still answers request lines shaped as before', () => {
    const answer = (line: string): number | undefined => errorResponseForUnparsable(Buffer.from(`${line}\r\n${VIA_ETC.join('\r\n')}\r\n\r\n`), 400, 'Bad Request-URI')?.status;
    expect(answer('INVITE sip:a@h SIP/2.0')).toBe(400);
    expect(answer(`INVITE sip:a@h${' '.repeat(20_000)}SIP/2.0  `)).toBe(400);
    expect(answer('INVITE sip:a@h\r SIP/2.0')).toBe(400);
    expect(answer('INVITE   SIP/2.0')).toBeUndefined();
    expect(answer('INVITE sip:a@h')).toBeUndefined();
    expect(answer('ACK sip:a@h SIP/2.0')).toBeUndefined();
  });

  it('errorResponseForUnparsable: a bare CR in a copied header becomes a space (the 400 carried it: a line break to some peers, headers of the sender\'s own in the answer)', () => {
    const raw = Buffer.from(['INVITE sip:a@h SIP/2.0', 'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1', 'To: <sip:b@h>', 'From: <sip:a@h>;tag=1', 'Call-ID: c\rContent-Length: 20\rX-Injected: 1', 'CSeq: 1 INVITE\r', '', ''].join('\r\n'));
    const res = errorResponseForUnparsable(raw, 400, 'Bad header line');
    if (!res) throw new Error('expected a 400');
    expect(res.headers.find((h) => h.name === 'Call-ID')?.value).toBe('c Content-Length: 20 X-Injected: 1');
    const written = serializeMessage(res);
    const { message } = parseMessageHead(written);
    expect(message.headers.map((h) => h.name)).toEqual(['Via', 'To', 'From', 'Call-ID', 'CSeq', 'Content-Length']);
    expect(message.headers.find((h) => h.name === 'Content-Length')?.value).toBe('0');
  });

  it('parseMessage: a header section of LF-ended lines takes linear time (1 MiB took 1.6 s: every line searched the rest for a CR)', () => {
    // sip-max-message-size may be up to 1 MiB: 349,000 header lines "a:" with bare LFs.
    const head = Buffer.from(`OPTIONS sip:a@h SIP/2.0\n${'a:\n'.repeat(349_000)}\n`);
    expect(() => parseMessage(head)).toThrow(SipParseError);
    expect(timed(() => parseMessage(head))).toBeLessThan(500);
    // A CR inside a line is still refused, wherever it is.
    expect(() => parseMessage(Buffer.from(`OPTIONS sip:a@h SIP/2.0\n${'a:\n'.repeat(1000)}b: x\ry\n\n`))).toThrow('Bad header line');
  });

  it('parseParams: an empty parameter or name throws SipParseError (was a plain Error)', () => {
    for (const text of ['', 'a;;b', ' ', '=x', 'a; =1']) expect(() => parseParams(text), text).toThrow(SipParseError);
    expect(() => parseVia('SIP/2.0/UDP h;;branch=1')).toThrow('Bad Via parameter');
    expect(() => parseNameAddr('<sip:a@h>;=1', 'To')).toThrow('Bad To header: bad parameter');
  });
});
