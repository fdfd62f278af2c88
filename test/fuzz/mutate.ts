// Mutations of SIP messages for the fuzzer. Every choice comes from the Rng it is given, so a
// mutated input is a pure function of (corpus, seed).
import type { Rng } from './prng.js';

/** Bytes that matter to a SIP parser. */
const INTERESTING = [0x00, 0xff, 0x0d, 0x0a, 0x20, 0x09, 0x22, 0x3b, 0x2c, 0x3c, 0x3e, 0x25, 0x3a, 0x40, 0x5c, 0x5b, 0x5d, 0x3d, 0x3f, 0x26, 0x2f, 0x7f, 0x80, 0xc3, 0xe2, 0xf0, 0x30, 0x39, 0x41];

/** What long runs are made of: single characters and short patterns. */
const RUNS = [
  '"', ';', ',', '<', '>', '%', '\r\n', '\0', '\xff', ' ', '\t', '\\', ':', '@', '=', '[', ']', '\n', '\r', 'a', '0', '9',
  '%2', '%00', ';a', ';a=', ',<', '<sip:', '"\\', '\\"', '\r\n ', '\r\n\t', 'SIP/2.0 ', ' SIP/2.0', ' ;', '= ', 'a:', 'a:\n',
  'v: SIP/2.0/UDP h\r\n', ' x', ' \t', 'sip:', '::', '[::', '?a=b&', '<>', '""', 'Digest ', 'a="b",', ',,', '\r\r', '\n\n ',
  '\xc3\xa9', '\xe2\x80\xa8', '\xf0\x9f\x98\x80', '\xed\xa0\x80', '\x85',
];

const CONTENT_LENGTHS = ['4294967295', '4294967296', '9999999999', '99999999999', '1e3', '-1', '0x10', ' 1 2', '', '65536', '65535', '1048576', '00000000000000000001', '2147483648'];

const NUMBERS = ['0', '-1', '00', '65536', '65535', '4294967296', '2147483648', '99999999999999999999', '1.5', '1e400', 'NaN'];

function bytesOf(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function insert(buf: Buffer, at: number, bytes: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at)]);
}

function replace(buf: Buffer, from: number, to: number, bytes: Buffer): Buffer {
  return Buffer.concat([buf.subarray(0, from), bytes, buf.subarray(to)]);
}

/** A position, biased towards the start line and the header section where the parsing happens. */
function position(rng: Rng, buf: Buffer): number {
  const n = buf.length;
  if (n === 0) return 0;
  const r = rng.float();
  if (r < 0.25) {
    const lf = buf.indexOf(0x0a);
    return rng.int((lf < 0 ? n : lf) + 1);
  }
  if (r < 0.75) {
    const end = buf.indexOf('\r\n\r\n');
    return rng.int((end < 0 ? n : end) + 1);
  }
  return rng.int(n + 1);
}

function lines(buf: Buffer): string[] {
  return buf.toString('latin1').split('\n');
}

function joinLines(ls: string[]): Buffer {
  return bytesOf(ls.join('\n'));
}

/** Index range of the header lines (excluding the start line and what follows the blank line). */
function headerLineRange(ls: string[]): [number, number] {
  let end = ls.findIndex((l, i) => i > 0 && (l === '' || l === '\r'));
  if (end < 0) end = ls.length;
  return [1, end];
}

const OPS: Array<[number, string]> = [
  [6, 'bitflip'],
  [6, 'setbyte'],
  [6, 'insertbytes'],
  [6, 'delete'],
  [4, 'duplicate'],
  [5, 'splice'],
  [2, 'crossover'],
  [5, 'dupline'],
  [4, 'delline'],
  [2, 'swaplines'],
  [7, 'run'],
  [4, 'contentlength'],
  [3, 'number'],
  [4, 'truncate'],
  [2, 'lineendings'],
  [3, 'fold'],
  [2, 'headername'],
  [1, 'blankline'],
];

