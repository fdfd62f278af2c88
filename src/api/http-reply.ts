import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Reply } from './router.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** Writes a Reply; every answer is uncached and JSON unless the reply brings its own type. */
export function writeReply(res: ServerResponse, reply: Reply): void {
  const body = 'json' in reply ? JSON.stringify(reply.json) : reply.text;
  const type = 'json' in reply ? JSON_TYPE : reply.contentType;
  res.writeHead(reply.status, {
    ...reply.headers,
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

export function errorReply(status: number, message: string, headers: Record<string, string> = {}): Reply {
  return { status, json: { error: message }, headers };
}

/**
 * Answers on a raw socket (an upgrade request or a request Node could not parse) with a JSON
 * error, then closes it once the bytes are out.
 */
export function writeRawError(socket: Duplex, status: number, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: message });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    `Content-Type: ${JSON_TYPE}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
