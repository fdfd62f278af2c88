import { describe, expect, it } from 'vitest';
import { StreamFramer, type FramerEvent } from '../../../src/sip/framer.js';
import { parseMessage } from '../../../src/sip/parser.js';
import { invite, SDP, sip } from './sip-text.js';

const MAX = 65535;

function short(n: number, body = ''): Buffer {
  return sip(['OPTIONS sip:bob@example.com SIP/2.0', 'Via: SIP/2.0/TCP h;branch=z9hG4bK' + n, 'To: <sip:b@h>', 'From: <sip:a@h>;tag=1', `Call-ID: c${n}`, `CSeq: ${n} OPTIONS`, `Content-Length: ${Buffer.byteLength(body)}`], body);
}

/** Events rendered as strings so that a whole sequence compares in one assertion. */
function render(events: FramerEvent[]): string[] {
  return events.map((e) => (e.type === 'message' ? `message:${e.data.toString('latin1')}` : e.type === 'ping' ? 'ping' : `error:${e.reason}`));
}

function feed(framer: StreamFramer, chunks: Buffer[]): string[] {
  return chunks.flatMap((c) => render(framer.push(c)));
}

describe('StreamFramer: framing', () => {
  it('returns one message arriving in one chunk as a view of that chunk', () => {
    const msg = invite();
    const events = new StreamFramer(MAX).push(msg);
    expect(events).toHaveLength(1);
    const ev = events[0];
    if (ev?.type !== 'message') throw new Error('expected a message');
    expect(ev.data.equals(msg)).toBe(true);
    expect(ev.data.buffer).toBe(msg.buffer);
    expect(parseMessage(ev.data, { datagram: false }).body.toString()).toBe(SDP);
  });

  it('frames a message split in two at every byte boundary', () => {
    const msg = invite();
    for (let k = 1; k < msg.length; k++) {
      const out = feed(new StreamFramer(MAX), [msg.subarray(0, k), msg.subarray(k)]);
      expect(out, `split at ${k}`).toEqual([`message:${msg.toString('latin1')}`]);
    }
  });

  it('frames a message pushed one byte at a time', () => {
    const msg = invite();
    const framer = new StreamFramer(MAX);
    const out: string[] = [];
    for (let i = 0; i < msg.length; i++) out.push(...render(framer.push(msg.subarray(i, i + 1))));
    expect(out).toEqual([`message:${msg.toString('latin1')}`]);
  });

  it('frames several messages, pings and pongs in one chunk, and the same stream split anywhere', () => {
    const a = short(1, 'hello');
    const b = short(2);
    const c = short(3, 'x\r\n\r\ny');
    const stream = Buffer.concat([Buffer.from('\r\n'), a, Buffer.from('\r\n\r\n'), b, Buffer.from('\r\n'), c, Buffer.from('\r\n\r\n')]);
    const expected = [`message:${a.toString()}`, 'ping', `message:${b.toString()}`, `message:${c.toString()}`, 'ping'];
    expect(feed(new StreamFramer(MAX), [stream])).toEqual(expected);
    for (let k = 1; k < stream.length; k++) {
      expect(feed(new StreamFramer(MAX), [stream.subarray(0, k), stream.subarray(k)]), `split at ${k}`).toEqual(expected);
    }
  });

  it('frames a header section ended by bare LFs and a folded Content-Length', () => {
    const msg = Buffer.from('OPTIONS sip:b@h SIP/2.0\nVia: SIP/2.0/TCP h;branch=z9hG4bKa\nContent-Length:\n  3\n\nabc');
    expect(feed(new StreamFramer(MAX), [msg])).toEqual([`message:${msg.toString()}`]);
  });

  it('accepts two Content-Length headers that agree (the parser then rejects the message)', () => {
    const msg = sip(['OPTIONS sip:b@h SIP/2.0', 'Content-Length: 2', 'l: 2'], 'ok');
    expect(feed(new StreamFramer(MAX), [msg])).toEqual([`message:${msg.toString()}`]);
  });

  it('keeps memory linear: a 2 MB body in 1 KB chunks frames quickly', () => {
    const body = 'b'.repeat(2 * 1024 * 1024);
    const msg = short(9, body);
    const framer = new StreamFramer(4 * 1024 * 1024);
    const started = performance.now();
    const events: FramerEvent[] = [];
    for (let i = 0; i < msg.length; i += 1024) events.push(...framer.push(msg.subarray(i, i + 1024)));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(events).toHaveLength(1);
    expect(events[0]?.type === 'message' && events[0].data.equals(msg)).toBe(true);
  });
});

