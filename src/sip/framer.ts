import { contentLengthOfHead, findHeadEnd } from './head-scan.js';

export type FramerEvent =
  /** One complete message's bytes (header section and body), for parseMessage(). */
  | { type: 'message'; data: Buffer }
  /** A CRLFCRLF keep-alive ping between messages (RFC 5626 §4.4.1): answer with CRLF. */
  | { type: 'ping' }
  /**
   * The stream cannot be framed any further; the connection must be closed. `headBytes` is
   * the complete header section when there was one, to try to answer 400 from it.
   */
  | { type: 'error'; reason: string; headBytes?: Buffer };

type State = 'idle' | 'head' | 'body';

/** Shared by every idle framer (nothing is ever written into a zero-length buffer). */
const EMPTY = Buffer.alloc(0);

/**
 * Cuts a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3): a message is its header
 * section up to the blank line plus Content-Length bytes of body. CRLFs between messages are
 * keep-alive: a pair is a ping, a lone one (a pong) is swallowed. Missing, malformed or
 * conflicting Content-Length, or more than `maxMessageSize` bytes in one message, kill the
 * framer: it reports one error and ignores everything after.
 *
 * Work is linear in the bytes pushed, however they are split. A message that arrives whole
 * in one chunk is returned as a view of that chunk, without a copy.
 */
export class StreamFramer {
  private buf: Buffer = EMPTY;
  /** Bytes of buf in use; buf[0] is the first byte of the current message. */
  private len = 0;
  private state: State = 'idle';
  /** LFs seen in a row between messages. */
  private lfs = 0;
  /** In state head: offset from the message start where the blank-line search resumes. */
  private scanFrom = 0;
  /** In state body: size of the whole message. */
  private total = 0;
  private dead = false;

  constructor(private readonly maxMessageSize: number) {}

  /** Bytes held of a message not yet complete (0 between messages). */
  get buffered(): number {
    return this.len;
  }

  push(chunk: Buffer): FramerEvent[] {
    if (this.dead || chunk.length === 0) return [];
    const events: FramerEvent[] = [];
    if (this.len === 0) {
      const used = this.consume(chunk, events, false);
      if (used < chunk.length && !this.dead) this.append(chunk.subarray(used));
    } else {
      this.append(chunk);
      const used = this.consume(this.buf.subarray(0, this.len), events, true);
      if (this.dead) return events;
      this.buf.copyWithin(0, used, this.len);
      this.len -= used;
    }
    if (this.len === 0 && this.buf.length > 65536) this.buf = EMPTY;
    return events;
  }

  /** Frames what it can from data; returns how many bytes it used. */
  private consume(data: Buffer, events: FramerEvent[], copy: boolean): number {
    const end = data.length;
    let pos = 0;
    while (pos < end && !this.dead) {
      if (this.state === 'idle') {
        const c = data[pos];
        if (c === 0x0d || c === 0x0a) {
          if (c === 0x0a && ++this.lfs === 2) {
            events.push({ type: 'ping' });
            this.lfs = 0;
          }
          pos++;
          continue;
        }
        this.lfs = 0;
        this.state = 'head';
        this.scanFrom = 0;
      }
      if (this.state === 'head' && !this.readHead(data, pos, end, events)) break;
      if (this.dead || end - pos < this.total) break;
      const bytes = data.subarray(pos, pos + this.total);
      events.push({ type: 'message', data: copy ? Buffer.from(bytes) : bytes });
      pos += this.total;
      this.state = 'idle';
    }
    return this.dead ? end : pos;
  }

  /** Looks for the end of the header section; on finding it, moves to state body. */
  private readHead(data: Buffer, pos: number, end: number, events: FramerEvent[]): boolean {
    const found = findHeadEnd(data, pos + this.scanFrom);
    if (found.headEnd < 0) {
      this.scanFrom = found.resumeAt - pos;
      if (end - pos > this.maxMessageSize) this.fail(events, 'Message too large');
      return false;
    }
    const head = data.subarray(pos, found.headEnd);
    const cl = contentLengthOfHead(head);
    if (typeof cl === 'string') {
      this.fail(events, cl, head);
      return false;
    }
    this.total = head.length + cl;
    if (this.total > this.maxMessageSize) {
      this.fail(events, 'Message too large', head);
      return false;
    }
    this.state = 'body';
    return true;
  }

  private fail(events: FramerEvent[], reason: string, head?: Buffer): void {
    this.dead = true;
    this.len = 0;
    this.buf = EMPTY;
    events.push(head ? { type: 'error', reason, headBytes: Buffer.from(head) } : { type: 'error', reason });
  }

  private append(bytes: Buffer): void {
    const need = this.len + bytes.length;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2, 4096));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    bytes.copy(this.buf, this.len);
    this.len = need;
  }
}
