import { readFileSync } from 'node:fs';

/** Test helper: joins lines with CRLF and ends the header section with a blank line. */
export function sip(lines: string[], body = ''): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'utf8');
}

/** A typical INVITE with an SDP body, about 900 bytes (test/fixtures/typical-invite.json, shared with bench/parse). */
const TYPICAL = JSON.parse(readFileSync(new URL('../../fixtures/typical-invite.json', import.meta.url), 'utf8')) as { head: string[]; sdp: string[] };

export const INVITE_LINES = TYPICAL.head;

export const SDP = TYPICAL.sdp.join('\r\n');

export function invite(): Buffer {
  return sip([...INVITE_LINES, `Content-Length: ${Buffer.byteLength(SDP)}`], SDP);
}
