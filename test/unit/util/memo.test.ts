import { describe, expect, it } from 'vitest';
import { Memo } from '../../../src/util/memo.js';
import { parseVia } from '../../../src/sip/via.js';
import { parseNameAddr } from '../../../src/sip/name-addr.js';
import { SipParseError } from '../../../src/util/errors.js';

describe('Memo', () => {
  it('parses a text once and hands every reader the same view', () => {
    let parses = 0;
    const cache = new Memo<{ n: number }>();
    const parse = (t: string): { n: number } => ({ n: (parses++, t.length) });
    const a = cache.get('abc', parse);
    const b = cache.get('abc', parse);
    expect(b).toBe(a);
    expect(parses).toBe(1);
  });

  it('keeps at most its limit: a flood of distinct texts starts it again empty', () => {
    let parses = 0;
    const cache = new Memo<number>(4);
    const parse = (t: string): number => (parses++, t.length);
    for (let i = 0; i < 10; i++) cache.get(`text-${i}`, parse);
    expect(parses).toBe(10);
    cache.get('text-9', parse); // still there: it came after the last clear
    expect(parses).toBe(10);
    cache.get('text-0', parse); // long gone
    expect(parses).toBe(11);
  });

  it('keeps no failure: a bad text throws every time, with the reason of the caller', () => {
    expect(() => parseNameAddr('<sip:a@b', 'From')).toThrow(new SipParseError('Bad From header: missing >'));
    expect(() => parseNameAddr('<sip:a@b', 'To')).toThrow(new SipParseError('Bad To header: missing >'));
  });

  it('shares Via views between messages with the same top Via', () => {
    const text = 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1;rport';
    expect(parseVia(text)).toBe(parseVia(text));
    expect(parseVia(text).params.get('rport')).toBeNull();
  });
});
