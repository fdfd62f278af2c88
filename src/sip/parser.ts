import { isAscii } from 'node:buffer';
import { SipParseError } from '../util/errors.js';
import { parseHeaderLines } from './header-lines.js';
import { SIP_VERSION, type SipMessage } from './message.js';
import { validateMessage } from './message-validator.js';
import { parseStartLine } from './start-line.js';

export interface ParseOptions {
  /**
   * The bytes are one UDP datagram (the default). Without Content-Length the body is the rest
   * of the datagram, and bytes beyond Content-Length are discarded (RFC 3261 §18.3). A
   * message cut from a stream (`false`) must carry Content-Length.
   */
  datagram?: boolean;
}

/** A start line and header section read without the checks of parseMessage. */
export interface MessageHead {
  /** The message with an empty body. */
  message: SipMessage;
  /** Offset in the buffer where the body starts. */
  bodyStart: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const HIGH_BYTES = /[\x80-\xff]/;
const EMPTY = Buffer.alloc(0);

/**
 * Parses one SIP message (RFC 3261 §7, §20, §25). Leading CRLFs are skipped (§7.5). The
 * header section is read as bytes; header values and the reason phrase are decoded as UTF-8.
 * The body shares memory with `buf`. Throws SipParseError: `reason` names the fault, `status`
 * is 505 for a SIP version other than 2.0 and 400 otherwise.
 */
export function parseMessage(buf: Buffer, opts: ParseOptions = {}): SipMessage {
  const { message, bodyStart } = parseMessageHead(buf);
  const contentLength = validateMessage(message);
  const remaining = buf.length - bodyStart;
  if (contentLength === undefined) {
    if (opts.datagram === false) throw new SipParseError('Missing Content-Length');
    message.body = buf.subarray(bodyStart);
  } else {
    if (contentLength > remaining) throw new SipParseError('Content-Length larger than body');
    message.body = buf.subarray(bodyStart, bodyStart + contentLength);
  }
  return message;
}

/**
 * Reads the start line and the header lines only: no check of mandatory headers, CSeq, Via,
 * addresses or Content-Length. For the stream framer and for answering a message that
 * parseMessage rejected. Throws SipParseError when the start line or a header line is
 * malformed or the header section has no end.
 */
export function parseMessageHead(buf: Buffer): MessageHead {
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  if (start === buf.length) throw new SipParseError('Empty message');
  const blank = buf.indexOf(CRLFCRLF, start);
  const text = buf.toString('latin1', start, blank < 0 ? buf.length : blank);

  let nl = text.indexOf('\n');
  if (nl < 0) nl = text.length;
  const lineEnd = nl > 0 && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
  const startLine = parseStartLine(text.slice(0, lineEnd));
  const { headers, end } = nl >= text.length ? { headers: [], end: -1 } : parseHeaderLines(text, nl + 1);
  let bodyStart: number;
  if (end >= 0) bodyStart = start + end;
  else if (blank >= 0) bodyStart = blank + 4;
  else throw new SipParseError('Incomplete header section');

  if (!isAscii(buf.subarray(start, start + text.length))) {
    for (const h of headers) if (HIGH_BYTES.test(h.value)) h.value = utf8(h.value);
  }
  const body = EMPTY;
  const message: SipMessage =
    startLine.kind === 'request'
      ? { kind: 'request', method: startLine.method, uri: startLine.uri, version: SIP_VERSION, headers, body }
      : { kind: 'response', status: startLine.status, reason: utf8(startLine.reason), version: SIP_VERSION, headers, body };
  return { message, bodyStart };
}

/** latin1-decoded bytes → the UTF-8 text they encode. */
function utf8(latin1: string): string {
  return HIGH_BYTES.test(latin1) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
}
