import { SipParseError } from '../util/errors.js';
import { getHeader, type SipMessage } from './message.js';

export interface CSeq {
  seq: number;
  method: string;
}

const CSEQ_RE = /^(\d{1,10})\s+([A-Za-z0-9.!%*_+`'~-]+)$/;

/** RFC 3261 §8.1.1.5: sequence number below 2**31, and a method token. */
export function parseCSeq(value: string): CSeq {
  const m = CSEQ_RE.exec(value.trim());
  if (!m || m[1] === undefined || m[2] === undefined) throw new SipParseError('Bad CSeq header');
  const seq = Number(m[1]);
  if (seq >= 2 ** 31) throw new SipParseError('CSeq number too large');
  return { seq, method: m[2] };
}

export function cseqOf(msg: SipMessage): CSeq {
  const v = getHeader(msg, 'cseq');
  if (v === undefined) throw new SipParseError('Missing CSeq header');
  return parseCSeq(v);
}
