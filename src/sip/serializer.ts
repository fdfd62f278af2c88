import type { SipMessage } from './message.js';

/**
 * Writes a message (RFC 3261 §7): the start line, every header as `name: value` in the order
 * and spelling stored, the blank line, the body. Content-Length always states body.length:
 * the first Content-Length (or compact `l`) header gets the value in place, later ones are
 * dropped, and one is added at the end when there is none. Text is encoded as UTF-8.
 */
export function serializeMessage(msg: SipMessage): Buffer {
  let head =
    msg.kind === 'request' ? `${msg.method} ${msg.uri} ${msg.version}\r\n` : `${msg.version} ${msg.status} ${msg.reason}\r\n`;
  const length = String(msg.body.length);
  let wroteLength = false;
  for (const h of msg.headers) {
    if (isContentLength(h.name)) {
      if (wroteLength) continue;
      wroteLength = true;
      head += `${h.name}: ${length}\r\n`;
    } else {
      head += `${h.name}: ${h.value}\r\n`;
    }
  }
  if (!wroteLength) head += `Content-Length: ${length}\r\n`;
  head += '\r\n';
  if (msg.body.length === 0) return Buffer.from(head, 'utf8');
  const headBytes = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headBytes + msg.body.length);
  out.write(head, 0, headBytes, 'utf8');
  msg.body.copy(out, headBytes);
  return out;
}

function isContentLength(name: string): boolean {
  if (name.length === 1) return name === 'l' || name === 'L';
  return name.length === 14 && name.toLowerCase() === 'content-length';
}