/** One mutation of buf; `others` are the corpus messages a splice may take bytes from. */
export function mutateOnce(rng: Rng, buf: Buffer, others: readonly Buffer[]): Buffer {
  const op = rng.weighted(OPS);
  const n = buf.length;
  switch (op) {
    case 'bitflip': {
      const out = Buffer.from(buf);
      if (n === 0) return out;
      for (let k = rng.range(1, 8); k > 0; k--) {
        const at = position(rng, buf) % n;
        out[at] = (out[at] ?? 0) ^ (1 << rng.int(8));
      }
      return out;
    }
    case 'setbyte': {
      const out = Buffer.from(buf);
      if (n === 0) return out;
      for (let k = rng.range(1, 4); k > 0; k--) out[position(rng, buf) % n] = rng.chance(0.7) ? rng.pick(INTERESTING) : rng.int(256);
      return out;
    }
    case 'insertbytes': {
      const len = rng.range(1, 16);
      const bytes = Buffer.alloc(len);
      for (let i = 0; i < len; i++) bytes[i] = rng.chance(0.7) ? rng.pick(INTERESTING) : rng.int(256);
      return insert(buf, position(rng, buf), bytes);
    }
    case 'delete': {
      const at = position(rng, buf);
      const len = rng.chance(0.8) ? rng.range(1, 8) : rng.logInt(Math.max(1, n));
      return replace(buf, at, Math.min(n, at + len), Buffer.alloc(0));
    }
    case 'duplicate': {
      const from = rng.int(n);
      const len = rng.logInt(Math.max(1, n - from));
      const times = rng.chance(0.8) ? 1 : rng.logInt(200);
      const piece = Buffer.concat(Array<Buffer>(times).fill(buf.subarray(from, from + len)));
      return insert(buf, position(rng, buf), piece);
    }
    case 'splice': {
      const other = rng.pick(others);
      const from = rng.int(other.length);
      const chunk = other.subarray(from, from + rng.logInt(Math.max(1, other.length - from)));
      const at = position(rng, buf);
      return rng.chance(0.5) ? insert(buf, at, chunk) : replace(buf, at, Math.min(n, at + chunk.length), chunk);
    }
    case 'crossover': {
      const other = rng.pick(others);
      return Buffer.concat([buf.subarray(0, rng.int(n + 1)), other.subarray(rng.int(other.length + 1))]);
    }
    case 'dupline': {
      const ls = lines(buf);
      const [a, b] = headerLineRange(ls);
      if (b <= a) return buf;
      const i = rng.range(a, b - 1);
      const times = rng.chance(0.85) ? 1 : rng.logInt(2000);
      ls.splice(i, 0, ...Array<string>(times).fill(ls[i] ?? ''));
      return joinLines(ls);
    }
    case 'delline': {
      const ls = lines(buf);
      const [a, b] = headerLineRange(ls);
      if (rng.chance(0.1)) ls.splice(0, 1);
      else if (b > a) ls.splice(rng.range(a, b - 1), 1);
      return joinLines(ls);
    }
    case 'swaplines': {
      const ls = lines(buf);
      if (ls.length < 2) return buf;
      const i = rng.int(ls.length);
      const j = rng.int(ls.length);
      [ls[i], ls[j]] = [ls[j] ?? '', ls[i] ?? ''];
      return joinLines(ls);
    }
    case 'run': {
      const unit = rng.chance(0.9) ? rng.pick(RUNS) : String.fromCharCode(rng.int(256));
      const len = rng.chance(0.7) ? rng.logInt(300) : rng.logInt(Math.ceil(66000 / unit.length));
      return insert(buf, position(rng, buf), bytesOf(unit.repeat(len)));
    }
    case 'contentlength': {
      const text = buf.toString('latin1');
      const m = /(^|\n)(Content-Length|l)[ \t]*:[ \t]*([^\r\n]*)/i.exec(text);
      const value = rng.chance(0.8) ? rng.pick(CONTENT_LENGTHS) : String(rng.logInt(1 << 30));
      const old = m?.[3];
      if (m && old !== undefined && rng.chance(0.8)) {
        const from = m.index + m[0].length - old.length;
        return replace(buf, from, from + old.length, bytesOf(value));
      }
      const lf = buf.indexOf(0x0a);
      return insert(buf, lf < 0 ? n : lf + 1, bytesOf(`${rng.chance(0.5) ? 'Content-Length' : 'l'}: ${value}\r\n`));
    }
    case 'number': {
      const text = buf.toString('latin1');
      const runs = [...text.matchAll(/\d+/g)];
      if (runs.length === 0) return buf;
      const r = rng.pick(runs);
      return replace(buf, r.index, r.index + r[0].length, bytesOf(rng.pick(NUMBERS)));
    }
    case 'truncate':
      return buf.subarray(0, position(rng, buf));
    case 'lineendings': {
      const text = buf.toString('latin1');
      const to = rng.pick(['\n', '\r', '\n\r', '\r\r\n', '\r\n\r\n']);
      if (rng.chance(0.5)) return bytesOf(text.replaceAll('\r\n', to));
      const crlfs = [...text.matchAll(/\r\n/g)];
      if (crlfs.length === 0) return buf;
      const c = rng.pick(crlfs);
      return replace(buf, c.index, c.index + 2, bytesOf(to));
    }
    case 'fold':
      return insert(buf, position(rng, buf), bytesOf(rng.pick(['\r\n ', '\r\n\t', '\n ', '\r\n  \r\n ', ' \r\n'])));
    case 'headername': {
      const ls = lines(buf);
      const [a, b] = headerLineRange(ls);
      if (b <= a) return buf;
      const i = rng.range(a, b - 1);
      const line = ls[i] ?? '';
      const colon = line.indexOf(':');
      const name = rng.pick(['v', 'f', 't', 'i', 'm', 'l', 'c', 'k', 'VIA', 'cseq', 'Call-Id', 'CONTENT-LENGTH', 'Via ', 'To\t', 'x', 'Authorization', 'Proxy-Authorization', 'Contact', 'Route', 'Expires', 'Max-Forwards', 'Date', 'User-Agent']);
      ls[i] = colon < 0 ? `${name}:${line}` : `${name}${line.slice(colon)}`;
      return joinLines(ls);
    }
    case 'blankline': {
      const at = position(rng, buf);
      return insert(buf, at, bytesOf(rng.pick(['\r\n\r\n', '\n\n', '\r\n\r\n\r\n'])));
    }
    default:
      throw new Error(`unknown mutation ${op}`);
  }
}

