import { SipParseError } from '../util/errors.js';
import { isToken } from './char-classes.js';
import { parseUri } from './uri.js';

export type StartLine =
  | { kind: 'request'; method: string; uri: string }
  | { kind: 'response'; status: number; reason: string };

/** The 505 error: a SIP version other than 2.0 (RFC 3261 §21.5.6). */
export function unsupportedVersion(): SipParseError {
  return new SipParseError('Unsupported SIP version', { status: 505 });
}

/**
 * Request-Line = Method SP Request-URI SP SIP-Version, Status-Line = SIP-Version SP
 * Status-Code SP Reason-Phrase (RFC 3261 §7.1, §7.2): exactly one SP between elements, none
 * at the end of a Request-Line. A version "SIP/x.y" other than 2.0 throws with status 505.
 */
export function parseStartLine(line: string): StartLine {
  if (line.includes('\r')) throw new SipParseError('Bad start line');
  if (line.length >= 4 && line.slice(0, 4).toUpperCase() === 'SIP/') return parseStatusLine(line);
  const sp1 = line.indexOf(' ');
  const sp2 = line.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) throw new SipParseError('Bad Request-Line');
  const method = line.slice(0, sp1);
  if (!isToken(method)) throw new SipParseError('Bad method');
  checkVersion(line.slice(sp2 + 1), 'Bad Request-Line');
  const uri = line.slice(sp1 + 1, sp2);
  if (uri.charCodeAt(0) === 0x20 || uri.charCodeAt(uri.length - 1) === 0x20) throw new SipParseError('Bad Request-Line');
  let parsed;
  try {
    parsed = parseUri(uri);
  } catch (err) {
    throw new SipParseError('Bad Request-URI', { cause: err });
  }
  // RFC 3261 §19.1.5: header components are not allowed in a Request-URI.
  if (parsed.kind === 'sip' && parsed.headers.length > 0) throw new SipParseError('Bad Request-URI');
  return { kind: 'request', method, uri };
}

function parseStatusLine(line: string): StartLine {
  const sp1 = line.indexOf(' ');
  if (sp1 < 0) throw new SipParseError('Bad Status-Line');
  checkVersion(line.slice(0, sp1), 'Bad Status-Line');
  let sp2 = line.indexOf(' ', sp1 + 1);
  if (sp2 < 0) sp2 = line.length;
  const code = line.slice(sp1 + 1, sp2);
  if (code.length !== 3 || !/^[1-6]\d\d$/.test(code)) throw new SipParseError('Bad status code');
  return { kind: 'response', status: Number(code), reason: line.slice(sp2 + 1).trim() };
}

function checkVersion(version: string, reason: string): void {
  if (version === 'SIP/2.0') return;
  if (/^SIP\/2\.0$/i.test(version)) return;
  if (/^SIP\/\d{1,5}\.\d{1,5}$/i.test(version)) throw unsupportedVersion();
  throw new SipParseError(reason);
}
