import { execFileSync } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { errorResponseForUnparsable } from '../../src/sip/bad-request.js';
import { parseCSeq } from '../../src/sip/cseq.js';
import { parseDigestCredentials } from '../../src/sip/digest.js';
import { StreamFramer } from '../../src/sip/framer.js';
import { getHeader, splitHeaderList } from '../../src/sip/message.js';
import { parseNameAddr } from '../../src/sip/name-addr.js';
import { parseParams } from '../../src/sip/params.js';
import { parseMessage, parseMessageHead } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { parseUri } from '../../src/sip/uri.js';
import { parseVia } from '../../src/sip/via.js';
import { SipParseError } from '../../src/util/errors.js';
import { Fuzzer } from '../fuzz/harness.js';
import { faultNet } from '../support/netns.js';
import { startServer, type RunningServer } from '../support/server-process.js';

/*
 * Over-the-wire fuzzing (issue 12, point 6). scripts/fault-tests.mjs runs this file in the
 * endpoints' network namespace and the server runs in its own: a mutated Via or Contact can
 * only send the server's answers and requests to addresses inside the two namespaces.
 *
 * Batches of mutated messages go to the server over UDP and TCP: the project's mutator
 * (test/fuzz, the same as the in-process fuzzer), zzuf's bit flips over the corpus, and
 * hand-written 60 KB runs. After each batch the server must still be running, answer a
 * well-formed OPTIONS over UDP and over TCP with 200, and GET /health; its event loop must
 * never have been blocked for long (/metrics), its output must hold no uncaught exception nor
 * error-level line, and everything it sent back must frame as a SIP message. What it answered
 * to the fuzz is counted and printed.
 */

const net = faultNet();
const SERVER = { address: net.srvAddr, port: 5060 };
const UDP_DATAGRAMS = 2000;
const TCP_CONNECTIONS = 200;
const ZZUF_SEEDS = 12;
/** The largest UDP payload over IPv4. */
const MAX_DATAGRAM = 65507;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const fuzzer = new Fuzzer({ SipParseError, parseMessage, parseMessageHead, StreamFramer, errorResponseForUnparsable, serializeMessage, splitHeaderList, parseVia, parseNameAddr, parseUri, parseCSeq, parseParams, parseDigestCredentials });

/** The first `count` message inputs (header-value inputs skipped) of `seed`. */
function messageInputs(seed: number, count: number): { bytes: Buffer; stream: Buffer; chunks: number[] }[] {
  const out: { bytes: Buffer; stream: Buffer; chunks: number[] }[] = [];
  for (let i = 0; out.length < count; i++) {
    const input = fuzzer.input(seed, i);
    if (input.kind === 'message') out.push(input);
  }
  return out;
}

/** The corpus, every message bit-flipped by zzuf at `ratio` with `seed` (zzuf keeps the length, so the offsets still split it). */
function zzufCorpus(seed: number, ratio: number): Buffer[] {
  const whole = Buffer.concat(fuzzer.corpus);
  const fuzzed = execFileSync('zzuf', ['-s', String(seed), '-r', String(ratio), 'cat'], { input: whole, maxBuffer: 16 << 20 });
  expect(fuzzed.length).toBe(whole.length);
  const out: Buffer[] = [];
  let at = 0;
  for (const m of fuzzer.corpus) {
    out.push(fuzzed.subarray(at, at + m.length));
    at += m.length;
  }
  return out;
}

/** Status classes of what came back ("2xx", "4xx", ..., "request" for requests the server sent, "unparsable"). */
type Tally = Record<string, number>;

/** What the server wrote that does not frame as a message (its start line or a header line is broken), with the reason. */
const unparsable: string[] = [];

function count(tally: Tally, bytes: Buffer): void {
  let key: string;
  try {
    const { message } = parseMessageHead(bytes);
    key = message.kind === 'response' ? `${Math.floor(message.status / 100)}xx` : `request ${message.method}`;
  } catch (err) {
    key = 'unparsable';
    unparsable.push(`${err instanceof SipParseError ? err.reason : String(err)}: ${JSON.stringify(bytes.toString('latin1').slice(0, 500))}`);
  }
  tally[key] = (tally[key] ?? 0) + 1;
}

const total = (t: Tally): number => Object.values(t).reduce((a, b) => a + b, 0);