describe('StreamFramer: keep-alive', () => {
  it('reports a CRLFCRLF ping', () => {
    expect(feed(new StreamFramer(MAX), [Buffer.from('\r\n\r\n')])).toEqual(['ping']);
  });

  it('reports a ping split over two chunks', () => {
    expect(feed(new StreamFramer(MAX), [Buffer.from('\r\n'), Buffer.from('\r\n')])).toEqual(['ping']);
  });

  it('swallows a lone CRLF pong before a message', () => {
    const msg = short(1);
    expect(feed(new StreamFramer(MAX), [Buffer.from('\r\n'), msg])).toEqual([`message:${msg.toString()}`]);
  });

  it('reports two pings for eight CRLF bytes', () => {
    expect(feed(new StreamFramer(MAX), [Buffer.from('\r\n\r\n\r\n\r\n')])).toEqual(['ping', 'ping']);
  });
});

describe('StreamFramer: unframeable streams', () => {
  it.each([
    [['OPTIONS sip:b@h SIP/2.0', 'Via: SIP/2.0/TCP h'], 'Missing Content-Length'],
    [['OPTIONS sip:b@h SIP/2.0', 'Content-Length: -999'], 'Bad Content-Length'],
    [['OPTIONS sip:b@h SIP/2.0', 'Content-Length: 12abc'], 'Bad Content-Length'],
    [['OPTIONS sip:b@h SIP/2.0', 'Content-Length: 13', 'l: 5'], 'Multiple Content-Length headers'],
  ])('reports %j as %s with the header section, then stays dead', (lines, reason) => {
    const head = sip(lines);
    const framer = new StreamFramer(MAX);
    const events = framer.push(Buffer.concat([head, Buffer.from('body'), short(2)]));
    expect(events).toHaveLength(1);
    const ev = events[0];
    if (ev?.type !== 'error') throw new Error('expected an error');
    expect(ev.reason).toBe(reason);
    expect(ev.headBytes?.toString()).toBe(head.toString());
    expect(framer.push(short(3))).toEqual([]);
  });

  it('gives up on a header section longer than maxMessageSize without its blank line', () => {
    const framer = new StreamFramer(1024);
    const out = feed(framer, [Buffer.from('OPTIONS sip:b@h SIP/2.0\r\n'), Buffer.from(`X-Long: ${'a'.repeat(1100)}`)]);
    expect(out).toEqual(['error:Message too large']);
    expect(framer.push(Buffer.from('\r\n\r\n'))).toEqual([]);
  });

  it('refuses a message whose Content-Length takes it past maxMessageSize, at once', () => {
    const head = sip(['OPTIONS sip:b@h SIP/2.0', 'Content-Length: 2000']);
    const events = new StreamFramer(1024).push(head);
    expect(events).toEqual([{ type: 'error', reason: 'Message too large', headBytes: head }]);
  });

  it('frames a message of exactly maxMessageSize bytes', () => {
    const overhead = short(1, 'z'.repeat(900)).length - 900;
    const msg = short(1, 'z'.repeat(1024 - overhead));
    expect(msg.length).toBe(1024);
    expect(feed(new StreamFramer(1024), [msg])).toEqual([`message:${msg.toString()}`]);
  });
});