/** 1 to 8 stacked mutations (mostly few), capped at maxLen bytes (a UDP datagram, the default message size limit). */
export function mutate(rng: Rng, buf: Buffer, others: readonly Buffer[], maxLen = 65535): Buffer {
  let out = buf;
  const count = 1 + Math.min(7, Math.floor(-Math.log2(1 - rng.float() * 0.996)));
  for (let k = 0; k < count; k++) {
    out = mutateOnce(rng, out, others);
    if (out.length > maxLen) out = out.subarray(0, maxLen);
  }
  return out;
}

/** A mutated header value: bytes mutated, then read as latin1 (as the parser does) or UTF-8. */
export function mutateValue(rng: Rng, value: string, others: readonly string[], maxLen = 65535): string {
  const bytes = mutate(rng, Buffer.from(value, 'utf8'), others.map((v) => Buffer.from(v, 'utf8')), maxLen);
  const r = rng.float();
  if (r < 0.6) return bytes.toString('latin1');
  if (r < 0.95) return bytes.toString('utf8');
  // Strings the parser itself never makes (lone surrogates, non-BMP): the parsers must not care.
  const s = bytes.toString('latin1');
  const at = rng.int(s.length + 1);
  return s.slice(0, at) + rng.pick(['\ud800', '\udfff', '\u{1F600}', '\u2028', '\ufeff', '\u00a0']) + s.slice(at);
}