function optionsRequest(transport: 'UDP' | 'TCP', localPort: number, callId: string): Buffer {
  return Buffer.from(
    [
      `OPTIONS sip:${SERVER.address}:${SERVER.port} SIP/2.0`,
      `Via: SIP/2.0/${transport} ${net.epAddr}:${localPort};branch=z9hG4bK-${callId};rport`,
      'Max-Forwards: 70',
      `From: <sip:probe@${net.epAddr}>;tag=${callId}`,
      `To: <sip:${SERVER.address}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

async function udpSocket(onMessage: (b: Buffer) => void): Promise<UdpSocket> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, net.epAddr, () => r()));
  sock.on('message', onMessage);
  return sock;
}

async function tcpSocket(): Promise<Socket> {
  const sock = connect({ host: SERVER.address, port: SERVER.port, localAddress: net.epAddr });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.setNoDelay(true);
  return sock;
}

let probes = 0;

/** A well-formed OPTIONS over UDP (sent up to three times, as a UAC would): the status of the answer. */
async function optionsOverUdp(): Promise<number> {
  const callId = `probe-udp-${++probes}`;
  let status = 0;
  const sock = await udpSocket((b) => {
    try {
      const m = parseMessage(b);
      if (m.kind === 'response' && getHeader(m, 'call-id') === callId) status = m.status;
    } catch {
      /* not the answer */
    }
  });
  try {
    const req = optionsRequest('UDP', sock.address().port, callId);
    for (let attempt = 0; attempt < 3 && status === 0; attempt++) {
      sock.send(req, SERVER.port, SERVER.address);
      for (let waited = 0; waited < 1000 && status === 0; waited += 20) await sleep(20);
    }
    return status;
  } finally {
    sock.close();
  }
}

/** A well-formed OPTIONS on a new TCP connection: the status of the answer (0: none within 3 s). */
async function optionsOverTcp(): Promise<number> {
  const callId = `probe-tcp-${++probes}`;
  const sock = await tcpSocket();
  const framer = new StreamFramer(1 << 20);
  let status = 0;
  sock.on('data', (chunk: Buffer) => {
    for (const ev of framer.push(chunk)) {
      if (ev.type !== 'message') continue;
      const m = parseMessage(ev.data, { datagram: false });
      if (m.kind === 'response' && getHeader(m, 'call-id') === callId) status = m.status;
    }
  });
  sock.on('error', () => {});
  try {
    sock.write(optionsRequest('TCP', sock.localPort ?? 0, callId));
    for (let waited = 0; waited < 3000 && status === 0; waited += 20) await sleep(20);
    return status;
  } finally {
    sock.destroy();
  }
}

/**
 * Hand-written datagrams of the kind that made parsers slow (long runs in the start line, a
 * Via, a display name, a URI; thousands of LF-ended lines), each about 60 KB: the fuzz findings
 * of test/unit/sip/fuzz.test.ts, over the wire.
 */
function pathological(): Buffer[] {
  const via = `Via: SIP/2.0/UDP ${net.epAddr};branch=z9hG4bK-p`;
  const rest = [`To: <sip:1001@${SERVER.address}>`, `From: <sip:1002@${SERVER.address}>;tag=p`, 'Call-ID: pathological', 'CSeq: 1 INVITE'];
  const dgram = (lines: string[]): Buffer => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const out: Buffer[] = [];
  const N = 60_000;
  for (const c of [' ', '\t', ';', ',', '"', '<', '%', '\\', '\r', ':', '@', '[']) {
    out.push(dgram([`INVITE sip:1001@${SERVER.address}${c.repeat(N)}x SIP/2.0`, via, ...rest]));
    out.push(dgram([`A x${c.repeat(N)}y`, via, ...rest]));
    out.push(dgram([`INVITE sip:1001@${SERVER.address} SIP/2.0`, `${via}${c.repeat(N)}`, ...rest]));
    out.push(dgram([`INVITE sip:1001@${SERVER.address} SIP/2.0`, via, `To: "${c.repeat(N)} <sip:1001@h>`, ...rest.slice(1)]));
    out.push(dgram([`INVITE sip:1001@${c.repeat(N)} SIP/2.0`, via, ...rest]));
  }
  out.push(Buffer.from(`OPTIONS sip:${SERVER.address} SIP/2.0\n${'a:\n'.repeat(21_000)}\n`, 'latin1'));
  out.push(Buffer.from(`OPTIONS sip:${SERVER.address} SIP/2.0\n${via}\n${' x\n'.repeat(21_000)}\n`, 'latin1'));
  return out;
}

let server: RunningServer | undefined;

function running(): RunningServer {
  if (!server) throw new Error('no server');
  return server;
}

/** The longest the server's event loop was blocked since the last call, in ms (prom-client's nodejs_eventloop_lag_max_seconds, reset on every read). */
async function eventLoopLagMaxMs(): Promise<number> {
  const s = running();
  const res = await fetch(`${s.api}/metrics`, { headers: { authorization: `Bearer ${s.token ?? ''}` } });
  const m = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(await res.text());
  if (!m?.[1]) throw new Error('no nodejs_eventloop_lag_max_seconds in /metrics');
  return Math.round(Number(m[1]) * 1000);
}

/** Bound on the server's longest event-loop block during a batch: no input may stall it (the in-process bound is 50 ms a call). */
const MAX_LAG_MS = 500;

/**
 * The server survived the batch: running, its event loop never blocked over MAX_LAG_MS, answering
 * OPTIONS on UDP and TCP and /health, no uncaught exception in its output. Returns the lag.
 */
async function assertAlive(batch: string): Promise<number> {
  const s = running();
  expect(s.proc.exitCode, `${batch}: the server exited:\n${s.output().slice(-4000)}`).toBeNull();
  const lag = await eventLoopLagMaxMs();
  expect(lag, `${batch}: the server's event loop was blocked`).toBeLessThan(MAX_LAG_MS);
  expect(await optionsOverUdp(), `${batch}: OPTIONS over UDP`).toBe(200);
  expect(await optionsOverTcp(), `${batch}: OPTIONS over TCP`).toBe(200);
  const health = await fetch(`${s.api}/health`, { headers: { authorization: `Bearer ${s.token ?? ''}` } });
  expect(health.status, `${batch}: GET /health`).toBe(200);
  // Node's report of an uncaught exception or rejection, or a line the server logged at error (50) or fatal (60).
  const bad = s.output().split('\n').filter((l) => /uncaught|unhandled|"level":(50|60)/i.test(l));
  expect(bad.slice(0, 5), `${batch}: uncaught exceptions or errors in the server's output`).toEqual([]);
  // Values of a malformed request are copied into its 400 as written, but the answer must frame.
  expect(unparsable.slice(0, 5), `${batch}: answers that do not parse as messages`).toEqual([]);
  return lag;
}

/** Sends datagrams (paced: `burst` at a time, 2 ms apart) from one socket; returns what came back to it within `settleMs` of the last answer. */
async function udpBatch(datagrams: Buffer[], burst = 25, settleMs = 500): Promise<Tally> {
  const tally: Tally = {};
  let last = Date.now();
  const sock = await udpSocket((b) => {
    count(tally, b);
    last = Date.now();
  });
  try {
    for (let i = 0; i < datagrams.length; i++) {
      const d = datagrams[i] ?? Buffer.alloc(0);
      sock.send(d.length > MAX_DATAGRAM ? d.subarray(0, MAX_DATAGRAM) : d, SERVER.port, SERVER.address);
      if (i % burst === burst - 1) await sleep(2);
    }
    last = Date.now();
    while (Date.now() - last < settleMs) await sleep(50);
    return tally;
  } finally {
    sock.close();
  }
}

/** One connection: the stream written in a few segments, then half-closed; what came back until the server closed it (or 1.5 s). */
async function tcpStream(stream: Buffer, chunks: number[], tally: Tally): Promise<'closed' | 'open' | 'refused'> {
  let sock: Socket;
  try {
    sock = await tcpSocket();
  } catch {
    return 'refused';
  }
  const framer = new StreamFramer(1 << 20);
  let closed = false;
  sock.on('data', (chunk: Buffer) => {
    for (const ev of framer.push(chunk)) if (ev.type === 'message') count(tally, ev.data);
  });
  sock.on('error', () => {});
  sock.on('close', () => (closed = true));
  // At most 8 writes, a millisecond apart: the server's framer sees real segment boundaries.
  const per = Math.max(1, Math.ceil(chunks.length / 8));
  let at = 0;
  for (let i = 0; i < chunks.length && !closed; i += per) {
    const len = chunks.slice(i, i + per).reduce((a, b) => a + b, 0);
    sock.write(stream.subarray(at, at + len));
    at += len;
    await sleep(1);
  }
  if (!closed) sock.end();
  for (let waited = 0; waited < 1500 && !closed; waited += 20) await sleep(20);
  const state = closed ? 'closed' : 'open';
  sock.destroy();
  return state;
}

/** Streams over `parallel` connections at a time; counts the answers and how the connections ended. */
async function tcpBatch(streams: { stream: Buffer; chunks: number[] }[], parallel = 25): Promise<{ tally: Tally; ends: Tally }> {
  const tally: Tally = {};
  const ends: Tally = {};
  for (let i = 0; i < streams.length; i += parallel) {
    const results = await Promise.all(streams.slice(i, i + parallel).map((s) => tcpStream(s.stream, s.chunks, tally)));
    for (const r of results) ends[r] = (ends[r] ?? 0) + 1;
  }
  return { tally, ends };
}

const report: string[] = [];

describe('fuzz over the wire: mutated messages over UDP and TCP', () => {
  beforeAll(async () => {
    server = await startServer({
      netns: { name: net.srv, address: net.srvAddr },
      logLevel: 'info',
      // Extensions that register, so that mutated REGISTERs and INVITEs go deep into the server.
      dns: { '1001': { type: 'extension', contact: '*' }, '1002': { type: 'extension', contact: '*' }, '2000': { type: 'extension', contact: '*' } },
    });
    await assertAlive('before fuzzing');
    await eventLoopLagMaxMs();
  });

  beforeEach(() => {
    unparsable.length = 0;
  });

  afterAll(async () => {
    if (report.length > 0) console.log(`fuzz over the wire:\n${report.join('\n')}`);
    if (!server) return;
    const s = server;
    server = undefined;
    const code = await s.stop();
    expect(code, `the server's exit after the fuzz:\n${s.output().slice(-4000)}`).toBe(0);
  });

  it(`UDP: ${UDP_DATAGRAMS} mutated datagrams`, async () => {
    const t0 = Date.now();
    const tally = await udpBatch(messageInputs(101, UDP_DATAGRAMS).map((m) => m.bytes));
    // Mutated requests that keep a request line and a Via get 400s (or are served): some must come back.
    expect(total(tally)).toBeGreaterThan(UDP_DATAGRAMS / 20);
    const lag = await assertAlive('after the UDP batch');
    report.push(`  UDP mutator: ${UDP_DATAGRAMS} datagrams, ${total(tally)} messages back ${JSON.stringify(tally)}, event loop blocked ≤ ${lag} ms (${Date.now() - t0} ms)`);
  });

  it(`UDP: the corpus through zzuf, ${ZZUF_SEEDS} seeds`, async () => {
    const t0 = Date.now();
    const datagrams: Buffer[] = [];
    for (let s = 1; s <= ZZUF_SEEDS; s++) datagrams.push(...zzufCorpus(s, [0.001, 0.004, 0.02][s % 3] ?? 0.004));
    const tally = await udpBatch(datagrams);
    expect(total(tally)).toBeGreaterThan(0);
    const lag = await assertAlive('after the zzuf UDP batch');
    report.push(`  UDP zzuf: ${datagrams.length} datagrams, ${total(tally)} messages back ${JSON.stringify(tally)}, event loop blocked ≤ ${lag} ms (${Date.now() - t0} ms)`);
  });

  it('UDP: pathological datagrams (60 KB runs of one character, 21,000 LF-ended lines)', async () => {
    const t0 = Date.now();
    const datagrams = pathological();
    // One at a time: each must be read, not lost to a full receive buffer.
    const tally = await udpBatch(datagrams, 1);
    const lag = await assertAlive('after the pathological datagrams');
    report.push(`  UDP pathological: ${datagrams.length} datagrams, ${total(tally)} messages back ${JSON.stringify(tally)}, event loop blocked ≤ ${lag} ms (${Date.now() - t0} ms)`);
  });

  it(`TCP: ${TCP_CONNECTIONS} connections with mutated streams`, async () => {
    const t0 = Date.now();
    const { tally, ends } = await tcpBatch(messageInputs(202, TCP_CONNECTIONS));
    expect(ends.refused ?? 0).toBe(0);
    expect(total(tally)).toBeGreaterThan(0);
    const lag = await assertAlive('after the TCP batch');
    report.push(`  TCP mutator: ${TCP_CONNECTIONS} connections, ${total(tally)} messages back ${JSON.stringify(tally)}, connections ${JSON.stringify(ends)}, event loop blocked ≤ ${lag} ms (${Date.now() - t0} ms)`);
  });

  it('TCP: the corpus through zzuf, one connection per seed', async () => {
    const t0 = Date.now();
    const streams = [];
    for (let s = 1; s <= ZZUF_SEEDS * 2; s++) {
      const stream = Buffer.concat(zzufCorpus(1000 + s, [0.0005, 0.002][s % 2] ?? 0.001));
      streams.push({ stream, chunks: [stream.length] });
    }
    const { tally, ends } = await tcpBatch(streams);
    expect(ends.refused ?? 0).toBe(0);
    const lag = await assertAlive('after the zzuf TCP batch');
    report.push(`  TCP zzuf: ${streams.length} connections, ${total(tally)} messages back ${JSON.stringify(tally)}, connections ${JSON.stringify(ends)}, event loop blocked ≤ ${lag} ms (${Date.now() - t0} ms)`);
  });
});
