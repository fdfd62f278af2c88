import { SipParseError } from '../util/errors.js';
import { getHeader, type SipMessage } from './message.js';
import { Memo } from '../util/memo.js';

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

const CSEQS = new Memo<CSeq>();

const CSEQ_RE = /^(\d+)[ \t]+([A-Za-z0-9.!%*_+`'~-]+)$/;

/** RFC 3261 §8.1.1.5: sequence number below 2**31, and a method token. */
export function parseCSeq(value: string): CSeq {
  return CSEQS.get(value, readCSeq);
}

function readCSeq(value: string): CSeq {
  const m = CSEQ_RE.exec(value.trim());
  if (!m || m[1] === undefined || m[2] === undefined) throw new SipParseError('Bad CSeq header');
  const digits = m[1].replace(/^0+(?=\d)/, '');
  if (digits.length > 10 || Number(digits) >= 2 ** 31) throw new SipParseError('CSeq number too large');
  const seq = Number(digits);
  return { seq, method: m[2] };
}

export function cseqOf(msg: SipMessage): CSeq {
  const v = getHeader(msg, 'cseq');
  if (v === undefined) throw new SipParseError('Missing CSeq header');
  return parseCSeq(v);
}
