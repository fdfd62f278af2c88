import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** One RFC 4475 torture message and what it must give (test/fixtures/rfc4475/manifest.json). */
export interface Rfc4475Entry {
  name: string;
  section: string;
  title: string;
  expect: 'valid' | 'invalid' | 'semantic';
  /** Invalid: the parser's reason (a substring of the 400's reason phrase). */
  reason?: string;
  /** The response status the server answers with. */
  status?: number;
  /** Invalid responses cannot be answered: they are dropped. */
  action?: 'discard';
  /** Framing depends on datagram semantics (Content-Length vs packet size). */
  datagramOnly?: boolean;
  /** The stream framer's reason for refusing it on TCP/TLS. */
  streamError?: string;
}

export const RFC4475_DIR = resolve(import.meta.dirname, '../fixtures/rfc4475');

export const rfc4475: Rfc4475Entry[] = (
  JSON.parse(readFileSync(resolve(RFC4475_DIR, 'manifest.json'), 'utf8')) as { messages: Rfc4475Entry[] }
).messages;

/** The exact bytes of one torture message. */
export function rfc4475Bytes(name: string): Buffer {
  return readFileSync(resolve(RFC4475_DIR, `${name}.sip`));
}
